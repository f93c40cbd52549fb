"""Visible seal appearance: a seal picture (PNG with transparency) plus optional CJK text in an embedded font.

Placement is one of: a box (x, y, w, h in PDF points on a page), an existing empty signature field, or
next to an anchor text found on the page (content-stream scan, ``pdftotext -bbox`` as a fallback).
"""

from __future__ import annotations

import dataclasses
import functools
import io
import logging
import math
import os
import re
import shutil
import subprocess
import tempfile
import zlib
from typing import TYPE_CHECKING, Any

from trustsvc.errors import InvalidInput, NotFound, TrustsvcError

if TYPE_CHECKING:
    from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter
    from pyhanko.pdf_utils.reader import PdfFileReader

    from trustsvc.algorithms.signer import Signer

Box = tuple[float, float, float, float]  # x, y (lower left), width, height, in PDF points

logging.getLogger("fontTools.subset").setLevel(logging.ERROR)  # "BDF/FFTM not subset" notes for WenQuanYi

DEFAULT_TEXT = "%(signer)s\n%(ts)s"
FONT_NAME = "WenQuanYi Zen Hei"
# the most a page's content streams may decode to when looking for anchor text: a 400 KB flate bomb made
# 400 MB (about 1 GB of memory, 4 s) before
MAX_CONTENT_BYTES = 32 * 1024 * 1024


@dataclasses.dataclass(frozen=True)
class SealAppearance:
    """Where and how the seal shows. Give exactly one of ``box``, ``field``, ``anchor``.

    ``text`` is a template with ``%(signer)s`` (certificate common name) and ``%(ts)s`` (signing time);
    None or "" shows the picture only. ``size`` is the (w, h) used with ``anchor``. ``seal`` is the registered
    seal (SESeal, as registered) the picture belongs to: the signature then binds it in a signed attribute
    (``trustsvc.pdf.seal_binding``), so a verifier can tell and check which seal was stamped.
    """

    picture: bytes
    page: int = 0
    box: Box | None = None
    field: str | None = None
    anchor: str | None = None
    size: tuple[float, float] = (120.0, 120.0)
    gap: float = 6.0
    text: str | None = None
    font_size: int = 9
    font_file: str | None = None
    seal: bytes | None = dataclasses.field(default=None, repr=False)

    def __post_init__(self) -> None:
        given = [x for x in (self.box, self.field, self.anchor) if x is not None]
        if len(given) != 1:
            raise InvalidInput("a seal appearance needs exactly one of box, field or anchor",
                               reason="BAD_SEAL_PLACEMENT")
        if self.box is not None and (len(self.box) != 4 or not all(math.isfinite(v) for v in self.box)
                                     or self.box[2] <= 0 or self.box[3] <= 0):
            raise InvalidInput(f"seal box {self.box!r} must be (x, y, w, h) with w, h > 0",
                               reason="BAD_SEAL_PLACEMENT")
        if self.page < 0:
            raise InvalidInput("page index must be >= 0", reason="BAD_SEAL_PLACEMENT")
        _load_picture(self.picture)

    def pyhanko_style(self, writer: IncrementalPdfFileWriter, signer: Signer,
                      field_name: str) -> tuple[Any, Any]:
        """(stamp style, new field spec or None when an existing field is used) for pyHanko's PdfSigner."""
        from pyhanko import stamp
        from pyhanko.pdf_utils import layout, text
        from pyhanko.pdf_utils.images import PdfImage
        from pyhanko.sign import fields

        image = PdfImage(_load_picture(self.picture), writer=writer)
        bg_layout = layout.SimpleBoxLayoutRule(x_align=layout.AxisAlignment.ALIGN_MID,
                                               y_align=layout.AxisAlignment.ALIGN_MID)
        if self.text:
            style: Any = stamp.TextStampStyle(
                stamp_text=self.text, border_width=0, background=image, background_opacity=1.0,
                background_layout=bg_layout, timestamp_format="%Y-%m-%d %H:%M:%S",
                text_box_style=text.TextBoxStyle(font=cjk_font_factory(self.font_file, self.font_size),
                                                 font_size=self.font_size),
                inner_content_layout=layout.SimpleBoxLayoutRule(
                    x_align=layout.AxisAlignment.ALIGN_MID, y_align=layout.AxisAlignment.ALIGN_MIN,
                    margins=layout.Margins(2, 2, 2, 2)))
        else:
            style = stamp.StaticStampStyle(border_width=0, background=image, background_opacity=1.0,
                                           background_layout=bg_layout)
        if self.field is not None:
            _check_empty_field(writer, self.field)
            return style, None
        x, y, w, h = self.box if self.box is not None else self.anchor_box(writer.prev)
        pages = int(writer.prev.root["/Pages"]["/Count"])
        if self.page >= pages:
            raise InvalidInput(f"page index {self.page} out of range: the document has {pages} pages",
                               reason="BAD_SEAL_PLACEMENT")
        rect = (round(x), round(y), round(x + w), round(y + h))
        return style, fields.SigFieldSpec(field_name, on_page=self.page, box=rect)

    def anchor_box(self, reader: PdfFileReader) -> Box:
        """The seal box to the right of the anchor text, vertically centred on it."""
        assert self.anchor is not None
        ax, ay, aw, ah = find_text(reader, self.page, self.anchor)
        w, h = self.size
        return ax + aw + self.gap, ay + ah / 2 - h / 2, w, h

    def text_params(self, signer: Signer) -> dict[str, str]:
        """Values for the text template (the signer's common name)."""
        from asn1crypto import x509

        try:
            cn = x509.Certificate.load(signer.certificate_chain[0]).subject.native.get("common_name", "")
        except (ValueError, IndexError):
            cn = ""
        return {"signer": str(cn)}


