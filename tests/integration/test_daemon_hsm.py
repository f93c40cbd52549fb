"""The daemon with its keys in a PKCS#11 token (``keystore = "hsm"``), over real gRPC with mTLS.

SM2: nothing installable here signs SM2 over PKCS#11 (SoftHSM2 2.6 has no SM2 mechanism), so the
running daemon uses the SM2 test emulator ``hsm/testtoken`` (TEST ONLY) through the real
Pkcs11KeyStore, session pool, profiles and python-pkcs11, configured as an operator would: the
``TRUSTSVC_PKCS11_*`` variables and a PIN file. Every default key (default, audit, token, tsa,
seal-maker) is generated in the token at the first start. Signatures are checked by the OpenSSL CLI
against the certificate the daemon exports; key objects are inspected with python-pkcs11.

SoftHSM2 (a fresh token made by the test): a wrong PIN stops the daemon from starting, in process
and through ``trustsvc serve --config``, and a SoftHSM2 token with the right PIN is refused with
HSM_NO_SM2 because the embedded default needs SM2 keys.

Failure at run time: the emulator's token is pulled out (``$TESTTOKEN_PRESENT_FILE`` removed): calls
get UNAVAILABLE with reason HSM_UNAVAILABLE, the daemon keeps serving, ``trustsvc_hsm_errors``
counts the errors (batch items too), and signing resumes once the token is back.

The HSM PIN is a distinctive string; it must appear in no log line (DEBUG included, every logger)
and in no message returned to a client.
"""

from __future__ import annotations

import base64
import contextlib
import io
import json
import logging
import os
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import pkcs11.exceptions as px
import pytest
from pkcs11 import Attribute, ObjectClass
from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import require_tool
from tests.integration.hsm_helpers import (
    ROOT,
    SO_PIN,
    SOFTHSM_MODULE,
    TESTTOKEN_LABEL,
    build_testtoken,
    openssl_sm2_verify,
)
from tests.integration.test_daemon_fixtures import Running, start_daemon
from trustsvc.algorithms.signer import Verifier
from trustsvc.algorithms.sm2 import rs_to_der
from trustsvc.client import error_reason, seal_pb2, token_pb2
from trustsvc.errors import HsmError
from trustsvc.pki.certificate import Certificate
from trustsvc.server.logs import LOGGER, BatchingStreamHandler, JsonFormatter

pytestmark = pytest.mark.integration

HSM_PIN = "Hsm-Pin-6e3f1b97c4"  # distinctive: a plain search finds it in any log line or message
WRONG_PIN = "Wrong-Pin-41d8a2c7"
PIN_FILE = "hsm-pin.txt"  # TRUSTSVC_PKCS11_PIN_FILE is relative to the daemon's home
WAIT_S = 30  # bound for every wait below


@contextlib.contextmanager
def captured_logs() -> Iterator[io.StringIO]:
    """Every log record of every logger at DEBUG, plus the daemon's own JSON lines, into one string."""
    out = io.StringIO()
    json_handler = BatchingStreamHandler(out)
    json_handler.setFormatter(JsonFormatter())
    plain = logging.StreamHandler(out)
    plain.setFormatter(logging.Formatter("%(name)s %(levelname)s %(message)s"))
    root = logging.getLogger()
    saved = (LOGGER.level, root.level)
    LOGGER.addHandler(json_handler)
    LOGGER.setLevel(logging.DEBUG)
    root.addHandler(plain)
    root.setLevel(logging.DEBUG)
    try:
        yield out
    finally:
        json_handler.flush()
        LOGGER.removeHandler(json_handler)
        root.removeHandler(plain)
        LOGGER.setLevel(saved[0])
        root.setLevel(saved[1])
        json_handler.close()


def scrape(running: Running) -> dict[str, Any]:
    port = running.daemon.metrics_server.server_address[1]
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as resp:
        text = resp.read().decode()
    return {family.name: family for family in text_string_to_metric_families(text)}


def hsm_errors(running: Running, reason: str) -> float:
    family = scrape(running).get("trustsvc_hsm_errors")
    if family is None:
        return 0.0
    return sum(s.value for s in family.samples
               if s.name == "trustsvc_hsm_errors_total" and s.labels.get("reason") == reason)


