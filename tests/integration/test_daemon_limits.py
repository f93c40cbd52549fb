"""max_stream_bytes over the daemon (real mTLS): streams the daemon must gather (SignDataStream with a key that
cannot sign a digest, SignPdfStream) are refused above the limit with STREAM_TOO_LARGE in the error details, no
signature comes back, the refusal is audited, and the daemon keeps serving. Streams that keep only a digest
(SignDataStream with SM2, SignMessageStream) are bounded in memory whatever their size (docs/daemon.md, Limits)
and are signed above the limit.

The status code: gRPC itself answers a message over its receive limit (max_message_bytes here) with
RESOURCE_EXHAUSTED, so a stream over the daemon's configured limit gets the same code
(test_too_large_is_resource_exhausted).
"""

from __future__ import annotations

import io
import uuid
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest

from tests.integration.test_daemon_fixtures import Running, start_daemon
from trustsvc.algorithms.signer import Verifier
from trustsvc.client import document_pb2, error_reason, signature_pb2
from trustsvc.pdf.devkit import licence_pdf

pytestmark = pytest.mark.integration

LIMIT = 64 * 1024
CHUNK = 16 * 1024
ED_KEY = "demo-ed-limits"  # the demo client's policy allows demo-*


@pytest.fixture(scope="module")
def running(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Running]:
    r = start_daemon(tmp_path_factory.mktemp("daemon-limits"), max_stream_bytes=LIMIT, default_deadline_s=120)
    with r.client("admin") as admin:
        admin.create_key(ED_KEY, "ed25519")
    yield r
    r.daemon.stop(2)


def _chunks(size: int, fill: bytes = b"x") -> list[bytes]:
    data = (fill * size)[:size]
    return [data[i:i + CHUNK] for i in range(0, size, CHUNK)]


def _data_stream(method: str, key: str, chunks: list[bytes]) -> Iterator[object]:
    request = getattr(signature_pb2, f"{method}Request")
    yield request(init=signature_pb2.SignStreamInit(key=key))
    for chunk in chunks:
        yield request(chunk=chunk)


def _pdf_stream(pdf: bytes) -> Iterator[document_pb2.SignPdfStreamRequest]:
    yield document_pb2.SignPdfStreamRequest(options=document_pb2.PdfSignOptions(key="default"))
    for i in range(0, len(pdf), CHUNK):
        yield document_pb2.SignPdfStreamRequest(chunk=pdf[i:i + CHUNK])


def _big_pdf() -> bytes:
    pdf = licence_pdf(LIMIT + 10 * 1024)
    assert len(pdf) > LIMIT
    return pdf


def _call(running: Running, method: str, payload: list[bytes] | bytes, key: str = ED_KEY) -> tuple[str, list[object]]:
    """Make one streaming call with a fresh request id; returns (request id, every response message)."""
    rid = uuid.uuid4().hex
    md = (("x-request-id", rid),)
    with running.client() as c:
        if method == "SignPdfStream":
            assert isinstance(payload, bytes)
            return rid, list(c.documents.SignPdfStream(_pdf_stream(payload), timeout=120, metadata=md))
        assert isinstance(payload, list)
        stub = getattr(c.signature, method)
        return rid, [stub(_data_stream(method, key, payload), timeout=120, metadata=md)]


def _refused(running: Running, method: str, payload: list[bytes] | bytes) -> tuple[str, grpc.RpcError]:
    rid = uuid.uuid4().hex
    md = (("x-request-id", rid),)
    got: list[object] = []
    with running.client() as c, pytest.raises(grpc.RpcError) as exc:
        if method == "SignPdfStream":
            assert isinstance(payload, bytes)
            for part in c.documents.SignPdfStream(_pdf_stream(payload), timeout=120, metadata=md):
                got.append(part)
        else:
            assert isinstance(payload, list)
            got.append(getattr(c.signature, method)(_data_stream(method, ED_KEY, payload), timeout=120, metadata=md))
    assert got == [], "a refused stream returned something"
    return rid, exc.value


