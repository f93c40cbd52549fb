"""Visible seal for the fast path: the picture is encoded once; each document gets a few small objects.

The seal picture becomes a Flate-compressed /DeviceRGB image XObject with its alpha channel as a /SMask,
compressed once per ``PreparedSeal``. Per document the already encoded streams are added as they are, plus a
small form XObject (one ``cm`` and one ``Do``) that fits the picture, centred, into the widget rectangle.
"""

from __future__ import annotations

import zlib
from typing import Any

from pyhanko.pdf_utils import generic
from pyhanko.pdf_utils.form_tools import annot_width_height, get_single_field_annot
from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter
from pyhanko.sign import fields

from trustsvc.errors import InvalidInput
from trustsvc.pdf.appearance import SealAppearance, _check_empty_field, _load_picture

MAX_SIDE_PX = 600  # larger pictures are scaled down once: ~4 px per point for a 150 pt seal
_N = generic.pdf_name


class PreparedSeal:
    """A ``SealAppearance`` (box, field or anchor; picture only) ready to be stamped into many documents."""

    def __init__(self, appearance: SealAppearance) -> None:
        if appearance.text:
            raise InvalidInput("the fast path draws the seal picture only; use sign_pdf for seal text",
                               reason="FAST_SEAL_TEXT")
        self.appearance = appearance
        img = _load_picture(appearance.picture)
        if max(img.size) > MAX_SIDE_PX:
            img = img.copy()
            img.thumbnail((MAX_SIDE_PX, MAX_SIDE_PX))
        self.width_px, self.height_px = img.size
        has_alpha = img.mode in ("RGBA", "LA")
        rgb = img.convert("RGB")
        self._image_dict = {
            "/Type": _N("/XObject"), "/Subtype": _N("/Image"), "/Width": generic.NumberObject(self.width_px),
            "/Height": generic.NumberObject(self.height_px), "/ColorSpace": _N("/DeviceRGB"),
            "/BitsPerComponent": generic.NumberObject(8), "/Filter": _N("/FlateDecode")}
        self._image_data = zlib.compress(rgb.tobytes(), 6)
        self._smask_data = zlib.compress(img.getchannel("A").tobytes(), 6) if has_alpha else None

    def field_spec(self, writer: IncrementalPdfFileWriter, field_name: str) -> fields.SigFieldSpec | None:
        """A new visible field for a box or anchor placement; None when an existing field is signed."""
        app = self.appearance
        if app.field is not None:
            _check_empty_field(writer, app.field)
            return None
        x, y, w, h = app.box if app.box is not None else app.anchor_box(writer.prev)
        pages = int(writer.prev.root["/Pages"]["/Count"])
        if app.page >= pages:
            raise InvalidInput(f"page index {app.page} out of range: the document has {pages} pages",
                               reason="BAD_SEAL_PLACEMENT")
        return fields.SigFieldSpec(field_name, on_page=app.page, box=(round(x), round(y), round(x + w), round(y + h)))

    def apply(self, writer: IncrementalPdfFileWriter, field: generic.DictionaryObject) -> None:
        """Give the field's widget the seal as its normal appearance."""
        widget = get_single_field_annot(field)
        w, h = annot_width_height(widget)
        if not (w > 0 and h > 0):
            raise InvalidInput("the signature field has no area to show the seal in", reason="BAD_SEAL_PLACEMENT")
        image = dict(self._image_dict)
        if self._smask_data is not None:
            smask = generic.StreamObject(_names(self._smask_dict()), encoded_data=self._smask_data)
            image["/SMask"] = writer.add_object(smask)
        image_ref = writer.add_object(generic.StreamObject(_names(image), encoded_data=self._image_data))
        scale = min(w / self.width_px, h / self.height_px)
        dw, dh = self.width_px * scale, self.height_px * scale
        content = f"q {dw:.3f} 0 0 {dh:.3f} {(w - dw) / 2:.3f} {(h - dh) / 2:.3f} cm /Seal Do Q".encode()
        form: dict[str, Any] = {
            "/Type": _N("/XObject"), "/Subtype": _N("/Form"),
            "/BBox": generic.ArrayObject([generic.FloatObject(0), generic.FloatObject(0),
                                          generic.FloatObject(w), generic.FloatObject(h)]),
            "/Resources": generic.DictionaryObject(
                {_N("/XObject"): generic.DictionaryObject({_N("/Seal"): image_ref})})}
        form_ref = writer.add_object(generic.StreamObject(_names(form), stream_data=content))
        widget[_N("/AP")] = generic.DictionaryObject({_N("/N"): form_ref})
        writer.update_container(widget)

    def _smask_dict(self) -> dict[str, Any]:
        return {"/Type": _N("/XObject"), "/Subtype": _N("/Image"), "/Width": generic.NumberObject(self.width_px),
                "/Height": generic.NumberObject(self.height_px), "/ColorSpace": _N("/DeviceGray"),
                "/BitsPerComponent": generic.NumberObject(8), "/Filter": _N("/FlateDecode")}


def _names(d: dict[str, Any]) -> dict[generic.NameObject, Any]:
    return {_N(k): v for k, v in d.items()}
