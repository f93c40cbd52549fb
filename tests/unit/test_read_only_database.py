"""Database(read_only=True): what auditors' tools open. Nothing is created or written, on SQLite and PostgreSQL."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from trustsvc.audit import AuditLog
from trustsvc.audit.log import AuditEvent
from trustsvc.errors import StoreError
from trustsvc.seal.registry import SealRegistry
from trustsvc.store.database import Database, sqlite_path

from .test_seal_support import make_setup


def _registry_with_one_seal(url: str) -> str:
    s = make_setup()
    record = SealRegistry(url).register(s.seal, actor="test")
    return record.es_id


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_reads_what_is_there_and_writes_nothing(db_url: str) -> None:
    es_id = _registry_with_one_seal(db_url)
    AuditLog(Database(db_url)).append(AuditEvent("test.op", "tester"))
    path = sqlite_path(db_url)
    before = _digest(Path(path)) if path else None

    db = Database(db_url, read_only=True)
    registry = SealRegistry(db)
    assert registry.get(es_id).status == "active"
    assert [r.es_id for r in registry.query()] == [es_id]
    assert [h.action for h in registry.history(es_id)] == ["make"]
    assert [r.operation for r in AuditLog(db).tail(5)] == ["test.op"]

    with pytest.raises(StoreError) as refused:
        registry.suspend(es_id, actor="auditor", reason="must not happen")
    assert refused.value.reason == "STORE_READ_ONLY"
    with pytest.raises(StoreError) as refused:
        AuditLog(db).append(AuditEvent("test.op", "auditor"))
    assert refused.value.reason == "STORE_READ_ONLY"
    db.close()

    assert SealRegistry(db_url).get(es_id).status == "active"
    if path:
        assert _digest(Path(path)) == before


def test_a_missing_schema_is_reported_not_created(db_url: str) -> None:
    Database(db_url)  # schema_migrations only: no seal registry, no audit log
    db = Database(db_url, read_only=True)
    for open_component in (SealRegistry, AuditLog):
        with pytest.raises(StoreError) as missing:
            open_component(db)
        assert missing.value.reason == "SCHEMA_MISSING"
    assert Database(db_url).migrate("seal", []) == 0  # still nothing recorded for it


def test_an_empty_sqlite_file_gets_no_tables(tmp_path: Path) -> None:
    file = tmp_path / "empty.db"
    file.write_bytes(b"")
    with pytest.raises(StoreError) as missing:
        SealRegistry(Database(f"sqlite:///{file}", read_only=True))
    assert missing.value.reason == "SCHEMA_MISSING"
    assert file.read_bytes() == b""


def test_a_missing_sqlite_file_is_not_created(tmp_path: Path) -> None:
    file = tmp_path / "absent" / "trustsvc.db"
    with pytest.raises(StoreError) as absent:
        SealRegistry(Database(f"sqlite:///{file}", read_only=True))
    assert absent.value.reason == "STORE_UNAVAILABLE"
    assert not file.parent.exists()
