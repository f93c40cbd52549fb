"""Audit over the daemon: every operation of a mixed run is logged with its client, operation, ref and result;
verify passes; each kind of tampering (through the daemon's store and the `trustsvc audit verify` CLI) is
found with its kind and seq; with the audit store unwritable every RPC that signs, issues, revokes or
administers fails with UNAVAILABLE and a reason, returns nothing signed, and changes nothing; and when the
record fails AFTER a revocation or seal change was made (the audit key, the head update), the change is
rolled back with it."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import grpc
import pytest

from tests.integration.test_daemon_fixtures import Running, start_daemon
from tests.unit.test_audit_log import TAMPERING, BrokenSigner, problems
from trustsvc.algorithms.sm3 import sm3_hex
from trustsvc.audit import canonical_json, verify_log
from trustsvc.client import (
    Client,
    document_pb2,
    error_reason,
    key_pb2,
    seal_pb2,
    signature_pb2,
    timestamp_pb2,
    token_pb2,
)
from trustsvc.pdf.devkit import licence_pdf
from trustsvc.seal.registry import SealRegistry
from trustsvc.token.revocation import RevocationStore

pytestmark = pytest.mark.integration


@pytest.fixture
def running(tmp_path) -> Iterator[Running]:
    r = start_daemon(tmp_path / "home", audit_checkpoint_every=4)
    yield r
    r.daemon.stop(2)


# every RPC that signs, issues, revokes or administers ----------------------------------------------------------
@dataclasses.dataclass
class State:
    """What the calls work on, made beforehand: a seal per lifecycle call, a token, a key to rotate and disable."""

    seal: str  # active, signed with
    to_suspend: str
    to_resume: str  # suspended
    to_revoke: str
    token: str
    token_id: str
    key: str  # admin key: rotated, then disabled


def make_state(running: Running, tag: str) -> State:
    with running.client("admin") as admin:
        seals = [admin.call(admin.seals.MakeSeal, seal_pb2.MakeSealRequest(name=f"审计{tag}{i}章", valid_days=30)).seal
                 .seal_id for i in range(4)]
        admin.call(admin.seals.SuspendSeal, seal_pb2.SuspendSealRequest(seal_id=seals[2], reason="setup"))
        issued = admin.call(admin.tokens.IssueToken, token_pb2.IssueTokenRequest(subject=f"sub-{tag}"))
        admin.create_key(f"demo-{tag}")
    return State(seals[0], seals[1], seals[2], seals[3], issued.token, issued.token_id, f"demo-{tag}")


def _stream(request_type: Any, first: dict[str, Any], data: bytes, size: int = 4096) -> Iterator[Any]:
    yield request_type(**first)
    for i in range(0, len(data), size):
        yield request_type(chunk=data[i:i + size])


def _pdf_stream(c: Client, options: Any, pdf: bytes, rid: str) -> list[Any]:
    return c.call(lambda req, **kw: list(c.documents.SignPdfStream(req, **kw)),
                  _stream(document_pb2.SignPdfStreamRequest, {"options": options}, pdf), request_id=rid)


PDF = licence_pdf()
OPTS = document_pb2.PdfSignOptions(key="default", reason="licence issued")

# operation -> (identity, call(client, state, request id) -> reply)
CALLS: dict[str, tuple[str, Callable[[Client, State, str], Any]]] = {
    "SignatureService/SignData": ("demo-client", lambda c, s, rid: c.call(
        c.signature.SignData, signature_pb2.SignDataRequest(key="default", data=b"a"), request_id=rid)),
    "SignatureService/SignMessage": ("demo-client", lambda c, s, rid: c.call(
        c.signature.SignMessage, signature_pb2.SignMessageRequest(key="default", data=b"b"), request_id=rid)),
    "SignatureService/BatchSignData": ("demo-client", lambda c, s, rid: c.call(
        c.signature.BatchSignData, signature_pb2.BatchSignDataRequest(key="default", items=[
            signature_pb2.BatchSignDataRequest.Item(id="1", data=b"x1"),
            signature_pb2.BatchSignDataRequest.Item(id="empty", data=b"")]), request_id=rid)),
    "SignatureService/SignDataStream": ("demo-client", lambda c, s, rid: c.call(
        c.signature.SignDataStream, _stream(signature_pb2.SignDataStreamRequest,
                                            {"init": signature_pb2.SignStreamInit(key="default")}, b"s" * 10000),
        request_id=rid)),
    "SignatureService/SignMessageStream": ("demo-client", lambda c, s, rid: c.call(
        c.signature.SignMessageStream, _stream(signature_pb2.SignMessageStreamRequest,
                                               {"init": signature_pb2.SignStreamInit(key="default")}, b"m" * 10000),
        request_id=rid)),
    "TokenService/IssueToken": ("demo-client", lambda c, s, rid: c.call(
        c.tokens.IssueToken, token_pb2.IssueTokenRequest(subject="s"), request_id=rid)),
    "TokenService/RevokeToken": ("demo-client", lambda c, s, rid: c.call(
        c.tokens.RevokeToken, token_pb2.RevokeTokenRequest(token=s.token, reason="lost"), request_id=rid)),
    "TimeStampService/CreateTimeStamp": ("demo-client", lambda c, s, rid: c.call(
        c.timestamps.CreateTimeStamp, timestamp_pb2.CreateTimeStampRequest(data=b"t"), request_id=rid)),
    "SealService/MakeSeal": ("admin", lambda c, s, rid: c.call(
        c.seals.MakeSeal, seal_pb2.MakeSealRequest(name="审计新章", valid_days=30), request_id=rid)),
    "SealService/SignWithSeal": ("demo-client", lambda c, s, rid: c.call(
        c.seals.SignWithSeal, seal_pb2.SignWithSealRequest(seal_id=s.seal, data=b"doc"), request_id=rid)),
    "SealService/SuspendSeal": ("admin", lambda c, s, rid: c.call(
        c.seals.SuspendSeal, seal_pb2.SuspendSealRequest(seal_id=s.to_suspend, reason="check"), request_id=rid)),
    "SealService/ResumeSeal": ("admin", lambda c, s, rid: c.call(
        c.seals.ResumeSeal, seal_pb2.ResumeSealRequest(seal_id=s.to_resume), request_id=rid)),
    "SealService/RevokeSeal": ("admin", lambda c, s, rid: c.call(
        c.seals.RevokeSeal, seal_pb2.RevokeSealRequest(seal_id=s.to_revoke, reason="lost"), request_id=rid)),
    "DocumentService/SignPdf": ("demo-client", lambda c, s, rid: c.call(
        c.documents.SignPdf, document_pb2.SignPdfRequest(options=OPTS, pdf=PDF), request_id=rid, timeout=60)),
    "DocumentService/SignPdfStream": ("demo-client", lambda c, s, rid: _pdf_stream(c, OPTS, PDF, rid)),
    "DocumentService/BatchSignPdf": ("demo-client", lambda c, s, rid: c.call(
        c.documents.BatchSignPdf, document_pb2.BatchSignPdfRequest(options=OPTS, items=[
            document_pb2.BatchSignPdfRequest.Item(id="a", pdf=PDF),
            document_pb2.BatchSignPdfRequest.Item(id="b", pdf=b"not a pdf")]), request_id=rid, timeout=60)),
    "KeyService/CreateKey": ("admin", lambda c, s, rid: c.call(
        c.keys.CreateKey, key_pb2.CreateKeyRequest(name="demo-new", spec="sm2"), request_id=rid)),
    "KeyService/RotateKey": ("admin", lambda c, s, rid: c.call(
        c.keys.RotateKey, key_pb2.RotateKeyRequest(name=s.key), request_id=rid)),
    "KeyService/DisableKey": ("admin", lambda c, s, rid: c.call(
        c.keys.DisableKey, key_pb2.DisableKeyRequest(name=s.key), request_id=rid)),
}


def _key_ref(running: Running, name: str) -> str:
    return running.daemon.rt.keystore.info(name).ref


def _expected_ref(running: Running, op: str, s: State, reply: Any) -> str:
    """The ref each operation's record names: the signing key, the seal or the token."""
    default, tsa = _key_ref(running, "default"), _key_ref(running, running.daemon.rt.config.tsa_key)
    token_key = _key_ref(running, running.daemon.rt.config.token_key)
    return {
        "TokenService/IssueToken": token_key,
        "TokenService/RevokeToken": f"token:{s.token_id}",
        "TimeStampService/CreateTimeStamp": tsa,
        "SealService/MakeSeal": f"seal:{reply.seal.seal_id}" if op == "SealService/MakeSeal" else "",
        "SealService/SignWithSeal": f"seal:{s.seal}",
        "SealService/SuspendSeal": f"seal:{s.to_suspend}",
        "SealService/ResumeSeal": f"seal:{s.to_resume}",
        "SealService/RevokeSeal": f"seal:{s.to_revoke}",
        "KeyService/CreateKey": "demo-new@1" if op != "KeyService/CreateKey" else reply.key.ref,
        "KeyService/RotateKey": f"{s.key}@2" if op != "KeyService/RotateKey" else reply.key.ref,
        "KeyService/DisableKey": reply.key.ref if op == "KeyService/DisableKey" else "",
    }.get(op, default)


