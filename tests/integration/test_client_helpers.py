"""trustsvc.client: one method per RPC, each with the right retry rule, each working against a real daemon."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any

import grpc
import pytest

from tests.integration.test_daemon_fixtures import Running
from trustsvc import codegen
from trustsvc.client import Client, document_pb2, error_reason
from trustsvc.pdf.devkit import licence_pdf
from trustsvc.seal.picture import render_png

SERVICES = ("signature", "key", "token", "seal", "document", "timestamp")
# RPCs that change state without an idempotency key: a retry could act twice, so they are never retried
NEVER_RETRIED = {"RevokeToken", "SuspendSeal", "ResumeSeal", "RevokeSeal", "DisableKey"}
READS = re.compile(r"(Verify|Get|List|Introspect|Parse|Export|Validate).*")


def _snake(name: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()


def _rpcs() -> Iterator[tuple[str, Any]]:
    for module in SERVICES:
        pb, _ = codegen.load(module)
        for service in pb.DESCRIPTOR.services_by_name.values():
            yield from ((m.name, m) for m in service.methods)


def test_every_rpc_has_a_method() -> None:
    missing = [name for name, _ in _rpcs() if not callable(getattr(Client, _snake(name), None))]
    assert not missing, missing


class _Recorder(Client):
    """A client that records what it would call instead of calling."""

    def __init__(self) -> None:  # no channel
        self.calls: list[tuple[str, bool]] = []
        for stub in ("signature", "keys", "tokens", "seals", "documents", "timestamps"):
            setattr(self, stub, _Names())

    def call(self, method: Any, request: Any, *, idempotent: bool = False, **kw: Any) -> Any:
        self.calls.append((method, idempotent))
        return _Anything()


class _Names:
    def __getattr__(self, name: str) -> str:
        return name


class _Anything:
    def __getattr__(self, name: str) -> Any:
        return _Anything()

    def __iter__(self) -> Iterator[Any]:
        return iter(())


_ARGS: dict[str, tuple[tuple[Any, ...], dict[str, Any]]] = {
    "sign_data": (("k", b"d"), {}), "verify_signed_data": ((b"d", b"s"), {}), "sign_message": (("k", b"d"), {}),
    "verify_signed_message": ((b"c",), {}), "batch_sign_data": (("k", [("1", b"d")]), {}),
    "export_cert": (("k",), {}), "parse_cert": ((b"c",), {}), "validate_cert": ((b"c",), {}),
    "list_keys": ((), {}), "create_key": (("k",), {}), "rotate_key": (("k",), {}), "disable_key": (("k",), {}),
    "issue_token": (("s",), {}), "verify_token": (("t",), {}), "revoke_token": ((), {"token_id": "j"}),
    "introspect_token": (("t",), {}), "get_jwks": ((), {}),
    "make_seal": (("n",), {"picture": b"p"}), "get_seal": (("e",), {}), "list_seals": ((), {}),
    "suspend_seal": (("e", "r"), {}), "resume_seal": (("e",), {}), "revoke_seal": (("e", "r"), {}),
    "sign_with_seal": (("e", b"d"), {}), "verify_seal_signature": ((b"s",), {}),
    "sign_pdf": ((b"p", document_pb2.PdfSignOptions()), {}), "verify_pdf": ((b"p",), {}),
    "batch_sign_pdf": (([("1", b"p")], document_pb2.PdfSignOptions()), {}),
    "create_time_stamp": ((), {"data": b"d"}), "verify_time_stamp": ((b"t",), {}),
}


@pytest.mark.parametrize("rpc", sorted(n for n, m in _rpcs() if not m.client_streaming))
def test_retry_rule(rpc: str) -> None:
    """Reads and verifications are always retried; signing and admin changes only with an idempotency key."""
    method = _snake(rpc)
    args, kwargs = _ARGS[method]
    recorder = _Recorder()
    getattr(recorder, method)(*args, **kwargs)
    assert recorder.calls == [(rpc, bool(READS.fullmatch(rpc)))]
    if READS.fullmatch(rpc) or rpc in NEVER_RETRIED:
        return
    keyed = _Recorder()
    if args and isinstance(args[-1], document_pb2.PdfSignOptions):
        args = (*args[:-1], document_pb2.PdfSignOptions(idempotency_key="once"))
    else:
        kwargs = {**kwargs, "idempotency_key": "once"}
    getattr(keyed, method)(*args, **kwargs)
    assert keyed.calls == [(rpc, True)]


def test_tokens(client: Client) -> None:
    issued = client.issue_token("user-1", audience=["portal"], claims={"acr": "L2"}, ttl_seconds=120)
    checked = client.verify_token(issued.token, audience="portal")
    assert checked.result.valid and checked.claims["acr"] == "L2"
    assert client.introspect_token(issued.token).active
    assert any(k["kid"] for k in json.loads(client.get_jwks().jwks_json)["keys"])
    client.revoke_token(token=issued.token, reason="test")
    assert client.verify_token(issued.token, audience="portal").result.reason == "REVOKED"
    with pytest.raises(grpc.RpcError) as err:
        client.revoke_token()
    assert error_reason(err.value) == "MISSING_FIELD"


def test_seals(client: Client, admin: Client) -> None:
    picture = render_png("客户端测试章")
    made = admin.make_seal("客户端测试章", picture=picture, idempotency_key="client-helper-seal")
    esid = made.seal.seal_id
    again = admin.make_seal("客户端测试章", picture=picture, idempotency_key="client-helper-seal")
    assert again.seal.seal_id == esid  # a retry returns the first seal, never makes a second
    assert client.get_seal(esid).seal.seal_id == esid
    assert esid in {s.seal_id for s in client.list_seals(state="active", page_size=500).seals}
    signed = client.sign_with_seal(esid, b"document", property_info="doc-1", with_timestamp=True)
    assert client.verify_seal_signature(signed.ses_signature, b"document").result.valid
    assert not client.verify_seal_signature(signed.ses_signature, b"other").result.valid
    admin.suspend_seal(esid, "audit")
    with pytest.raises(grpc.RpcError) as err:
        client.sign_with_seal(esid, b"document")
    assert err.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    admin.resume_seal(esid)
    admin.revoke_seal(esid, "retired")
    assert client.get_seal(esid).seal.state == "revoked"


def test_documents_and_time_stamps(client: Client) -> None:
    pdf = licence_pdf()
    signed = client.sign_pdf(pdf, document_pb2.PdfSignOptions(key="default", reason="approved"))
    report = client.verify_pdf(signed.pdf)
    assert report.result.valid, report
    batch = client.batch_sign_pdf([("a", pdf), ("b", b"not a pdf")], document_pb2.PdfSignOptions(key="default"))
    assert [r.WhichOneof("outcome") for r in batch.results] == ["pdf", "error"]
    stamp = client.create_time_stamp(data=b"evidence")
    assert client.verify_time_stamp(stamp.timestamp_token, data=b"evidence").result.valid
    assert not client.verify_time_stamp(stamp.timestamp_token, data=b"other").result.valid


def test_sm2_id_reaches_the_daemon(client: Client, running: Running) -> None:
    data, sm2_id = b"with an ID", b"ALICE123@YAHOO.COM"
    signed = client.sign_data("default", data, sm2_id=sm2_id)
    assert client.verify_signed_data(data, signed.signature, certificate=signed.certificate, sm2_id=sm2_id).valid
    assert not client.verify_signed_data(data, signed.signature, certificate=signed.certificate).valid
    streamed = client.sign_data_stream("default", [data[:4], data[4:]], sm2_id=sm2_id)
    assert client.verify_signed_data_stream([data], streamed.signature, certificate=streamed.certificate,
                                            sm2_id=sm2_id).valid


def test_a_cms_sent_as_a_seal_signature_is_named(client: Client) -> None:
    """A real-world OFD signature that is a CMS, not an SES_Signature: INVALID_ARGUMENT NOT_SES, and the
    message says what was found."""
    from tests.interop.test_seal_realworld import DIR, EXPECTED

    name = next(n for n, verdict in sorted(EXPECTED.items()) if verdict == "not-ses" and "Sign_0_Signed" in n)
    with pytest.raises(grpc.RpcError) as err:
        client.verify_seal_signature((DIR / name).read_bytes())
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT and error_reason(err.value) == "NOT_SES"
    assert "NOT_SES_" in err.value.details(), err.value.details()
