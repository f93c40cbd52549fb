"""PDF signing: SM2/ECDSA/RSA through pyHanko hooks, levels, certification, dual signing, metadata, bad input."""

from __future__ import annotations

import io

import pytest
from asn1crypto import keys, x509
from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter
from pyhanko.pdf_utils.reader import PdfFileReader
from pyhanko.sign.timestamps.dummy_client import DummyTimeStamper
from pyhanko.sign.validation import validate_pdf_signature
from pyhanko_certvalidator.registry import SimpleCertificateStore

from trustsvc.algorithms import private_key_to_pkcs8
from trustsvc.algorithms.signer import SoftwareSigner
from trustsvc.errors import DecodeError, InvalidInput
from trustsvc.pdf.devkit import dev_identity, licence_pdf
from trustsvc.pdf.metadata import LicenceMetadata, read_metadata
from trustsvc.pdf.pyhanko_sm2 import validation_context
from trustsvc.pdf.signing import dual_sign_pdf, sign_pdf
from trustsvc.pdf.verify import verify_pdf
from trustsvc.pki.certificate import CertificateBuilder
from trustsvc.tsa.authority import LocalTsa
from trustsvc.tsa.pyhanko_adapter import LocalTsaTimeStamper

META = LicenceMetadata("营业执照", "91110000MA01ABCD1X", "北京某某科技有限公司", "91110000MA01ABCD1X",
                       "北京市市场监督管理局", "2024-05-01", "2024-05-01", "2044-04-30")


@pytest.fixture(scope="module")
def ids() -> dict:
    return {k: dev_identity(k) for k in ("sm2", "ecdsa", "rsa")}


def _validate(data: bytes, root: bytes, index: int = 0):
    sig = PdfFileReader(io.BytesIO(data)).embedded_signatures[index]
    return validate_pdf_signature(sig, validation_context([root]))


@pytest.mark.parametrize("kind", ["sm2", "ecdsa", "rsa"])
def test_sign_validates_with_pyhanko(ids, kind):
    ident = ids[kind]
    out = sign_pdf(licence_pdf(), ident.signer, metadata=META)
    status = _validate(out, ident.root.der)
    assert status.intact and status.valid and status.trusted
    assert status.md_algorithm == ("sm3" if kind == "sm2" else "sha256")
    if kind == "sm2":
        si = PdfFileReader(io.BytesIO(out)).embedded_signatures[0].signer_info
        assert si["signature_algorithm"]["algorithm"].dotted == "1.2.156.10197.1.501"
    assert read_metadata(PdfFileReader(io.BytesIO(out))) == META


def test_metadata_shown_by_verifier(ids):
    out = sign_pdf(licence_pdf(), ids["sm2"].signer, metadata=META)
    report = verify_pdf(out, trust_roots=[ids["sm2"].root.der])
    assert report.valid
    assert report.metadata["holder_name"] == "北京某某科技有限公司"
    assert "holder_id: 91110000MA01ABCD1X" in report.to_text()


def test_dual_signing_keeps_both_valid(ids):
    out = dual_sign_pdf(licence_pdf(), [ids["sm2"].signer, ids["ecdsa"].signer], certify=2)
    report = verify_pdf(out, trust_roots=[ids["sm2"].root.der, ids["ecdsa"].root.der])
    assert [s.algorithm for s in report.signatures] == ["sm2-sm3", "ecdsa-sha256"]
    assert report.valid, report.to_text()


def test_certified_docmdp1_refuses_more_signatures(ids):
    out = sign_pdf(licence_pdf(), ids["ecdsa"].signer, certify=1)
    with pytest.raises(InvalidInput) as err:
        sign_pdf(out, ids["rsa"].signer)
    assert err.value.reason == "DOCMDP_FORBIDS_CHANGES"


def test_only_first_signature_certifies(ids):
    out = sign_pdf(licence_pdf(), ids["ecdsa"].signer)
    with pytest.raises(InvalidInput) as err:
        sign_pdf(out, ids["rsa"].signer, certify=2)
    assert err.value.reason == "PDF_ALREADY_SIGNED"


def _tsa_cert(kind: str) -> tuple[SoftwareSigner, bytes, bytes]:
    """(TSA signer, TSA certificate, root) with a critical timeStamping EKU, issued by a fresh dev root."""
    from trustsvc.pki.certificate import Certificate
    ident = dev_identity(kind, f"trustsvc test TSA root {kind}")
    tsa_signer = SoftwareSigner.generate({"sm2": "sm2", "ecdsa": "ec-p256", "rsa": "rsa-2048"}[kind])
    tsa_cert = (CertificateBuilder().subject(f"trustsvc test TSA {kind}").public_key(tsa_signer.public_key)
                .key_usage({"digital_signature"}).extension("extended_key_usage", ["time_stamping"], True)
                .sign(ident.root_signer, Certificate(ident.root.der)))
    return tsa_signer, tsa_cert.der, ident.root.der


