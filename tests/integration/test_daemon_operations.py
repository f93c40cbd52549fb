"""Daemon operations (issue #7) over real gRPC with mTLS on loopback: graceful drain (in process and on
SIGTERM), health and reflection, Prometheus metrics, message/concurrency/deadline limits, and JSON logs
that carry no secrets.

A call is held open by a client-streaming SignDataStream whose request iterator waits on an Event after
its first chunk. To know the daemon has that call in flight, a Health.Watch is opened on the same
channel afterwards: HTTP/2 streams of one connection reach the server in order, and Watch answers at
once, so its first answer comes after the held call was accepted. The Watch also shows the drain:
``Daemon.stop`` sets health to NOT_SERVING first, and the open Watch receives it.
"""

from __future__ import annotations

import contextlib
import io
import json
import logging
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest
from google.protobuf import descriptor_pb2, descriptor_pool
from grpc_health.v1 import health_pb2
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc
from grpc_reflection.v1alpha.proto_reflection_descriptor_database import ProtoReflectionDescriptorDatabase
from prometheus_client.parser import text_string_to_metric_families

from tests.integration.test_daemon_fixtures import Running, start_daemon
from trustsvc.algorithms.signer import Verifier
from trustsvc.audit.log import select_checkpoints
from trustsvc.audit.verify import verify_log
from trustsvc.client import Client, error_reason, signature_pb2, token_pb2
from trustsvc.pki.certificate import Certificate
from trustsvc.server.logs import LOGGER, BatchingStreamHandler, JsonFormatter
from trustsvc.server.tls import issue_client_cert
from trustsvc.store.database import Database

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING
SERVICES = ("SignatureService", "KeyService", "TokenService", "SealService", "DocumentService", "TimeStampService")
SIGN_DATA = "/trustsvc.v1.SignatureService/SignData"
WAIT_S = 30  # upper bound for any wait below, so that a failure cannot hang the run


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One embedded home for the in-process daemons (the first start bootstraps it; each test starts its own)."""
    return tmp_path_factory.mktemp("ops")


@contextlib.contextmanager
def daemon(home: Path, **overrides: Any) -> Iterator[Running]:
    """A daemon (``start_daemon``), stopped at the end whatever happened."""
    running = start_daemon(home, **overrides)
    try:
        yield running
    finally:
        running.daemon.stop(0)


class HeldStream:
    """A SignDataStream (init, one chunk, then paused until ``release``): a call the daemon has in flight."""

    def __init__(self, client: Client, head: bytes = b"held call: first part / ", tail: bytes = b"second part",
                 timeout: float | None = WAIT_S) -> None:
        self.head, self.tail = head, tail
        self.chunk_sent = threading.Event()
        self._release = threading.Event()
        self.future = client.signature.SignDataStream.future(self._requests(), timeout=timeout)
        assert self.chunk_sent.wait(WAIT_S)

    def _requests(self) -> Iterator[Any]:
        yield signature_pb2.SignDataStreamRequest(init=signature_pb2.SignStreamInit(key="default"))
        yield signature_pb2.SignDataStreamRequest(chunk=self.head)
        self.chunk_sent.set()
        self._release.wait(WAIT_S)
        yield signature_pb2.SignDataStreamRequest(chunk=self.tail)

    def release(self) -> Any:
        """Send the rest; the signature response (raises the call's RpcError)."""
        self._release.set()
        return self.future.result(timeout=WAIT_S)

    def abandon(self) -> None:
        self._release.set()
        self.future.cancel()


def watch_health(client: Client) -> Iterator[Any]:
    """An open Health.Watch whose first answer (SERVING) has been read."""
    watch = client.health.Watch(health_pb2.HealthCheckRequest(service=""), timeout=WAIT_S)
    assert next(watch).status == SERVING
    return watch


def assert_signed(resp: Any, message: bytes) -> None:
    Verifier(Certificate.load(resp.certificate).public_key).verify(message, resp.signature)  # raises if invalid
    assert resp.audit.seq > 0


def check(client: Client, service: str = "") -> Any:
    """One Health.Check, no retries (Client.check_health retries UNAVAILABLE)."""
    return client.health.Check(health_pb2.HealthCheckRequest(service=service), timeout=5).status


# ------------------------------------------------------------------ 1. graceful shutdown
def test_stop_drains_the_call_in_flight_and_refuses_new_ones(home: Path) -> None:
    with daemon(home) as r, r.client() as c:
        held = HeldStream(c)
        watch = watch_health(c)  # the held call is in flight on the daemon
        stopper = threading.Thread(target=r.daemon.stop, args=(WAIT_S,), daemon=True)
        try:
            stopper.start()
            assert next(watch).status == NOT_SERVING  # health says NOT_SERVING while draining
            watch.cancel()
            seen = []  # new calls: at most NOT_SERVING (stop not yet under way), then refused
            deadline = time.monotonic() + WAIT_S
            while True:
                try:
                    seen.append(check(c))
                except grpc.RpcError as err:  # gRPC refuses a call arriving during shutdown either way
                    assert err.code() in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.CANCELLED), err
                    break
                assert time.monotonic() < deadline, "new calls still accepted while draining"
                time.sleep(0.01)
            assert set(seen) <= {NOT_SERVING}, seen
            assert not held.future.done() and stopper.is_alive()  # the drain waits for the held call
            resp = held.release()
        finally:
            held.abandon()
        assert_signed(resp, held.head + held.tail)
        stopper.join(WAIT_S)
        assert not stopper.is_alive() and r.daemon.server is None
        with pytest.raises(grpc.RpcError) as err:
            c.sign_data("default", b"after stop", timeout=5)
        assert err.value.code() == grpc.StatusCode.UNAVAILABLE
    # the held call's record is in the chain, and the final checkpoint signs the head
    head_seq, _ = r.daemon.rt.audit.head()
    assert head_seq >= resp.audit.seq
    with r.db.read() as tx:
        assert select_checkpoints(tx)[-1].seq == head_seq
    report = verify_log(r.db)
    assert report.ok, report.problems


