"""Audit over the daemon: every operation of a mixed run is logged, verify passes, tampering is found,
and with the audit store unwritable signing RPCs fail with UNAVAILABLE and return no signature."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator

import grpc
import pytest

from tests.integration.test_daemon_fixtures import Running, start_daemon
from trustsvc.algorithms.sm3 import sm3_hex
from trustsvc.audit import canonical_json, verify_log
from trustsvc.client import error_reason, signature_pb2, timestamp_pb2, token_pb2

pytestmark = pytest.mark.integration


@pytest.fixture
def running(tmp_path) -> Iterator[Running]:
    r = start_daemon(tmp_path / "home", audit_checkpoint_every=4)
    yield r
    r.daemon.stop(2)


def test_mixed_run_is_fully_audited_and_verifies(running: Running) -> None:
    ids: list[tuple[str, str]] = []
    with running.client() as c, running.client("admin") as admin:
        def rid(op: str) -> str:
            r = uuid.uuid4().hex
            ids.append((r, op))
            return r
        c.call(c.signature.SignData, signature_pb2.SignDataRequest(key="default", data=b"a"),
               request_id=rid("SignatureService/SignData"))
        c.call(c.signature.SignMessage, signature_pb2.SignMessageRequest(key="default", data=b"b"),
               request_id=rid("SignatureService/SignMessage"))
        batch = [signature_pb2.BatchSignDataRequest.Item(id=str(i), data=b"x%d" % i) for i in range(5)]
        batch.append(signature_pb2.BatchSignDataRequest.Item(id="empty", data=b""))
        c.call(c.signature.BatchSignData, signature_pb2.BatchSignDataRequest(key="default", items=batch),
               request_id=rid("SignatureService/BatchSignData"))
        if running.daemon.wired["TokenService"]:
            c.call(c.tokens.IssueToken, token_pb2.IssueTokenRequest(subject="s"),
                   request_id=rid("TokenService/IssueToken"))
        if running.daemon.wired["TimeStampService"]:
            c.call(c.timestamps.CreateTimeStamp, timestamp_pb2.CreateTimeStampRequest(data=b"t"),
                   request_id=rid("TimeStampService/CreateTimeStamp"))
        admin.call(admin.keys.CreateKey, __import__("trustsvc.client", fromlist=["key_pb2"]).key_pb2.CreateKeyRequest(
            name="demo-audit"), request_id=rid("KeyService/CreateKey"))
    log = running.daemon.rt.audit
    for request_id, op in ids:
        recs = log.find(request_id)
        assert recs and all(r.operation == op for r in recs), (op, recs)
        assert recs[0].client in ("cn=demo-client", "cn=admin")
    # one record per batch RPC, listing every item: id, SM3 of its data, outcome
    (batch_rec,) = log.find(ids[2][0])
    items = json.loads(batch_rec.detail)["items"]
    assert items == [[str(i), sm3_hex(b"x%d" % i), "ok"] for i in range(5)] + [["empty", "", "EMPTY_DATA"]]
    assert batch_rec.result == "partial" and batch_rec.document_hash == sm3_hex(canonical_json(items))
    signer_key = running.daemon.rt.audit.signer.public_key  # type: ignore[union-attr]
    report = verify_log(running.db, trusted_keys=[signer_key])
    assert report.ok and report.checkpoints >= 1, report.problems
    # tampering with the stored log is found, at the right place
    with running.db.transaction() as tx:
        tx.execute("UPDATE audit_log SET client = 'cn=someone-else' WHERE seq = 3")
    report = verify_log(running.db, trusted_keys=[signer_key])
    assert not report.ok and report.first_bad_seq == 3
    # so is an edited item inside a batch record
    with running.db.transaction() as tx:
        tx.execute("UPDATE audit_log SET client = 'cn=demo-client' WHERE seq = 3")
        tx.execute("UPDATE audit_log SET detail = replace(detail, ?, ?) WHERE seq = ?",
                   (sm3_hex(b"x2"), sm3_hex(b"forged"), batch_rec.seq))
    report = verify_log(running.db, trusted_keys=[signer_key])
    assert [(p.seq, p.kind) for p in report.problems] == [(batch_rec.seq, "EDITED")]


def test_refusals_are_audited_with_their_reason(running: Running) -> None:
    from trustsvc.client import key_pb2, seal_pb2

    with running.client() as c:
        refused = {  # request id -> (what was tried, expected status)
            "r-admin": (lambda rid: c.call(c.keys.CreateKey, key_pb2.CreateKeyRequest(name="mine"), request_id=rid),
                        grpc.StatusCode.PERMISSION_DENIED),
            "r-key": (lambda rid: c.call(c.signature.SignData, signature_pb2.SignDataRequest(key="audit", data=b"x"),
                                         request_id=rid), grpc.StatusCode.PERMISSION_DENIED),
            "r-unknown": (lambda rid: c.call(c.signature.SignData, signature_pb2.SignDataRequest(
                key="demo-none", data=b"x"), request_id=rid), grpc.StatusCode.NOT_FOUND),
            "r-nokey": (lambda rid: c.call(c.signature.SignData, signature_pb2.SignDataRequest(data=b"x"),
                                           request_id=rid), grpc.StatusCode.INVALID_ARGUMENT),
        }
        reasons = {}
        for rid, (attempt, code) in refused.items():
            with pytest.raises(grpc.RpcError) as err:
                attempt(rid)
            assert err.value.code() == code, (rid, err.value)
            reasons[rid] = error_reason(err.value)
        with pytest.raises(grpc.RpcError) as err:  # a read-only call's refusal is not audited
            c.call(c.seals.GetSeal, seal_pb2.GetSealRequest(seal_id="no-such-seal"), request_id="r-read")
    log = running.daemon.rt.audit
    refs = {"r-admin": "mine", "r-key": "audit", "r-unknown": "demo-none", "r-nokey": ""}
    for rid, reason in reasons.items():
        (rec,) = log.find(rid)
        assert rec.result == f"refused:{reason}" and rec.client == "cn=demo-client" and rec.ref == refs[rid], rec
        assert rec.document_hash == "" and json.loads(rec.detail)["message"]
    assert log.find("r-read") == []
    assert verify_log(running.db).ok


def test_unwritable_audit_store_refuses_to_sign(running: Running) -> None:
    with running.client() as c:
        assert c.sign_data("default", b"before").signature
        running.db.read_only = True
        try:
            for call in (lambda: c.sign_data("default", b"x"),
                         lambda: c.sign_message("default", b"x"),
                         lambda: c.batch_sign_data("default", [("1", b"x")]),
                         lambda: c.sign_data("default", b"x", idempotency_key="ro-1")):
                with pytest.raises(grpc.RpcError) as err:
                    call()
                assert err.value.code() == grpc.StatusCode.UNAVAILABLE
                assert error_reason(err.value) in ("STORE_READ_ONLY", "AUDIT_UNAVAILABLE")
        finally:
            running.db.read_only = False
        assert running.daemon.rt.metrics.audit_failures._value.get() >= 4
        assert c.sign_data("default", b"after").signature
    assert verify_log(running.db).ok