def local_tsa(kind: str) -> tuple[LocalTsaTimeStamper, bytes]:
    """trustsvc's own TSA (LocalTsa with an SM2, ECDSA or RSA key) as a pyHanko time stamper, and its root."""
    signer, cert, root = _tsa_cert(kind)
    return LocalTsaTimeStamper(LocalTsa(signer.with_certificates([cert, root]))), root


def dummy_tsa() -> tuple[DummyTimeStamper, bytes]:
    """pyHanko's own DummyTimeStamper (RSA): a TSA implementation independent of trustsvc."""
    signer, cert, root = _tsa_cert("rsa")
    return DummyTimeStamper(x509.Certificate.load(cert), keys.PrivateKeyInfo.load(private_key_to_pkcs8(signer._key)),
                            certs_to_embed=SimpleCertificateStore.from_certs([x509.Certificate.load(root)])), root


def pyhanko_pades_level(data: bytes, roots: list[bytes]) -> str:
    """PAdES level of the first signature from pyHanko's own validator and objects (not trustsvc's verify_pdf).

    Asserts the signature (and its time stamps) are intact, valid and trusted under plain pyhanko-certvalidator
    trust roots, and that the signed attributes are PAdES baseline ones (no signingTime; ESS v2 present).
    """
    from pyhanko.sign.validation import validate_pdf_timestamp
    from pyhanko.sign.validation.dss import DocumentSecurityStore
    from pyhanko_certvalidator import ValidationContext

    def vc() -> ValidationContext:
        return ValidationContext(trust_roots=[x509.Certificate.load(r) for r in roots], allow_fetching=False)

    reader = PdfFileReader(io.BytesIO(data))
    sig = reader.embedded_regular_signatures[0]
    status = validate_pdf_signature(sig, vc())
    assert status.intact and status.valid and status.trusted, status.pretty_print_details()
    assert sig.sig_object["/SubFilter"] == "/ETSI.CAdES.detached"
    attrs = {a["type"].native for a in sig.signer_info["signed_attrs"]}
    assert "signing_time" not in attrs and {"content_type", "message_digest", "signing_certificate_v2"} <= attrs
    assert "/M" in sig.sig_object and status.signer_reported_dt is not None
    ts = status.timestamp_validity
    if ts is None:
        return "B-B"
    assert ts.intact and ts.valid and ts.trusted
    if "/DSS" not in reader.root or not DocumentSecurityStore.read_dss(reader).certs:
        return "B-T"
    doc_ts = reader.embedded_timestamp_signatures
    if not doc_ts:
        return "B-LT"
    for dts in doc_ts:
        st = validate_pdf_timestamp(dts, vc())
        assert st.intact and st.valid and st.trusted, st.pretty_print_details()
    return "B-LTA"


@pytest.mark.parametrize("level", ["B-T", "B-LT", "B-LTA"])
@pytest.mark.parametrize("kind", ["ecdsa", "rsa"])
def test_pades_levels_with_local_ecdsa_tsa(ids, kind, level):
    tsa, tsa_root = local_tsa("ecdsa")
    roots = [ids[kind].root.der, tsa_root]
    out = sign_pdf(licence_pdf(), ids[kind].signer, level=level, timestamper=tsa, trust_roots=roots)
    assert pyhanko_pades_level(out, roots) == level


@pytest.mark.parametrize("level", ["B-T", "B-LT", "B-LTA"])
def test_pades_levels_sm2_with_local_sm2_tsa(ids, level):
    tsa, tsa_root = local_tsa("sm2")
    roots = [ids["sm2"].root.der, tsa_root]
    out = sign_pdf(licence_pdf(), ids["sm2"].signer, level=level, timestamper=tsa, trust_roots=roots, metadata=META)
    report = verify_pdf(out, trust_roots=roots)
    assert report.valid, report.to_text()  # the DSS and document time stamp revisions keep the licence metadata
    assert report.metadata == META.to_dict()
    sig = report.signatures[0]
    assert sig.pades_level == level and sig.algorithm == "sm2-sm3"
    ts_check = next(c for c in sig.checks if c.name == "timestamp")
    assert ts_check.ok and "trusted=True" in ts_check.detail
    si = PdfFileReader(io.BytesIO(out)).embedded_signatures[0].signer_info
    tst = next(a["values"][0] for a in si["unsigned_attrs"] if a["type"].native == "signature_time_stamp_token")
    assert tst["content"]["signer_infos"][0]["signature_algorithm"]["algorithm"].dotted == "1.2.156.10197.1.501"


