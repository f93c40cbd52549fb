"""Seal pictures: check uploaded PNG/GIF/SVG, or draw the standard round red official seal.

The drawn seal: a red ring, the organisation name in CJK on an arc over the top, a five-pointed
star in the middle, an optional horizontal seal name and a code along the bottom. The font is
WenQuanYi Zen Hei (Debian fonts-wqy-zenhei, GPL-2 with a font embedding exception).
"""

from __future__ import annotations

import io
import math
import re
import shutil
import subprocess
import unicodedata
from pathlib import Path
from xml.sax.saxutils import escape

from PIL import Image, ImageDraw, ImageFont

from trustsvc.errors import InvalidInput

MAX_BYTES = 512 * 1024
MAX_PIXELS = 4096
MAX_RING_CHARS = 64  # characters drawn around the ring: each is a rotated glyph (~15 ms), and more cannot be read
RED = (230, 0, 18)
_FONT_PATHS = ("/usr/share/fonts/truetype/wqy/wqy-zenhei.ttc", "/usr/share/fonts/wqy-zenhei/wqy-zenhei.ttc")
_SVG_FORBIDDEN = re.compile(rb"<!DOCTYPE|<!ENTITY|<script|\bon[a-z]+\s*=|javascript:|<foreignObject|"
                            rb"(?:xlink:)?href\s*=\s*[\"'](?!#)", re.I)


def check_upload(data: bytes, *, max_bytes: int = MAX_BYTES, max_pixels: int = MAX_PIXELS) -> str:
    """Return 'PNG', 'GIF' or 'SVG' if ``data`` is an acceptable seal picture; raise InvalidInput."""
    if len(data) > max_bytes:
        raise InvalidInput(f"picture is {len(data)} bytes; the limit is {max_bytes}", reason="PICTURE_TOO_LARGE")
    if data.startswith(b"\x89PNG\r\n\x1a\n") or data.startswith((b"GIF87a", b"GIF89a")):
        try:
            with Image.open(io.BytesIO(data)) as img:
                kind, size = str(img.format), img.size
                img.verify()
        except Exception as exc:  # noqa: BLE001 - Pillow raises many types on bad images
            raise InvalidInput(f"picture does not decode: {exc}", reason="BAD_PICTURE") from None
        if max(size) > max_pixels or min(size) < 16:
            raise InvalidInput(f"picture is {size[0]}x{size[1]} pixels; allowed 16..{max_pixels}",
                               reason="BAD_PICTURE_DIMENSIONS")
        return kind
    text = data.lstrip()
    if text.startswith(b"<?xml") or text.startswith(b"<svg"):
        if _SVG_FORBIDDEN.search(data):
            raise InvalidInput("SVG with DOCTYPE/entities, scripts, event handlers or external references",
                               reason="UNSAFE_SVG")
        import xml.etree.ElementTree as ET

        try:
            root = ET.fromstring(data)
        except (ET.ParseError, ValueError, LookupError) as exc:  # an encoding expat lacks: multi-byte, unknown
            raise InvalidInput(f"SVG does not parse: {exc}", reason="BAD_PICTURE") from None
        if not root.tag.endswith("svg"):
            raise InvalidInput("XML root is not <svg>", reason="BAD_PICTURE")
        return "SVG"
    raise InvalidInput("picture must be PNG, GIF or SVG", reason="BAD_PICTURE_TYPE")


def font_path() -> str:
    """Path of the CJK font (fc-match, then known Debian paths)."""
    if shutil.which("fc-match"):
        out = subprocess.run(["fc-match", "-f", "%{file}", "WenQuanYi Zen Hei"], capture_output=True, text=True)
        if out.returncode == 0 and "wqy" in out.stdout.lower() and Path(out.stdout).exists():
            return out.stdout
    for path in _FONT_PATHS:
        if Path(path).exists():
            return path
    raise InvalidInput("no CJK font: install the Debian package fonts-wqy-zenhei", reason="NO_CJK_FONT")


def _star(cx: float, cy: float, r: float) -> list[tuple[float, float]]:
    points = []
    for i in range(10):
        radius = r if i % 2 == 0 else r * 0.382
        angle = -math.pi / 2 + i * math.pi / 5
        points.append((cx + radius * math.cos(angle), cy + radius * math.sin(angle)))
    return points


def _arc_angles(n: int, span: float = 250.0) -> list[float]:
    """Angles (degrees from 12 o'clock, clockwise) for ``n`` characters centred on the top."""
    if n <= 1:
        return [0.0]
    span = min(span, 22.0 * n)
    return [-span / 2 + span * i / (n - 1) for i in range(n)]