def test_sigterm_drains_the_serving_process(tmp_path: Path) -> None:
    home, stderr_path = tmp_path / "home", tmp_path / "daemon-stderr.log"
    env = {k: v for k, v in os.environ.items() if not k.startswith("TRUSTSVC_")}
    env["PYTHONPATH"] = str(ROOT)
    with stderr_path.open("w") as stderr:
        proc = subprocess.Popen([sys.executable, "-m", "cli.main", "--home", str(home), "serve",
                                 "--listen", "127.0.0.1:0", "--metrics-listen", ""],
                                cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=stderr, text=True)
    try:
        assert proc.stdout is not None
        banner = ""
        while True:  # the JSON banner spans lines
            line = proc.stdout.readline()
            assert line, f"serve exited before its banner: {stderr_path.read_text()[-2000:]}"
            banner += line
            with contextlib.suppress(json.JSONDecodeError):
                info = json.loads(banner)
                break
        with Client.from_home(home, info["listening"], "demo-client", server_name="localhost") as c:
            held = HeldStream(c)
            try:
                watch = watch_health(c)
                proc.send_signal(signal.SIGTERM)
                assert next(watch).status == NOT_SERVING  # the process is draining
                watch.cancel()
                assert proc.poll() is None
                resp = held.release()
            finally:
                held.abandon()
            assert_signed(resp, held.head + held.tail)
        assert proc.wait(timeout=WAIT_S) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        if proc.stdout is not None:
            proc.stdout.close()
    records = [json.loads(line) for line in stderr_path.read_text().splitlines() if line.startswith("{")]
    messages = [r["msg"] for r in records]
    assert "signal received; draining" in messages and messages[-1] == "trustsvc daemon stopped", messages
    assert {"method": "/trustsvc.v1.SignatureService/SignDataStream", "code": "OK"}.items() <= next(
        r for r in records if r.get("method", "").endswith("/SignDataStream")).items()
    db = Database(f"sqlite:///{home / 'trustsvc.db'}")
    report = verify_log(db)  # the held call's record, then the final checkpoint at the head
    assert report.ok and report.head_seq >= resp.audit.seq, report.problems
    with db.read() as tx:
        assert select_checkpoints(tx)[-1].seq == report.head_seq


