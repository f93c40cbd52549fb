"""Seals and seal signatures we make are read with BouncyCastle's ASN.1 classes and both SM2 signatures verified
there (tests/interop/java/SealCheck.java), independently of trustsvc's parser; BC agrees on real-world files.

All files go to one JVM run (start-up dominates); each case is then asserted on its own line.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.interop.tools import DISTID, SEAL_OK, SIG_OK, flip_signature_value, seal_check
from tests.unit.test_seal_support import make_setup
from trustsvc.seal.picture import render_png
from trustsvc.seal.sign import SealSigner

pytestmark = pytest.mark.interop

REALWORLD = Path(__file__).resolve().parents[2] / ".." / "shared" / "interop" / "ses-realworld"
REALWORLD_OK = [
    "ofdrw-gm_src_test_resources_SignedValueV4.dat",
    "ofdrw-reader_src_test_resources_SESV4SignDoc__Doc_0_Signs_Sign_0_SignedValue.dat",
    "ofdrw-gm_src_test_resources_UserV4.esl",
    "ofdrw-gm_src_test_resources_UserV1.esl",
]
REALWORLD_BAD = "ofdrw-converter_src_test_resources_n__Doc_0_Signs_Sign_0_SignedValue.dat"
def raw_signature_starting_with_0x30(setup: object) -> bytes:
    """The setup's seal re-signed by its maker with a raw r||s value whose first byte is 0x30, as a DER
    SEQUENCE's is (one raw signature in 256): readers must not take it for DER."""
    from trustsvc.algorithms import sm2
    from trustsvc.seal import asn1

    seal = asn1.SESealV4.load(setup.seal)  # type: ignore[attr-defined]
    info_der = seal["eseal_info"].dump()
    while (rs := sm2.signature_to_rs(setup.maker.sign(info_der)))[0] != 0x30:  # type: ignore[attr-defined]
        pass
    return asn1.SESealV4({"eseal_info": asn1.SealInfoV4.load(info_der), "cert": seal["cert"].native,
                          "sign_alg": seal["sign_alg"].native, "signed_value": rs}).dump()


def _cases() -> dict[str, tuple[str, bytes, str]]:
    """name -> (kind, DER, expected output prefix)."""
    cases: dict[str, tuple[str, bytes, str]] = {}
    picture = render_png("某某市人民政府办公室", name="公章", dpi=72)
    for list_type, label in ((1, "certs"), (2, "digests")):
        s = make_setup(cert_list_type=list_type, picture=picture)
        signer = SealSigner(s.seal, s.holder, s.holder_cert)
        # several propertyInfo lengths and documents through one signer (prepared-prefix fast path)
        sigs = [signer.sign_document(b"first", "/Doc_0/Signs/Sign_0/Signature.xml"),
                signer.sign_document(b"%PDF-1.7 document bytes", "p" * 200),
                signer.sign_hash(b"\x11" * 32, "")]
        cases[f"{label}-seal"] = ("seal", s.seal, SEAL_OK)
        cases[f"{label}-seal-raw-0x30"] = ("seal", raw_signature_starting_with_0x30(s), SEAL_OK)
        for i, sig in enumerate(sigs):
            cases[f"{label}-signature-{i}"] = ("signature", sig, SIG_OK)
        cases[f"{label}-seal-flipped"] = ("seal", flip_signature_value(s.seal), "FAIL seal.maker_signature")
        cases[f"{label}-signature-flipped"] = ("signature", flip_signature_value(sigs[1]),
                                               "FAIL signature.signer_signature")
        bad_seal_sig = SealSigner(flip_signature_value(s.seal), s.holder, s.holder_cert).sign_document(b"d", "p")
        cases[f"{label}-embedded-seal-flipped"] = ("signature", bad_seal_sig,
                                                   "FAIL seal.maker_signature: SM2 signature does not verify")
    for name in [*REALWORLD_OK, REALWORLD_BAD]:
        path = REALWORLD / name
        if not path.exists():
            raise RuntimeError(f"real-world seal files missing: {path} (../shared beside the repository)")
        kind = "seal" if name.endswith(".esl") else "signature"
        cases[name] = (kind, path.read_bytes(),
                       "FAIL signature.signer_signature" if name == REALWORLD_BAD else "OK")
    return cases


