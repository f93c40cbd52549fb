"""SM2 and friends against OpenSSL 3 (CLI) and BouncyCastle (tests/interop/java/Sm2Tool.java)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import require_tool
from tests.interop.tools import DISTID, openssl
from trustsvc.algorithms import sm2
from trustsvc.algorithms.encoding import load_private_key, load_public_key, private_key_to_pem
from trustsvc.algorithms.keypair import PrivateKey
from trustsvc.algorithms.signature_algorithm import SignatureAlgorithm
from trustsvc.algorithms.signer import SoftwareSigner, Verifier
from trustsvc.errors import InvalidSignature

pytestmark = pytest.mark.interop

MSG = b"GB/T 38540 interop message \xe4\xb8\xad\xe6\x96\x87"


def bc(*args: str) -> str:
    require_tool("java")
    require_tool("javac")
    from tests.interop import bouncycastle

    proc = bouncycastle.run("Sm2Tool", *args)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout.strip()


@pytest.fixture
def sm2_files(tmp_path: Path) -> tuple[PrivateKey, Path, Path, Path]:
    key = PrivateKey.generate("sm2")
    key_pem, pub_pem, msg = tmp_path / "key.pem", tmp_path / "pub.pem", tmp_path / "msg.bin"
    key_pem.write_bytes(private_key_to_pem(key))
    pub_pem.write_bytes(key.public_key.to_pem())
    msg.write_bytes(MSG)
    return key, key_pem, pub_pem, msg


def test_our_signature_verifies_with_openssl_and_bc(sm2_files, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    key, _, pub, msg = sm2_files
    sig = tmp_path / "sig.der"
    sig.write_bytes(SoftwareSigner(key).sign(MSG))
    out = openssl("pkeyutl", "-verify", "-pubin", "-inkey", str(pub), "-rawin", "-digest", "sm3",
                  "-pkeyopt", DISTID, "-in", str(msg), "-sigfile", str(sig))
    assert b"Signature Verified Successfully" in out
    assert bc("verify", str(pub), str(msg), str(sig)) == "OK"


def test_batch_signatures_verify_with_openssl(sm2_files, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """sign_batch takes the engine's batch path (one native call); each signature stands alone."""
    key, _, pub, _ = sm2_files
    messages = [MSG, b"second item", b""]
    for i, (m, sig) in enumerate(zip(messages, SoftwareSigner(key).sign_batch(messages), strict=True)):
        (tmp_path / f"m{i}").write_bytes(m)
        (tmp_path / f"s{i}").write_bytes(sig)
        out = openssl("pkeyutl", "-verify", "-pubin", "-inkey", str(pub), "-rawin", "-digest", "sm3",
                      "-pkeyopt", DISTID, "-in", str(tmp_path / f"m{i}"), "-sigfile", str(tmp_path / f"s{i}"))
        assert b"Signature Verified Successfully" in out