# ------------------------------------------------------------------ 2. health and reflection
def test_health_and_reflection(home: Path) -> None:
    issue_client_cert(home, "stranger")  # in no policy entry: health and reflection need only a certificate
    with daemon(home) as r, r.client("stranger") as c:
        assert check(c) == SERVING
        for service in SERVICES:
            assert check(c, f"trustsvc.v1.{service}") == SERVING, service
        with pytest.raises(grpc.RpcError) as err:
            check(c, "trustsvc.v1.NoSuchService")
        assert err.value.code() == grpc.StatusCode.NOT_FOUND

        stub = reflection_pb2_grpc.ServerReflectionStub(c.channel)
        (listed,) = stub.ServerReflectionInfo(iter([reflection_pb2.ServerReflectionRequest(list_services="")]),
                                              timeout=WAIT_S)
        names = {s.name for s in listed.list_services_response.service}
        expected = {f"trustsvc.v1.{s}" for s in SERVICES} | {"grpc.health.v1.Health",
                                                              "grpc.reflection.v1alpha.ServerReflection"}
        assert expected <= names, names

        (found,) = stub.ServerReflectionInfo(iter([reflection_pb2.ServerReflectionRequest(
            file_containing_symbol="trustsvc.v1.SignatureService")]), timeout=WAIT_S)
        files = [descriptor_pb2.FileDescriptorProto.FromString(b)
                 for b in found.file_descriptor_response.file_descriptor_proto]
        (sig_file,) = [f for f in files if any(s.name == "SignatureService" for s in f.service)]
        assert sig_file.package == "trustsvc.v1"
        methods = {m.name: m for s in sig_file.service if s.name == "SignatureService" for m in s.method}
        assert methods["SignData"].input_type == ".trustsvc.v1.SignDataRequest"
        assert methods["SignDataStream"].client_streaming

        # the reflection client resolves a whole service (its imports fetched on demand)
        pool = descriptor_pool.DescriptorPool(ProtoReflectionDescriptorDatabase(c.channel))
        tokens = pool.FindServiceByName("trustsvc.v1.TokenService")
        assert tokens.methods_by_name["IssueToken"].input_type.full_name == "trustsvc.v1.IssueTokenRequest"


# ------------------------------------------------------------------ 3. Prometheus metrics
def scrape(port: int) -> dict[str, Any]:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as resp:
        text = resp.read().decode()
    return {family.name: family for family in text_string_to_metric_families(text)}


def sample(families: dict[str, Any], family: str, name: str, **labels: str) -> float | None:
    for s in families[family].samples:
        if s.name == name and all(s.labels.get(k) == v for k, v in labels.items()):
            return float(s.value)
    return None


