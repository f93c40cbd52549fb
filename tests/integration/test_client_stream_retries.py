"""Retries of Client's streaming helpers against a real gRPC server on 127.0.0.1 that fails its first attempts.

The server implements the generated SignDataStream, SignMessageStream and SignPdfStream. Each attempt
consumes the whole request stream and records its init/options and chunks, then plays the failure a
test scripted for it (UNAVAILABLE by default) or answers. SignPdfStream can yield output chunks before
failing, so the client has written part of an output when the retry starts.
"""

from __future__ import annotations

import collections
import hashlib
import io
import threading
from collections.abc import Callable, Iterable, Iterator
from concurrent import futures
from dataclasses import dataclass, field
from typing import Any

import grpc
import pytest

from trustsvc.client import Client, document_grpc, document_pb2, signature_grpc, signature_pb2

pytestmark = pytest.mark.integration

UNAVAILABLE, ABORTED = grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.ABORTED
CHUNKS = [b"alpha-", b"beta-", b"gamma"]
SIGNED = [b"%PDF-signed-", b"final-bytes"]


@dataclass
class Failure:
    code: grpc.StatusCode = UNAVAILABLE
    output: list[bytes] = field(default_factory=list)  # SignPdfStream: chunks yielded before the failure


@dataclass
class Attempt:
    first: Any  # the init or options message
    chunks: list[bytes]
    request_id: str | None


class Script:
    """Per method: the attempts seen, and the failures still to play before answering."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.attempts: dict[str, list[Attempt]] = collections.defaultdict(list)
        self.failures: dict[str, list[Failure]] = collections.defaultdict(list)

    def fail(self, method: str, times: int = 1, failure: Failure | None = None) -> None:
        with self.lock:
            self.failures[method].extend([failure or Failure()] * times)

    def receive(self, method: str, requests: Iterator[Any], context: grpc.ServicerContext) -> Failure | None:
        """Consume the stream, record the attempt, return the failure to play (if any)."""
        first = next(requests)
        chunks = [r.chunk for r in requests]
        request_id = dict(context.invocation_metadata()).get("x-request-id")
        with self.lock:
            self.attempts[method].append(Attempt(first, chunks, request_id))
            pending = self.failures[method]
            return pending.pop(0) if pending else None

    def count(self, method: str) -> int:
        return len(self.attempts[method])


class FakeSignatureService(signature_grpc.SignatureServiceServicer):  # type: ignore[name-defined,misc]
    def __init__(self, script: Script) -> None:
        self.s = script

    def SignDataStream(self, requests: Iterator[Any], context: grpc.ServicerContext) -> Any:
        failure = self.s.receive("SignDataStream", requests, context)
        if failure:
            context.abort(failure.code, f"scripted {failure.code.name}")
        data = b"".join(self.s.attempts["SignDataStream"][-1].chunks)
        return signature_pb2.SignDataResponse(signature=b"sig:" + data)

    def SignMessageStream(self, requests: Iterator[Any], context: grpc.ServicerContext) -> Any:
        failure = self.s.receive("SignMessageStream", requests, context)
        if failure:
            context.abort(failure.code, f"scripted {failure.code.name}")
        return signature_pb2.SignMessageResponse(cms=b"cms")


class FakeDocumentService(document_grpc.DocumentServiceServicer):  # type: ignore[name-defined,misc]
    def __init__(self, script: Script) -> None:
        self.s = script

    def SignPdfStream(self, requests: Iterator[Any], context: grpc.ServicerContext) -> Iterator[Any]:
        failure = self.s.receive("SignPdfStream", requests, context)
        if failure:
            for chunk in failure.output:
                yield document_pb2.SignPdfStreamResponse(chunk=chunk)
            context.abort(failure.code, f"scripted {failure.code.name}")
        for chunk in SIGNED:
            yield document_pb2.SignPdfStreamResponse(chunk=chunk)
        signed = b"".join(SIGNED)
        summary = document_pb2.SignPdfResponse(signed_sha256=hashlib.sha256(signed).hexdigest(),
                                               signed_size=len(signed))
        yield document_pb2.SignPdfStreamResponse(summary=summary)


@pytest.fixture(scope="module")
def target() -> Iterator[tuple[str, Script]]:
    script = Script()
    srv = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
    signature_grpc.add_SignatureServiceServicer_to_server(FakeSignatureService(script), srv)
    document_grpc.add_DocumentServiceServicer_to_server(FakeDocumentService(script), srv)
    port = srv.add_insecure_port("127.0.0.1:0")
    srv.start()
    try:
        yield f"127.0.0.1:{port}", script
    finally:
        srv.stop(0)


@pytest.fixture
def script(target: tuple[str, Script]) -> Script:
    s = target[1]
    with s.lock:
        s.attempts.clear()
        s.failures.clear()
    return s


@pytest.fixture
def client(make_client: Callable[..., Any]) -> Any:
    """The root conftest's client to the scripted server (not the daemon client of tests/integration/conftest.py)."""
    return make_client()