@pytest.fixture(scope="module")
def results(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[str, str]]:
    """name -> (BC's output line, expected prefix), from one SealCheck run."""
    cases = _cases()
    lines = seal_check(tmp_path_factory.mktemp("sealcheck"), [(kind, der) for kind, der, _e in cases.values()])
    return {name: (line, case[2]) for (name, case), line in zip(cases.items(), lines, strict=True)}


def _assert(results: dict[str, tuple[str, str]], name: str) -> None:
    line, expected = results[name]
    assert line.startswith(expected), f"{name}: BC said {line!r}, expected {expected!r}"


@pytest.mark.parametrize("label", ["certs", "digests"])
def test_our_seal_verifies_in_bc(results: dict[str, tuple[str, str]], label: str) -> None:
    _assert(results, f"{label}-seal")


@pytest.mark.parametrize("label", ["certs", "digests"])
def test_raw_signature_starting_with_0x30_verifies_in_bc(results: dict[str, tuple[str, str]], label: str) -> None:
    _assert(results, f"{label}-seal-raw-0x30")


def test_raw_signature_starting_with_0x30_verifies_in_trustsvc() -> None:
    from trustsvc.seal.verify import verify

    check = verify(raw_signature_starting_with_0x30(make_setup())).check("seal.maker_signature")
    assert check.status.name == "PASS" and "raw r||s" in check.detail, check


@pytest.mark.parametrize("label", ["certs", "digests"])
@pytest.mark.parametrize("i", [0, 1, 2])
def test_our_signature_verifies_in_bc(results: dict[str, tuple[str, str]], label: str, i: int) -> None:
    _assert(results, f"{label}-signature-{i}")


@pytest.mark.parametrize("label", ["certs", "digests"])
@pytest.mark.parametrize("what", ["seal-flipped", "signature-flipped", "embedded-seal-flipped"])
def test_flipped_signature_value_fails_in_bc(results: dict[str, tuple[str, str]], label: str, what: str) -> None:
    _assert(results, f"{label}-{what}")


@pytest.mark.parametrize("name", [*REALWORLD_OK, REALWORLD_BAD])
def test_bc_agrees_on_realworld_files(results: dict[str, tuple[str, str]], name: str) -> None:
    _assert(results, name)


def test_fast_path_signature_verifies_with_openssl(tmp_path: Path) -> None:
    """OpenSSL's SM2 (distid 1234567812345678, SM3 over Z || message) accepts the prepared-prefix signature
    over the exact TBS_Sign bytes, for two propertyInfo lengths through one SealSigner."""
    import subprocess

    from tests.conftest import require_tool
    from trustsvc.seal.parse import parse_signature

    s = make_setup()
    signer = SealSigner(s.seal, s.holder, s.holder_cert)
    pub = tmp_path / "pub.pem"
    pub.write_bytes(s.holder.public_key.to_pem())
    for i, prop in enumerate(("p", "/Doc_0/Signs/Sign_0/Signature.xml" * 5)):
        parsed = parse_signature(signer.sign_document(b"doc %d" % i, prop))
        (tmp_path / "tbs").write_bytes(parsed.tbs_bytes)
        (tmp_path / "sig").write_bytes(parsed.signature)
        proc = subprocess.run([require_tool("openssl"), "pkeyutl", "-verify", "-pubin", "-inkey", str(pub),
                               "-rawin", "-digest", "sm3", "-pkeyopt", DISTID, "-in", str(tmp_path / "tbs"),
                               "-sigfile", str(tmp_path / "sig")], capture_output=True, timeout=60)
        assert b"Signature Verified Successfully" in proc.stdout, proc.stderr
