"""A registered seal bound into a PDF signature: both signing paths bind it, verify_pdf checks it and says which
step failed; signing refuses a seal the signature would fail on."""

from __future__ import annotations

import dataclasses
import datetime as dt
import io

import pytest
from asn1crypto import cms
from pyhanko.pdf_utils.reader import PdfFileReader

from tests.unit.test_seal_support import make_maker, seal_listing
from trustsvc.algorithms import oids
from trustsvc.errors import Conflict, InvalidInput, TrustsvcError
from trustsvc.pdf.appearance import SealAppearance
from trustsvc.pdf.devkit import DevIdentity, dev_identity, licence_pdf
from trustsvc.pdf.fast import FastPdfSigner
from trustsvc.pdf.seal_binding import bound_seal, seal_attribute
from trustsvc.pdf.signing import dual_sign_pdf, sign_pdf
from trustsvc.pdf.verify import PdfReport, verify_pdf
from trustsvc.pki.cms import CmsTemplate
from trustsvc.seal.picture import render_png
from trustsvc.seal.registry import HistoryEntry

UTC = dt.UTC
BOX = (300.0, 400.0, 150.0, 150.0)
PICTURE = render_png("某某市人民政府办公室")  # the test seals' picture


@dataclasses.dataclass(frozen=True)
class Sealed:
    ident: DevIdentity
    seal: bytes
    roots: list[bytes]  # the signer's root and the seal maker

    def appearance(self, seal: bytes | None = None) -> SealAppearance:
        return SealAppearance(PICTURE, box=BOX, seal=self.seal if seal is None else seal)


def _sealed(kind: str = "sm2", **seal_kw: object) -> Sealed:
    ident = dev_identity(kind)
    maker, maker_cert = make_maker()
    seal = seal_listing([ident.signer.certificate_chain[0]], maker, maker_cert, picture=PICTURE,
                        **seal_kw)  # type: ignore[arg-type]
    return Sealed(ident, seal, [ident.root.der, maker_cert.der])


@pytest.fixture(scope="module")
def sealed() -> Sealed:
    return _sealed()


def _seal_check(report: PdfReport, index: int = 0) -> tuple[bool | None, str]:
    check = next(c for c in report.signatures[index].checks if c.name == "seal")
    return check.ok, check.detail


def _cms(pdf: bytes) -> cms.SignerInfo:
    return PdfFileReader(io.BytesIO(pdf)).embedded_signatures[0].signer_info


@pytest.mark.parametrize("path", ["sign_pdf", "fast"])
def test_both_paths_bind_the_seal_and_verify_names_it(sealed: Sealed, path: str) -> None:
    app = sealed.appearance()
    signed = (sign_pdf(licence_pdf(), sealed.ident.signer, appearance=app) if path == "sign_pdf"
              else FastPdfSigner(sealed.ident.signer, appearance=app).sign(licence_pdf()))
    assert bound_seal(_cms(signed)) == sealed.seal  # byte for byte as registered
    report = verify_pdf(signed, trust_roots=sealed.roots)
    assert report.valid, report.to_text()
    sig = report.signatures[0]
    assert sig.seal_id == "3301060000000001"
    ok, detail = _seal_check(report)
    assert ok is True and "signer listed" in detail, detail
    as_dict = report.to_dict()["signatures"][0]["seal"]
    assert as_dict["es_id"] == "3301060000000001" and as_dict["verdict"] == "valid"
    assert {c["name"] for c in as_dict["checks"]} >= {"seal.maker_signature", "seal.validity", "seal.cert_in_list"}


def test_a_digest_cert_list_and_an_ecdsa_holder() -> None:
    s = _sealed("ecdsa", cert_list_type=2)
    signed = FastPdfSigner(s.ident.signer, appearance=s.appearance()).sign(licence_pdf())
    report = verify_pdf(signed, trust_roots=s.roots)
    assert report.valid and _seal_check(report)[0] is True, report.to_text()


def test_without_a_registered_seal_the_check_does_not_apply(sealed: Sealed) -> None:
    plain = SealAppearance(render_png("某某"), box=BOX)  # a picture only
    report = verify_pdf(sign_pdf(licence_pdf(), sealed.ident.signer, appearance=plain), trust_roots=sealed.roots)
    assert report.valid and report.signatures[0].seal_id is None
    assert _seal_check(report) == (None, "no registered seal bound to this signature")


def test_dual_signing_binds_the_seal_to_the_first_signature_only(sealed: Sealed) -> None:
    ecdsa = dev_identity("ecdsa")
    signed = dual_sign_pdf(licence_pdf(), [sealed.ident.signer, ecdsa.signer], appearance=sealed.appearance())
    report = verify_pdf(signed, trust_roots=[*sealed.roots, ecdsa.root.der])
    assert report.valid, report.to_text()
    assert [s.seal_id for s in report.signatures] == ["3301060000000001", None]


