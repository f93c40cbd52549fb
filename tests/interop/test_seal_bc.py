"""Seals and seal signatures we make are read with BouncyCastle's ASN.1 classes and both SM2 signatures verified
there (tests/interop/java/SealCheck.java), independently of trustsvc's parser; BC agrees on real-world files."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.interop.bouncycastle import run
from tests.unit.test_seal_support import make_setup
from trustsvc.seal.picture import render_png
from trustsvc.seal.sign import SealSigner

pytestmark = pytest.mark.interop

REALWORLD = Path(__file__).resolve().parents[2] / ".." / "shared" / "interop" / "ses-realworld"


def _check(tmp_path: Path, kind: str, der: bytes, name: str = "x.der") -> str:
    path = tmp_path / name
    path.write_bytes(der)
    proc = run("SealCheck", kind, str(path))
    assert proc.stderr == "", proc.stderr
    return proc.stdout.strip()


@pytest.fixture(scope="module", params=[1, 2], ids=["certs", "digests"])
def made(request: pytest.FixtureRequest) -> tuple[bytes, bytes]:
    s = make_setup(cert_list_type=request.param, picture=render_png("某某市人民政府办公室", name="公章", dpi=72))
    signer = SealSigner(s.seal, s.holder, s.holder_cert)
    # two signatures with different propertyInfo lengths exercise the prepared-prefix fast path
    signer.sign_document(b"first", "/Doc_0/Signs/Sign_0/Signature.xml")
    return s.seal, signer.sign_document(b"%PDF-1.7 document bytes", "p" * 200)


def test_seal_verifies_in_bc(made: tuple[bytes, bytes], tmp_path: Path) -> None:
    assert _check(tmp_path, "seal", made[0]) == "OK seal.maker_signature"


def test_signature_verifies_in_bc(made: tuple[bytes, bytes], tmp_path: Path) -> None:
    assert _check(tmp_path, "signature", made[1]) == "OK signature.signer_signature seal.maker_signature"


def _flip_last_bit_string_byte(der: bytes, value_len_min: int = 60) -> bytes:
    """Flip a byte inside the last BIT STRING (the signature value) of a SEQUENCE of TLVs."""
    i = der.rfind(b"\x03", 0, len(der) - value_len_min)
    while i > 0:
        n = der[i + 1]
        if n < 0x80 and der[i + 2] == 0 and i + 2 + n == len(der):
            out = bytearray(der)
            out[i + 2 + n // 2] ^= 0x01  # middle of r or s
            return bytes(out)
        i = der.rfind(b"\x03", 0, i)
    raise AssertionError("no trailing BIT STRING")


def test_flipped_signature_value_fails_in_bc(made: tuple[bytes, bytes], tmp_path: Path) -> None:
    seal, sig = made
    assert _check(tmp_path, "seal", _flip_last_bit_string_byte(seal)).startswith("FAIL seal.maker_signature")
    assert _check(tmp_path, "signature", _flip_last_bit_string_byte(sig)).startswith(
        "FAIL signature.signer_signature")


def test_flipped_embedded_seal_signature_fails_in_bc(tmp_path: Path) -> None:
    """A seal with a broken maker signature inside an otherwise freshly signed SES_Signature."""
    s = make_setup()
    bad_seal = _flip_last_bit_string_byte(s.seal)
    signer = SealSigner(bad_seal, s.holder, s.holder_cert)
    sig = signer.sign_document(b"doc", "p")
    assert _check(tmp_path, "signature", sig) == "FAIL seal.maker_signature: SM2 signature does not verify"


@pytest.mark.parametrize("name", [
    "ofdrw-gm_src_test_resources_SignedValueV4.dat",
    "ofdrw-reader_src_test_resources_SESV4SignDoc__Doc_0_Signs_Sign_0_SignedValue.dat",
    "ofdrw-gm_src_test_resources_UserV4.esl",
    "ofdrw-gm_src_test_resources_UserV1.esl",
])
def test_bc_agrees_on_realworld_ok_files(name: str, tmp_path: Path) -> None:
    path = REALWORLD / name
    if not path.exists():
        raise RuntimeError(f"real-world seal files missing: {path} (../shared beside the repository)")
    kind = "seal" if name.endswith(".esl") else "signature"
    assert run("SealCheck", kind, str(path)).stdout.startswith("OK")


def test_bc_agrees_on_realworld_bad_signature() -> None:
    path = REALWORLD / "ofdrw-converter_src_test_resources_n__Doc_0_Signs_Sign_0_SignedValue.dat"
    if not path.exists():
        raise RuntimeError(f"real-world seal files missing: {path}")
    assert run("SealCheck", "signature", str(path)).stdout.startswith("FAIL signature.signer_signature")