def test_metrics(home: Path) -> None:
    with daemon(home, metrics_listen="127.0.0.1:0") as r, r.client() as c:
        port = r.daemon.metrics_server.server_address[1]
        signed = [c.sign_data("default", f"metrics {i}".encode()) for i in range(3)]
        key_ref = signed[0].key_ref
        with pytest.raises(grpc.RpcError) as err:
            c.call(c.signature.SignData, signature_pb2.SignDataRequest(data=b"no key"))
        assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert c.check_health() == "SERVING"
        held = HeldStream(c)
        try:
            deadline = time.monotonic() + WAIT_S  # the gauge rises when the handler's thread begins
            while sample(scrape(port), "trustsvc_in_flight", "trustsvc_in_flight") != 1.0:
                assert time.monotonic() < deadline, "trustsvc_in_flight never showed the held call"
                time.sleep(0.01)
            resp = held.release()
        finally:
            held.abandon()
        after = scrape(port)

    assert sample(after, "trustsvc_in_flight", "trustsvc_in_flight") == 0.0
    assert sample(after, "trustsvc_requests", "trustsvc_requests_total", method=SIGN_DATA, code="OK") == 3
    assert sample(after, "trustsvc_requests", "trustsvc_requests_total", method=SIGN_DATA,
                  code="INVALID_ARGUMENT") == 1
    assert sample(after, "trustsvc_requests", "trustsvc_requests_total",
                  method="/trustsvc.v1.SignatureService/SignDataStream", code="OK") == 1
    assert sample(after, "trustsvc_requests", "trustsvc_requests_total", method="/grpc.health.v1.Health/Check",
                  code="OK") == 1
    assert after["trustsvc_request_seconds"].type == "histogram"
    buckets = {s.labels["le"]: s.value for s in after["trustsvc_request_seconds"].samples
               if s.name == "trustsvc_request_seconds_bucket" and s.labels["method"] == SIGN_DATA}
    assert len(buckets) > 5 and buckets["+Inf"] == 4, buckets
    assert list(buckets.values()) == sorted(buckets.values())  # cumulative
    assert sample(after, "trustsvc_request_seconds", "trustsvc_request_seconds_count", method=SIGN_DATA) == 4
    assert resp.key_ref == key_ref
    assert sample(after, "trustsvc_signatures", "trustsvc_signatures_total", key=key_ref) == 4
    assert after["trustsvc_hsm_errors"].type == "counter"  # declared (no HSM here, so no labelled sample)
    assert sample(after, "trustsvc_audit_failures", "trustsvc_audit_failures_total") == 0