def openssl_checks(tmp_path: Path, certificate: bytes, message: bytes, signature_der: bytes) -> None:
    """The OpenSSL CLI verifies an SM2 signature (SM3, default ID) with the public key of ``certificate``,
    and refuses it for another message."""
    openssl = require_tool("openssl")
    pem = Certificate.load(certificate).public_key.to_pem()
    ok = openssl_sm2_verify(openssl, tmp_path, pem, message, signature_der)
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert openssl_sm2_verify(openssl, tmp_path, pem, message + b"!", signature_der).returncode != 0


@contextlib.contextmanager
def token_session(running: Running) -> Iterator[Any]:
    """A python-pkcs11 session of our own on the daemon's token (login state is per application)."""
    lib = running.daemon.rt.keystore.pool.lib
    session = lib.get_token(token_label=TESTTOKEN_LABEL).open()
    try:
        yield session
    finally:
        session.close()


# ------------------------------------------------------------------ the SM2 daemon (test emulator)
@pytest.fixture(scope="module")
def hsm_daemon(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Running, io.StringIO, Path]]:
    """A daemon whose keys live in the SM2 test token; all logs of its life captured at DEBUG."""
    module = build_testtoken()
    base = tmp_path_factory.mktemp("daemon-hsm")
    home = base / "home"
    home.mkdir()
    (home / PIN_FILE).write_text(HSM_PIN + "\n")
    present = base / "token-present"
    present.touch()
    with pytest.MonkeyPatch.context() as mp, captured_logs() as logs:
        mp.setenv("TESTTOKEN_PIN", HSM_PIN)  # the emulator's user PIN
        mp.setenv("TESTTOKEN_PRESENT_FILE", str(present))  # removing the file pulls the token out
        mp.setenv("TRUSTSVC_PKCS11_MODULE", str(module))
        mp.setenv("TRUSTSVC_PKCS11_TOKEN", TESTTOKEN_LABEL)
        mp.setenv("TRUSTSVC_PKCS11_PIN_FILE", PIN_FILE)
        mp.delenv("TRUSTSVC_PKCS11_PIN", raising=False)
        running = start_daemon(home, keystore="hsm", metrics_listen="127.0.0.1:0", log_level="DEBUG")
        try:
            yield running, logs, present
        finally:
            present.touch()
            running.daemon.stop(0)
            running.daemon.rt.keystore.close()  # Daemon.stop leaves the keystore open: its sessions end here


def test_default_keys_are_generated_in_the_token(hsm_daemon: tuple[Running, io.StringIO, Path]) -> None:
    running, _, _ = hsm_daemon
    rt = running.daemon.rt
    assert rt.keystore.kind == "hsm" and rt.keystore.sm2_profile.name == "testtoken"
    with running.client("admin") as admin:
        listed = {k.name: k for k in admin.list_keys()}
    assert {"default", "audit", "token", "tsa", "seal-maker"} <= listed.keys()
    for name in ("default", "audit", "token", "tsa", "seal-maker"):
        assert listed[name].store == "hsm" and listed[name].spec == "sm2", listed[name]
        assert listed[name].certificate_chain, name  # certified by the development CA at the first start


def test_sign_and_verify_data_with_an_sm2_key_in_the_token(hsm_daemon: tuple[Running, io.StringIO, Path],
                                                             tmp_path: Path) -> None:
    running, _, _ = hsm_daemon
    message = "营业执照 91110000 signed in the token".encode()
    with running.client() as c:
        signed = c.sign_data("default", message)
        assert signed.algorithm == "sm2-sm3" and signed.key_ref.startswith("hsm:default@")
        assert signed.audit.seq > 0
        exported = c.export_cert("default")
        assert exported.certificate == signed.certificate
        Verifier(Certificate.load(signed.certificate).public_key).verify(message, signed.signature)
        ok = c.verify_signed_data(message, signed.signature, certificate=exported.certificate)
        assert ok.valid, ok
        bad = c.verify_signed_data(message + b"x", signed.signature, certificate=exported.certificate)
        assert not bad.valid
    openssl_checks(tmp_path, exported.certificate, message, signed.signature)


def test_issue_token_signed_by_a_key_in_the_token(hsm_daemon: tuple[Running, io.StringIO, Path],
                                                  tmp_path: Path) -> None:
    running, _, _ = hsm_daemon
    with running.client() as c:
        issued = c.call(c.tokens.IssueToken, token_pb2.IssueTokenRequest(
            subject="110101199001011234", audience=["portal"], ttl_seconds=300))
        verified = c.call(c.tokens.VerifyToken, token_pb2.VerifyTokenRequest(token=issued.token, audience="portal"))
        assert verified.result.valid, verified.result
        token_cert = c.export_cert("token").certificate
    header, payload, signature = issued.token.split(".")
    assert json.loads(base64.urlsafe_b64decode(header + "==")).get("alg") == "SM2"
    rs = base64.urlsafe_b64decode(signature + "==")
    assert len(rs) == 64
    openssl_checks(tmp_path, token_cert, f"{header}.{payload}".encode(), rs_to_der(rs))
    assert running.daemon.rt.signer("token", check_policy=False).key_ref.startswith("hsm:token@")