def _load_picture(data: bytes) -> Any:
    from PIL import Image

    try:
        img: Image.Image = Image.open(io.BytesIO(data))
        img.load()
    except Exception as exc:  # Pillow raises many kinds on bad input
        raise InvalidInput(f"seal picture is not a readable image: {exc}", reason="BAD_SEAL_PICTURE") from None
    if img.mode not in ("RGB", "RGBA", "L", "LA"):
        img = img.convert("RGBA")
    return img


def _check_empty_field(writer: IncrementalPdfFileWriter, name: str) -> None:
    from pyhanko.sign import fields

    for fq_name, value, _ in fields.enumerate_sig_fields(writer):
        if fq_name == name:
            if value is not None:
                raise InvalidInput(f"signature field {name!r} is already signed", reason="FIELD_ALREADY_SIGNED")
            return
    raise NotFound(f"no signature field named {name!r} in the document", reason="FIELD_NOT_FOUND")


def font_file() -> str:
    """Path of the WenQuanYi Zen Hei font (fc-match, then the Debian path)."""
    path = ""
    if shutil.which("fc-match"):
        path = subprocess.run(["fc-match", "-f", "%{file}", FONT_NAME], capture_output=True, text=True).stdout
    if not path or "wqy" not in path.lower():
        path = "/usr/share/fonts/truetype/wqy/wqy-zenhei.ttc"
    if not os.path.exists(path):
        # the service's installation, not the request: INTERNAL over gRPC, not NOT_FOUND
        raise TrustsvcError(f"CJK font {FONT_NAME} not found: install fonts-wqy-zenhei", reason="CJK_FONT_MISSING")
    return path


@functools.lru_cache(maxsize=4)
def _single_font(path: str) -> str:
    """pyHanko's OpenType engine reads one font, not a collection: extract the first face of a .ttc once."""
    if not path.lower().endswith(".ttc"):
        return path
    from fontTools.ttLib import TTCollection

    out = os.path.join(tempfile.gettempdir(), f"trustsvc-{os.getuid()}-{os.path.basename(path)[:-4]}.ttf")
    if not os.path.exists(out) or os.path.getmtime(out) < os.path.getmtime(path):
        tmp = f"{out}.{os.getpid()}"
        TTCollection(path).fonts[0].save(tmp)
        os.replace(tmp, out)
    return out


def cjk_font_factory(path: str | None = None, size: int = 9) -> Any:
    """A pyHanko font engine factory embedding a subset of the CJK font (needs pyHanko[opentype])."""
    try:
        from pyhanko.pdf_utils.font.opentype import GlyphAccumulatorFactory
    except ImportError as exc:
        raise TrustsvcError(f"CJK text needs pyHanko's opentype extra (uharfbuzz, fonttools): {exc}",
                            reason="CJK_FONT_MISSING") from None
    return GlyphAccumulatorFactory(_single_font(path or font_file()), font_size=size)


# --- anchor text ---------------------------------------------------------------------------------------------

_TOKEN = re.compile(rb"\((?:\\.|[^\\)])*\)|\[[^\]]*\]|<[0-9A-Fa-f\s]*>|/[^\s/\[\]()<>]+|[-+]?\d*\.?\d+|[A-Za-z'\"*]+")
_STRING = re.compile(rb"\((?:\\.|[^\\)])*\)")
_ESC = {b"n": b"\n", b"r": b"\r", b"t": b"\t", b"b": b"\b", b"f": b"\f"}


def _unescape(lit: bytes) -> bytes:
    body = lit[1:-1]
    return re.sub(rb"\\([nrtbf()\\]|[0-7]{1,3})",
                  lambda m: _ESC.get(m.group(1), bytes([int(m.group(1), 8) & 0xFF])
                                     if m.group(1)[:1].isdigit() else m.group(1)), body)


