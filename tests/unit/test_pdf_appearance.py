"""Visible seal: rendered with pdftoppm, the seal's red pixels fall in the requested box; signatures stay valid."""

from __future__ import annotations

import io
import subprocess

import pytest
from PIL import Image
from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter
from pyhanko.pdf_utils.reader import PdfFileReader
from pyhanko.sign import fields
from pyhanko.sign.validation import validate_pdf_signature

from tests.conftest import require_tool
from trustsvc.errors import InvalidInput, NotFound
from trustsvc.pdf.appearance import SealAppearance, find_text
from trustsvc.pdf.devkit import dev_identity, licence_pdf
from trustsvc.pdf.pyhanko_sm2 import validation_context
from trustsvc.pdf.signing import sign_pdf
from trustsvc.pdf.verify import verify_pdf

PAGE_H = 842  # devkit pages are A4, 595 x 842 points


@pytest.fixture(scope="module")
def seal_png() -> bytes:
    try:
        from trustsvc.seal.picture import render_png
    except ImportError:  # seal package not there yet: a plain red disc with transparency
        img = Image.new("RGBA", (300, 300), (0, 0, 0, 0))
        from PIL import ImageDraw
        ImageDraw.Draw(img).ellipse((10, 10, 290, 290), outline=(220, 0, 0, 255), width=12)
        buf = io.BytesIO()
        img.save(buf, "PNG")
        return buf.getvalue()
    return render_png("北京某某科技有限公司", name="合同专用章", code="1101000000001", dpi=150)


@pytest.fixture(scope="module")
def ident():
    return dev_identity("sm2")


def _red_pixels(pdf: bytes, tmp_path) -> list[tuple[int, int]]:
    path = tmp_path / "s.pdf"
    path.write_bytes(pdf)
    subprocess.run([require_tool("pdftoppm"), "-png", "-r", "72", "-f", "1", "-l", "1", str(path),
                    str(tmp_path / "page")], check=True)
    img = Image.open(next(tmp_path.glob("page*.png"))).convert("RGB")
    px = img.load()
    return [(x, y) for y in range(img.height) for x in range(img.width)
            if px[x, y][0] > 150 and px[x, y][1] < 100 and px[x, y][2] < 100]


def _assert_in_box(red: list[tuple[int, int]], box: tuple[float, float, float, float]) -> None:
    x, y, w, h = box
    left, right, top, bottom = x, x + w, PAGE_H - (y + h), PAGE_H - y  # 72 dpi: 1 pt = 1 px; y flipped
    assert len(red) > 500, f"only {len(red)} red pixels: the seal is not visible"
    outside = [p for p in red if not (left - 1 <= p[0] <= right + 1 and top - 1 <= p[1] <= bottom + 1)]
    assert not outside, f"{len(outside)} red pixels outside {box}, e.g. {outside[:5]}"


def _assert_valid(pdf: bytes, ident) -> None:
    sig = PdfFileReader(io.BytesIO(pdf)).embedded_signatures[-1]
    status = validate_pdf_signature(sig, validation_context([ident.root.der]))
    assert status.intact and status.valid and status.trusted
    report = verify_pdf(pdf, trust_roots=[ident.root.der])
    assert report.valid, report.to_text()


@pytest.mark.parametrize("text", [None, "%(signer)s\n%(ts)s"])
def test_seal_in_requested_box(seal_png, ident, tmp_path, text):
    box = (300.0, 400.0, 150.0, 150.0)
    out = sign_pdf(licence_pdf(), ident.signer, appearance=SealAppearance(seal_png, box=box, text=text))
    _assert_in_box(_red_pixels(out, tmp_path), box)
    _assert_valid(out, ident)


