"""Fuzzing PDF verify and sign: truncations, byte flips and random bytes; only trustsvc errors may escape."""

from __future__ import annotations

import functools
import zlib
from collections.abc import Callable

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from trustsvc.errors import TrustsvcError
from trustsvc.pdf.devkit import dev_identity, licence_pdf
from trustsvc.pdf.fast import FastPdfSigner
from trustsvc.pdf.signing import sign_pdf
from trustsvc.pdf.verify import verify_pdf

SETTINGS = settings(max_examples=40, deadline=None, derandomize=True,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


@functools.lru_cache(maxsize=1)
def _material() -> tuple:
    ident = dev_identity("sm2")
    plain = licence_pdf()
    return ident, plain, sign_pdf(plain, ident.signer)


def _mutations(base: Callable[[], bytes]) -> st.SearchStrategy[bytes]:
    """Truncations, byte flips (few, anywhere) and random bytes around the document ``base`` returns."""

    def truncate(cut: float) -> bytes:
        data = base()
        return data[: int(len(data) * cut)]

    def flip(edits: list[tuple[float, int]]) -> bytes:
        data = bytearray(base())
        for pos, value in edits:
            data[min(int(pos * len(data)), len(data) - 1)] ^= value or 1
        return bytes(data)

    def splice(pos: float, junk: bytes) -> bytes:
        data = base()
        i = int(pos * len(data))
        return data[:i] + junk + data[i + len(junk):]

    unit = st.floats(min_value=0, max_value=1, allow_nan=False)
    return st.one_of(
        st.builds(truncate, unit),
        st.builds(flip, st.lists(st.tuples(unit, st.integers(0, 255)), min_size=1, max_size=8)),
        st.builds(splice, unit, st.binary(min_size=1, max_size=64)),
        st.binary(max_size=512),
        st.binary(max_size=256).map(lambda b: b"%PDF-1.7\n" + b + b"\n%%EOF\n"),
    )


def _only_trustsvc_errors(func, data: bytes) -> None:
    try:
        func(data)
    except TrustsvcError as exc:
        assert exc.reason and exc.reason.isupper(), exc


@SETTINGS
@given(_mutations(lambda: _material()[2]))
def test_verify_mutated_signed_pdf(data):
    ident = _material()[0]
    _only_trustsvc_errors(lambda d: verify_pdf(d, trust_roots=[ident.root.der]).to_dict(), data)


@SETTINGS
@given(_mutations(lambda: _sealed()[3]))
def test_verify_mutated_pdf_with_a_bound_seal(data):
    ident, maker_cert = _sealed()[:2]
    _only_trustsvc_errors(lambda d: verify_pdf(d, trust_roots=[ident.root.der, maker_cert.der]).to_dict(), data)


@SETTINGS
@given(_mutations(lambda: _material()[1]))
def test_sign_mutated_pdf(data):
    _only_trustsvc_errors(lambda d: sign_pdf(d, _material()[0].signer), data)


@SETTINGS
@given(_mutations(lambda: _material()[2]))
def test_sign_mutated_signed_pdf_fast(data):
    _only_trustsvc_errors(lambda d: FastPdfSigner(_material()[0].signer).sign(d), data)


def _pdf_of(objs: list[bytes], trailer: bytes = b"", startxref: bytes | None = None) -> bytes:
    """A PDF of ``objs`` (object 1 the catalog) with a classic xref table (and ``trailer`` entries, a
    ``startxref`` that may lie)."""
    out, offsets = b"%PDF-1.7\n", []
    for i, obj in enumerate(objs, 1):
        offsets.append(len(out))
        out += b"%d 0 obj\n%s\nendobj\n" % (i, obj)
    xref, size = len(out), len(objs) + 1
    out += b"xref\n0 %d\n0000000000 65535 f \n" % size + b"".join(b"%010d 00000 n \n" % o for o in offsets)
    end = startxref or b"%d" % xref
    return out + b"trailer\n<< /Size %d /Root 1 0 R %s>>\nstartxref\n%s\n%%%%EOF\n" % (size, trailer, end)


def _pdf(catalog: bytes, trailer: bytes = b"", startxref: bytes | None = None) -> bytes:
    """A one-page PDF with ``catalog`` as object 1 (and ``trailer`` entries, a ``startxref`` that may lie)."""
    return _pdf_of([catalog, b"<< /Type /Pages /Count 1 /Kids [3 0 R] >>",
                    b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] >>"], trailer, startxref)


_CATALOG = b"<< /Type /Catalog /Pages 2 0 R >>"
# regressions (hand-made extremes): open_reader let these escape, so verify_pdf raised them (the CLI's
# `pdf verify` ended in a traceback; the daemon's VerifyPdf caught them as the vaguer BAD_PDF)
MALFORMED = {
    "startxref beyond ssize_t (OverflowError)": _pdf(_CATALOG, startxref=b"9" * 23),
    "trailer /Prev pointing nowhere (AssertionError)": _pdf(_CATALOG, trailer=b"/Prev 9 "),
    "catalog not a dictionary (AssertionError)": _pdf(b"[1 2 3]"),
    "arrays nested 50000 deep (RecursionError)": _pdf(
        b"<< /Type /Catalog /Pages 2 0 R /X " + b"[" * 50_000 + b"]" * 50_000 + b" >>"),
}




def _broken(old: bytes, new: bytes) -> bytes:
    return licence_pdf().replace(old, new, 1)


# regressions (longer campaigns): verify_pdf raised NotImplementedError (an xref stream's filter renamed by a
# flipped bit) and AssertionError (its /Type); sign_pdf failed INTERNAL PDF_SIGNING_FAILED on a /Pages
# without /Count (KeyError: the daemon's SignPdf answered INTERNAL)
UNSIGNABLE = {"pages without /Count": _broken(b"/Count", b"/Cotnt"), "pages without /Kids": _broken(b"/Kids", b"/Kidz")}


@pytest.mark.parametrize("name", list(UNSIGNABLE))
def test_unsignable_pdf_is_pdf_malformed(name: str) -> None:
    for func in (lambda d: sign_pdf(d, _material()[0].signer), lambda d: FastPdfSigner(_material()[0].signer).sign(d)):
        with pytest.raises(TrustsvcError) as err:
            func(UNSIGNABLE[name])
        assert err.value.reason == "PDF_MALFORMED", err.value


@functools.lru_cache(maxsize=1)
def _xref_stream_pdf() -> bytes:
    signed = _material()[2]
    assert b"/Type /XRef" in signed and b"/FlateDecode" in signed
    return signed


@pytest.mark.parametrize("old,new", [(b"/FlateDecode", b"/Fl`teDecode"), (b"/Type /XRef", b"/Type /XRe`")])
def test_signed_pdf_with_a_broken_xref_stream(old: bytes, new: bytes) -> None:
    data = _xref_stream_pdf().replace(old, new)
    with pytest.raises(TrustsvcError) as err:
        verify_pdf(data).to_dict()
    assert err.value.reason == "PDF_MALFORMED", err.value


@pytest.mark.parametrize("name", list(MALFORMED))
def test_malformed_pdf_is_pdf_malformed(name: str) -> None:
    for func in (lambda d: verify_pdf(d).to_dict(), lambda d: sign_pdf(d, _material()[0].signer),
                 lambda d: FastPdfSigner(_material()[0].signer).sign(d)):
        with pytest.raises(TrustsvcError) as err:
            func(MALFORMED[name])
        assert err.value.reason == "PDF_MALFORMED", err.value


def flate_bomb_pdf(decoded: int = 40 * 1024 * 1024) -> bytes:
    """A one-page PDF whose content stream (the text "licence", then blanks) inflates to ``decoded`` bytes."""
    content = zlib.compress(b"BT /F1 12 Tf 72 700 Td (licence) Tj ET\n" + b" " * decoded, 9)
    page = b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R >>"
    return _pdf_of([_CATALOG, b"<< /Type /Pages /Count 1 /Kids [3 0 R] >>", page,
                    b"<< /Length %d /Filter /FlateDecode >>\nstream\n%s\nendstream" % (len(content), content)])


@functools.lru_cache(maxsize=1)
def _covered_ranges() -> tuple[tuple[int, int], ...]:
    """The two (start, end) ranges the signature's /ByteRange covers in the signed licence."""
    import io

    from pyhanko.pdf_utils.reader import PdfFileReader

    sig = PdfFileReader(io.BytesIO(_material()[2])).embedded_signatures[0]
    a, b, c, d = (int(v) for v in sig.sig_object["/ByteRange"])
    return (a, a + b), (c, c + d)


@SETTINGS
@given(st.integers(0, 1), st.floats(0, 1, allow_nan=False, exclude_max=True), st.integers(1, 255))
def test_a_byte_changed_where_the_signature_covers_never_verifies(segment: int, where: float, xor: int) -> None:
    """Soundness, not only robustness: any change to a covered byte makes the report invalid (or the file
    unreadable). Bytes outside the ranges are /Contents, which the signature cannot cover."""
    ident, _, signed = _material()
    start, end = _covered_ranges()[segment]
    data = bytearray(signed)
    data[start + int(where * (end - start))] ^= xor
    try:
        report = verify_pdf(bytes(data), trust_roots=[ident.root.der])
    except TrustsvcError:
        return
    assert not report.valid, report.to_text()


_LICENCE_FIELDS = ("licence_type", "licence_number", "holder_name", "holder_id", "issuing_authority", "issue_date",
                   "valid_from", "valid_until")


@functools.lru_cache(maxsize=1)
def _licensed() -> tuple:
    from trustsvc.pdf.metadata import LicenceMetadata

    ident = _material()[0]
    meta = LicenceMetadata("营业执照", "L-1", "甲公司", "91110000MA01ABCD1X", "市场监督管理局", "2024-05-01",
                           "2024-05-01", "2044-04-30")
    return ident, meta, FastPdfSigner(ident.signer).sign(licence_pdf(), metadata=meta)


@SETTINGS
@given(st.sampled_from(_LICENCE_FIELDS), st.text(min_size=0, max_size=20))
def test_any_licence_field_changed_after_signing_never_verifies(field: str, value: str) -> None:
    """Soundness for the licence metadata pyHanko lets a later revision replace: whatever field changes, to
    whatever value, the signature that signed the old one fails and the report names the field."""
    import dataclasses
    import io

    from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter

    from trustsvc.pdf.metadata import write_metadata

    ident, meta, signed = _licensed()
    value = "".join(c for c in value if c.isprintable())
    if getattr(meta, field) == value:
        return
    writer = IncrementalPdfFileWriter(io.BytesIO(signed))
    write_metadata(writer, dataclasses.replace(meta, **{field: value}))
    out = io.BytesIO()
    writer.write(out)
    report = verify_pdf(out.getvalue(), trust_roots=[ident.root.der])
    check = next(c for c in report.signatures[0].checks if c.name == "licence_metadata")
    assert not report.valid and check.ok is False, report.to_text()
    assert field in check.detail or "removed" in check.detail or "added" in check.detail, check.detail


@functools.lru_cache(maxsize=1)
def _sealed() -> tuple:
    """A licence signed with a registered seal bound (seal_binding), the seal, and its maker's certificate."""
    from tests.unit.test_seal_support import make_maker, seal_listing
    from trustsvc.pdf.appearance import SealAppearance
    from trustsvc.seal.picture import render_png

    ident = _material()[0]
    maker, maker_cert = make_maker()
    picture = render_png("甲公司")
    seal = seal_listing([ident.signer.certificate_chain[0]], maker, maker_cert, picture=picture)
    appearance = SealAppearance(picture, box=(300, 400, 150, 150), seal=seal)
    return ident, maker_cert, seal, FastPdfSigner(ident.signer, appearance=appearance).sign(licence_pdf())


@SETTINGS
@given(st.floats(0, 1, allow_nan=False, exclude_max=True), st.integers(1, 255))
def test_a_byte_changed_in_the_bound_seal_never_verifies(where: float, xor: int) -> None:
    """Soundness of the binding: the seal rides in a signed attribute, so changing any of its bytes in /Contents
    (hex) breaks the signature, whatever the seal steps then say."""
    ident, maker_cert, seal, signed = _sealed()
    at = signed.find(seal.hex().upper().encode())  # /Contents is upper-case hex
    assert at > 0
    i = int(where * len(seal))
    data = signed[:at + 2 * i] + b"%02X" % (seal[i] ^ xor) + signed[at + 2 * i + 2:]
    try:
        report = verify_pdf(data, trust_roots=[ident.root.der, maker_cert.der])
    except TrustsvcError:
        return
    assert not report.valid, report.to_text()
    assert any(c.name == "signature" and c.ok is False for c in report.signatures[0].checks), report.to_text()