def test_sign_with_seal_uses_keys_in_the_token(hsm_daemon: tuple[Running, io.StringIO, Path]) -> None:
    running, _, _ = hsm_daemon
    with running.client() as c:
        seals = c.call(c.seals.ListSeals, seal_pb2.ListSealsRequest()).seals
        assert seals, "the embedded default makes a demo seal"
        seal = seals[0]
        assert "seal-maker" in seal.maker_key and seal.holder_key == "default"  # both keys in the token
        data = b"contract 2024-117, page 3"
        before = scrape(running)
        signed = c.call(c.seals.SignWithSeal, seal_pb2.SignWithSealRequest(seal_id=seal.seal_id, data=data))
        after = scrape(running)
        checked = c.call(c.seals.VerifySealSignature, seal_pb2.VerifySealSignatureRequest(
            ses_signature=signed.ses_signature, data=data))
        assert checked.result.valid, checked.result
        assert checked.seal_id == seal.seal_id
        tampered = c.call(c.seals.VerifySealSignature, seal_pb2.VerifySealSignatureRequest(
            ses_signature=signed.ses_signature, data=data + b"!"))
        assert not tampered.result.valid

    def token_signatures(families: dict[str, Any]) -> float:
        return sum(s.value for s in families["trustsvc_signatures"].samples
                   if s.name == "trustsvc_signatures_total" and s.labels["key"].startswith("hsm:"))
    assert token_signatures(after) > token_signatures(before)  # the seal signature was made in the token


def test_batch_sign_data_in_the_token(hsm_daemon: tuple[Running, io.StringIO, Path], tmp_path: Path) -> None:
    running, _, _ = hsm_daemon
    items = [(f"doc-{i}", f"licence {i} ".encode() * (i + 1)) for i in range(12)]
    with running.client() as c:
        batch = c.batch_sign_data("default", [*items, ("empty", b"")])
        cert = c.export_cert("default").certificate
    assert batch.key_ref.startswith("hsm:default@") and batch.audit.seq > 0
    results = {r.id: r for r in batch.results}
    verifier = Verifier(Certificate.load(cert).public_key)
    for item_id, data in items:
        assert results[item_id].WhichOneof("outcome") == "signature", results[item_id]
        verifier.verify(data, results[item_id].signature)
    assert error_reason_of(results["empty"].error) == "EMPTY_DATA"
    openssl_checks(tmp_path, cert, items[5][1], results[items[5][0]].signature)


def error_reason_of(status: Any) -> str:
    from google.rpc import error_details_pb2

    for detail in status.details:
        info = error_details_pb2.ErrorInfo()
        if detail.Unpack(info):
            return str(info.reason)
    return ""