def _scan_content(data: bytes, needle: str) -> Box | None:
    """Approximate box of ``needle`` in simple text (Tm/Td/TD/T*/Tf with Tj/TJ): Helvetica-like widths."""
    stack: list[bytes] = []
    x = y = lx = ly = 0.0
    size, leading = 12.0, 0.0
    for m in _TOKEN.finditer(data):
        tok = m.group(0)
        if not tok[:1].isalpha() and tok[:1] not in b"'\"*":
            stack.append(tok)
            continue
        nums: list[float] = []
        for s in stack:
            try:
                nums.append(float(s))
            except ValueError:
                nums.append(0.0)
        if tok == b"BT":
            x = y = lx = ly = 0.0
        elif tok == b"Tm" and len(nums) >= 6:
            x = lx = nums[-2]
            y = ly = nums[-1]
        elif tok in (b"Td", b"TD") and len(nums) >= 2:
            lx, ly = lx + nums[-2], ly + nums[-1]
            x, y = lx, ly
            if tok == b"TD":
                leading = -nums[-1]
        elif tok == b"TL" and nums:
            leading = nums[-1]
        elif tok == b"T*":
            ly -= leading
            x, y = lx, ly
        elif tok == b"Tf" and nums:
            size = nums[-1] or size
        elif tok in (b"Tj", b"'", b"\"", b"TJ") and stack:
            if tok in (b"'", b"\""):
                ly -= leading
                x, y = lx, ly
            text = b"".join(_unescape(s) for s in _STRING.findall(stack[-1])).decode("latin-1")
            idx = text.find(needle)
            if idx >= 0:
                return x + 0.5 * size * idx, y, 0.5 * size * len(needle), size
            x += 0.5 * size * len(text)
        stack.clear()
    return None


def _pdftotext_box(reader: PdfFileReader, page: int, needle: str) -> Box | None:
    tool = shutil.which("pdftotext")
    if tool is None:
        return None
    stream = reader.stream
    stream.seek(0)
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "in.pdf")
        with open(path, "wb") as f:
            shutil.copyfileobj(stream, f)
        html = subprocess.run([tool, "-bbox", "-f", str(page + 1), "-l", str(page + 1), path, "-"],
                              capture_output=True, text=True, timeout=60).stdout
    page_size = re.search(r'<page width="[\d.]+" height="([\d.]+)"', html)
    height = float(page_size.group(1)) if page_size else 842.0
    for m in re.finditer(r'<word xMin="([\d.]+)" yMin="([\d.]+)" xMax="([\d.]+)" yMax="([\d.]+)">([^<]*)</word>', html):
        if needle in m.group(5):
            x0, y0, x1, y1 = (float(m.group(i)) for i in range(1, 5))
            return x0, height - y1, x1 - x0, y1 - y0
    return None


def _content_data(stream: Any, room: int) -> bytes:
    """A content stream's decoded bytes; InvalidInput PDF_CONTENT_TOO_LARGE past ``room`` (Flate is decoded
    only that far)."""
    filters = stream.get("/Filter")
    names = [filters] if isinstance(filters, str) else list(filters or [])
    if names == ["/FlateDecode"] and "/DecodeParms" not in stream:
        data = zlib.decompressobj().decompress(stream.encoded_data, room + 1)
    else:
        data = stream.data
    if len(data) > room:
        raise InvalidInput(f"the page's content decodes to more than {MAX_CONTENT_BYTES} bytes",
                           reason="PDF_CONTENT_TOO_LARGE")
    return data


def find_text(reader: PdfFileReader, page: int, needle: str) -> Box:
    """Box (PDF points) of the first occurrence of ``needle`` on page ``page``; NotFound if absent."""
    from pyhanko.pdf_utils import generic

    if not needle:
        raise InvalidInput("anchor text must not be empty", reason="BAD_SEAL_PLACEMENT")
    try:
        page_obj = reader.root["/Pages"]
        pages = int(page_obj["/Count"])
        if page >= pages:
            raise InvalidInput(f"page index {page} out of range: the document has {pages} pages",
                               reason="BAD_SEAL_PLACEMENT")
        page_ref, _ = reader.find_page_for_modification(page)
        contents = page_ref.get_object().get("/Contents")
        parts = contents if isinstance(contents, generic.ArrayObject) else [contents] if contents else []
        decoded: list[bytes] = []
        room = MAX_CONTENT_BYTES
        for p in parts:
            decoded.append(_content_data(p.get_object(), room))
            room -= len(decoded[-1])
        data = b"\n".join(decoded)
    except InvalidInput:
        raise
    except Exception:  # unreadable content: try poppler
        data = b""
    box = _scan_content(data, needle) if data else None
    if box is None:
        box = _pdftotext_box(reader, page, needle)
    if box is None:
        raise NotFound(f"anchor text {needle!r} not found on page {page + 1}", reason="ANCHOR_NOT_FOUND")
    return box
