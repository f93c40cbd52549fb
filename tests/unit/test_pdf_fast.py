"""Fast path and batch: PAdES baseline by default, optional visible seal prepared once, same validity as the
ordinary path, retry on a small placeholder, atomic outputs."""

from __future__ import annotations

import io

import pytest
from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter
from pyhanko.pdf_utils.reader import PdfFileReader
from pyhanko.sign import fields
from pyhanko.sign.validation import validate_pdf_signature

from tests.unit.test_pdf_appearance import _assert_in_box, _red_pixels
from tests.unit.test_pdf_signing import pyhanko_pades_level
from trustsvc.errors import InvalidInput
from trustsvc.pdf import fast_seal
from trustsvc.pdf.appearance import SealAppearance, find_text
from trustsvc.pdf.batch import BatchOptions, batch_sign
from trustsvc.pdf.devkit import dev_identity, licence_pdf
from trustsvc.pdf.fast import FastPdfSigner
from trustsvc.pdf.pyhanko_sm2 import validation_context
from trustsvc.pdf.verify import verify_pdf

_IDENT = {k: dev_identity(k) for k in ("sm2", "ecdsa", "rsa")}
BOX = (300.0, 400.0, 150.0, 150.0)


def _factory():
    return _IDENT["sm2"].signer


@pytest.fixture(scope="module")
def seal_png() -> bytes:
    from trustsvc.seal.picture import render_png

    return render_png("北京某某科技有限公司", name="合同专用章", code="1101000000001", dpi=150)


@pytest.mark.parametrize("visible", [False, True])
@pytest.mark.parametrize("kind", ["sm2", "ecdsa", "rsa"])
def test_fast_output_is_pades_b_b(kind, visible, seal_png):
    ident = _IDENT[kind]
    fast = FastPdfSigner(ident.signer, appearance=SealAppearance(seal_png, box=BOX) if visible else None)
    out = fast.sign(licence_pdf(100_000))
    if kind == "sm2":  # pyHanko needs trustsvc's SM2 hooks; the PAdES facts are checked through them
        sig = PdfFileReader(io.BytesIO(out)).embedded_signatures[0]
        status = validate_pdf_signature(sig, validation_context([ident.root.der]))
        assert status.intact and status.valid and status.trusted
        attrs = [a["type"].native for a in sig.signer_info["signed_attrs"]]
        assert attrs == ["content_type", "message_digest", "signing_certificate_v2"]
        report = verify_pdf(out, trust_roots=[ident.root.der])
        assert report.valid and report.signatures[0].pades_level == "B-B", report.to_text()
    else:
        assert pyhanko_pades_level(out, [ident.root.der]) == "B-B"


def test_adbe_subfilter_still_available():
    ident = _IDENT["ecdsa"]
    out = FastPdfSigner(ident.signer, subfilter="adbe.pkcs7.detached").sign(licence_pdf())
    sig = PdfFileReader(io.BytesIO(out)).embedded_signatures[0]
    assert sig.sig_object["/SubFilter"] == "/adbe.pkcs7.detached"
    assert "signing_time" in [a["type"].native for a in sig.signer_info["signed_attrs"]]
    assert validate_pdf_signature(sig, validation_context([ident.root.der])).valid


def test_visible_seal_in_box(seal_png, tmp_path):
    out = FastPdfSigner(_IDENT["sm2"].signer, appearance=SealAppearance(seal_png, box=BOX)).sign(licence_pdf())
    _assert_in_box(_red_pixels(out, tmp_path), BOX)