@pytest.mark.parametrize("path", ["sign_pdf", "fast"])
def test_signing_refuses_a_seal_that_does_not_list_the_signer(sealed: Sealed, path: str) -> None:
    other = dev_identity("sm2")
    with pytest.raises(Conflict) as err:
        if path == "sign_pdf":
            sign_pdf(licence_pdf(), other.signer, appearance=sealed.appearance())
        else:
            FastPdfSigner(other.signer, appearance=sealed.appearance())
    assert err.value.reason == "SIGNER_NOT_IN_CERT_LIST"


def test_signing_refuses_a_seal_outside_its_validity() -> None:
    now = dt.datetime.now(UTC)
    s = _sealed(valid_start=now - dt.timedelta(days=30), valid_end=now - dt.timedelta(days=1))
    with pytest.raises(Conflict) as err:
        FastPdfSigner(s.ident.signer, appearance=s.appearance())
    assert err.value.reason == "SEAL_NOT_VALID_NOW"


@pytest.mark.parametrize("path", ["sign_pdf", "fast"])
def test_signing_refuses_a_picture_that_is_not_the_seals(sealed: Sealed, path: str) -> None:
    """The document would show one seal while its signature names another."""
    other = SealAppearance(render_png("另一个单位"), box=BOX, seal=sealed.seal)
    with pytest.raises(InvalidInput) as err:
        if path == "sign_pdf":
            sign_pdf(licence_pdf(), sealed.ident.signer, appearance=other)
        else:
            FastPdfSigner(sealed.ident.signer, appearance=other)
    assert err.value.reason == "SEAL_PICTURE_MISMATCH"


def test_signing_refuses_bytes_that_are_not_a_seal(sealed: Sealed) -> None:
    with pytest.raises(TrustsvcError) as err:
        sign_pdf(licence_pdf(), sealed.ident.signer, appearance=sealed.appearance(seal=b"\x30\x03\x02\x01\x01"))
    assert err.value.reason == "NOT_SES"


def test_the_seal_is_judged_at_the_signing_time(sealed: Sealed) -> None:
    """Signed while the seal was valid: still valid when verified after it expired (GB/T 38540); a signing time
    before the seal's validity fails the check, naming the step."""
    signer = FastPdfSigner(sealed.ident.signer, appearance=sealed.appearance())
    later = dt.datetime.now(UTC) + dt.timedelta(days=2 * 365)
    report = verify_pdf(signer.sign(licence_pdf()), trust_roots=sealed.roots, moment=later)
    assert _seal_check(report)[0] is True, report.to_text()
    early = signer.sign(licence_pdf(), signing_time=dt.datetime.now(UTC) - dt.timedelta(days=10))
    ok, detail = _seal_check(verify_pdf(early, trust_roots=sealed.roots))
    assert ok is False and "seal.validity SEAL_NOT_YET_VALID" in detail, detail


def test_with_a_signature_time_stamp_the_seal_is_judged_at_the_stamped_time(sealed: Sealed) -> None:
    from tests.unit.test_pdf_signing import local_tsa

    stamper, tsa_root = local_tsa("sm2")
    signed = sign_pdf(licence_pdf(), sealed.ident.signer, level="B-T", timestamper=stamper,
                      appearance=sealed.appearance())
    report = verify_pdf(signed, trust_roots=[*sealed.roots, tsa_root])
    assert report.valid and report.signatures[0].pades_level == "B-T", report.to_text()
    ok, detail = _seal_check(report)
    ts_detail = next(c.detail for c in report.signatures[0].checks if c.name == "timestamp")
    stamped = dt.datetime.fromisoformat(ts_detail.removeprefix("time stamp at ").split(" intact=")[0])
    assert ok is True and f"valid at {stamped.isoformat()}" in detail, detail


class _Registry:
    def __init__(self, status: str | None) -> None:
        self._status = status

    def status(self, es_id: str) -> str | None:
        return self._status


class _RegistryWithHistory(_Registry):
    """Made active a year ago; withdrawn (``status``) at ``changed``."""

    def __init__(self, status: str, changed: dt.datetime) -> None:
        super().__init__(status)
        self._changed = changed

    def history(self, es_id: str) -> list[HistoryEntry]:
        made = dt.datetime.now(UTC) - dt.timedelta(days=365)
        return [HistoryEntry(es_id, made, "admin", "make", None, "active", "made"),
                HistoryEntry(es_id, self._changed, "admin", "revoke", "active", self._status, "lost")]