def test_key_service_creates_rotates_and_disables_keys_in_the_token(
        hsm_daemon: tuple[Running, io.StringIO, Path], tmp_path: Path) -> None:
    running, _, _ = hsm_daemon
    with running.client("admin") as admin, running.client() as c:
        created = admin.create_key("demo-hsm", "sm2")
        assert created.version == 1
        first = c.sign_data("demo-hsm", b"v1")
        assert first.key_ref.endswith("demo-hsm@1")
        rotated = admin.rotate_key("demo-hsm")
        assert rotated.version == 2
        second = c.sign_data("demo-hsm", b"v2")
        assert second.key_ref.endswith("demo-hsm@2")
        Verifier(Certificate.load(second.certificate).public_key).verify(b"v2", second.signature)
        openssl_checks(tmp_path, second.certificate, b"v2", second.signature)
        admin.disable_key("demo-hsm", 2)
        with pytest.raises(grpc.RpcError) as err:
            c.sign_data("demo-hsm", b"after disable")
        assert err.value.code() == grpc.StatusCode.FAILED_PRECONDITION
        assert error_reason(err.value) == "KEY_DISABLED"
    # the key pairs are in the token: private, sensitive, never extractable, generated there
    with token_session(running) as session:
        for label in ("demo-hsm@1", "demo-hsm@2"):
            keys = list(session.get_objects({Attribute.CLASS: ObjectClass.PRIVATE_KEY, Attribute.LABEL: label}))
            assert len(keys) == 1, label
            key = keys[0]
            for attr in (Attribute.TOKEN, Attribute.PRIVATE, Attribute.SENSITIVE, Attribute.ALWAYS_SENSITIVE,
                         Attribute.NEVER_EXTRACTABLE, Attribute.LOCAL, Attribute.SIGN):
                assert key[attr] is True, (label, attr)
            for attr in (Attribute.EXTRACTABLE, Attribute.MODIFIABLE):
                assert key[attr] is False, (label, attr)
            with pytest.raises(px.AttributeSensitive):
                key[Attribute.VALUE]
            public = list(session.get_objects({Attribute.CLASS: ObjectClass.PUBLIC_KEY, Attribute.LABEL: label}))
            assert len(public) == 1
        states = {}
        for obj in session.get_objects({Attribute.CLASS: ObjectClass.DATA, Attribute.APPLICATION: "trustsvc"}):
            meta = json.loads(bytes(obj[Attribute.VALUE]))
            if meta["name"] == "demo-hsm":
                states[meta["version"]] = meta["state"]
    assert states == {1: "passive", 2: "disabled"}


def test_key_service_refuses_a_bad_key_name_for_the_token(hsm_daemon: tuple[Running, io.StringIO, Path]) -> None:
    """A name the token would have taken as a label ("a b") or refused as an HSM fault ("x@y": INTERNAL)
    is the caller's error, as with the software keystore."""
    running, _, _ = hsm_daemon
    with running.client("admin") as admin:
        for name in ("x@y", "a b", "k" * 65):
            with pytest.raises(grpc.RpcError) as err:
                admin.create_key(name, "sm2")
            assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT, name
            assert error_reason(err.value) == "BAD_KEY_NAME"
        assert not {k.name for k in admin.list_keys()} & {"x@y", "a b", "k" * 65}


def test_token_pulled_out_at_run_time(hsm_daemon: tuple[Running, io.StringIO, Path]) -> None:
    running, _, present = hsm_daemon
    with running.client() as c:
        c.sign_data("default", b"before")
        before = hsm_errors(running, "HSM_UNAVAILABLE")
        present.unlink()  # the token is pulled out
        try:
            for data in (b"during 1", b"during 2"):
                with pytest.raises(grpc.RpcError) as err:
                    c.sign_data("default", data)
                assert err.value.code() == grpc.StatusCode.UNAVAILABLE, err.value
                assert error_reason(err.value) == "HSM_UNAVAILABLE"
                assert HSM_PIN not in (err.value.details() or "")
            with pytest.raises(grpc.RpcError) as err:
                c.call(c.tokens.IssueToken, token_pb2.IssueTokenRequest(subject="s", audience=["a"], ttl_seconds=60))
            assert err.value.code() == grpc.StatusCode.UNAVAILABLE and error_reason(err.value) == "HSM_UNAVAILABLE"
            batch = c.batch_sign_data("default", [("a", b"one"), ("b", b"two")])
            assert [error_reason_of(r.error) for r in batch.results] == ["HSM_UNAVAILABLE"] * 2
            assert all(HSM_PIN not in r.error.message for r in batch.results)
            # the daemon is still there and answers
            assert c.check_health() == "SERVING"
            counted = hsm_errors(running, "HSM_UNAVAILABLE") - before
            # each failed token operation once: 2 SignData, 1 IssueToken, and for the batch its one
            # sign_batch call, then each of its 2 items signed alone (the service's fallback)
            assert counted == 6, counted
        finally:
            present.touch()  # the token is back
        deadline = time.monotonic() + WAIT_S
        while True:
            try:
                back = c.sign_data("default", b"after")
                break
            except grpc.RpcError as exc:
                assert error_reason(exc) == "HSM_UNAVAILABLE", exc
                assert time.monotonic() < deadline, "the daemon did not sign again after the token came back"
                time.sleep(0.1)
        Verifier(Certificate.load(back.certificate).public_key).verify(b"after", back.signature)


