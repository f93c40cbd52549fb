"""Deadlines and what a call leaves behind, over mTLS: a call that waited past its deadline is not started,
a signature finished after the deadline is neither recorded nor kept; refusals of streams name their key;
a broken policy file leaves the last good policy in force."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest

from tests.integration.test_daemon_fixtures import Running, start_daemon
from trustsvc.client import error_reason, signature_pb2, token_pb2

pytestmark = pytest.mark.integration


@pytest.fixture
def running(tmp_path: Path) -> Iterator[Running]:
    r = start_daemon(tmp_path / "home", workers=1)  # one worker: a second call waits in the queue
    yield r
    r.daemon.stop(2)


def _records(r: Running, request_id: str) -> list[tuple[str, str]]:
    return [(rec.operation, rec.result) for rec in r.daemon.rt.audit.find(request_id)]


def _held_stream(release: threading.Event) -> Iterator[Any]:
    """A SignDataStream that keeps the one worker busy until ``release`` is set."""
    yield signature_pb2.SignDataStreamRequest(init=signature_pb2.SignStreamInit(key="default"))
    yield signature_pb2.SignDataStreamRequest(chunk=b"first part")
    release.wait(30)
    yield signature_pb2.SignDataStreamRequest(chunk=b"last part")


def test_a_call_that_waited_past_its_deadline_is_not_started(running: Running) -> None:
    release = threading.Event()
    with running.client() as c:
        held = c.signature.SignDataStream.future(_held_stream(release), timeout=30)
        in_flight = running.daemon.rt.metrics.in_flight
        deadline = time.monotonic() + 20
        while in_flight._value.get() < 1 and time.monotonic() < deadline:
            time.sleep(0.01)  # until the stream holds the worker
        assert in_flight._value.get() == 1
        try:
            with pytest.raises(grpc.RpcError) as err:
                c.tokens.IssueToken(token_pb2.IssueTokenRequest(subject="u1", audience=["portal"]), timeout=0.3,
                                    metadata=(("x-request-id", "late-issue"),))
            assert err.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
        finally:
            release.set()
        assert held.result().signature  # the call that held the worker finished normally
        c.check_health()  # the queue has drained past the late call
    assert ("TokenService/IssueToken", "ok") not in _records(running, "late-issue")


def test_a_signature_finished_after_the_deadline_is_not_recorded_or_kept(running: Running) -> None:
    """The key signs only once the client has given up: no ok record, the refusal recorded, and a retry
    under the same idempotency key signs afresh (nothing was stored as done)."""
    rt = running.daemon.rt
    gave_up = threading.Event()
    real_signer = rt.signer

    class Slow:
        def __init__(self, inner: Any) -> None:
            self._inner = inner

        def __getattr__(self, name: str) -> Any:
            return getattr(self._inner, name)

        def sign(self, message: bytes) -> bytes:
            gave_up.wait(30)
            return bytes(self._inner.sign(message))

    rt.signer = lambda key, **kw: Slow(real_signer(key, **kw))  # type: ignore[method-assign]
    request = signature_pb2.SignDataRequest(key="default", data=b"pay 5", idempotency_key="slow-1")
    try:
        with running.client() as c:
            with pytest.raises(grpc.RpcError) as err:
                c.signature.SignData(request, timeout=0.3, metadata=(("x-request-id", "slow-sign"),))
            assert err.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
            gave_up.set()
            deadline = time.monotonic() + 20
            while not _records(running, "slow-sign") and time.monotonic() < deadline:
                time.sleep(0.05)  # the handler finishes after the client left
            assert _records(running, "slow-sign") == [("SignatureService/SignData", "refused:DEADLINE_EXCEEDED")]
            rt.signer = real_signer  # type: ignore[method-assign]
            again = c.signature.SignData(request, timeout=10, metadata=(("x-request-id", "retry-sign"),))
            assert again.signature and _records(running, "retry-sign") == [("SignatureService/SignData", "ok")]
    finally:
        gave_up.set()
        rt.signer = real_signer  # type: ignore[method-assign]


def test_refused_stream_names_its_key_in_the_audit_record(running: Running) -> None:
    """The key of a client stream is in its first message, not in what the interceptor sees."""
    with running.client() as c:
        messages = iter([signature_pb2.SignDataStreamRequest(init=signature_pb2.SignStreamInit(key="audit")),
                         signature_pb2.SignDataStreamRequest(chunk=b"x")])
        with pytest.raises(grpc.RpcError) as err:
            c.signature.SignDataStream(messages, timeout=10, metadata=(("x-request-id", "stream-denied"),))
        assert err.value.code() == grpc.StatusCode.PERMISSION_DENIED
    [rec] = running.daemon.rt.audit.find("stream-denied")
    assert rec.ref == "audit" and rec.result.startswith("refused:")


def test_a_broken_policy_file_keeps_the_last_good_policy(running: Running) -> None:
    from trustsvc.server.runtime import POLICY_CHECK_S

    path = running.home / "policy.toml"
    good = path.read_text()
    metrics = running.daemon.rt.metrics
    with running.client() as c:
        assert c.sign_data("default", b"before").signature
        path.write_text(good + "\n[clients.\"cn=demo-client\"]\nkeys = 'not a list'\n")
        deadline = time.monotonic() + 10 * POLICY_CHECK_S
        while metrics.policy_errors._value.get() == 0 and time.monotonic() < deadline:
            assert c.sign_data("default", b"during").signature  # every call keeps working meanwhile
            time.sleep(0.05)
        assert metrics.policy_errors._value.get() == 1
        for _ in range(3):
            assert c.sign_data("default", b"still").signature
        assert c.check_health() == "SERVING"
        path.write_text(good.replace('"default", ', ""))  # a valid edit takes effect
        deadline = time.monotonic() + 10 * POLICY_CHECK_S
        refused = None
        while refused is None and time.monotonic() < deadline:
            try:
                c.sign_data("default", b"after", timeout=5)
                time.sleep(0.05)
            except grpc.RpcError as exc:
                refused = exc
        assert refused is not None and refused.code() == grpc.StatusCode.PERMISSION_DENIED, refused
        assert error_reason(refused)
