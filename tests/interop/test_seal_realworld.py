"""Every real-world file in ../shared/interop/ses-realworld gets the verdict EXPECTED.md gives."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from trustsvc.seal.report import Status, Verdict
from trustsvc.seal.verify import verify

pytestmark = pytest.mark.interop

DIR = Path(__file__).resolve().parents[2] / ".." / "shared" / "interop" / "ses-realworld"


def _expected() -> dict[str, str]:
    manifest = DIR / "EXPECTED.md"
    if not manifest.exists():
        raise RuntimeError(f"real-world seal files missing: {manifest} (../shared beside the repository)")
    rows = {}
    for line in manifest.read_text().splitlines():
        cells = [c.strip() for c in line.split("|")]
        if len(cells) == 4 and cells[1] in ("ok", "bad-signature", "not-ses"):
            rows[cells[2]] = cells[1]
    return rows


EXPECTED = _expected()


def _original(name: str) -> bytes | None:
    xml = DIR / name.replace("SignedValue.dat", "Signature.xml")
    return xml.read_bytes() if name.endswith("SignedValue.dat") and xml.exists() else None


def test_manifest_complete() -> None:
    assert len(EXPECTED) >= 50
    for name in EXPECTED:
        assert (DIR / name).exists(), name


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_verdict(name: str) -> None:
    expected = EXPECTED[name]
    doc = _original(name)
    report = verify((DIR / name).read_bytes(), document=doc)
    if expected == "not-ses":
        assert report.verdict is Verdict.NOT_SES
        assert report.check("format").reason.startswith("NOT_SES")
        assert report.check("format").detail
        return
    sig_steps = ["seal.maker_signature"] + (["signature.signer_signature"] if report.kind == "signature" else [])
    if expected == "ok":
        for step in sig_steps:
            assert report.status(step) is Status.PASS, report.to_text()
        if doc is not None:
            assert report.status("signature.data_hash") is Status.PASS, report.to_text()
        # validity at today's date is judged and reported, expired ones as such
        now = report.at
        seal_end = dt.datetime.fromisoformat(report.facts["seal"]["valid_end"])
        if report.kind == "seal" and seal_end < now:
            assert report.check("seal.validity").reason == "SEAL_EXPIRED"
        if report.kind == "signature" and seal_end < now:
            assert report.check("signature.validity_now").reason == "EXPIRED_SINCE_SIGNING"
    else:
        assert report.verdict is Verdict.INVALID
        assert any(report.status(s) is Status.FAIL for s in sig_steps), report.to_text()


def test_raw_datahash_signature_is_diagnosed() -> None:
    name = "ofdrw-converter_src_test_resources_n__Doc_0_Signs_Sign_0_SignedValue.dat"
    report = verify((DIR / name).read_bytes())
    assert report.status("seal.maker_signature") is Status.PASS  # v1 seal rule
    check = report.check("signature.signer_signature")
    assert check.status is Status.FAIL and check.reason == "SM2_RAW_DATAHASH"
    assert "without Z" in check.detail or "no Z" in check.detail


def test_signature_valid_at_signing_time() -> None:
    name = "ofdrw-sign_src_test_resources_allprotected__Doc_0_Signs_Sign_0_SignedValue.dat"
    data = (DIR / name).read_bytes()
    now = verify(data, document=_original(name))
    assert now.status("signature.validity_now") is Status.WARNING
    signed_at = dt.datetime.fromisoformat(now.facts["signature"]["time_info"])
    then = verify(data, document=_original(name), at=signed_at)
    assert then.status("signature.validity_now") is Status.PASS
    assert not then.failed, then.to_text()


def test_expired_seal_fails_validity_today() -> None:
    report = verify((DIR / "ofdrw-gm_src_test_resources_UserV4.esl").read_bytes())
    assert report.check("seal.validity").reason == "SEAL_EXPIRED"
    assert report.status("seal.maker_signature") is Status.PASS
    assert report.verdict is Verdict.INVALID


@pytest.mark.parametrize("name", sorted(n for n, verdict in EXPECTED.items() if verdict != "not-ses"))
def test_no_step_errors_with_trust_anchors_and_crls(name: str) -> None:
    """As the daemon verifies (its trust anchors, CRLs, a time-stamp verifier): every check names what it found.
    A vendor certificate whose extensions do not parse made the path checks STEP_ERROR."""
    from trustsvc.pdf.devkit import dev_identity
    from trustsvc.pki.certificate import Certificate
    from trustsvc.seal.verify import time_stamp_verifier

    trust = [Certificate.load(dev_identity("ecdsa").root.der)]
    report = verify((DIR / name).read_bytes(), document=_original(name), trust=trust, crls=[],
                    timestamp_verifier=time_stamp_verifier(trust, crls=[]))
    assert not [c for c in report.checks if c.reason == "STEP_ERROR"], report.to_text()
    for step in ("seal.maker_chain",) + (("signature.signer_chain",) if report.kind == "signature" else ()):
        assert report.check(step).reason == "UNTRUSTED_ROOT", report.to_text()


def test_unreadable_extensions_fail_the_path_with_their_own_reason() -> None:
    from trustsvc.pki.validation import validate
    from trustsvc.seal.parse import ParsedSignature, parse
    from trustsvc.seal.verify import _parse_cert

    name = "ofdrw-converter_src_test_resources_n__Doc_0_Signs_Sign_0_SignedValue.dat"
    parsed = parse((DIR / name).read_bytes())
    assert isinstance(parsed, ParsedSignature)
    maker, problem = _parse_cert(parsed.seal.maker_cert)  # read leniently, as the seal verifier does
    assert problem is not None and "GeneralNames" in problem
    result = validate(maker, trust_anchors=[maker])  # trusted as it is: only its extensions fail
    assert result.check("extensions").reason == "UNREADABLE_EXTENSIONS"
    assert not result.valid
