"""Pkcs11KeyStore against a real SoftHSM2 token created by the test run."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from tests.conftest import require_tool
from tests.integration.hsm_helpers import PIN, SOFTHSM_MODULE, make_softhsm, use_conf
from trustsvc.algorithms.signature_algorithm import SignatureAlgorithm
from trustsvc.errors import Conflict, HsmError, InvalidInput, KeyDisabled
from trustsvc.keys.base import KeyState
from trustsvc.keys.pkcs11 import Pkcs11KeyStore, pin_source


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory):
    require_tool("softhsm2-util")
    conf = make_softhsm(tmp_path_factory.mktemp("softhsm"))
    use_conf(conf)
    s = Pkcs11KeyStore(SOFTHSM_MODULE, token_label="trustsvc-test", pin=pin_source(pin=PIN))
    yield s
    s.close()


@pytest.mark.parametrize("spec", ["ec-p256", "ec-p384", "rsa-2048", "ed25519"])
def test_generate_sign_verify(store: Pkcs11KeyStore, spec: str, tmp_path: Path) -> None:
    info = store.create(f"k-{spec}", spec)
    assert info.version == 1 and info.state is KeyState.ACTIVE and info.store == "hsm"
    signer = store.signer(f"k-{spec}")
    msg = b"hello trustsvc " + spec.encode()
    sig = signer.sign(msg)
    signer.verifier().verify(msg, sig)  # cryptography
    batch = signer.sign_batch([b"a", b"b", b"c"])
    for m, s in zip([b"a", b"b", b"c"], batch, strict=True):
        signer.verifier().verify(m, s)
    # the OpenSSL command line agrees
    openssl = require_tool("openssl")
    (tmp_path / "pub.pem").write_bytes(info.public_key.to_pem())
    (tmp_path / "msg").write_bytes(msg)
    (tmp_path / "sig").write_bytes(sig)
    cmd = [openssl, "pkeyutl", "-verify", "-pubin", "-inkey", str(tmp_path / "pub.pem"),
           "-in", str(tmp_path / "msg"), "-sigfile", str(tmp_path / "sig"), "-rawin"]
    if spec != "ed25519":
        cmd += ["-digest", "sha384" if spec == "ec-p384" else "sha256"]
    out = subprocess.run(cmd, capture_output=True, text=True)
    assert out.returncode == 0, out.stdout + out.stderr


def test_rsa_pss(store: Pkcs11KeyStore) -> None:
    store.create("k-pss", "rsa-2048")
    signer = store.signer_with("k-pss", SignatureAlgorithm.RSA_PSS_SHA256)
    signer.verifier().verify(b"m", signer.sign(b"m"))


def test_private_key_not_exportable(store: Pkcs11KeyStore) -> None:
    store.create("k-export", "ec-p256")
    with pytest.raises(HsmError):
        store.private_key_value("k-export")


def test_versions_rotate_disable_certificates(store: Pkcs11KeyStore) -> None:
    from trustsvc.algorithms.keypair import PrivateKey
    store.create("k-rot", "ec-p256")
    with pytest.raises(Conflict):
        store.create("k-rot", "ec-p256")
    v2 = store.rotate("k-rot")
    assert v2.version == 2
    assert store.info("k-rot", 1).state is KeyState.PASSIVE
    assert store.info("k-rot").version == 2
    with pytest.raises(KeyDisabled):
        store.signer("k-rot", 1)
    # certificate beside the key (same CKA_ID)
    import datetime as dt

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes
    ca = PrivateKey.generate("ec-p256").crypto_key
    name = x509.Name([x509.NameAttribute(x509.oid.NameOID.COMMON_NAME, "k-rot")])
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).serial_number(7)
            .public_key(v2.public_key.crypto_key).not_valid_before(dt.datetime(2024, 1, 1))
            .not_valid_after(dt.datetime(2034, 1, 1)).sign(ca, hashes.SHA256()))
    from cryptography.hazmat.primitives.serialization import Encoding
    der = cert.public_bytes(Encoding.DER)
    store.set_certificate_chain("k-rot", 2, (der,))
    assert store.info("k-rot").certificate_chain == (der,)
    assert store.signer("k-rot").certificate == der
    store.disable("k-rot")
    with pytest.raises(KeyDisabled):
        store.signer("k-rot")
    names = {(i.name, i.version) for i in store.list()}
    assert {("k-rot", 1), ("k-rot", 2)} <= names


@pytest.mark.parametrize("name", ["x@y", "a#0", "", "a b", "../up", "-lead", "é", "k" * 65])
def test_bad_key_name_is_the_callers_error(store: Pkcs11KeyStore, name: str) -> None:
    """The token keeps to the software keystore's naming rule, and refuses before opening a session:
    a caller's bad name is InvalidInput BAD_KEY_NAME, never an HSM error (INTERNAL over gRPC)."""
    for attempt in (lambda: store.create(name, "ec-p256"), lambda: store.rotate(name), lambda: store.info(name),
                    lambda: store.disable(name), lambda: store.signer(name)):
        with pytest.raises(InvalidInput) as caught:
            attempt()
        assert caught.value.reason == "BAD_KEY_NAME"
        assert not isinstance(caught.value, HsmError)
    assert name not in {i.name for i in store.list()}


def test_wrong_pin_and_missing_token(tmp_path: Path) -> None:
    require_tool("softhsm2-util")
    use_conf(make_softhsm(tmp_path / "t", "pin-test"))
    bad = Pkcs11KeyStore(SOFTHSM_MODULE, token_label="pin-test", pin=pin_source(pin="000000"))
    with pytest.raises(HsmError) as err:
        bad.list()
    assert err.value.reason == "HSM_PIN_INCORRECT" and "000000" not in err.value.message
    missing = Pkcs11KeyStore(SOFTHSM_MODULE, token_label="no-such-token", pin=pin_source(pin=PIN))
    with pytest.raises(HsmError) as err2:
        missing.list()
    assert err2.value.reason == "HSM_TOKEN_NOT_FOUND" and getattr(err2.value, "retryable", False)
    env = Pkcs11KeyStore(SOFTHSM_MODULE, token_label="pin-test", pin=pin_source(pin_env="NO_SUCH_PIN_VAR"))
    with pytest.raises(HsmError) as err3:
        env.list()
    assert err3.value.reason == "HSM_PIN_MISSING"
    good = Pkcs11KeyStore(SOFTHSM_MODULE, token_label="pin-test", pin=pin_source(pin=PIN))
    assert good.list() == []
    good.close()