def render_png(org: str, *, name: str = "", code: str = "", diameter_mm: float = 42, dpi: int = 300) -> bytes:
    """The round red seal as PNG at ``dpi`` (transparent background)."""
    if len(org) > MAX_RING_CHARS:
        raise InvalidInput(f"the seal's name is {len(org)} characters; a drawn seal takes at most {MAX_RING_CHARS} "
                           "(or give a picture)", reason="SEAL_NAME_TOO_LONG")
    for text in (org, name, code):  # raqm fails (RuntimeError) on CR, NEL, U+2029 ...; none can be drawn anyway
        if any(unicodedata.category(ch) in ("Cc", "Zl", "Zp") for ch in text):
            raise InvalidInput(f"the seal's text {text[:40]!r} has control characters or line breaks: it cannot be "
                               "drawn (or give a picture)", reason="BAD_SEAL_NAME")
    size = max(64, round(diameter_mm / 25.4 * dpi))
    scale = 4 if size < 800 else 2  # draw large, then downsample for smooth edges
    big = size * scale
    img = Image.new("RGBA", (big, big), (0, 0, 0, 0))
    draw = ImageDraw.Draw(img)
    c, r = big / 2, big / 2
    ring = big * 0.035
    draw.ellipse((ring / 2, ring / 2, big - ring / 2, big - ring / 2), outline=RED, width=round(ring))
    draw.polygon(_star(c, c, r * 0.30), fill=RED)
    font_file = font_path()
    char_size = round(r * 0.26 if len(org) <= 12 else r * 0.22)
    font = ImageFont.truetype(font_file, char_size)
    text_r = r - ring - char_size * 0.62
    for ch, angle in zip(org, _arc_angles(len(org)), strict=True):
        glyph = Image.new("RGBA", (char_size * 2, char_size * 2), (0, 0, 0, 0))
        ImageDraw.Draw(glyph).text((char_size, char_size), ch, font=font, fill=RED, anchor="mm")
        glyph = glyph.rotate(-angle, resample=Image.Resampling.BICUBIC)
        theta = math.radians(angle - 90)
        x, y = c + text_r * math.cos(theta), c + text_r * math.sin(theta)
        img.alpha_composite(glyph, (round(x - char_size), round(y - char_size)))
    if name:
        name_font = ImageFont.truetype(font_file, round(r * 0.17))
        draw.text((c, c + r * 0.52), name, font=name_font, fill=RED, anchor="mm")
    if code:
        code_font = ImageFont.truetype(font_file, round(r * 0.09))
        draw.text((c, c + r * 0.78), code, font=code_font, fill=RED, anchor="mm")
    img = img.resize((size, size), Image.Resampling.LANCZOS)
    return _compact_png(img.getchannel("A"), dpi)


ALPHA_LEVELS = 16  # anti-aliased edges survive; 4-bit palette


def _compact_png(alpha: Image.Image, dpi: int) -> bytes:
    """The one-colour seal as a 4-bit palette PNG: entry i is RED with alpha i/15 (tRNS chunk).

    About a sixth of the RGBA size: the picture is most of a seal's bytes, and every seal signature
    hashes the whole seal, so this also shortens signing and verification.
    """
    top = ALPHA_LEVELS - 1
    index = alpha.point([(v * top + 127) // 255 for v in range(256)])
    pal = Image.frombytes("P", alpha.size, index.tobytes())
    pal.putpalette(bytes(RED[:3]) * ALPHA_LEVELS)
    out = io.BytesIO()
    pal.save(out, "PNG", optimize=True, bits=4, dpi=(dpi, dpi),
             transparency=bytes((i * 255 + top // 2) // top for i in range(ALPHA_LEVELS)))
    return out.getvalue()


def render_svg(org: str, *, name: str = "", code: str = "", diameter_mm: float = 42) -> bytes:
    """The same seal as SVG (text uses the 'WenQuanYi Zen Hei' family), sized in millimetres."""
    r = 100.0
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{diameter_mm}mm" height="{diameter_mm}mm" '
             f'viewBox="0 0 200 200">',
             '<circle cx="100" cy="100" r="96.5" fill="none" stroke="#e60012" stroke-width="7"/>',
             '<polygon fill="#e60012" points="' + " ".join(f"{x:.2f},{y:.2f}" for x, y in _star(100, 100, 30))
             + '"/>']
    size = 26 if len(org) <= 12 else 22
    text_r = r - 7 - size * 0.62
    font = 'font-family="WenQuanYi Zen Hei, sans-serif" fill="#e60012" text-anchor="middle"'
    for ch, angle in zip(org, _arc_angles(len(org)), strict=True):
        theta = math.radians(angle - 90)
        x, y = 100 + text_r * math.cos(theta), 100 + text_r * math.sin(theta)
        parts.append(f'<text {font} font-size="{size}" dominant-baseline="central" x="{x:.2f}" y="{y:.2f}" '
                     f'transform="rotate({angle:.2f} {x:.2f} {y:.2f})">{escape(ch)}</text>')
    if name:
        parts.append(f'<text {font} font-size="17" dominant-baseline="central" x="100" y="152">{escape(name)}</text>')
    if code:
        parts.append(f'<text {font} font-size="9" dominant-baseline="central" x="100" y="178">{escape(code)}</text>')
    parts.append("</svg>")
    return "".join(parts).encode()
