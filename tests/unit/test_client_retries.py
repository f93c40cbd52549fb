"""trustsvc.client.Client against a tiny real gRPC server that fails its first calls, then answers.

The server implements the generated SignatureService, KeyService and Health servicers; each method
counts its invocations and plays the failures a test scripted for it (a plain status code, or a
google.rpc.Status with ErrorInfo built by the daemon's own trustsvc.server.errors). The client
retries UNAVAILABLE and ABORTED only for idempotent calls: verifications and reads always, signing
calls when they carry an idempotency key. ``retries=N`` means at most N retries (N + 1 invocations).
"""

from __future__ import annotations

import collections
import threading
import time
from collections.abc import Callable, Iterator
from concurrent import futures
from pathlib import Path
from typing import Any, TypeAlias

import grpc
import pytest
from google.protobuf import any_pb2, duration_pb2
from google.rpc import error_details_pb2, status_pb2
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_status import rpc_status

from trustsvc import client as client_module
from trustsvc import codegen
from trustsvc import errors as e
from trustsvc.client import Client, error_reason, key_grpc, key_pb2, signature_grpc, signature_pb2
from trustsvc.server.errors import rpc_status as daemon_rpc_status
from trustsvc.server.errors import status_for
from trustsvc.server.tls import ensure_dev_tls, server_credentials

common_pb2, _ = codegen.load("common")
UNAVAILABLE, ABORTED = grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.ABORTED
Failure: TypeAlias = grpc.StatusCode | status_pb2.Status


