"""Bad and awkward input for PDF signing: signed documents, later updates, huge files, small placeholders."""

from __future__ import annotations

import dataclasses
import io
import os
import tracemalloc

import pytest
from pyhanko.pdf_utils import generic
from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter
from pyhanko.pdf_utils.reader import PdfFileReader
from pyhanko.sign.validation import validate_pdf_signature

from trustsvc.errors import DecodeError, InvalidInput, TrustsvcError
from trustsvc.pdf.devkit import dev_identity, licence_pdf
from trustsvc.pdf.fast import FastPdfSigner
from trustsvc.pdf.metadata import LicenceMetadata, write_metadata
from trustsvc.pdf.pyhanko_sm2 import validation_context
from trustsvc.pdf.signing import sign_pdf, sign_pdf_file
from trustsvc.pdf.verify import verify_pdf


@pytest.fixture(scope="module")
def ids() -> dict:
    return {k: dev_identity(k) for k in ("sm2", "ecdsa")}


def _roots(ids: dict) -> list[bytes]:
    return [i.root.der for i in ids.values()]


def _check(report, name: str):
    return next(c for s in report.signatures for c in s.checks if c.name == name)


def test_signed_pdf_signed_again_keeps_earlier_signature(ids):
    first = sign_pdf(licence_pdf(), ids["sm2"].signer)
    second = sign_pdf(first, ids["ecdsa"].signer)
    assert second.startswith(first)  # an incremental update: the first revision is untouched
    report = verify_pdf(second, trust_roots=_roots(ids))
    assert len(report.signatures) == 2 and report.valid, report.to_text()
    sigs = PdfFileReader(io.BytesIO(second)).embedded_signatures
    for sig in sigs:
        status = validate_pdf_signature(sig, validation_context(_roots(ids)))
        assert status.intact and status.valid
    assert sigs[0].field_name != sigs[1].field_name


def test_certify_on_signed_pdf_refused(ids):
    first = sign_pdf(licence_pdf(), ids["sm2"].signer)
    with pytest.raises(InvalidInput) as err:
        sign_pdf(first, ids["ecdsa"].signer, certify=2)
    assert err.value.reason == "PDF_ALREADY_SIGNED"


def test_incremental_update_after_signing_detected(ids):
    signed = sign_pdf(licence_pdf(), ids["sm2"].signer)
    w = IncrementalPdfFileWriter(io.BytesIO(signed))
    page_ref, _ = w.find_page_for_modification(0)
    page = page_ref.get_object()
    page["/Contents"] = w.add_object(generic.StreamObject(  # replace the page text
        stream_data=b"BT /F1 24 Tf 72 720 Td (Forged licence) Tj ET\n"))
    w.update_container(page)
    buf = io.BytesIO()
    w.write(buf)
    report = verify_pdf(buf.getvalue(), trust_roots=_roots(ids))
    assert not report.valid, report.to_text()
    assert _check(report, "intact").ok  # the signed revision itself is untouched ...
    assert "later incremental updates" in _check(report, "byte_range").detail  # ... but something follows it
    assert _check(report, "modifications").ok is False


LICENCE = LicenceMetadata("营业执照", "L-ORIGINAL", "甲公司", "91110000MA01ABCD1X", "市场监督管理局", "2024-05-01")


def _with_metadata_update(pdf: bytes, meta: LicenceMetadata) -> bytes:
    w = IncrementalPdfFileWriter(io.BytesIO(pdf))
    write_metadata(w, meta)
    buf = io.BytesIO()
    w.write(buf)
    return buf.getvalue()


@pytest.mark.parametrize("fast", [False, True])
def test_licence_metadata_changed_after_signing_is_invalid(ids, fast):
    # regression: pyHanko's modification analysis allows an XMP update after signing (LTA_UPDATES), so a forged
    # licence number and holder verified as valid
    signer = ids["sm2"].signer
    signed = FastPdfSigner(signer).sign(licence_pdf(), metadata=LICENCE) if fast \
        else sign_pdf(licence_pdf(), signer, metadata=LICENCE)
    clean = verify_pdf(signed, trust_roots=_roots(ids))
    assert clean.valid and _check(clean, "licence_metadata").ok is True, clean.to_text()
    forged = _with_metadata_update(signed, dataclasses.replace(LICENCE, licence_number="L-FORGED",
                                                               holder_name="乙公司"))
    report = verify_pdf(forged, trust_roots=_roots(ids))
    check = _check(report, "licence_metadata")
    assert not report.valid and check.ok is False, report.to_text()
    assert "licence_number, holder_name" in check.detail and "L-ORIGINAL" in check.detail
    assert _check(report, "modifications").ok  # what pyHanko alone would have said