def test_mixed_run_is_fully_audited_and_verifies(running: Running, tmp_path: Any,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    state = make_state(running, "mix")
    done: list[tuple[str, str, str, Any]] = []  # request id, operation, identity, reply
    with running.client() as c, running.client("admin") as admin:
        for op, (identity, call) in CALLS.items():
            rid = uuid.uuid4().hex
            reply = call(admin if identity == "admin" else c, state, rid)
            done.append((rid, op, identity, reply))
    log = running.daemon.rt.audit
    for rid, op, identity, reply in done:
        (rec,) = log.find(rid)  # exactly one record per RPC, batches included
        expected_ref = _expected_ref(running, op, state, reply)
        result = "partial" if op.startswith(("SignatureService/BatchSignData", "DocumentService/BatchSignPdf")) \
            else "ok"
        assert (rec.operation, rec.client, rec.ref, rec.result) == (op, f"cn={identity}", expected_ref, result), rec
        receipt = reply[-1].summary.audit if op == "DocumentService/SignPdfStream" else reply.audit
        assert (receipt.seq, receipt.record_hash, receipt.request_id) == (rec.seq, rec.hash, rid), op
    by_op = {op: log.find(rid)[0] for rid, op, _, _ in done}
    # what was signed is named by its hash
    assert by_op["SignatureService/SignData"].document_hash == sm3_hex(b"a")
    assert by_op["SignatureService/SignDataStream"].document_hash == sm3_hex(b"s" * 10000)
    assert by_op["SealService/SignWithSeal"].document_hash == sm3_hex(b"doc")
    assert by_op["DocumentService/SignPdf"].document_hash == hashlib.sha256(PDF).hexdigest()
    assert by_op["DocumentService/SignPdfStream"].document_hash == hashlib.sha256(PDF).hexdigest()
    # one record per batch RPC, listing every item: id, hash of its data, outcome
    items = json.loads(by_op["SignatureService/BatchSignData"].detail)["items"]
    assert items == [["1", sm3_hex(b"x1"), "ok"], ["empty", "", "EMPTY_DATA"]]
    assert by_op["SignatureService/BatchSignData"].document_hash == sm3_hex(canonical_json(items))
    pdf_items = json.loads(by_op["DocumentService/BatchSignPdf"].detail)["items"]
    assert [(i[0], i[1], i[2] == "ok") for i in pdf_items] == [
        ("a", hashlib.sha256(PDF).hexdigest(), True), ("b", hashlib.sha256(b"not a pdf").hexdigest(), False)]
    issued = next(reply for _, op, _, reply in done if op == "TokenService/IssueToken")
    assert json.loads(by_op["TokenService/IssueToken"].detail)["jti"] == issued.token_id
    signer_key = log.signer.public_key  # type: ignore[union-attr]
    report = verify_log(running.db, trusted_keys=[signer_key])
    assert report.ok and report.checkpoints >= 5, report.problems
    _auditor_finds_the_signed_pdf(running, next(r for _, op, _, r in done if op == "DocumentService/SignPdf"),
                                  tmp_path, capsys)


def _auditor_finds_the_signed_pdf(running: Running, reply: Any, tmp_path: Any,
                                  capsys: pytest.CaptureFixture[str]) -> None:
    """`trustsvc audit find --document` with the PDF SignPdf returned: that record as its signed output, and the
    other two that signed the same input (its earlier revision) as document and batch item."""
    from cli.main import main

    (tmp_path / "signed.pdf").write_bytes(reply.pdf)
    capsys.readouterr()
    assert main(["audit", "find", "--db", f"sqlite:///{running.db.path}", "--document", str(tmp_path / "signed.pdf"),
                 "--json"]) == 0
    found = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [(f["operation"], f["matched"], f["hash_is"]) for f in found] == [
        ("DocumentService/SignPdf", "signed output", "SHA-256 of the file"),
        ("DocumentService/SignPdfStream", "document", f"SHA-256 of the revision in bytes 0..{len(PDF)}"),
        ("DocumentService/BatchSignPdf", "batch item a", f"SHA-256 of the revision in bytes 0..{len(PDF)}")]
    assert found[0]["seq"] == reply.audit.seq
    assert main(["audit", "find", "--db", f"sqlite:///{running.db.path}", "--hash", "00" * 32]) == 1  # none


def test_refusals_are_audited_with_their_reason(running: Running) -> None:
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


# fail closed -------------------------------------------------------------------------------------------------
def _world(running: Running, s: State) -> dict[str, Any]:
    """Everything a refused call could have changed: the log's head, seal states, keys, the token's validity."""
    rt = running.daemon.rt
    with running.client("admin") as admin:
        seals = {x.seal_id: x.state for x in admin.call(admin.seals.ListSeals, seal_pb2.ListSealsRequest()).seals}
        keys = sorted((k.name, k.version, k.state) for k in admin.list_keys())
        token = admin.call(admin.tokens.VerifyToken, token_pb2.VerifyTokenRequest(token=s.token)).result.valid
    return {"head": rt.audit.head(), "seals": seals, "keys": keys, "token_valid": token}


def _no_signed_output(op: str, reply: Any) -> None:
    """A BatchSignPdf may answer per item: then no item carries a signed PDF."""
    assert op == "DocumentService/BatchSignPdf", f"{op} returned a reply with the audit store unwritable"
    assert all(r.WhichOneof("outcome") == "error" for r in reply.results) and not reply.audit.seq, reply


def _all_refused(running: Running, s: State, reasons: tuple[str, ...]) -> None:
    with running.client() as c, running.client("admin") as admin:
        for op, (identity, call) in CALLS.items():
            try:
                reply = call(admin if identity == "admin" else c, s, uuid.uuid4().hex)
            except grpc.RpcError as err:
                assert err.code() == grpc.StatusCode.UNAVAILABLE, (op, err.code(), err.details())
                assert error_reason(err) in reasons, (op, error_reason(err), err.details())
            else:
                _no_signed_output(op, reply)


def test_unwritable_audit_store_fails_every_changing_rpc_closed(running: Running) -> None:
    s = make_state(running, "ro")
    before = _world(running, s)
    running.db.writes_refused = True
    try:
        _all_refused(running, s, ("STORE_READ_ONLY", "AUDIT_UNAVAILABLE"))
        with running.client() as c:  # an idempotent retry is refused the same way
            with pytest.raises(grpc.RpcError) as err:
                c.sign_data("default", b"x", idempotency_key="ro-1")
            assert err.value.code() == grpc.StatusCode.UNAVAILABLE
    finally:
        running.db.writes_refused = False
    assert _world(running, s) == before  # nothing half-happened: no revocation, seal or key change, no new key
    assert running.daemon.rt.metrics.audit_failures._value.get() >= 4
    with running.client() as c:
        assert c.sign_data("default", b"after").signature
    assert verify_log(running.db).ok


def test_audit_table_unwritable_alone_changes_nothing(running: Running) -> None:
    """Only the audit log refuses writes (the seal, token and idempotency tables still accept them): every
    changing RPC still fails closed, and nothing is revoked, suspended, made or rotated unrecorded."""
    s = make_state(running, "tr")
    before = _world(running, s)
    with running.db.transaction() as tx:
        tx.execute("CREATE TRIGGER audit_blocked BEFORE INSERT ON audit_log BEGIN "
                   "SELECT RAISE(ABORT, 'audit blocked'); END")
    try:
        _all_refused(running, s, ("AUDIT_UNAVAILABLE",))
    finally:
        with running.db.transaction() as tx:
            tx.execute("DROP TRIGGER audit_blocked")
    assert _world(running, s) == before
    assert verify_log(running.db).ok


# a record failing after the change was made: one transaction, so the change goes too ----------------------------
STORE_CHANGES = ("TokenService/RevokeToken", "SealService/MakeSeal", "SealService/SuspendSeal",
                 "SealService/ResumeSeal", "SealService/RevokeSeal")


def _spy_changes(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """What each revocation or seal change saw of itself inside its transaction (it was made there)."""
    seen: list[str] = []
    revoke_jti, change, register = RevocationStore.revoke_jti, SealRegistry._change, SealRegistry.register

    def spy_revoke(self: RevocationStore, iss: str, jti: str, **kw: Any) -> None:
        revoke_jti(self, iss, jti, **kw)
        row = kw["tx"].execute("SELECT 1 FROM token_revoked_jti WHERE jti = ?", (jti,)).fetchone()
        seen.append(f"token:{jti}:{'revoked' if row else 'not revoked'}")

    def spy_change(self: SealRegistry, es_id: str, action: str, actor: str, reason: str, tx: Any = None) -> Any:
        assert tx is not None
        rec = change(self, es_id, action, actor, reason, tx)
        seen.append(f"seal:{es_id}:{rec.status}")
        return rec

    def spy_register(self: SealRegistry, der: bytes, **kw: Any) -> Any:
        assert kw.get("tx") is not None
        rec = register(self, der, **kw)
        seen.append(f"seal:{rec.es_id}:{rec.status}")
        return rec

    monkeypatch.setattr(RevocationStore, "revoke_jti", spy_revoke)
    monkeypatch.setattr(SealRegistry, "_change", spy_change)
    monkeypatch.setattr(SealRegistry, "register", spy_register)
    return seen


def _changes_refused(running: Running, s: State, cause: str) -> None:
    """Every store-changing RPC (and an idempotent MakeSeal) fails UNAVAILABLE AUDIT_UNAVAILABLE naming ``cause``."""
    with running.client() as c, running.client("admin") as admin:
        for op in STORE_CHANGES:
            identity, call = CALLS[op]
            with pytest.raises(grpc.RpcError) as err:
                call(admin if identity == "admin" else c, s, uuid.uuid4().hex)
            assert err.value.code() == grpc.StatusCode.UNAVAILABLE, (op, err.value.details())
            assert error_reason(err.value) == "AUDIT_UNAVAILABLE" and cause in err.value.details(), op
        with pytest.raises(grpc.RpcError) as err:
            admin.call(admin.seals.MakeSeal, seal_pb2.MakeSealRequest(name="幂等章", idempotency_key="mk-1"))
        assert err.value.code() == grpc.StatusCode.UNAVAILABLE


def _verify_cli(running: Running, tmp_path: Any) -> None:
    from cli.main import main

    key_pem = tmp_path / "audit.pub.pem"
    key_pem.write_bytes(running.daemon.rt.audit.signer.public_key.to_pem())  # type: ignore[union-attr]
    assert main(["audit", "verify", "--db", f"sqlite:///{running.db.path}", "--audit-key", str(key_pem)]) == 0


def _changes_go_through(running: Running, s: State) -> None:
    """Once the audit log works again the same calls succeed, each with its record; the idempotent MakeSeal
    refused above is made once and replayed."""
    log = running.daemon.rt.audit
    with running.client() as c, running.client("admin") as admin:
        for op in STORE_CHANGES:
            identity, call = CALLS[op]
            rid = uuid.uuid4().hex
            reply = call(admin if identity == "admin" else c, s, rid)
            assert [r.seq for r in log.find(rid)] == [reply.audit.seq], op
        first = admin.call(admin.seals.MakeSeal, seal_pb2.MakeSealRequest(name="幂等章", idempotency_key="mk-1"))
        again = admin.call(admin.seals.MakeSeal, seal_pb2.MakeSealRequest(name="幂等章", idempotency_key="mk-1"))
        assert (again.seal.seal_id, again.audit.seq, again.audit.record_hash) == \
            (first.seal.seal_id, first.audit.seq, first.audit.record_hash)
        named = [x for x in admin.call(admin.seals.ListSeals, seal_pb2.ListSealsRequest()).seals if x.name == "幂等章"]
        assert [x.seal_id for x in named] == [first.seal.seal_id]
        assert admin.call(admin.tokens.VerifyToken, token_pb2.VerifyTokenRequest(token=s.token)).result.reason \
            == "REVOKED"


def test_audit_key_failing_on_the_record_rolls_the_change_back(running: Running, monkeypatch: pytest.MonkeyPatch,
                                                                tmp_path: Any) -> None:
    """The audit key fails while signing the checkpoint due with the record: the probe of before_change would
    have passed, the change was made in the transaction, and it is rolled back with the record."""
    s = make_state(running, "key")
    before = _world(running, s)
    log = running.daemon.rt.audit
    log.check_writable()  # the store takes writes: only the record itself fails
    seen = _spy_changes(monkeypatch)
    with monkeypatch.context() as broken:
        broken.setattr(log, "signer", BrokenSigner(log.signer))  # type: ignore[arg-type]
        broken.setattr(log, "checkpoint_every", 1)  # every record is due a checkpoint
        _changes_refused(running, s, "the audit key is unavailable")
    assert f"token:{s.token_id}:revoked" in seen and f"seal:{s.to_suspend}:suspended" in seen
    assert f"seal:{s.to_resume}:active" in seen and f"seal:{s.to_revoke}:revoked" in seen
    assert any(x.endswith(":active") and x.startswith("seal:TS") for x in seen)  # a MakeSeal registration
    assert _world(running, s) == before  # token valid, seal states and the log's head as they were
    _verify_cli(running, tmp_path)
    _changes_go_through(running, s)
    _verify_cli(running, tmp_path)


def test_head_update_failing_after_the_change_rolls_it_back(running: Running, monkeypatch: pytest.MonkeyPatch,
                                                            tmp_path: Any) -> None:
    """The last write of the transaction (moving the head row) fails, as a full disk or a lost lock would:
    the change and the record go together. A probe (check_writable) would not have seen this coming."""
    s = make_state(running, "head")
    before = _world(running, s)
    log = running.daemon.rt.audit
    with running.db.transaction() as tx:
        tx.execute("CREATE TRIGGER audit_head_stuck BEFORE UPDATE ON audit_head WHEN NEW.seq <> OLD.seq BEGIN "
                   "SELECT RAISE(ABORT, 'database or disk is full'); END")
    try:
        log.check_writable()  # passes: the probe moves no head
        seen = _spy_changes(monkeypatch)
        _changes_refused(running, s, "disk is full")
        assert f"token:{s.token_id}:revoked" in seen and f"seal:{s.to_revoke}:revoked" in seen
    finally:
        with running.db.transaction() as tx:
            tx.execute("DROP TRIGGER audit_head_stuck")
    assert _world(running, s) == before
    _verify_cli(running, tmp_path)
    monkeypatch.undo()
    _changes_go_through(running, s)
    _verify_cli(running, tmp_path)


# tampering through the daemon's store and the CLI ------------------------------------------------------------
def _daemon_with_log(tmp_path: Any) -> Running:
    """A daemon that has written 10 records (checkpoints at 4 and 8) through its signing RPCs."""
    r = start_daemon(tmp_path / "home", audit_checkpoint_every=4)
    with r.client() as c:
        for i in range(10):
            c.sign_data("default", b"doc %d" % i)
    assert r.daemon.rt.audit.head()[0] == 10
    return r


@pytest.mark.parametrize("name", ["edited", "rehashed", "deleted-middle", "deleted-tail", "deleted-last",
                                  "inserted-middle", "appended-past-head", "reordered", "checkpoint-signature"])
def test_tampering_with_the_daemon_store_is_found_by_kind_and_seq(tmp_path, capsys, name: str) -> None:
    from cli.main import main

    r = _daemon_with_log(tmp_path)
    try:
        key_pem = tmp_path / "audit.pub.pem"
        key_pem.write_bytes(r.daemon.rt.audit.signer.public_key.to_pem())  # type: ignore[union-attr]
        url = f"sqlite:///{r.db.path}"
        assert main(["audit", "verify", "--db", url, "--audit-key", str(key_pem)]) == 0
        assert capsys.readouterr().out.strip().endswith("OK")
        tamper, expected = TAMPERING[name]
        tamper(r.db)
        report = verify_log(r.db, trusted_keys=[r.daemon.rt.audit.signer.public_key])  # type: ignore[union-attr]
        assert problems(report) == expected, report.problems
        assert main(["audit", "verify", "--db", url, "--audit-key", str(key_pem), "--json"]) == 1
        out = json.loads(capsys.readouterr().out)
        assert [(p["seq"], p["kind"]) for p in out["problems"]] == expected
        assert out["ok"] is False and out["first_bad_seq"] == expected[0][0]
        assert main(["audit", "verify", "--db", url]) == 1
        text = capsys.readouterr().out
        for seq, kind in expected:
            assert f"seq {seq}: {kind}: " in text
        assert f"TAMPERED (first problem at seq {expected[0][0]})" in text
    finally:
        r.daemon.stop(2)