def test_cjk_text_font_embedded(seal_png, ident, tmp_path):
    out = sign_pdf(licence_pdf(), ident.signer, appearance=SealAppearance(seal_png, box=(50, 50, 160, 160),
                                                                         text="签章人 %(signer)s"))
    (tmp_path / "f.pdf").write_bytes(out)
    listing = subprocess.run([require_tool("pdffonts"), str(tmp_path / "f.pdf")], capture_output=True,
                             text=True, check=True).stdout
    row = next(line for line in listing.splitlines() if "WenQuanYi" in line)
    assert "CID TrueType" in row and row.split()[-5:-3] == ["yes", "yes"], listing  # embedded subset
    _assert_valid(out, ident)


def test_seal_next_to_anchor_text(seal_png, ident, tmp_path):
    reader = PdfFileReader(io.BytesIO(licence_pdf()))
    ax, ay, aw, ah = find_text(reader, 0, "ANCHOR-HOLDER")
    assert 100 < ax < 140 and 680 < ay < 700
    app = SealAppearance(seal_png, anchor="ANCHOR-HOLDER", size=(100, 100))
    box = app.anchor_box(reader)
    assert box[0] >= ax + aw
    out = sign_pdf(licence_pdf(), ident.signer, appearance=app)
    _assert_in_box(_red_pixels(out, tmp_path), box)
    _assert_valid(out, ident)


def test_seal_at_existing_empty_field(seal_png, ident, tmp_path):
    w = IncrementalPdfFileWriter(io.BytesIO(licence_pdf()))
    fields.append_signature_field(w, fields.SigFieldSpec("SealHere", on_page=0, box=(100, 100, 220, 220)))
    buf = io.BytesIO()
    w.write(buf)
    out = sign_pdf(buf.getvalue(), ident.signer, appearance=SealAppearance(seal_png, field="SealHere"))
    assert PdfFileReader(io.BytesIO(out)).embedded_signatures[0].field_name == "SealHere"
    _assert_in_box(_red_pixels(out, tmp_path), (100, 100, 120, 120))
    _assert_valid(out, ident)


def test_bad_placements(seal_png, ident):
    with pytest.raises(InvalidInput) as err:
        SealAppearance(seal_png)
    assert err.value.reason == "BAD_SEAL_PLACEMENT"
    with pytest.raises(InvalidInput) as err:
        SealAppearance(b"not a png", box=(0, 0, 10, 10))
    assert err.value.reason == "BAD_SEAL_PICTURE"
    with pytest.raises(NotFound) as nf:
        sign_pdf(licence_pdf(), ident.signer, appearance=SealAppearance(seal_png, anchor="NO SUCH TEXT"))
    assert nf.value.reason == "ANCHOR_NOT_FOUND"
    with pytest.raises(NotFound) as nf:
        sign_pdf(licence_pdf(), ident.signer, appearance=SealAppearance(seal_png, field="Missing"))
    assert nf.value.reason == "FIELD_NOT_FOUND"
    with pytest.raises(InvalidInput) as err:
        sign_pdf(licence_pdf(), ident.signer, appearance=SealAppearance(seal_png, box=(0, 0, 10, 10), page=3))
    assert err.value.reason == "BAD_SEAL_PLACEMENT"


def test_missing_cjk_font_is_a_fault_of_the_installation(monkeypatch: pytest.MonkeyPatch) -> None:
    """Not the caller's: neither InvalidInput (CLI usage exit, INVALID_ARGUMENT) nor NotFound (NOT_FOUND)."""
    import grpc

    from trustsvc.pdf import appearance
    from trustsvc.server.errors import code_for

    monkeypatch.setattr(appearance.shutil, "which", lambda name: None)
    monkeypatch.setattr(appearance.os.path, "exists", lambda path: False)
    with pytest.raises(appearance.TrustsvcError) as caught:
        appearance.font_file()
    assert caught.value.reason == "CJK_FONT_MISSING"
    assert not isinstance(caught.value, (InvalidInput, NotFound))
    assert code_for(caught.value) == grpc.StatusCode.INTERNAL
