"""The daemon on SoftHSM2, a real PKCS#11 token without SM2, with ``default_key_spec = "ec-p256"``.

A fresh SoftHSM2 token (its own SOFTHSM2_CONF under tmp), configured as an operator would (the
``TRUSTSVC_PKCS11_*`` variables and a PIN file), over real mTLS gRPC. Every default key (default, audit, token,
tsa, seal-maker) is generated in the token as ECDSA P-256 and certified by the home's dev CA (whose own root
stays a software SM2 key). What the daemon returns is checked by implementations we did not write: OpenSSL
(``dgst -verify`` for data, ``cms -verify`` for CMS, ``ts -verify`` for time stamps, the chain to the SM2 root
with ``verify -vfyopt distid``), PyJWT (ES256 from GetJwks) and pyHanko (PDFs). Keys made by KeyService are in
the token, read back by python-pkcs11 as sensitive and never extractable. GB/T 38540 seals need SM2: there is
no demo seal and MakeSeal refuses with FAILED_PRECONDITION SEAL_NEEDS_SM2. A restart on the same token reuses
the keys. A token without the configured kind's mechanisms (the SM2 test emulator has no ECDSA) refuses the
start with HSM_NO_MECHANISM.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import jwt as pyjwt
import pytest
from pkcs11 import Attribute, ObjectClass
from pyhanko.pdf_utils.reader import PdfFileReader
from pyhanko.sign.validation import validate_pdf_signature

from tests.conftest import require_tool
from tests.integration.hsm_helpers import SO_PIN, SOFTHSM_MODULE, TESTTOKEN_LABEL, build_testtoken
from tests.integration.test_daemon_fixtures import Running, start_daemon
from tests.integration.test_daemon_hsm import captured_logs
from tests.interop.tools import DISTID, openssl, openssl_cms_verify, openssl_ts_verify, run_openssl
from trustsvc.client import document_pb2, error_reason, seal_pb2, timestamp_pb2, token_pb2
from trustsvc.errors import HsmError
from trustsvc.pdf.devkit import licence_pdf
from trustsvc.pdf.pyhanko_sm2 import validation_context
from trustsvc.pki.certificate import Certificate
from trustsvc.server.embedded import DEFAULT_KEYS

pytestmark = pytest.mark.integration

LABEL = "daemon-softhsm-ec"
HSM_PIN = "Soft-Pin-58c2e0a9"
PIN_FILE = "hsm-pin.txt"  # TRUSTSVC_PKCS11_PIN_FILE is relative to the daemon's home
DATA = "电子证照 e-licence signed in SoftHSM2\x00\x01".encode() * 16
ISSUER, AUD = "https://trustsvc.local", "portal"
PRIVATE_TRUE = (Attribute.TOKEN, Attribute.PRIVATE, Attribute.SENSITIVE, Attribute.ALWAYS_SENSITIVE,
                Attribute.NEVER_EXTRACTABLE, Attribute.LOCAL, Attribute.SIGN)
PRIVATE_FALSE = (Attribute.EXTRACTABLE, Attribute.MODIFIABLE)


class Holder:
    """The module's running daemon (the restart test replaces it) and the logs of its first start."""

    running: Running
    start_logs: str = ""


def _start(home: Path) -> Running:
    return start_daemon(home, keystore="hsm", default_key_spec="ec-p256", log_level="DEBUG")


@pytest.fixture(scope="module")
def softhsm_daemon(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Holder]:
    import subprocess

    from tests.integration.hsm_helpers import ROOT

    require_tool("softhsm2-util")
    base = tmp_path_factory.mktemp("daemon-softhsm")
    subprocess.run([str(ROOT / "hsm" / "setup-softhsm.sh"), str(base / "softhsm"), LABEL, SO_PIN, HSM_PIN],
                   check=True, capture_output=True, text=True)
    home = base / "home"
    home.mkdir()
    (home / PIN_FILE).write_text(HSM_PIN + "\n")
    holder = Holder()
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("SOFTHSM2_CONF", str(base / "softhsm" / "softhsm2.conf"))
        mp.setenv("TRUSTSVC_PKCS11_MODULE", SOFTHSM_MODULE)
        mp.setenv("TRUSTSVC_PKCS11_TOKEN", LABEL)
        mp.setenv("TRUSTSVC_PKCS11_PIN_FILE", PIN_FILE)
        mp.delenv("TRUSTSVC_PKCS11_PIN", raising=False)
        with captured_logs() as logs:
            holder.running = _start(home)
        holder.start_logs = logs.getvalue()
        try:
            yield holder
        finally:
            holder.running.daemon.stop(0)