REFUSED = [("SignDataStream", lambda: _chunks(LIMIT + 1)), ("SignPdfStream", _big_pdf)]


@pytest.mark.parametrize(("method", "payload"), REFUSED, ids=[m for m, _ in REFUSED])
def test_over_the_limit_is_refused_audited_and_the_daemon_serves_on(running: Running, method: str,
                                                                   payload: object) -> None:
    rid, err = _refused(running, method, payload())  # type: ignore[operator]
    assert error_reason(err) == "STREAM_TOO_LARGE", (err.code(), err.details())
    assert str(LIMIT) in (err.details() or "")
    # the refusal is in the audit log, under the call's request id, and nothing was signed for it
    recs = running.daemon.rt.audit.find(rid)
    assert len(recs) == 1, recs
    rec = recs[0]
    assert rec.result == "refused:STREAM_TOO_LARGE" and rec.client == "cn=demo-client", rec
    assert rec.operation.endswith(f"/{method}") and rec.document_hash == "", rec
    assert str(LIMIT) in rec.detail
    # the daemon serves on: the same RPC under the limit is signed, on a new connection
    if method == "SignPdfStream":
        _, parts = _call(running, method, licence_pdf())
        assert parts[-1].WhichOneof("part") == "summary" and parts[-1].summary.signed_size > 0  # type: ignore[attr-defined]
    else:
        data = b"y" * LIMIT  # exactly at the limit
        _, (resp,) = _call(running, method, _chunks(LIMIT, b"y"))
        Verifier(running.daemon.rt.keystore.public_key(ED_KEY)).verify(data, resp.signature)  # type: ignore[attr-defined]
    with running.client() as c:
        assert c.check_health() == "SERVING"
        assert c.sign_data("default", b"after").signature


@pytest.mark.parametrize(("method", "payload"), REFUSED, ids=[m for m, _ in REFUSED])
def test_too_large_is_resource_exhausted(running: Running, method: str, payload: object) -> None:
    """Same code as gRPC's own receive limit (max_message_bytes); INVALID_ARGUMENT would say the request is bad
    whatever the server, while another daemon with a higher limit accepts it."""
    _, err = _refused(running, method, payload())  # type: ignore[operator]
    assert error_reason(err) == "STREAM_TOO_LARGE"
    assert err.code() == grpc.StatusCode.RESOURCE_EXHAUSTED, (err.code(), err.details())


def test_grpc_receive_limit_is_resource_exhausted(tmp_path: Path) -> None:
    """The convention the daemon's own limit follows: a message over max_message_bytes."""
    r = start_daemon(tmp_path / "small-messages", max_message_bytes=32 * 1024)
    try:
        with r.client() as c, pytest.raises(grpc.RpcError) as exc:
            c.call(c.signature.SignData, signature_pb2.SignDataRequest(key="default", data=b"z" * 40 * 1024))
        assert exc.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    finally:
        r.daemon.stop(2)


@pytest.mark.parametrize("method", ["SignDataStream", "SignMessageStream"])
def test_digest_streams_are_not_limited(running: Running, method: str) -> None:
    """SM2 SignDataStream and SignMessageStream keep only running digests: above max_stream_bytes they are signed."""
    size = 4 * LIMIT
    rid, (resp,) = _call(running, method, _chunks(size, b"q"), key="default")
    if method == "SignDataStream":
        Verifier(running.daemon.rt.keystore.public_key("default")).verify(b"q" * size, resp.signature)  # type: ignore[attr-defined]
    else:
        with running.client() as c:
            assert c.verify_signed_message(resp.cms, b"q" * size).result.valid  # type: ignore[attr-defined]
    (rec,) = running.daemon.rt.audit.find(rid)
    assert rec.result == "ok"


def test_pdf_at_the_limit_is_signed(running: Running) -> None:
    pdf = licence_pdf(LIMIT - 4096)
    assert len(pdf) <= LIMIT
    out = io.BytesIO()
    with running.client() as c:
        summary = c.sign_pdf_stream(document_pb2.PdfSignOptions(key="default"), [pdf], out)
    assert summary.signed_size == len(out.getvalue()) > len(pdf)