@pytest.mark.parametrize("status", ["revoked", "suspended"])
def test_a_seal_withdrawn_after_a_time_stamped_signature_only_warns(sealed: Sealed, status: str) -> None:
    """Time-stamped while the seal was active: valid, with a warning saying since when. Without a time stamp,
    or withdrawn before the stamped time, it fails."""
    from tests.unit.test_pdf_signing import local_tsa

    stamper, tsa_root = local_tsa("sm2")
    roots = [*sealed.roots, tsa_root]
    stamped = sign_pdf(licence_pdf(), sealed.ident.signer, level="B-T", timestamper=stamper,
                       appearance=sealed.appearance())
    later = _RegistryWithHistory(status, dt.datetime.now(UTC) + dt.timedelta(minutes=5))
    report = verify_pdf(stamped, trust_roots=roots, seal_registry=later)
    ok, detail = _seal_check(report)
    assert report.valid and ok is True and f"seal.status SEAL_{status.upper()}_SINCE" in detail, detail
    plain = FastPdfSigner(sealed.ident.signer, appearance=sealed.appearance()).sign(licence_pdf())
    assert _seal_check(verify_pdf(plain, trust_roots=roots, seal_registry=later))[0] is False  # no trusted time
    before = _RegistryWithHistory(status, dt.datetime.now(UTC) - dt.timedelta(minutes=5))
    assert _seal_check(verify_pdf(stamped, trust_roots=roots, seal_registry=before))[0] is False
    untrusted_tsa = verify_pdf(stamped, trust_roots=sealed.roots, seal_registry=later)  # TSA root not given
    assert _seal_check(untrusted_tsa)[0] is False


@pytest.mark.parametrize(("status", "ok", "reason"), [
    ("active", True, ""), ("revoked", False, "SEAL_REVOKED"), ("suspended", False, "SEAL_SUSPENDED"),
    (None, True, "SEAL_NOT_REGISTERED")])
def test_registry_status(sealed: Sealed, status: str | None, ok: bool, reason: str) -> None:
    signed = FastPdfSigner(sealed.ident.signer, appearance=sealed.appearance()).sign(licence_pdf())
    report = verify_pdf(signed, trust_roots=sealed.roots, seal_registry=_Registry(status))
    got, detail = _seal_check(report)
    assert got is ok and reason in detail, detail
    assert report.valid is ok


def test_untrusted_maker_fails_the_seal(sealed: Sealed) -> None:
    signed = FastPdfSigner(sealed.ident.signer, appearance=sealed.appearance()).sign(licence_pdf())
    ok, detail = _seal_check(verify_pdf(signed, trust_roots=[sealed.ident.root.der]))  # the maker is not trusted
    assert ok is False and "seal.maker_chain" in detail, detail


def _with_binding(sealed: Sealed, attrs: list[cms.CMSAttribute]) -> bytes:
    """A fast-path signature whose signed attributes carry ``attrs`` as the binding (hand-made bad bindings)."""
    fast = FastPdfSigner(sealed.ident.signer, appearance=SealAppearance(render_png("某某"), box=BOX))
    fast.template = CmsTemplate(sealed.ident.signer, signing_time_attr=False, extra_signed_attrs=attrs)
    fast.reserve += 4096
    return fast.sign(licence_pdf())


def test_a_seal_whose_maker_signature_broke_fails(sealed: Sealed) -> None:
    forged = bytearray(sealed.seal)
    forged[forged.index(b"demo")] ^= 0x01  # inside the signed SES_SealInfo (an extension value)
    ok, detail = _seal_check(verify_pdf(_with_binding(sealed, [seal_attribute(bytes(forged))]),
                                        trust_roots=sealed.roots))
    assert ok is False and "seal.maker_signature" in detail, detail


@pytest.mark.parametrize(("attrs", "expected"), [
    ([seal_attribute(b"not a seal")], "does not parse"),
    ([cms.CMSAttribute({"type": "trustsvc_registered_seal", "values": [b"a", b"b"]})], "BAD_SEAL_BINDING"),
])
def test_bad_bindings_fail_the_check_and_nothing_else(sealed: Sealed, attrs: list[cms.CMSAttribute],
                                                       expected: str) -> None:
    report = verify_pdf(_with_binding(sealed, attrs), trust_roots=sealed.roots)
    ok, detail = _seal_check(report)
    assert ok is False and expected in detail, detail
    assert [c.name for c in report.signatures[0].checks if c.ok is False] == ["seal"]


def test_the_attribute_oid_is_under_the_trustsvc_arc() -> None:
    assert oids.REGISTERED_SEAL_ATTR.startswith(oids.TRUSTSVC_ARC + ".")
    assert seal_attribute(b"x")["type"].dotted == oids.REGISTERED_SEAL_ATTR
