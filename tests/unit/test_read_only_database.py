"""Database(read_only=True): what auditors' tools open. Nothing is created or written, on SQLite and PostgreSQL."""

from __future__ import annotations

import hashlib
import shutil
import sqlite3
import subprocess
import sys
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


def _on_read_only_mount(source: Path, mount: Path, command: str) -> subprocess.CompletedProcess[str]:
    """Run ``command`` (sh) where ``mount`` is a read-only bind mount of ``source`` (a private mount namespace)."""
    if shutil.which("unshare") is None:
        pytest.skip("unshare is not installed")
    mount.mkdir()
    script = f"mount --bind {source} {mount} && mount -o remount,ro,bind {mount} && {command}"
    proc = subprocess.run(["unshare", "-m", "sh", "-c", script], capture_output=True, text=True, timeout=120)
    if "mount:" in proc.stderr or "unshare:" in proc.stderr:
        pytest.skip(f"no private read-only mount here: {proc.stderr.strip()}")
    return proc


def test_a_wal_database_on_a_read_only_mount(tmp_path: Path) -> None:
    """An auditor's read-only mount holds a closed database, without -wal and -shm files: it opens (immutable: no
    writer has it open) and reads. With a -wal but no -shm file (copied while a writer had it open) the error says
    what to copy."""
    data = tmp_path / "data"
    data.mkdir()
    db = Database(f"sqlite:///{data / 't.db'}")
    es_id = SealRegistry(db).register(make_setup().seal, actor="test").es_id
    db.close()
    assert sorted(p.name for p in data.iterdir()) == ["t.db"]
    ro = tmp_path / "ro"
    read = (f"{sys.executable} -c \"from trustsvc.seal.registry import SealRegistry; "
            f"from trustsvc.store.database import Database; "
            f"print(SealRegistry(Database('sqlite:///{ro / 't.db'}', read_only=True)).get('{es_id}').status)\"")
    proc = _on_read_only_mount(data, ro, read)
    assert proc.returncode == 0 and proc.stdout.strip() == "active", proc.stderr
    writer = sqlite3.connect(data / "t.db")  # a writer holds it open: -wal and -shm exist beside it
    try:
        writer.execute("PRAGMA journal_mode=WAL")
        writer.execute("UPDATE seal_records SET status = status")
        (data / "t.db-shm").unlink()  # copied without it
        ro.rmdir()
        proc = _on_read_only_mount(data, ro, read)
        assert proc.returncode != 0 and "needs its -shm file" in proc.stderr, proc.stderr
    finally:
        writer.close()