@pytest.fixture
def client_target(target: tuple[str, Script]) -> str:
    """For the shared ``make_client`` and ``client`` fixtures (tests/conftest.py)."""
    return target[0]


def _raises(fn: Callable[[], Any]) -> grpc.RpcError:
    with pytest.raises(grpc.RpcError) as exc_info:
        fn()
    return exc_info.value


def _pdf_options(idempotency_key: str = "") -> Any:
    return document_pb2.PdfSignOptions(key="k", idempotency_key=idempotency_key)


def _generator() -> Iterator[bytes]:
    yield from CHUNKS


class Output(io.BytesIO):
    """An output file that records every write; ``can_seek=False`` makes it refuse to seek."""

    def __init__(self, prefix: bytes = b"", can_seek: bool = True) -> None:
        super().__init__()
        self.can_seek = can_seek
        self.writes: list[bytes] = []
        self.write(prefix)
        self.writes.clear()

    def write(self, b: Any) -> int:
        self.writes.append(bytes(b))
        return super().write(b)

    def seekable(self) -> bool:
        return self.can_seek

    def seek(self, pos: int, whence: int = 0) -> int:
        if not self.can_seek:
            raise io.UnsupportedOperation("seek")
        return super().seek(pos, whence)

    def truncate(self, size: int | None = None) -> int:
        if not self.can_seek:
            raise io.UnsupportedOperation("truncate")
        return super().truncate(size)


# (server method, a call through the client's helper taking chunks and an idempotency key)
STREAMS: list[tuple[str, Callable[[Client, Any, str], Any]]] = [
    ("SignDataStream", lambda c, chunks, key: c.sign_data_stream("k", chunks, idempotency_key=key)),
    ("SignMessageStream", lambda c, chunks, key: c.sign_message_stream("k", chunks, idempotency_key=key)),
    ("SignPdfStream", lambda c, chunks, key: c.sign_pdf_stream(_pdf_options(key), chunks, io.BytesIO())),
]
IDS = [name for name, _ in STREAMS]


def _key_of(attempt: Attempt) -> str:
    """The idempotency key of an attempt's ``init`` or ``options``."""
    return str(getattr(attempt.first, attempt.first.WhichOneof("part")).idempotency_key)


# -- retried: an idempotency key and chunks that can be sent again --------------------------------

@pytest.mark.parametrize("method, call", STREAMS, ids=IDS)
@pytest.mark.parametrize("make_chunks", [list, tuple], ids=["list", "tuple"])
def test_reiterable_chunks_with_a_key_are_retried_and_resent_in_full(
        script: Script, client: Client, method: str, call: Callable[[Client, Any, str], Any],
        make_chunks: Callable[[Iterable[bytes]], Iterable[bytes]]) -> None:
    script.fail(method, times=2)
    assert call(client, make_chunks(CHUNKS), "order-1").ByteSize() > 0
    attempts = script.attempts[method]
    assert len(attempts) == 3
    assert [a.chunks for a in attempts] == [CHUNKS] * 3  # every chunk again on each attempt
    assert [_key_of(a) for a in attempts] == ["order-1"] * 3
    ids = {a.request_id for a in attempts}
    assert len(ids) == 1 and ids != {None}  # one x-request-id across the attempts


@pytest.mark.parametrize("method, call", STREAMS, ids=IDS)
def test_aborted_is_retried_too(script: Script, client: Client, method: str,
                                call: Callable[[Client, Any, str], Any]) -> None:
    script.fail(method, failure=Failure(ABORTED))
    call(client, CHUNKS, "order-2")
    assert script.count(method) == 2


@pytest.mark.parametrize("method, call", STREAMS, ids=IDS)
def test_a_callable_chunk_source_is_called_once_per_attempt(script: Script, client: Client, method: str,
                                                            call: Callable[[Client, Any, str], Any]) -> None:
    made: list[int] = []

    def chunks() -> Iterator[bytes]:
        made.append(1)
        return _generator()

    script.fail(method, times=2)
    call(client, chunks, "order-3")
    assert len(made) == 3
    assert [a.chunks for a in script.attempts[method]] == [CHUNKS] * 3


def test_sign_data_stream_returns_the_answer_of_the_successful_attempt(script: Script, client: Client) -> None:
    script.fail("SignDataStream")
    resp = client.sign_data_stream("k", lambda: iter(CHUNKS), idempotency_key="order-4")
    assert resp.signature == b"sig:" + b"".join(CHUNKS)


# -- not retried -----------------------------------------------------------------------------------