def test_pades_b_lta_sm2_with_independent_tsa(ids):
    """pyHanko's DummyTimeStamper as a TSA implementation independent of trustsvc."""
    tsa, tsa_root = dummy_tsa()
    roots = [ids["sm2"].root.der, tsa_root]
    out = sign_pdf(licence_pdf(), ids["sm2"].signer, level="B-LTA", timestamper=tsa, trust_roots=roots)
    sig = PdfFileReader(io.BytesIO(out)).embedded_signatures[0]
    status = validate_pdf_signature(sig, validation_context(roots))
    assert status.intact and status.valid and status.trusted
    assert status.timestamp_validity is not None and status.timestamp_validity.trusted
    assert verify_pdf(out, trust_roots=roots).signatures[0].pades_level == "B-LTA"


def test_ordinary_b_b_is_pades_baseline(ids):
    out = sign_pdf(licence_pdf(), ids["ecdsa"].signer)
    assert pyhanko_pades_level(out, [ids["ecdsa"].root.der]) == "B-B"


def test_level_needs_timestamper(ids):
    with pytest.raises(InvalidInput) as err:
        sign_pdf(licence_pdf(), ids["sm2"].signer, level="B-T")
    assert err.value.reason == "NO_TIMESTAMPER"


def test_empty_sm2_id_is_named(ids):
    ident = ids["sm2"]
    bad = SoftwareSigner(ident.signer._key, sm2_id=b"").with_certificates(ident.signer.certificate_chain)
    out = sign_pdf(licence_pdf(), bad)
    report = verify_pdf(out, trust_roots=[ident.root.der])
    assert not report.valid
    check = next(c for c in report.signatures[0].checks if c.name == "signature")
    assert check.ok is False and "SM2_ID_MISMATCH" in check.detail and "user ID" in check.detail


def test_update_after_signing_is_reported(ids):
    out = sign_pdf(licence_pdf(), ids["ecdsa"].signer, certify=1)
    w = IncrementalPdfFileWriter(io.BytesIO(out))
    page = w.root["/Pages"]["/Kids"][0].get_object()
    from pyhanko.pdf_utils import generic
    page[generic.pdf_name("/Rotate")] = generic.NumberObject(90)
    w.update_container(page)
    buf = io.BytesIO()
    w.write(buf)
    report = verify_pdf(buf.getvalue(), trust_roots=[ids["ecdsa"].root.der])
    checks = {c.name: c for c in report.signatures[0].checks}
    assert checks["intact"].ok and not checks["modifications"].ok
    assert not report.valid


@pytest.mark.parametrize("data,reason", [
    (b"hello world", "PDF_NOT_PDF"),
    (None, "PDF_TRUNCATED"),
    (b"%PDF-1.7\ngarbage garbage\n%%EOF\n", "PDF_MALFORMED"),
])
def test_bad_input_errors(ids, data, reason):
    if data is None:
        data = licence_pdf()[:-200]
    with pytest.raises(DecodeError) as err:
        sign_pdf(data, ids["ecdsa"].signer)
    assert err.value.reason == reason
    with pytest.raises(DecodeError):
        verify_pdf(data)


def test_encrypted_pdf_is_refused(ids):
    from pyhanko.pdf_utils.crypt import StandardSecurityHandler
    from pyhanko.pdf_utils.writer import copy_into_new_writer
    w = copy_into_new_writer(PdfFileReader(io.BytesIO(licence_pdf())))
    w.encrypt = None
    w._assign_security_handler(StandardSecurityHandler.build_from_pw("secret", "secret"))
    buf = io.BytesIO()
    w.write(buf)
    with pytest.raises(InvalidInput) as err:
        sign_pdf(buf.getvalue(), ids["ecdsa"].signer)
    assert err.value.reason == "PDF_ENCRYPTED"


def test_stream_input_signs_from_file(ids, tmp_path):
    path = tmp_path / "big.pdf"
    path.write_bytes(licence_pdf(2_000_000))
    with open(path, "rb") as f:
        out = sign_pdf(f, ids["ecdsa"].signer)
    assert _validate(out, ids["ecdsa"].root.der).intact
