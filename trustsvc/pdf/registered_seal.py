"""The picture of a registered electronic seal (GB/T 38540), for a visible PDF signature.

The seal must be active in the registry, within its validity period, and list the signer's certificate
(certList: the certificate itself, or its SM3/SHA-256 digest); its picture must be PNG or GIF.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib

from trustsvc.algorithms.sm3 import sm3
from trustsvc.errors import InvalidInput, NotFound
from trustsvc.seal.parse import parse_seal
from trustsvc.seal.registry import SealRegistry

MM_TO_PT = 72 / 25.4
_DIGESTS = {"sm3": sm3, "1.2.156.10197.1.401": sm3, "sha256": lambda b: hashlib.sha256(b).digest()}


@dataclasses.dataclass(frozen=True)
class SealPicture:
    """A registered seal's picture and its printed size in PDF points."""

    es_id: str
    picture: bytes
    size: tuple[float, float]


def registered_seal_picture(registry: SealRegistry, es_id: str, signer_cert: bytes,
                            at: dt.datetime | None = None) -> SealPicture:
    """The picture of seal ``es_id`` for a signer whose certificate is ``signer_cert``; refuses unusable seals."""
    try:
        record = registry.get(es_id)
    except NotFound as exc:
        raise InvalidInput(exc.message, reason=exc.reason) from None
    status = registry.status(es_id)
    if status != "active":
        raise InvalidInput(f"seal {es_id} is {status}: only an active seal may be shown", reason="SEAL_NOT_ACTIVE")
    seal = parse_seal(record.der)
    now = at or dt.datetime.now(dt.UTC)
    if (seal.valid_start and now < seal.valid_start) or (seal.valid_end and now > seal.valid_end):
        raise InvalidInput(f"seal {es_id} is not valid now ({seal.valid_start} .. {seal.valid_end})",
                           reason="SEAL_NOT_VALID_NOW")
    if not _lists(seal.cert_list_type, seal.cert_list, seal.cert_digests, signer_cert):
        raise InvalidInput(f"the signing certificate is not in seal {es_id}'s certList",
                           reason="SIGNER_NOT_IN_CERT_LIST")
    kind = seal.picture_type.strip().upper()
    if kind not in ("PNG", "GIF"):
        raise InvalidInput(f"seal {es_id} has a {seal.picture_type!r} picture; PDF seals need PNG or GIF",
                           reason="BAD_SEAL_PICTURE")
    size = (seal.picture_width_mm * MM_TO_PT, seal.picture_height_mm * MM_TO_PT)
    return SealPicture(es_id, seal.picture_data, size if min(size) > 0 else (120.0, 120.0))


def _lists(list_type: int, certs: tuple[bytes, ...], digests: tuple[tuple[str, bytes], ...], cert: bytes) -> bool:
    if list_type == 2:
        for kind, value in digests:
            fn = _DIGESTS.get(kind.strip().lower())
            if fn is not None and fn(cert) == value:
                return True
        return False
    return cert in certs
