"""Parsed seals and seal signatures: the fields, plus the exact bytes each signature covers."""

from __future__ import annotations

import dataclasses
import datetime as dt


@dataclasses.dataclass(frozen=True)
class ExtDatum:
    oid: str
    critical: bool
    value: bytes


@dataclasses.dataclass(frozen=True)
class ParsedSeal:
    """An SESeal as received. ``signed_bytes`` is what the maker signed (never re-encoded)."""

    structure: str  # "v4" (GB/T 38540) or "v1" (GM/T 0031)
    version: int
    der: bytes
    header_id: str
    vid: str
    es_id: str
    seal_type: int
    name: str
    cert_list_type: int  # 1 certificates, 2 digests
    cert_list: tuple[bytes, ...]
    cert_digests: tuple[tuple[str, bytes], ...]
    create_date: dt.datetime | None
    valid_start: dt.datetime | None
    valid_end: dt.datetime | None
    picture_type: str
    picture_data: bytes
    picture_width_mm: int
    picture_height_mm: int
    ext_datas: tuple[ExtDatum, ...]
    maker_cert: bytes
    sign_alg: str
    signature: bytes
    signed_bytes: bytes
    seal_info_der: bytes


@dataclasses.dataclass(frozen=True)
class ParsedSignature:
    """An SES_Signature as received. ``tbs_bytes`` is what the signer signed."""

    structure: str
    version: int
    der: bytes
    seal: ParsedSeal
    time_info: dt.datetime | None
    time_info_raw: bytes
    data_hash: bytes
    property_info: str
    signer_cert: bytes
    signature_alg: str
    signature: bytes
    tbs_bytes: bytes
    time_stamp: bytes | None
    ext_datas: tuple[ExtDatum, ...]