def test_licence_metadata_added_after_signing_is_invalid(ids):
    signed = sign_pdf(licence_pdf(), ids["ecdsa"].signer)
    assert _check(verify_pdf(signed, trust_roots=_roots(ids)), "licence_metadata").ok is None  # none: not applicable
    report = verify_pdf(_with_metadata_update(signed, LICENCE), trust_roots=_roots(ids))
    assert not report.valid and "added after this signature" in _check(report, "licence_metadata").detail


def test_licence_metadata_kept_through_later_signatures_and_lta(ids):
    signed = sign_pdf(licence_pdf(), ids["sm2"].signer, metadata=LICENCE)
    again = sign_pdf(signed, ids["ecdsa"].signer)  # a second approval signature keeps the metadata
    report = verify_pdf(again, trust_roots=_roots(ids))
    assert report.valid and all(c.ok for s in report.signatures for c in s.checks if c.name == "licence_metadata")


def test_signing_over_an_unreadable_signature_is_malformed_input(ids):
    # regression: sign_pdf raised SigningFailed (INTERNAL over gRPC) when an earlier signature's CMS did not parse
    signed = sign_pdf(licence_pdf(), ids["ecdsa"].signer)
    i = signed.index(b"/Contents <") + len(b"/Contents <")
    broken = signed[:i] + b"00" * 8 + signed[i + 16:]
    with pytest.raises(DecodeError) as err:
        sign_pdf(broken, ids["sm2"].signer)
    assert err.value.reason == "PDF_MALFORMED"


def test_a_field_name_that_is_not_text_is_reported_as_text(ids):
    # regression (exploratory daemon fuzz): pyHanko gives a byte string for a /T that is not a PDF text string
    # (here UTF-16 with lone surrogates); the daemon's protobuf reply could not take it and answered INTERNAL
    import json

    from trustsvc.server.services.document import pb

    signed = sign_pdf(licence_pdf(), ids["ecdsa"].signer)
    old = b"/T (Signature\\055EC\\0551)"
    assert old in signed
    odd = signed.replace(old, b"/T <FEFFD800D800D800D800>".ljust(len(old)), 1)
    report = verify_pdf(odd, trust_roots=_roots(ids))
    (sig,) = report.signatures
    assert type(sig.field_name) is str and "\ufffd" in sig.field_name
    json.dumps(report.to_dict(), ensure_ascii=False)
    pb.VerifyPdfResponse.Signature(field_name=sig.field_name, signer=sig.signer)


def form_pdf() -> bytes:
    """A licence with one text field, holder = 甲公司."""
    n = generic.NameObject
    w = IncrementalPdfFileWriter(io.BytesIO(licence_pdf()))
    page_ref, _ = w.find_page_for_modification(0)
    field = w.add_object(generic.DictionaryObject({
        n("/FT"): n("/Tx"), n("/T"): generic.TextStringObject("holder"), n("/V"): generic.TextStringObject("甲公司"),
        n("/Type"): n("/Annot"), n("/Subtype"): n("/Widget"), n("/P"): page_ref,
        n("/Rect"): generic.ArrayObject([generic.NumberObject(v) for v in (100, 100, 300, 130)])}))
    page = page_ref.get_object()
    page[n("/Annots")] = generic.ArrayObject([field])
    w.update_container(page)
    w.root[n("/AcroForm")] = generic.DictionaryObject({n("/Fields"): generic.ArrayObject([field])})
    w.update_root()
    buf = io.BytesIO()
    w.write(buf)
    return buf.getvalue()


def holder_rewritten(signed: bytes, holder: str = "乙公司") -> bytes:
    """``signed`` (made from form_pdf) with an incremental update that rewrites its holder text field."""
    w = IncrementalPdfFileWriter(io.BytesIO(signed))
    field = next(f.get_object() for f in w.root["/AcroForm"]["/Fields"] if f.get_object().get("/FT") == "/Tx")
    field[generic.NameObject("/V")] = generic.TextStringObject(holder)
    w.update_container(field)
    buf = io.BytesIO()
    w.write(buf)
    return buf.getvalue()


