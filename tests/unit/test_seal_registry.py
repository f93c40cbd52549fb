"""Seal registry on SQLite and PostgreSQL: lifecycle, history, queries, conflicts."""

from __future__ import annotations

import pytest

from trustsvc.errors import Conflict, InvalidInput, NotFound
from trustsvc.seal.registry import SealRegistry
from trustsvc.seal.report import Status
from trustsvc.seal.verify import verify

from .test_seal_support import make_setup


def test_lifecycle(db_url: str) -> None:
    reg = SealRegistry(db_url)
    es_id = reg.next_es_id("330106")
    assert es_id == "33010600000001" and reg.next_es_id("330106") == "33010600000002"
    s = make_setup(es_id=es_id)
    rec = reg.register(s.seal, actor="admin-1")
    assert rec.status == "active" and rec.der == s.seal and rec.seal_type == 1
    assert "Seal Maker" in rec.maker and rec.holder
    with pytest.raises(Conflict):
        reg.register(s.seal, actor="admin-1")
    assert reg.suspend(es_id, actor="admin-2", reason="audit").status == "suspended"
    with pytest.raises(Conflict) as exc:
        reg.suspend(es_id, actor="admin-2", reason="again")
    assert exc.value.reason == "SEAL_SUSPENDED"
    assert reg.resume(es_id, actor="admin-2", reason="audit done").status == "active"
    assert reg.revoke(es_id, actor="admin-3", reason="key compromise").status == "revoked"
    for action in (reg.resume, reg.suspend, reg.revoke):
        with pytest.raises(Conflict):
            action(es_id, actor="x", reason="y")
    history = reg.history(es_id)
    assert [(h.action, h.from_status, h.to_status, h.actor) for h in history] == [
        ("make", None, "active", "admin-1"), ("suspend", "active", "suspended", "admin-2"),
        ("resume", "suspended", "active", "admin-2"), ("revoke", "active", "revoked", "admin-3")]
    assert history[-1].reason == "key compromise"
    with pytest.raises(NotFound):
        reg.get("nope")
    with pytest.raises(InvalidInput):
        reg.suspend(es_id, actor="", reason="")


def test_queries_and_status_in_verification(db_url: str) -> None:
    reg = SealRegistry(db_url)
    a, b = make_setup(es_id="A1"), make_setup(es_id="B1")
    reg.register(a.seal, actor="admin", holder="org-a")
    reg.register(b.seal, actor="admin", holder="org-b")
    assert [r.es_id for r in reg.query(holder="org-a")] == ["A1"]
    assert [r.es_id for r in reg.query(seal_type=1)] == ["A1", "B1"]
    reg.revoke("B1", actor="admin", reason="closed")
    assert [r.es_id for r in reg.query(status="active")] == ["A1"]
    assert reg.status("B1") == "revoked" and reg.status("zzz") is None
    assert verify(a.seal, registry=reg).status("seal.status") is Status.PASS
    revoked = verify(b.seal, registry=reg)
    assert revoked.check("seal.status").reason == "SEAL_REVOKED" and not revoked.valid
    expired = make_setup(es_id="C1", start_days=-30, valid_days=10)
    reg.register(expired.seal, actor="admin")
    assert reg.status("C1") == "expired"
    assert reg.expire_due() == ["C1"] and reg.get("C1").status == "expired"


def test_a_seal_past_its_validity_reads_as_expired_before_it_is_recorded(db_url: str) -> None:
    reg = SealRegistry(db_url)
    for es_id, start, days in (("A1", -1, 30), ("B1", -30, 10), ("C1", -30, 10), ("D1", -1, 30)):
        reg.register(make_setup(es_id=es_id, start_days=start, valid_days=days).seal, actor="admin")
    reg.suspend("D1", actor="admin", reason="audit")
    assert reg.get("B1").status == "expired"  # stored: active
    assert [r.es_id for r in reg.query(status="active")] == ["A1"]
    assert [r.es_id for r in reg.query(status="expired")] == ["B1", "C1"]
    assert [r.es_id for r in reg.query(status="suspended")] == ["D1"]
    assert [(r.es_id, r.status) for r in reg.query()] == [("A1", "active"), ("B1", "expired"), ("C1", "expired"),
                                                           ("D1", "suspended")]
    for action in (reg.suspend, reg.resume, reg.revoke):  # final, as a recorded expiry is
        with pytest.raises(Conflict) as exc:
            action("B1", actor="admin", reason="late")
        assert exc.value.reason == "SEAL_EXPIRED"
    assert reg.expire_due() == ["B1", "C1"]  # records it; the history says who and why
    assert reg.history("C1")[-1].action == "expire" and reg.expire_due() == []
    with pytest.raises(InvalidInput) as bad:
        reg.query(status="lost")
    assert bad.value.reason == "BAD_SEAL_STATE"


def test_query_pages_by_es_id(db_url: str) -> None:
    reg = SealRegistry(db_url)
    for es_id in ("A1", "B1", "C1", "D1"):
        reg.register(make_setup(es_id=es_id).seal, actor="admin")
    reg.revoke("B1", actor="admin", reason="closed")
    assert [r.es_id for r in reg.query(limit=2)] == ["A1", "B1"]
    assert [r.es_id for r in reg.query(after="B1", limit=2)] == ["C1", "D1"]
    assert [r.es_id for r in reg.query(status="active", after="A1", limit=1)] == ["C1"]
    assert reg.query(after="D1") == []