@pytest.fixture(scope="module")
def ca_pem(softhsm_daemon: Holder, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The dev CA root as ExportCert gives it (the last of the chain): a software SM2 key."""
    with softhsm_daemon.running.client() as c:
        root = Certificate.load(c.export_cert("default").chain[-1])
    path = tmp_path_factory.mktemp("ca") / "root.pem"
    path.write_bytes(root.to_pem())
    return path


@contextlib.contextmanager
def token_session(running: Running) -> Iterator[Any]:
    """A python-pkcs11 session of our own on the daemon's token (the daemon's login covers the application)."""
    session = running.daemon.rt.keystore.pool.lib.get_token(token_label=LABEL).open()
    try:
        yield session
    finally:
        session.close()


def assert_private_key_locked_in(session: Any, label: str) -> None:
    keys = list(session.get_objects({Attribute.CLASS: ObjectClass.PRIVATE_KEY, Attribute.LABEL: label}))
    assert len(keys) == 1, label
    for attr in PRIVATE_TRUE:
        assert keys[0][attr] is True, (label, attr)
    for attr in PRIVATE_FALSE:
        assert keys[0][attr] is False, (label, attr)


def chain_ok(ca_pem: Path, cert_der: bytes, tmp_path: Path, *purpose: str) -> Path:
    """The certificate as PEM, after OpenSSL checked its chain to the SM2 root (with the SM2 ID)."""
    pem = tmp_path / "leaf.pem"
    pem.write_bytes(Certificate.load(cert_der).to_pem())
    out = openssl("verify", "-vfyopt", DISTID, "-CAfile", str(ca_pem), *purpose, str(pem))
    assert out.strip().endswith(b": OK"), out
    return pem


# ------------------------------------------------------------------ start-up
def test_default_keys_are_ecdsa_keys_in_softhsm(softhsm_daemon: Holder) -> None:
    running = softhsm_daemon.running
    assert running.daemon.rt.keystore.kind == "hsm"
    with running.client("admin") as admin:
        listed = {k.name: k for k in admin.list_keys()}
    assert set(DEFAULT_KEYS) <= listed.keys()
    for name in DEFAULT_KEYS:
        assert listed[name].store == "hsm" and listed[name].spec == "ec-p256", listed[name]
        assert len(listed[name].certificate_chain) == 2, name  # certified by the dev CA at the first start
    with token_session(running) as session:
        for name in DEFAULT_KEYS:
            assert_private_key_locked_in(session, f"{name}@1")
    # no demo seal, and one line saying why (the daemon's JSON lines; captured_logs also copies them as text)
    lines = [line for line in softhsm_daemon.start_logs.splitlines()
             if line.startswith("{") and "no demo seal" in line]
    assert len(lines) == 1 and "SEAL_NEEDS_SM2" in lines[0] and "ec-p256" in lines[0], lines


# ------------------------------------------------------------------ SignatureService
def test_sign_data_verified_by_openssl_dgst(softhsm_daemon: Holder, ca_pem: Path, tmp_path: Path) -> None:
    with softhsm_daemon.running.client() as c:
        signed = c.sign_data("default", DATA)
        exported = c.export_cert("default")
    assert signed.key_ref.startswith("hsm:default@") and signed.algorithm.startswith("ecdsa")
    assert signed.certificate == exported.certificate
    leaf = chain_ok(ca_pem, exported.certificate, tmp_path)
    (tmp_path / "pub.pem").write_bytes(openssl("x509", "-in", str(leaf), "-pubkey", "-noout"))
    (tmp_path / "data").write_bytes(DATA)
    (tmp_path / "sig").write_bytes(signed.signature)
    verify = ["dgst", "-sha256", "-verify", str(tmp_path / "pub.pem"), "-signature", str(tmp_path / "sig")]
    assert b"Verified OK" in openssl(*verify, str(tmp_path / "data"))
    (tmp_path / "other").write_bytes(DATA + b"!")
    assert run_openssl(*verify, str(tmp_path / "other")).returncode != 0


@pytest.mark.parametrize("detached", [False, True])
def test_sign_message_verified_by_openssl_cms(softhsm_daemon: Holder, ca_pem: Path, tmp_path: Path,
                                              detached: bool) -> None:
    with softhsm_daemon.running.client() as c:
        cms = c.sign_message("default", DATA, detached=detached).cms
    assert openssl_cms_verify(tmp_path, cms, DATA, ca_pem, sm2=False, detached=detached) == DATA
    if detached:
        with pytest.raises(AssertionError, match="openssl cms"):
            openssl_cms_verify(tmp_path, cms, DATA + b"!", ca_pem, sm2=False, detached=True)


# ------------------------------------------------------------------ TokenService
def test_issue_token_es256_verified_by_pyjwt_from_jwks(softhsm_daemon: Holder) -> None:
    with softhsm_daemon.running.client() as c:
        token = c.call(c.tokens.IssueToken, token_pb2.IssueTokenRequest(
            subject="110101199001011234", audience=[AUD], ttl_seconds=300)).token
        jwks = json.loads(c.call(c.tokens.GetJwks, token_pb2.GetJwksRequest()).jwks_json)
    header = pyjwt.get_unverified_header(token)
    assert header["alg"] == "ES256"
    key = next(k for k in pyjwt.PyJWKSet.from_dict(jwks).keys if k.key_id == header["kid"])
    claims = pyjwt.decode(token, key.key, algorithms=["ES256"], audience=AUD, issuer=ISSUER)
    assert claims["sub"] == "110101199001011234"
    h, p, s = token.split(".")
    forged = f"{h}.{p[:-2]}{'A' if p[-2] != 'A' else 'B'}{p[-1]}.{s}"
    with pytest.raises(pyjwt.InvalidTokenError):
        pyjwt.decode(forged, key.key, algorithms=["ES256"], audience=AUD, issuer=ISSUER)
    assert softhsm_daemon.running.daemon.rt.signer("token", check_policy=False).key_ref.startswith("hsm:token@")


# ------------------------------------------------------------------ DocumentService
def test_sign_pdf_validated_by_pyhanko(softhsm_daemon: Holder, ca_pem: Path) -> None:
    opts = document_pb2.PdfSignOptions(key="default", reason="licence issued", location="Beijing")
    with softhsm_daemon.running.client() as c:
        signed = c.call(c.documents.SignPdf, document_pb2.SignPdfRequest(options=opts, pdf=licence_pdf()),
                        timeout=60).pdf
    sig = PdfFileReader(io.BytesIO(signed)).embedded_signatures[0]
    status = validate_pdf_signature(sig, validation_context([Certificate.load(ca_pem.read_bytes()).der]))
    assert status.intact and status.valid and status.trusted, status.summary()
    assert "ecdsa" in str(sig.signer_info["signature_algorithm"]["algorithm"].native)


# ------------------------------------------------------------------ TimeStampService
def test_timestamp_verified_by_openssl_ts(softhsm_daemon: Holder, ca_pem: Path, tmp_path: Path) -> None:
    (tmp_path / "data").write_bytes(DATA)
    with softhsm_daemon.running.client() as c:
        tsa_pem = chain_ok(ca_pem, c.export_cert("tsa").certificate, tmp_path, "-purpose", "timestampsign")
        openssl("ts", "-query", "-data", str(tmp_path / "data"), "-sha256", "-out", str(tmp_path / "q.tsq"))
        reply = c.call(c.timestamps.CreateTimeStamp, timestamp_pb2.CreateTimeStampRequest(
            timestamp_request=(tmp_path / "q.tsq").read_bytes())).timestamp_response
        token = c.call(c.timestamps.CreateTimeStamp, timestamp_pb2.CreateTimeStampRequest(
            data=DATA, hash_algorithm="sha256")).timestamp_token
    openssl_ts_verify(tmp_path, reply, DATA, tsa_pem)  # the TSA certificate, its chain checked above, as anchor
    from asn1crypto import cms as asn1_cms
    from asn1crypto import tsp

    signer_info = asn1_cms.ContentInfo.load(token)["content"]["signer_infos"][0]
    assert "ecdsa" in signer_info["signature_algorithm"]["algorithm"].native
    (tmp_path / "token.der").write_bytes(token)
    openssl("cms", "-verify", "-binary", "-inform", "DER", "-in", str(tmp_path / "token.der"), "-noverify",
            "-certfile", str(tsa_pem), "-out", str(tmp_path / "tst.der"))
    imprint = tsp.TSTInfo.load((tmp_path / "tst.der").read_bytes())["message_imprint"]
    assert imprint["hashed_message"].native == hashlib.sha256(DATA).digest()


# ------------------------------------------------------------------ SealService
def test_make_seal_refused_without_an_sm2_seal_maker(softhsm_daemon: Holder) -> None:
    running = softhsm_daemon.running
    with running.client("admin") as admin:
        assert not admin.call(admin.seals.ListSeals, seal_pb2.ListSealsRequest()).seals  # no demo seal
        with pytest.raises(grpc.RpcError) as err:
            admin.call(admin.seals.MakeSeal, seal_pb2.MakeSealRequest(name="测试专用章", type=4, valid_days=30))
        assert err.value.code() == grpc.StatusCode.FAILED_PRECONDITION, err.value
        assert error_reason(err.value) == "SEAL_NEEDS_SM2"
        assert "SM2" in (err.value.details() or "")
        assert admin.check_health() == "SERVING"  # refused, not crashed
        assert not admin.call(admin.seals.ListSeals, seal_pb2.ListSealsRequest()).seals


# ------------------------------------------------------------------ KeyService
def test_key_service_makes_keys_in_softhsm(softhsm_daemon: Holder, ca_pem: Path, tmp_path: Path) -> None:
    from trustsvc.algorithms.signer import Verifier

    running = softhsm_daemon.running
    with running.client("admin") as admin, running.client() as c:
        assert admin.create_key("demo-soft", "ec-p256").version == 1
        first = c.sign_data("demo-soft", b"v1")
        assert first.key_ref == "hsm:demo-soft@1"
        assert admin.rotate_key("demo-soft").version == 2
        second = c.sign_data("demo-soft", b"v2")
        assert second.key_ref == "hsm:demo-soft@2"
        Verifier(Certificate.load(second.certificate).public_key).verify(b"v2", second.signature)
        chain_ok(ca_pem, second.certificate, tmp_path)
        assert Certificate.load(first.certificate).public_key.spki != Certificate.load(second.certificate) \
            .public_key.spki
        admin.disable_key("demo-soft", 2)
        with pytest.raises(grpc.RpcError) as err:
            c.sign_data("demo-soft", b"after disable")
        assert err.value.code() == grpc.StatusCode.FAILED_PRECONDITION and error_reason(err.value) == "KEY_DISABLED"
    with token_session(running) as session:
        for label in ("demo-soft@1", "demo-soft@2"):
            assert_private_key_locked_in(session, label)
        states = {}
        for obj in session.get_objects({Attribute.CLASS: ObjectClass.DATA, Attribute.APPLICATION: "trustsvc"}):
            meta = json.loads(bytes(obj[Attribute.VALUE]))
            if meta["name"] == "demo-soft":
                states[meta["version"]] = (meta["state"], meta["spec"])
    assert states == {1: ("passive", "ec-p256"), 2: ("disabled", "ec-p256")}


# ------------------------------------------------------------------ restart (last: replaces the daemon)
def test_restart_on_the_same_token_reuses_the_keys(softhsm_daemon: Holder) -> None:
    first = softhsm_daemon.running
    with first.client("admin") as admin:
        before = {k.name: (k.version, bytes(k.certificate_chain[0])) for k in admin.list_keys()
                  if k.name in DEFAULT_KEYS}
    first.daemon.stop(0)
    second = _start(first.home)
    softhsm_daemon.running = second
    with second.client("admin") as admin, second.client() as c:
        after = {k.name: (k.version, bytes(k.certificate_chain[0])) for k in admin.list_keys()
                 if k.name in DEFAULT_KEYS}
        signed = c.sign_data("default", b"after restart")
    assert after == before and len(after) == len(DEFAULT_KEYS)  # same versions, certificates, public keys
    pub = Certificate.load(signed.certificate).public_key
    assert pub.spki == Certificate.load(before["default"][1]).public_key.spki
    with token_session(second) as session:
        for name in DEFAULT_KEYS:  # still one key pair each: nothing was generated again
            found = list(session.get_objects({Attribute.CLASS: ObjectClass.PRIVATE_KEY, Attribute.LABEL: f"{name}@2"}))
            assert found == [], name


# ------------------------------------------------------------------ a token without the configured kind
def test_token_without_the_mechanism_refuses_to_start(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The SM2 test emulator (hsm/testtoken, TEST ONLY) has no ECDSA: ec-p256 refuses the start."""
    module = build_testtoken()
    home = tmp_path / "home"
    home.mkdir()
    (home / PIN_FILE).write_text(HSM_PIN + "\n")
    monkeypatch.setenv("TESTTOKEN_PIN", HSM_PIN)
    monkeypatch.delenv("TESTTOKEN_PRESENT_FILE", raising=False)
    monkeypatch.setenv("TRUSTSVC_PKCS11_MODULE", str(module))
    monkeypatch.setenv("TRUSTSVC_PKCS11_TOKEN", TESTTOKEN_LABEL)
    monkeypatch.setenv("TRUSTSVC_PKCS11_PIN_FILE", PIN_FILE)
    monkeypatch.delenv("TRUSTSVC_PKCS11_PIN", raising=False)
    with pytest.raises(HsmError) as err:
        _start(home)
    assert err.value.reason == "HSM_NO_MECHANISM", err.value
    assert "default_key_spec = 'ec-p256'" in err.value.message and "CKM_EC_KEY_PAIR_GEN" in err.value.message
    assert HSM_PIN not in err.value.message