def test_openssl_and_bc_signatures_verify_with_ours(sm2_files, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    key, key_pem, _, msg = sm2_files
    sig = openssl("pkeyutl", "-sign", "-inkey", str(key_pem), "-rawin", "-digest", "sm3",
                  "-pkeyopt", DISTID, "-in", str(msg))
    Verifier(key.public_key).verify(MSG, sig)
    bc_sig = tmp_path / "bc.sig"
    assert bc("sign", str(key_pem), str(msg), str(bc_sig)) == "OK"  # BC reads our PKCS#8
    Verifier(key.public_key).verify(MSG, bc_sig.read_bytes())


def test_custom_id_round_trips(sm2_files, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    key, key_pem, pub, msg = sm2_files
    uid = "alice@gov.example.cn"
    sig = tmp_path / "sig.der"
    sig.write_bytes(SoftwareSigner(key, sm2_id=uid.encode()).sign(MSG))
    assert b"Successfully" in openssl("pkeyutl", "-verify", "-pubin", "-inkey", str(pub), "-rawin", "-digest",
                                      "sm3", "-pkeyopt", f"distid:{uid}", "-in", str(msg), "-sigfile", str(sig))
    assert bc("verify", str(pub), str(msg), str(sig), uid) == "OK"
    theirs = openssl("pkeyutl", "-sign", "-inkey", str(key_pem), "-rawin", "-digest", "sm3",
                     "-pkeyopt", f"distid:{uid}", "-in", str(msg))
    Verifier(key.public_key, sm2_id=uid.encode()).verify(MSG, theirs)
    bc_sig = tmp_path / "bc.sig"
    bc("sign", str(key_pem), str(msg), str(bc_sig), uid)
    Verifier(key.public_key, sm2_id=uid.encode()).verify(MSG, bc_sig.read_bytes())


def test_openssl_empty_id_is_diagnosed(sm2_files) -> None:  # type: ignore[no-untyped-def]
    key, key_pem, _, msg = sm2_files
    sig = openssl("pkeyutl", "-sign", "-inkey", str(key_pem), "-rawin", "-digest", "sm3", "-in", str(msg))
    with pytest.raises(InvalidSignature) as exc:
        Verifier(key.public_key).verify(MSG, sig)
    assert exc.value.reason == "SM2_ID_MISMATCH"
    assert "SM2 ID may differ" in exc.value.message


def test_openssl_keys_load_plain_and_encrypted(tmp_path: Path) -> None:
    plain = openssl("genpkey", "-algorithm", "SM2")
    enc = openssl("pkcs8", "-topk8", "-v2", "aes-256-cbc", "-passout", "pass:s3cret", input_bytes=plain)
    pub = openssl("pkey", "-pubout", input_bytes=plain)
    k1 = load_private_key(plain)
    k2 = load_private_key(enc, b"s3cret")
    assert k1.public_key == k2.public_key == load_public_key(pub)
    k1.public_key.verify(SignatureAlgorithm.SM2_SM3, b"m", k2.sign(SignatureAlgorithm.SM2_SM3, b"m"))


@pytest.mark.parametrize("spec", ["sm2", "ec-p256", "rsa-2048", "ed25519"])
def test_our_keys_load_in_openssl(spec: str) -> None:
    key = PrivateKey.generate(spec)
    out = openssl("pkey", "-pubout", input_bytes=private_key_to_pem(key))
    assert load_public_key(out) == key.public_key
    out = openssl("pkey", "-pubout", "-passin", "pass:pw", input_bytes=private_key_to_pem(key, b"pw"))
    assert load_public_key(out) == key.public_key
    assert openssl("pkey", "-pubin", "-pubout", input_bytes=key.public_key.to_pem()) == key.public_key.to_pem()


def test_sm2_encryption_both_ways(sm2_files, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    key, key_pem, pub, _ = sm2_files
    point = key.public_key.point
    assert point is not None
    plain = b"C1C3C2 order check " * 5
    ct = tmp_path / "ct.der"
    ct.write_bytes(sm2.encrypt(point, plain))
    assert openssl("pkeyutl", "-decrypt", "-inkey", str(key_pem), "-in", str(ct)) == plain
    theirs = openssl("pkeyutl", "-encrypt", "-pubin", "-inkey", str(pub), input_bytes=plain)
    assert key.decrypt_sm2(theirs) == plain


@pytest.mark.parametrize("spec,alg,digest", [
    ("ec-p256", SignatureAlgorithm.ECDSA_P256_SHA256, "sha256"),
    ("ec-p384", SignatureAlgorithm.ECDSA_P384_SHA384, "sha384"),
    ("rsa-2048", SignatureAlgorithm.RSA_PKCS1_SHA256, "sha256"),
    ("rsa-2048", SignatureAlgorithm.RSA_PSS_SHA256, "sha256"),
    ("ed25519", SignatureAlgorithm.ED25519, None),
])
def test_other_algorithms_verify_with_openssl(tmp_path: Path, spec: str, alg: SignatureAlgorithm,
                                              digest: str | None) -> None:
    key = PrivateKey.generate(spec)
    pub, msg, sig = tmp_path / "pub.pem", tmp_path / "msg", tmp_path / "sig"
    pub.write_bytes(key.public_key.to_pem())
    msg.write_bytes(MSG)
    sig.write_bytes(SoftwareSigner(key, alg).sign(MSG))
    args = ["pkeyutl", "-verify", "-pubin", "-inkey", str(pub), "-rawin", "-in", str(msg), "-sigfile", str(sig)]
    if digest:
        args += ["-digest", digest]
    if alg is SignatureAlgorithm.RSA_PSS_SHA256:
        args += ["-pkeyopt", "rsa_padding_mode:pss", "-pkeyopt", "rsa_pss_saltlen:32"]
    assert b"Successfully" in openssl(*args)