def test_a_form_field_changed_after_signing_is_invalid(ids):
    # regression: pyHanko counts form filling after an approval signature as an allowed change (FORM_FILLING), so
    # a licence whose holder field was rewritten after signing verified as valid
    signed = sign_pdf(form_pdf(), ids["ecdsa"].signer)
    assert verify_pdf(signed, trust_roots=_roots(ids)).valid
    forged = holder_rewritten(signed)
    report = verify_pdf(forged, trust_roots=_roots(ids))
    check = _check(report, "form_fields")
    assert not report.valid and check.ok is False and "holder" in check.detail, report.to_text()
    assert _check(report, "modifications").ok  # what pyHanko alone says
    lenient = verify_pdf(forged, trust_roots=_roots(ids), allow_form_filling=True)
    assert lenient.valid and "(allowed): holder" in _check(lenient, "form_fields").detail
    second = sign_pdf(signed, ids["sm2"].signer)  # another signature is not form filling
    report = verify_pdf(second, trust_roots=_roots(ids))
    assert report.valid and _check(report, "form_fields").detail == "only signature fields added"


def test_annotations_after_signing_fail_modifications(ids, monkeypatch):
    # pyHanko's ANNOTATIONS level (comments, stamps over the page) passed as valid; on an e-licence it is content
    from pyhanko.sign.diff_analysis import DiffResult, ModificationLevel

    import trustsvc.pdf.verify as verify_module

    real = verify_module.validate_pdf_signature

    def annotated(sig, vc):  # the real validation, with pyHanko's diff analysis saying ANNOTATIONS
        return dataclasses.replace(real(sig, vc), diff_result=DiffResult(ModificationLevel.ANNOTATIONS, set()))

    monkeypatch.setattr(verify_module, "validate_pdf_signature", annotated)
    report = verify_pdf(sign_pdf(licence_pdf(), ids["ecdsa"].signer), trust_roots=_roots(ids))
    check = _check(report, "modifications")
    assert not report.valid and check.ok is False and "ANNOTATIONS" in check.detail