@pytest.mark.parametrize("method, call", STREAMS, ids=IDS)
@pytest.mark.parametrize("one_shot", [_generator, lambda: iter(CHUNKS)], ids=["generator", "iterator"])
def test_a_one_shot_iterator_is_not_retried(script: Script, client: Client, method: str,
                                            call: Callable[[Client, Any, str], Any],
                                            one_shot: Callable[[], Iterator[bytes]]) -> None:
    script.fail(method)
    assert _raises(lambda: call(client, one_shot(), "order-5")).code() == UNAVAILABLE
    assert script.count(method) == 1
    assert script.attempts[method][0].chunks == CHUNKS


@pytest.mark.parametrize("method, call", STREAMS, ids=IDS)
@pytest.mark.parametrize("source", [CHUNKS, lambda: CHUNKS], ids=["list", "callable"])
def test_no_retry_without_an_idempotency_key(script: Script, client: Client, method: str,
                                             call: Callable[[Client, Any, str], Any], source: Any) -> None:
    script.fail(method)
    assert _raises(lambda: call(client, source, "")).code() == UNAVAILABLE
    assert script.count(method) == 1
    # without a failure the same call goes through once
    call(client, source, "")
    assert script.count(method) == 2


@pytest.mark.parametrize("method, call", STREAMS, ids=IDS)
def test_other_codes_are_not_retried(script: Script, client: Client, method: str,
                                     call: Callable[[Client, Any, str], Any]) -> None:
    script.fail(method, failure=Failure(grpc.StatusCode.FAILED_PRECONDITION))
    assert _raises(lambda: call(client, CHUNKS, "order-6")).code() == grpc.StatusCode.FAILED_PRECONDITION
    assert script.count(method) == 1


@pytest.mark.parametrize("method, call", STREAMS, ids=IDS)
@pytest.mark.parametrize("retries", [0, 2])
def test_retries_stop_after_the_configured_number(script: Script, make_client: Callable[..., Client],
                                                  method: str, call: Callable[[Client, Any, str], Any],
                                                  retries: int) -> None:
    c = make_client(retries=retries)
    script.fail(method, times=retries + 5)
    assert _raises(lambda: call(c, CHUNKS, "order-7")).code() == UNAVAILABLE
    assert script.count(method) == retries + 1


# -- sign_pdf_stream's output ------------------------------------------------------------------------

def test_pdf_output_holds_only_the_final_attempt(script: Script, client: Client) -> None:
    partial = [b"partial-one-", b"partial-two"]
    script.fail("SignPdfStream", times=2, failure=Failure(output=partial))
    out = Output(prefix=b"HEADER")  # the output starts after bytes the caller wrote before
    summary = client.sign_pdf_stream(_pdf_options("order-8"), CHUNKS, out)
    assert out.writes[:2] == partial  # the failed attempts did write output
    assert out.getvalue() == b"HEADER" + b"".join(SIGNED)
    assert summary.signed_size == len(b"".join(SIGNED))
    assert script.count("SignPdfStream") == 3


def test_pdf_output_to_a_file_is_truncated_before_a_retry(script: Script, client: Client,
                                                          tmp_path: Any) -> None:
    script.fail("SignPdfStream", failure=Failure(output=[b"x" * 100]))
    path = tmp_path / "signed.pdf"
    with path.open("wb") as out:
        client.sign_pdf_stream(_pdf_options("order-9"), lambda: iter(CHUNKS), out)
    assert path.read_bytes() == b"".join(SIGNED)


def test_unseekable_output_is_not_retried_after_output_was_written(script: Script, client: Client) -> None:
    script.fail("SignPdfStream", failure=Failure(output=[b"partial"]))
    out = Output(can_seek=False)
    assert _raises(lambda: client.sign_pdf_stream(_pdf_options("order-10"), CHUNKS, out)).code() == UNAVAILABLE
    assert script.count("SignPdfStream") == 1
    assert out.getvalue() == b"partial"


def test_unseekable_output_is_retried_while_nothing_was_written(script: Script, client: Client) -> None:
    script.fail("SignPdfStream", times=2)
    out = Output(can_seek=False)
    client.sign_pdf_stream(_pdf_options("order-11"), CHUNKS, out)
    assert script.count("SignPdfStream") == 3
    assert out.getvalue() == b"".join(SIGNED)


def test_pdf_output_is_left_alone_when_not_retried(script: Script, client: Client) -> None:
    script.fail("SignPdfStream", failure=Failure(output=[b"partial"]))
    out = Output(prefix=b"HEADER")
    _raises(lambda: client.sign_pdf_stream(_pdf_options(), CHUNKS, out))
    assert out.getvalue() == b"HEADERpartial"  # no key: one attempt, its output as received
    assert script.count("SignPdfStream") == 1