def test_hsm_pin_is_in_no_log_line(hsm_daemon: tuple[Running, io.StringIO, Path]) -> None:
    running, logs, _ = hsm_daemon
    with running.client() as c, running.client("admin") as admin:
        c.sign_data("default", b"one more")
        admin.create_key("demo-log", "sm2")
        with pytest.raises(grpc.RpcError):
            c.sign_data("demo-missing", b"x")
    for handler in LOGGER.handlers:
        handler.flush()
    text = logs.getvalue()
    assert "trustsvc daemon started" in text and '"msg":"rpc"' in text.replace(" ", "")
    assert HSM_PIN not in text
    assert HSM_PIN not in json.dumps(running.daemon.config.redacted())


# ------------------------------------------------------------------ SoftHSM2: start-up failures
def fresh_softhsm(directory: Path, label: str) -> Path:
    """A new SoftHSM2 token whose user PIN is HSM_PIN; returns its softhsm2.conf."""
    require_tool("softhsm2-util")
    subprocess.run([str(ROOT / "hsm" / "setup-softhsm.sh"), str(directory), label, SO_PIN, HSM_PIN],
                   check=True, capture_output=True, text=True)
    return directory / "softhsm2.conf"


def test_wrong_pin_stops_the_daemon_in_process(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    conf = fresh_softhsm(tmp_path / "softhsm", "daemon-wrong-pin")
    home = tmp_path / "home"
    home.mkdir()
    (home / PIN_FILE).write_text(WRONG_PIN + "\n")
    monkeypatch.setenv("SOFTHSM2_CONF", str(conf))
    monkeypatch.setenv("TRUSTSVC_PKCS11_MODULE", SOFTHSM_MODULE)
    monkeypatch.setenv("TRUSTSVC_PKCS11_TOKEN", "daemon-wrong-pin")
    monkeypatch.setenv("TRUSTSVC_PKCS11_PIN_FILE", PIN_FILE)
    monkeypatch.delenv("TRUSTSVC_PKCS11_PIN", raising=False)
    with captured_logs() as logs, pytest.raises(HsmError) as err:
        start_daemon(home, keystore="hsm", log_level="DEBUG")
    assert err.value.reason == "HSM_PIN_INCORRECT"
    assert "PIN" in err.value.message and WRONG_PIN not in err.value.message and HSM_PIN not in err.value.message
    assert WRONG_PIN not in logs.getvalue() and HSM_PIN not in logs.getvalue()


def serve(config: Path, home: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "cli.main", "--home", str(home), "serve", "--config", str(config)],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)


def test_serve_with_a_softhsm_token(tmp_path: Path) -> None:
    """`trustsvc serve --config` as an operator runs it: a wrong PIN, then the right PIN on a token without SM2."""
    conf = fresh_softhsm(tmp_path / "softhsm", "daemon-serve")
    home = tmp_path / "home"
    home.mkdir()
    pin_file = home / PIN_FILE
    config = tmp_path / "trustsvc.toml"
    config.write_text('[server]\nlisten = "127.0.0.1:0"\nmetrics_listen = ""\nkeystore = "hsm"\n'
                      'log_level = "DEBUG"\n')
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TRUSTSVC_", "TESTTOKEN_"))}
    env.update(SOFTHSM2_CONF=str(conf), TRUSTSVC_PKCS11_MODULE=SOFTHSM_MODULE, TRUSTSVC_PKCS11_TOKEN="daemon-serve",
               TRUSTSVC_PKCS11_PIN_FILE=PIN_FILE, PYTHONPATH=str(ROOT))

    pin_file.write_text(WRONG_PIN + "\n")
    wrong = serve(config, home, env)
    assert wrong.returncode == 3, wrong.stdout + wrong.stderr  # EXIT_FAILURE
    report = json.loads(wrong.stderr.strip().splitlines()[-1])
    assert report["error"] == "HSM_PIN_INCORRECT" and "rejected the user PIN" in report["message"]
    assert WRONG_PIN not in wrong.stdout + wrong.stderr and HSM_PIN not in wrong.stdout + wrong.stderr
    assert "listening" not in wrong.stdout  # it never served

    # the right PIN: SoftHSM2 has no SM2 mechanism, and the embedded default's keys are SM2
    pin_file.write_text(HSM_PIN + "\n")
    no_sm2 = serve(config, home, env)
    assert no_sm2.returncode == 3, no_sm2.stdout + no_sm2.stderr
    report = json.loads(no_sm2.stderr.strip().splitlines()[-1])
    assert report["error"] == "HSM_NO_SM2" and "SoftHSM" in report["message"], report
    assert HSM_PIN not in no_sm2.stdout + no_sm2.stderr
    assert "listening" not in no_sm2.stdout
