"""The picture of a registered electronic seal (GB/T 38540), for a visible PDF signature.

One check for the CLI and the daemon: the seal exists (NotFound SEAL_NOT_FOUND), is active
(Conflict SEAL_NOT_ACTIVE, the message names its state), is within its validity (SEAL_NOT_VALID_NOW),
lists the signer's certificate in certList, itself or by its SM3/SHA-256 digest
(SIGNER_NOT_IN_CERT_LIST: a seal may only be stamped by its holders), and has a raster picture
(SEAL_PICTURE_UNSUPPORTED). The reasons are those of ``trustsvc.seal.sign``.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Callable

from trustsvc.errors import Conflict
from trustsvc.pdf.seal_binding import checked_seal
from trustsvc.seal.model import ParsedSeal
from trustsvc.seal.parse import parse_seal
from trustsvc.seal.registry import SealRegistry

MM_TO_PT = 72 / 25.4
RASTER_PICTURES = ("PNG", "GIF", "JPG", "JPEG", "BMP")


@dataclasses.dataclass(frozen=True)
class SealPicture:
    """A registered seal's picture and its printed size in PDF points; ``der`` is the seal as registered (the
    signature binds it: ``SealAppearance.seal``)."""

    es_id: str
    picture: bytes
    size: tuple[float, float]
    der: bytes


def registered_seal_picture(registry: SealRegistry, es_id: str, signer_cert: bytes,
                            at: dt.datetime | None = None,
                            parse: Callable[[bytes], ParsedSeal] = parse_seal) -> SealPicture:
    """The picture of seal ``es_id`` for a signer whose certificate is ``signer_cert``; refuses unusable
    seals. ``parse`` may be a caching parser (the daemon keeps parsed seals)."""
    record = registry.get(es_id)  # NotFound SEAL_NOT_FOUND
    now = at or dt.datetime.now(dt.UTC)
    state = "expired" if record.status in ("active", "suspended") and record.valid_end < now else record.status
    if state != "active":
        raise Conflict(f"seal {es_id} is {state}: only an active seal may stamp documents", reason="SEAL_NOT_ACTIVE")
    seal = checked_seal(record.der, signer_cert, now, parse=parse)  # SEAL_NOT_VALID_NOW, SIGNER_NOT_IN_CERT_LIST
    if seal.picture_type.strip().upper() not in RASTER_PICTURES:
        raise Conflict(f"seal {es_id} has a {seal.picture_type!r} picture; a visible stamp needs a raster "
                       "picture (PNG, GIF, JPEG, BMP)", reason="SEAL_PICTURE_UNSUPPORTED")
    size = (seal.picture_width_mm * MM_TO_PT, seal.picture_height_mm * MM_TO_PT)
    return SealPicture(es_id, seal.picture_data, size if min(size) > 0 else (120.0, 120.0), record.der)