def test_truncated_and_garbage_rejected(ids):
    signed = sign_pdf(licence_pdf(), ids["sm2"].signer)
    with pytest.raises(DecodeError) as err:
        verify_pdf(signed[: len(signed) // 2])
    assert err.value.reason == "PDF_TRUNCATED"
    with pytest.raises(DecodeError) as err:
        sign_pdf(b"hello, not a pdf", ids["sm2"].signer)
    assert err.value.reason == "PDF_NOT_PDF"


_BROKEN = {"empty": lambda pdf: b"", "not a PDF": lambda pdf: b"hello, not a pdf",
           "header only": lambda pdf: b"%PDF-1.7\n", "half": lambda pdf: pdf[: len(pdf) // 2],
           "no %%EOF": lambda pdf: pdf.replace(b"%%EOF", b""), "xref broken": lambda pdf: pdf.replace(b"xref", b"xreg"),
           "leading junk": lambda pdf: b"junk\n" + pdf}


@pytest.mark.parametrize("case", sorted(_BROKEN))
def test_both_signing_paths_give_the_same_reason(ids, case):
    """SignPdf (pyHanko) and BatchSignPdf (the fast signer) refuse a broken file with one reason."""
    data = _BROKEN[case](licence_pdf())
    reasons = []
    for sign in (lambda d: sign_pdf(d, ids["ecdsa"].signer), FastPdfSigner(ids["ecdsa"].signer).sign):
        with pytest.raises(DecodeError) as err:
            sign(data)
        reasons.append(err.value.reason)
    assert reasons[0] == reasons[1], reasons
    assert reasons[0] == {"empty": "PDF_NOT_PDF", "not a PDF": "PDF_NOT_PDF"}.get(
        case, "PDF_MALFORMED" if case in ("xref broken", "leading junk") else "PDF_TRUNCATED")


@pytest.mark.parametrize("number", [b"-.", b"8.."])
def test_a_malformed_number_in_the_xref_stream_is_pdf_malformed(ids, number):
    # regression (soundness fuzz): pyHanko's decimal.InvalidOperation escaped verify and sign as a traceback
    assert licence_pdf().count(b"/W [ 1 8 2 ]") == 1
    bad = licence_pdf().replace(b"/W [ 1 8 2 ]", b"/W [ 1 " + number + b" 2 ]")
    for attempt in (lambda: verify_pdf(bad), lambda: sign_pdf(bad, ids["sm2"].signer),
                    lambda: FastPdfSigner(ids["sm2"].signer).sign(bad)):
        with pytest.raises(DecodeError) as err:
            attempt()
        assert err.value.reason == "PDF_MALFORMED"


def _huge_pdf(path: str, size: int) -> None:
    """A valid one-page PDF of about ``size`` bytes, written in 1 MB chunks (never whole in memory)."""
    offsets = []
    with open(path, "wb") as f:
        f.write(b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n")
        content = b"BT /F1 24 Tf 72 720 Td (Huge licence) Tj ET\n"
        objs = [b"<< /Type /Catalog /Pages 2 0 R /TrustsvcPadding 6 0 R >>",
                b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
                b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] /Contents 4 0 R "
                b"/Resources << /Font << /F1 5 0 R >> >> >>",
                b"<< /Length %d >>\nstream\n" % len(content) + content + b"\nendstream",
                b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>"]
        for i, body in enumerate(objs, 1):
            offsets.append(f.tell())
            f.write(b"%d 0 obj\n" % i + body + b"\nendobj\n")
        offsets.append(f.tell())
        pad = max(size - 2048, 0)
        f.write(b"6 0 obj\n<< /Length %d >>\nstream\n" % pad)
        chunk = os.urandom(1 << 20)
        left = pad
        while left:
            n = min(left, len(chunk))
            f.write(chunk[:n])
            left -= n
        f.write(b"\nendstream\nendobj\n")
        xref = f.tell()
        f.write(b"xref\n0 7\n0000000000 65535 f \n" + b"".join(b"%010d 00000 n \n" % o for o in offsets))
        f.write(b"trailer\n<< /Size 7 /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % xref)


def test_huge_pdf_signed_with_bounded_memory(ids, tmp_path):
    size = 50 << 20
    src, dst = str(tmp_path / "huge.pdf"), str(tmp_path / "huge-signed.pdf")
    _huge_pdf(src, size)
    tracemalloc.start()
    try:
        sign_pdf_file(src, dst, ids["ecdsa"].signer)
        sign_peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.reset_peak()
        with open(dst, "rb") as f:
            report = verify_pdf(f, trust_roots=_roots(ids))
        verify_peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert os.path.getsize(dst) > size
    assert report.valid, report.to_text()
    assert sign_peak < size // 10, f"signing peaked at {sign_peak} bytes for a {size} byte file"
    assert verify_peak < size // 10, f"verifying peaked at {verify_peak} bytes for a {size} byte file"
    assert [p for p in os.listdir(tmp_path) if p.startswith(".signing-")] == []


def test_sign_pdf_file_never_leaves_half_written_output(ids, tmp_path):
    src, dst = tmp_path / "bad.pdf", tmp_path / "out.pdf"
    src.write_bytes(licence_pdf()[:-200])  # truncated
    with pytest.raises(TrustsvcError):
        sign_pdf_file(src, dst, ids["sm2"].signer)
    assert not dst.exists() and list(tmp_path.iterdir()) == [src]


@pytest.mark.parametrize("kind", ["sm2", "ecdsa"])
def test_placeholder_too_small_retried_larger(ids, kind):
    ident = ids[kind]
    out = sign_pdf(licence_pdf(), ident.signer, bytes_reserved=64)
    report = verify_pdf(out, trust_roots=_roots(ids))
    assert report.valid, report.to_text()
    assert len(PdfFileReader(io.BytesIO(out)).embedded_signatures) == 1
    fast = FastPdfSigner(ident.signer, reserve=32)
    out = fast.sign(licence_pdf())
    assert fast.reserve > 32
    report = verify_pdf(out, trust_roots=_roots(ids))
    assert report.valid, report.to_text()
    assert len(PdfFileReader(io.BytesIO(out)).embedded_signatures) == 1


def test_encrypted_pdf_rejected(ids):
    from pyhanko.pdf_utils.crypt import StandardSecurityHandler
    from pyhanko.pdf_utils.writer import copy_into_new_writer

    w = copy_into_new_writer(PdfFileReader(io.BytesIO(licence_pdf())))
    w.security_handler = StandardSecurityHandler.build_from_pw("secret")
    w._encrypt = w.add_object(w.security_handler.as_pdf_object())
    buf = io.BytesIO()
    w.write(buf)
    with pytest.raises(InvalidInput) as err:
        sign_pdf(buf.getvalue(), ids["sm2"].signer)
    assert err.value.reason == "PDF_ENCRYPTED"