class Script:
    """Per method: invocations seen, and the failures still to play before answering."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.reset()

    def reset(self) -> None:
        with self.lock:
            self.calls: collections.Counter[str] = collections.Counter()
            self.requests: dict[str, list[Any]] = collections.defaultdict(list)
            self.request_ids: dict[str, list[str | None]] = collections.defaultdict(list)
            self.failures: dict[str, list[Failure]] = collections.defaultdict(list)

    def fail(self, method: str, failure: Failure, times: int = 1) -> None:
        with self.lock:
            self.failures[method].extend([failure] * times)

    def answer(self, method: str, request: Any, context: grpc.ServicerContext, response: Any) -> Any:
        with self.lock:
            self.calls[method] += 1
            self.requests[method].append(request)
            self.request_ids[method].append(dict(context.invocation_metadata()).get("x-request-id"))
            pending = self.failures[method]
            failure = pending.pop(0) if pending else None
        if isinstance(failure, grpc.StatusCode):
            context.abort(failure, f"scripted {failure.name}")
        if isinstance(failure, status_pb2.Status):
            context.abort_with_status(rpc_status.to_status(failure))
        return response


def _verified() -> Any:
    return common_pb2.VerificationResult(valid=True)


class FakeSignatureService(signature_grpc.SignatureServiceServicer):  # type: ignore[name-defined,misc]
    def __init__(self, script: Script) -> None:
        self.s = script

    def SignData(self, request: Any, context: grpc.ServicerContext) -> Any:
        return self.s.answer("SignData", request, context,
                             signature_pb2.SignDataResponse(signature=b"sig:" + request.data, key_ref=request.key))

    def SignMessage(self, request: Any, context: grpc.ServicerContext) -> Any:
        return self.s.answer("SignMessage", request, context, signature_pb2.SignMessageResponse(cms=b"cms"))

    def BatchSignData(self, request: Any, context: grpc.ServicerContext) -> Any:
        results = [signature_pb2.BatchSignDataResponse.Result(id=i.id, signature=b"sig:" + i.data)
                   for i in request.items]
        return self.s.answer("BatchSignData", request, context, signature_pb2.BatchSignDataResponse(results=results))

    def VerifySignedData(self, request: Any, context: grpc.ServicerContext) -> Any:
        return self.s.answer("VerifySignedData", request, context,
                             signature_pb2.VerifySignedDataResponse(result=_verified()))

    def VerifySignedMessage(self, request: Any, context: grpc.ServicerContext) -> Any:
        return self.s.answer("VerifySignedMessage", request, context,
                             signature_pb2.VerifySignedMessageResponse(result=_verified(), content=b"content"))

    def ExportCert(self, request: Any, context: grpc.ServicerContext) -> Any:
        return self.s.answer("ExportCert", request, context, signature_pb2.ExportCertResponse(certificate=b"cert"))

    def ParseCert(self, request: Any, context: grpc.ServicerContext) -> Any:
        return self.s.answer("ParseCert", request, context, signature_pb2.ParseCertResponse(subject="CN=x"))

    def ValidateCert(self, request: Any, context: grpc.ServicerContext) -> Any:
        return self.s.answer("ValidateCert", request, context, signature_pb2.ValidateCertResponse(result=_verified()))


class FakeKeyService(key_grpc.KeyServiceServicer):  # type: ignore[name-defined,misc]
    def __init__(self, script: Script) -> None:
        self.s = script

    def ListKeys(self, request: Any, context: grpc.ServicerContext) -> Any:
        return self.s.answer("ListKeys", request, context, key_pb2.ListKeysResponse(keys=[key_pb2.Key(name="k")]))

    def CreateKey(self, request: Any, context: grpc.ServicerContext) -> Any:
        return self.s.answer("CreateKey", request, context, key_pb2.CreateKeyResponse(key=key_pb2.Key(name="k")))

    def RotateKey(self, request: Any, context: grpc.ServicerContext) -> Any:
        return self.s.answer("RotateKey", request, context, key_pb2.RotateKeyResponse(key=key_pb2.Key(name="k")))

    def DisableKey(self, request: Any, context: grpc.ServicerContext) -> Any:
        return self.s.answer("DisableKey", request, context, key_pb2.DisableKeyResponse(key=key_pb2.Key(name="k")))


class FakeHealth(health_pb2_grpc.HealthServicer):
    def __init__(self, script: Script) -> None:
        self.s = script

    def Check(self, request: Any, context: grpc.ServicerContext) -> Any:
        return self.s.answer("Check", request, context,
                             health_pb2.HealthCheckResponse(status=health_pb2.HealthCheckResponse.SERVING))


class Server:
    def __init__(self, script: Script, home: Path, insecure_port: int, tls_port: int) -> None:
        self.script, self.home = script, home
        self.target, self.tls_target = f"127.0.0.1:{insecure_port}", f"127.0.0.1:{tls_port}"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    script = Script()
    home = tmp_path_factory.mktemp("home")
    tls = ensure_dev_tls(home)
    srv = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
    signature_grpc.add_SignatureServiceServicer_to_server(FakeSignatureService(script), srv)
    key_grpc.add_KeyServiceServicer_to_server(FakeKeyService(script), srv)
    health_pb2_grpc.add_HealthServicer_to_server(FakeHealth(script), srv)
    insecure_port = srv.add_insecure_port("127.0.0.1:0")
    tls_port = srv.add_secure_port("127.0.0.1:0", server_credentials(tls.server_cert, tls.server_key, tls.ca))
    srv.start()
    try:
        yield Server(script, home, insecure_port, tls_port)
    finally:
        srv.stop(0)


@pytest.fixture
def script(server: Server) -> Script:
    server.script.reset()
    return server.script


@pytest.fixture
def client_target(server: Server) -> str:
    """For the shared ``make_client`` and ``client`` fixtures (tests/conftest.py)."""
    return server.target


# (server method, a call through the client's helper) ------------------------------------------

IDEMPOTENT_READS: list[tuple[str, Callable[[Client], Any]]] = [
    ("VerifySignedData", lambda c: c.verify_signed_data(b"m", b"s", key="k")),
    ("VerifySignedMessage", lambda c: c.verify_signed_message(b"cms", b"m")),
    ("ValidateCert", lambda c: c.validate_cert(b"cert")),
    ("ParseCert", lambda c: c.parse_cert(b"cert")),
    ("ExportCert", lambda c: c.export_cert("k")),
    ("ListKeys", lambda c: c.list_keys()),
    ("Check", lambda c: c.check_health()),
]

SIGNING: list[tuple[str, Callable[..., Any]]] = [
    ("SignData", lambda c, **kw: c.sign_data("k", b"hello", **kw)),
    ("SignMessage", lambda c, **kw: c.sign_message("k", b"hello", detached=True, **kw)),
    ("BatchSignData", lambda c, **kw: c.batch_sign_data("k", [("a", b"1"), ("b", b"2")], **kw)),
]

ADMIN: list[tuple[str, Callable[[Client], Any]]] = [
    ("CreateKey", lambda c: c.create_key("k")),
    ("RotateKey", lambda c: c.rotate_key("k")),
    ("DisableKey", lambda c: c.disable_key("k")),
]


def _ids(cases: list[tuple[str, Any]]) -> list[str]:
    return [name for name, _ in cases]


def _raises(fn: Callable[[], Any]) -> grpc.RpcError:
    with pytest.raises(grpc.RpcError) as exc_info:
        fn()
    return exc_info.value


# -- idempotent calls are retried -----------------------------------------------------------------

@pytest.mark.parametrize("method, call", IDEMPOTENT_READS, ids=_ids(IDEMPOTENT_READS))
def test_reads_and_verifications_are_retried_on_unavailable(script: Script, client: Client, method: str,
                                                            call: Callable[[Client], Any]) -> None:
    script.fail(method, UNAVAILABLE, times=2)
    result = call(client)
    assert script.calls[method] == 3
    assert result  # the answer of the third invocation came back
    ids = script.request_ids[method]
    assert len(set(ids)) == 1 and ids[0]  # one x-request-id across the attempts, so the logs join up


@pytest.mark.parametrize("method, call", IDEMPOTENT_READS, ids=_ids(IDEMPOTENT_READS))
def test_reads_are_retried_on_aborted(script: Script, client: Client, method: str,
                                      call: Callable[[Client], Any]) -> None:
    script.fail(method, ABORTED)
    call(client)
    assert script.calls[method] == 2


@pytest.mark.parametrize("method, call", SIGNING, ids=_ids(SIGNING))
def test_signing_with_an_idempotency_key_is_retried(script: Script, client: Client, method: str,
                                                    call: Callable[..., Any]) -> None:
    script.fail(method, UNAVAILABLE, times=3)  # retries=3: the fourth invocation answers
    resp = call(client, idempotency_key="order-42")
    assert script.calls[method] == 4
    assert resp.ByteSize() > 0
    # every attempt carried the same key, so the daemon signs at most once
    assert [r.idempotency_key for r in script.requests[method]] == ["order-42"] * 4
    assert len(set(script.request_ids[method])) == 1


@pytest.mark.parametrize("method, call", SIGNING, ids=_ids(SIGNING))
def test_request_in_progress_is_retried_under_an_idempotency_key(script: Script, client: Client, method: str,
                                                                 call: Callable[..., Any]) -> None:
    # what the daemon sends while the first request under this key is still running
    in_progress = status_for(e.Conflict("request under this key in progress", reason="REQUEST_IN_PROGRESS"))
    assert in_progress.code == ABORTED.value[0]
    script.fail(method, in_progress, times=2)
    call(client, idempotency_key="order-43")
    assert script.calls[method] == 3


# -- non-idempotent calls are not -----------------------------------------------------------------

@pytest.mark.parametrize("code", [UNAVAILABLE, ABORTED], ids=["UNAVAILABLE", "ABORTED"])
@pytest.mark.parametrize("method, call", SIGNING, ids=_ids(SIGNING))
def test_signing_without_an_idempotency_key_is_not_retried(script: Script, client: Client, method: str,
                                                           call: Callable[..., Any], code: grpc.StatusCode) -> None:
    script.fail(method, code)
    err = _raises(lambda: call(client))
    assert err.code() == code
    assert script.calls[method] == 1  # a second invocation could sign twice


@pytest.mark.parametrize("method, call", ADMIN, ids=_ids(ADMIN))
def test_key_administration_is_not_retried(script: Script, client: Client, method: str,
                                           call: Callable[[Client], Any]) -> None:
    script.fail(method, UNAVAILABLE)
    assert _raises(lambda: call(client)).code() == UNAVAILABLE
    assert script.calls[method] == 1


def test_call_is_not_idempotent_unless_told(script: Script, client: Client) -> None:
    req = signature_pb2.SignDataRequest(key="k", data=b"x")
    script.fail("SignData", UNAVAILABLE)
    assert _raises(lambda: client.call(client.signature.SignData, req)).code() == UNAVAILABLE
    assert script.calls["SignData"] == 1
    script.fail("SignData", UNAVAILABLE)
    assert client.call(client.signature.SignData, req, idempotent=True, request_id="req-7").signature == b"sig:x"
    assert script.calls["SignData"] == 3
    assert script.request_ids["SignData"][1:] == ["req-7", "req-7"]


# -- how many retries -----------------------------------------------------------------------------

@pytest.mark.parametrize("retries", [0, 1, 2, 5])
def test_retries_stop_after_the_configured_number(script: Script, make_client: Callable[..., Client],
                                                  retries: int) -> None:
    c = make_client(retries=retries)
    script.fail("VerifySignedData", UNAVAILABLE, times=retries + 10)
    err = _raises(lambda: c.verify_signed_data(b"m", b"s", key="k"))
    assert err.code() == UNAVAILABLE
    assert script.calls["VerifySignedData"] == retries + 1


def test_retries_stop_under_an_idempotency_key_too(script: Script, make_client: Callable[..., Client]) -> None:
    c = make_client(retries=2)
    script.fail("SignData", UNAVAILABLE, times=10)
    assert _raises(lambda: c.sign_data("k", b"x", idempotency_key="order-44")).code() == UNAVAILABLE
    assert script.calls["SignData"] == 3


def test_the_last_allowed_retry_still_succeeds(script: Script, make_client: Callable[..., Client]) -> None:
    c = make_client(retries=2)
    script.fail("ListKeys", UNAVAILABLE, times=2)
    assert [k.name for k in c.list_keys()] == ["k"]
    assert script.calls["ListKeys"] == 3


NON_RETRYABLE = [grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.PERMISSION_DENIED,
                 grpc.StatusCode.FAILED_PRECONDITION, grpc.StatusCode.NOT_FOUND, grpc.StatusCode.ALREADY_EXISTS,
                 grpc.StatusCode.RESOURCE_EXHAUSTED, grpc.StatusCode.INTERNAL, grpc.StatusCode.UNAUTHENTICATED,
                 grpc.StatusCode.DEADLINE_EXCEEDED]


@pytest.mark.parametrize("code", NON_RETRYABLE, ids=[c.name for c in NON_RETRYABLE])
def test_other_codes_are_never_retried(script: Script, client: Client, code: grpc.StatusCode) -> None:
    script.fail("VerifySignedData", code)
    script.fail("SignData", code)
    assert _raises(lambda: client.verify_signed_data(b"m", b"s", key="k")).code() == code
    assert _raises(lambda: client.sign_data("k", b"x", idempotency_key="order-45")).code() == code
    assert script.calls["VerifySignedData"] == 1 and script.calls["SignData"] == 1


@pytest.mark.parametrize("exc", [e.InvalidInput("bad DER"), e.PolicyDenied("demo-client may not use key k"),
                                 e.KeyDisabled("k@1 is disabled"), e.KeyNotFound("no key k"),
                                 e.HsmError("CKR_DEVICE_ERROR"),
                                 e.Conflict("another request", reason="IDEMPOTENCY_KEY_REUSED")],
                         ids=lambda x: x.reason)
def test_daemon_errors_that_are_not_transient(script: Script, client: Client, exc: e.TrustsvcError) -> None:
    """Errors as the daemon maps them (trustsvc.server.errors.status_for): one invocation, reason intact."""
    status = status_for(exc)
    script.fail("SignData", status)
    err = _raises(lambda: client.sign_data("k", b"x", idempotency_key="order-46"))
    assert err.code().value[0] == status.code
    assert err.code() not in client_module.RETRYABLE
    assert error_reason(err) == exc.reason
    assert err.details() == exc.message
    assert script.calls["SignData"] == 1


def test_transient_daemon_errors_are_retried(script: Script, client: Client) -> None:
    for exc in (e.HsmUnavailable("HSM session lost"), e.StoreError("database is locked")):
        script.fail("VerifySignedData", status_for(exc))
    assert client.verify_signed_data(b"m", b"s", key="k").valid
    assert script.calls["VerifySignedData"] == 3


# -- backoff --------------------------------------------------------------------------------------

@pytest.fixture
def pauses(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """The pauses the client asks for (it still sleeps them; they are tiny in these tests)."""
    asked: list[float] = []
    real_sleep = time.sleep

    def sleep(seconds: float) -> None:
        asked.append(seconds)
        real_sleep(seconds)

    monkeypatch.setattr(client_module.time, "sleep", sleep)
    return asked


def test_backoff_is_exponential_with_bounded_jitter(script: Script, make_client: Callable[..., Client],
                                                    pauses: list[float]) -> None:
    backoff = 0.002
    c = make_client(retries=4, backoff=backoff)
    script.fail("ParseCert", UNAVAILABLE, times=4)
    c.parse_cert(b"cert")
    assert script.calls["ParseCert"] == 5
    assert len(pauses) == 4  # one pause before each retry, none after the answer
    for attempt, pause in enumerate(pauses):
        base = backoff * 2 ** attempt
        assert 0.5 * base <= pause <= 1.5 * base, (attempt, pause)


def test_no_pause_when_nothing_is_retried(script: Script, client: Client, pauses: list[float]) -> None:
    script.fail("SignData", UNAVAILABLE)
    _raises(lambda: client.sign_data("k", b"x"))
    script.fail("VerifySignedData", grpc.StatusCode.INVALID_ARGUMENT)
    _raises(lambda: client.verify_signed_data(b"m", b"s", key="k"))
    client.verify_signed_data(b"m", b"s", key="k")
    assert pauses == []


def test_backoff_never_sleeps_past_the_deadline(script: Script, make_client: Callable[..., Client],
                                                pauses: list[float]) -> None:
    # the first pause (backoff 10 s, at least 5 s with jitter) would outlast the 2 s deadline:
    # the client gives up at once with the server's error instead of sleeping
    c = make_client(retries=1, backoff=10.0, timeout=2.0)  # retries=1: a regression costs one pause, not minutes
    script.fail("ValidateCert", UNAVAILABLE, times=5)
    assert _raises(lambda: c.validate_cert(b"cert")).code() == UNAVAILABLE
    assert script.calls["ValidateCert"] == 1
    assert pauses == []


def test_all_pauses_fit_in_the_call_deadline(script: Script, make_client: Callable[..., Client],
                                             pauses: list[float]) -> None:
    timeout = 1.0
    c = make_client(retries=50, backoff=0.001, timeout=timeout)
    c.wait_ready()
    script.fail("VerifySignedMessage", UNAVAILABLE, times=100)
    err = _raises(lambda: c.verify_signed_message(b"cms"))
    assert err.code() in (UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED)
    assert 1 <= len(pauses) < 50  # the deadline, not the retry count, ended it
    assert sum(pauses) < timeout
    assert script.calls["VerifySignedMessage"] == len(pauses) + 1


# -- error_reason ---------------------------------------------------------------------------------

def test_error_reason_reads_error_info(script: Script, client: Client) -> None:
    script.fail("ExportCert", daemon_rpc_status(grpc.StatusCode.NOT_FOUND, "no key k", "KEY_NOT_FOUND", key="k"))
    err = _raises(lambda: client.export_cert("k"))
    assert err.code() == grpc.StatusCode.NOT_FOUND
    assert error_reason(err) == "KEY_NOT_FOUND"


def test_error_reason_skips_other_details(script: Script, client: Client) -> None:
    retry_info, error_info = any_pb2.Any(), any_pb2.Any()
    retry_info.Pack(error_details_pb2.RetryInfo(retry_delay=duration_pb2.Duration(seconds=1)))
    error_info.Pack(error_details_pb2.ErrorInfo(reason="SEAL_NOT_ACTIVE", domain="trustsvc"))
    status = status_pb2.Status(code=grpc.StatusCode.FAILED_PRECONDITION.value[0], message="seal revoked",
                               details=[retry_info, error_info])
    script.fail("SignData", status)
    err = _raises(lambda: client.sign_data("k", b"x"))
    assert error_reason(err) == "SEAL_NOT_ACTIVE"


def test_error_reason_without_details(script: Script, client: Client) -> None:
    script.fail("ParseCert", grpc.StatusCode.INVALID_ARGUMENT)
    assert error_reason(_raises(lambda: client.parse_cert(b"x"))) is None
    status = status_pb2.Status(code=grpc.StatusCode.INVALID_ARGUMENT.value[0], message="no ErrorInfo")
    script.fail("ParseCert", status)
    assert error_reason(_raises(lambda: client.parse_cert(b"x"))) is None


def test_error_reason_after_the_retries_run_out(script: Script, make_client: Callable[..., Client]) -> None:
    c = make_client(retries=1)
    script.fail("VerifySignedData", status_for(e.HsmUnavailable("token gone")), times=2)
    err = _raises(lambda: c.verify_signed_data(b"m", b"s", key="k"))
    assert (err.code(), error_reason(err)) == (UNAVAILABLE, "HSM_UNAVAILABLE")
    assert script.calls["VerifySignedData"] == 2


def test_error_reason_of_a_client_side_error() -> None:
    # nothing listens on port 1: the channel fails without any status details from a server
    c = Client("127.0.0.1:1", insecure=True, retries=0, timeout=2.0)
    try:
        err = _raises(lambda: c.check_health())
        assert err.code() == UNAVAILABLE
        assert error_reason(err) is None
    finally:
        c.close()


# -- over mTLS, as business systems connect -------------------------------------------------------

def test_retries_over_mtls_with_the_dev_certificates(server: Server, script: Script) -> None:
    with Client.from_home(server.home, server.tls_target, "demo-client", server_name="localhost",
                          retries=3, backoff=0.001, timeout=5.0) as c:
        script.fail("VerifySignedData", UNAVAILABLE, times=2)
        assert c.verify_signed_data(b"m", b"s", key="k").valid
        assert script.calls["VerifySignedData"] == 3
        script.fail("SignData", UNAVAILABLE)
        assert _raises(lambda: c.sign_data("k", b"x")).code() == UNAVAILABLE
        assert c.sign_data("k", b"x", idempotency_key="order-47").signature == b"sig:x"
        assert script.calls["SignData"] == 2


def test_mtls_client_from_pem_bytes(server: Server, script: Script) -> None:
    tls = server.home / "tls"
    cert, key = tls / "clients" / "admin.pem", tls / "clients" / "admin-key.pem"
    with Client(server.tls_target, ca=(tls / "ca.pem").read_bytes(), cert=cert.read_bytes(), key=key.read_bytes(),
                retries=2, backoff=0.001, timeout=5.0) as c:
        script.fail("Check", UNAVAILABLE, times=2)
        assert c.check_health() == "SERVING"
        assert script.calls["Check"] == 3