def test_visible_seal_at_existing_field_and_anchor(seal_png, tmp_path):
    (tmp_path / "f").mkdir()
    (tmp_path / "a").mkdir()
    w = IncrementalPdfFileWriter(io.BytesIO(licence_pdf()))
    fields.append_signature_field(w, fields.SigFieldSpec("SealHere", on_page=0, box=(100, 100, 220, 220)))
    buf = io.BytesIO()
    w.write(buf)
    ident = _IDENT["ecdsa"]
    out = FastPdfSigner(ident.signer, appearance=SealAppearance(seal_png, field="SealHere")).sign(buf.getvalue())
    assert PdfFileReader(io.BytesIO(out)).embedded_signatures[0].field_name == "SealHere"
    _assert_in_box(_red_pixels(out, tmp_path / "f"), (100, 100, 120, 120))
    assert pyhanko_pades_level(out, [ident.root.der]) == "B-B"
    app = SealAppearance(seal_png, anchor="ANCHOR-HOLDER", size=(100, 100))
    box = app.anchor_box(PdfFileReader(io.BytesIO(licence_pdf())))
    assert box[0] >= sum(find_text(PdfFileReader(io.BytesIO(licence_pdf())), 0, "ANCHOR-HOLDER")[::2])
    out = FastPdfSigner(ident.signer, appearance=app).sign(licence_pdf())
    _assert_in_box(_red_pixels(out, tmp_path / "a"), box)


def test_seal_picture_prepared_once(seal_png, monkeypatch):
    calls = []
    real = fast_seal._load_picture
    monkeypatch.setattr(fast_seal, "_load_picture", lambda data: calls.append(1) or real(data))
    fast = FastPdfSigner(_IDENT["ecdsa"].signer, appearance=SealAppearance(seal_png, box=BOX))
    prepared = fast.seal._image_data
    first, second = fast.sign(licence_pdf()), fast.sign(licence_pdf())
    assert len(calls) == 1 and fast.seal._image_data is prepared
    assert prepared in first and prepared in second  # the encoded picture is copied in as it is


def test_fast_visible_refusals(seal_png):
    signer = _IDENT["ecdsa"].signer
    with pytest.raises(InvalidInput) as err:
        FastPdfSigner(signer, appearance=SealAppearance(seal_png, box=BOX, text="%(signer)s"))
    assert err.value.reason == "FAST_SEAL_TEXT"
    with pytest.raises(InvalidInput) as err:
        FastPdfSigner(signer, appearance=SealAppearance(seal_png, box=BOX, page=4)).sign(licence_pdf())
    assert err.value.reason == "BAD_SEAL_PLACEMENT"


def test_placeholder_too_small_retries():
    signer = FastPdfSigner(_IDENT["ecdsa"].signer, reserve=64)
    out = signer.sign(licence_pdf())
    sig = PdfFileReader(io.BytesIO(out)).embedded_signatures[0]
    assert validate_pdf_signature(sig, validation_context([_IDENT["ecdsa"].root.der])).valid
    assert signer.reserve > 64


@pytest.mark.parametrize("workers", [0, 2])
def test_batch_signs_directory(tmp_path, workers):
    src = tmp_path / "in"
    src.mkdir()
    for i in range(4):
        (src / f"l{i}.pdf").write_bytes(licence_pdf())
    (src / "bad.pdf").write_bytes(b"not a pdf")
    seen = []
    results = batch_sign(sorted(src.iterdir()), tmp_path / "out", _factory, workers=workers,
                         progress=lambda d, t: seen.append((d, t)))
    assert seen[-1] == (5, 5)
    bad = [r for r in results if r.error]
    assert len(bad) == 1 and bad[0].source.endswith("bad.pdf")
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == [f"l{i}.pdf" for i in range(4)]
    for p in (tmp_path / "out").iterdir():
        sig = PdfFileReader(io.BytesIO(p.read_bytes())).embedded_signatures[0]
        assert validate_pdf_signature(sig, validation_context([_IDENT["sm2"].root.der])).intact


def test_batch_visible_and_certified(tmp_path, seal_png):
    src = tmp_path / "in"
    src.mkdir()
    for i in range(2):
        (src / f"l{i}.pdf").write_bytes(licence_pdf())
    ident = _IDENT["sm2"]
    for name, opts in {"fast": BatchOptions(appearance=SealAppearance(seal_png, box=BOX)),
                       "certified": BatchOptions(certify=2)}.items():
        results = batch_sign(sorted(src.iterdir()), tmp_path / name, _factory, workers=0, options=opts)
        assert all(r.error is None for r in results), results
        for r in results:
            report = verify_pdf(open(r.output, "rb").read(), trust_roots=[ident.root.der])
            assert report.valid and report.signatures[0].pades_level == "B-B", report.to_text()
