"""Token revocations and seal registry changes made inside AuditLog.transaction, on SQLite and PostgreSQL:
the change and its audit record commit together, and a failure after the change leaves neither."""

from __future__ import annotations

import pytest

from trustsvc.algorithms import SoftwareSigner
from trustsvc.audit import AuditEvent, AuditLog, verify_log
from trustsvc.errors import Conflict, StoreError
from trustsvc.seal.registry import SealRegistry
from trustsvc.store.database import Database
from trustsvc.token import RevocationStore

from .test_audit_log import BrokenSigner
from .test_seal_support import make_setup


def _stores(url: str, every: int = 100) -> tuple[Database, AuditLog, SoftwareSigner]:
    db = Database(url)
    signer = SoftwareSigner.generate("sm2")
    return db, AuditLog(db, signer, checkpoint_every=every), signer


def test_revocation_commits_with_its_record_or_not_at_all(db_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    db, log, signer = _stores(db_url, every=2)
    store = RevocationStore(db)
    with log.transaction() as atx:
        store.revoke_jti("iss", "t1", expires_at=2_000_000_000, reason="lost", tx=atx.tx)
        rec = atx.append(AuditEvent("TokenService/RevokeToken", "cn=a", ref="token:t1"))
    assert store.is_revoked("iss", "t1", "alice", 1) and log.head() == (1, rec.hash)

    with pytest.raises(ValueError), log.transaction() as atx:  # an error after the change and its record
        store.revoke_jti("iss", "t2", tx=atx.tx)
        store.revoke_subject("iss", "bob", 100, tx=atx.tx)
        atx.append(AuditEvent("TokenService/RevokeToken", "cn=a", ref="token:t2"))
        raise ValueError("after")
    assert not store.is_revoked("iss", "t2", "alice", 1) and not store.is_revoked("iss", "x", "bob", 50)

    monkeypatch.setattr(log, "signer", BrokenSigner(signer))  # seq 2 is due a checkpoint: the audit key fails
    with pytest.raises(StoreError) as err, log.transaction() as atx:
        store.revoke_jti("iss", "t2", tx=atx.tx)
        atx.append(AuditEvent("TokenService/RevokeToken", "cn=a", ref="token:t2"))
    assert err.value.reason == "AUDIT_UNAVAILABLE"
    assert not store.is_revoked("iss", "t2", "alice", 1) and log.head() == (1, rec.hash)

    monkeypatch.setattr(log, "signer", signer)
    store.revoke_jti("iss", "t3")  # the library API without a transaction is unchanged
    assert store.revoke_subject("iss", "carol", 100) == 100
    assert store.is_revoked("iss", "t3", "x", 1) and store.is_revoked("iss", "y", "carol", 50)
    assert verify_log(db, trusted_keys=[signer.public_key]).ok


def test_seal_registry_changes_commit_with_their_record_or_not_at_all(db_url: str) -> None:
    db, log, signer = _stores(db_url)
    reg = SealRegistry(db)
    s = make_setup(es_id="33010600000009")
    with log.transaction() as atx:
        rec = reg.register(s.seal, actor="cn=admin", holder="default", tx=atx.tx)
        atx.append(AuditEvent("SealService/MakeSeal", "cn=admin", ref=f"seal:{rec.es_id}"))
    assert rec.status == "active" and reg.get(rec.es_id) == rec

    for action in ("suspend", "revoke"):  # a failure after the change: the seal stays active, no history
        with pytest.raises(ValueError), log.transaction() as atx:
            changed = getattr(reg, action)(rec.es_id, actor="cn=admin", reason="test", tx=atx.tx)
            assert changed.status != "active"  # the change was made, inside the transaction
            atx.append(AuditEvent(f"SealService/{action}", "cn=admin", ref=f"seal:{rec.es_id}"))
            raise ValueError("after")
        assert reg.get(rec.es_id).status == "active" and [h.action for h in reg.history(rec.es_id)] == ["make"]

    with log.transaction() as atx:
        assert reg.suspend(rec.es_id, actor="cn=admin", reason="check", tx=atx.tx).status == "suspended"
        atx.append(AuditEvent("SealService/SuspendSeal", "cn=admin", ref=f"seal:{rec.es_id}"))
    with pytest.raises(Conflict), log.transaction() as atx:  # a refused change writes no record either
        reg.suspend(rec.es_id, actor="cn=admin", reason="again", tx=atx.tx)
    assert reg.status(rec.es_id) == "suspended" and log.head()[0] == 2

    with pytest.raises(ValueError), log.transaction() as atx:  # a registration rolled back: no seal at all
        reg.register(make_setup(es_id="33010600000010").seal, actor="cn=admin", tx=atx.tx)
        raise ValueError("before its record")
    assert reg.status("33010600000010") is None
    assert [h.action for h in reg.history(rec.es_id)] == ["make", "suspend"]
    assert verify_log(db, trusted_keys=[signer.public_key]).ok