# ------------------------------------------------------------------ 4. limits
def test_oversized_message_refused_and_daemon_keeps_serving(home: Path) -> None:
    limit = 64 * 1024
    with daemon(home, max_message_bytes=limit) as r, r.client() as c:
        with pytest.raises(grpc.RpcError) as err:
            c.sign_data("default", b"x" * (limit + 1024), timeout=10)
        assert err.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        assert_signed(c.sign_data("default", b"small", timeout=10), b"small")
        assert check(c) == SERVING
        chunks = [bytes([i]) * (limit // 2) for i in range(6)]  # the limit is per message: a stream may be larger
        assert_signed(c.sign_data_stream("default", iter(chunks), timeout=WAIT_S), b"".join(chunks))


def test_concurrency_limit(home: Path) -> None:
    with daemon(home, max_concurrency=2) as r, r.client() as c:
        held = HeldStream(c)
        try:
            watch = watch_health(c)  # two calls in flight: the limit
            with pytest.raises(grpc.RpcError) as err:
                c.sign_data("default", b"one too many", timeout=10)
            assert err.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
            watch.cancel()
            resp = held.release()
        finally:
            held.abandon()
        assert_signed(resp, held.head + held.tail)
        deadline = time.monotonic() + WAIT_S  # the slots come back once the server has closed both calls
        while True:
            try:
                assert_signed(c.sign_data("default", b"served again", timeout=10), b"served again")
                break
            except grpc.RpcError as exc:
                assert exc.code() == grpc.StatusCode.RESOURCE_EXHAUSTED and time.monotonic() < deadline, exc
                time.sleep(0.01)


def test_default_deadline_applies_only_without_a_client_deadline(home: Path) -> None:
    # default_deadline_s = 0: a call without its own deadline is already late at its first chunk
    with daemon(home, default_deadline_s=0) as r, r.client() as c:
        no_deadline = HeldStream(c, timeout=None)
        with pytest.raises(grpc.RpcError) as err:
            no_deadline.release()
        assert err.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED  # the client set none: the daemon's default
        own_deadline = HeldStream(c, timeout=WAIT_S)
        assert_signed(own_deadline.release(), own_deadline.head + own_deadline.tail)


# ------------------------------------------------------------------ 5. logs carry no secrets
@contextlib.contextmanager
def captured_daemon_log() -> Iterator[tuple[BatchingStreamHandler, io.StringIO]]:
    """The daemon's JSON lines, through the daemon's own batching handler, into a string."""
    out = io.StringIO()
    handler = BatchingStreamHandler(out)
    handler.setFormatter(JsonFormatter())
    level = LOGGER.level
    LOGGER.addHandler(handler)
    LOGGER.setLevel(logging.INFO)
    try:
        yield handler, out
    finally:
        LOGGER.removeHandler(handler)
        LOGGER.setLevel(level)
        handler.close()


def test_json_logs_carry_no_secrets(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    passphrase = "Keystore-Passphrase-5d1c9a"
    monkeypatch.setenv("TRUSTSVC_KEYSTORE_PASSPHRASE", passphrase)  # the software keystore is sealed with it
    home = tmp_path / "home"
    with captured_daemon_log() as (handler, out):
        with daemon(home) as r, r.client() as c, r.client("admin") as admin:
            issued = c.call(c.tokens.IssueToken, token_pb2.IssueTokenRequest(
                subject="110101199001011234", audience=["portal"], ttl_seconds=300), request_id="log-issue")
            assert c.verify_token(issued.token, audience="portal").result.valid
            assert_signed(c.sign_data("default", b"log me not"), b"log me not")
            first = c.sign_data("default", b"pay 100", idempotency_key="log-k1")
            assert c.sign_data("default", b"pay 100", idempotency_key="log-k1").signature == first.signature
            with pytest.raises(grpc.RpcError) as err:
                c.sign_data("default", b"pay 999", idempotency_key="log-k1")
            assert error_reason(err.value) == "IDEMPOTENCY_KEY_REUSED"
            c.call(c.tokens.RevokeToken, token_pb2.RevokeTokenRequest(token=issued.token, reason="logs"),
                   request_id="log-revoke")
            assert admin.create_key("log-new", "sm2").version == 1
            with pytest.raises(grpc.RpcError):
                c.sign_data("demo-missing", b"x")
        handler.flush()
        text = out.getvalue()
    assert not (home / "keys" / "master.key").exists()  # the passphrase, not a key file, protects the keys

    records = [json.loads(line) for line in text.splitlines()]  # every line is one JSON object
    assert all({"time", "level", "msg"} <= rec.keys() for rec in records)
    messages = [rec["msg"] for rec in records]
    assert messages[0] == "trustsvc daemon started" and messages[-1] == "trustsvc daemon stopped", messages
    rpcs = [rec for rec in records if rec["msg"] == "rpc"]
    assert len(rpcs) == 9  # one line per call above
    for rec in rpcs:
        assert rec["method"].startswith("/") and rec["code"] and rec["request_id"] and rec["client"], rec
    by_id = {rec["request_id"]: rec for rec in rpcs}
    assert by_id["log-issue"]["method"] == "/trustsvc.v1.TokenService/IssueToken"
    assert by_id["log-issue"]["code"] == "OK" and by_id["log-issue"]["client"] == "cn=demo-client"
    assert by_id["log-revoke"]["method"] == "/trustsvc.v1.TokenService/RevokeToken"
    codes = {(rec["method"].rsplit("/", 1)[-1], rec["code"]) for rec in rpcs}
    assert {("SignData", "OK"), ("SignData", "FAILED_PRECONDITION"), ("SignData", "NOT_FOUND"),
            ("CreateKey", "OK")} <= codes, codes

    signature_part = issued.token.rsplit(".", 1)[1]
    for secret in (issued.token, signature_part, passphrase, "PRIVATE KEY"):
        assert secret not in text, f"{secret[:20]}... is in the daemon's log"
