"""Make a GB/T 38540 (v4) seal: the seal-making authority signs DER(SES_SealInfo) with its key."""

from __future__ import annotations

import dataclasses
import datetime as dt
import enum
from collections.abc import Sequence

from trustsvc.algorithms import oids
from trustsvc.algorithms.signature_algorithm import SignatureAlgorithm
from trustsvc.algorithms.signer import Signer
from trustsvc.algorithms.sm3 import sm3
from trustsvc.errors import InvalidInput, KeyMismatch
from trustsvc.pki.certificate import Certificate
from trustsvc.seal import asn1

UTC = dt.UTC
CERT_LIST_CERTS, CERT_LIST_DIGESTS = 1, 2
PICTURE_TYPES = ("PNG", "GIF", "SVG")


class SealType(enum.IntEnum):
    """Seal kinds (trustsvc's codes; GB/T 38540 leaves the integer values to the application)."""

    OFFICIAL = 1  # 公章 (单位法定名称章)
    FINANCE = 2  # 财务专用章
    INVOICE = 3  # 发票专用章
    CONTRACT = 4  # 合同专用章
    LEGAL_REPRESENTATIVE = 5  # 法定代表人名章
    PERSONAL = 6  # 个人印章

    @classmethod
    def parse(cls, value: str | int) -> SealType:
        aliases = {"legal-representative": "LEGAL_REPRESENTATIVE", "legal_representative": "LEGAL_REPRESENTATIVE"}
        try:
            if isinstance(value, int) or str(value).isdigit():
                return cls(int(value))
            return cls[aliases.get(str(value).lower(), str(value).upper())]
        except (KeyError, ValueError):
            raise InvalidInput(f"unknown seal type {value!r}; known: "
                               + ", ".join(t.name.lower() for t in cls), reason="BAD_SEAL_TYPE") from None


@dataclasses.dataclass(frozen=True)
class Picture:
    """The seal image and its physical size in millimetres."""

    kind: str
    data: bytes
    width_mm: int
    height_mm: int


@dataclasses.dataclass(frozen=True)
class SealSpec:
    es_id: str
    seal_type: SealType
    name: str
    holder_certs: Sequence[bytes]
    valid_start: dt.datetime
    valid_end: dt.datetime
    picture: Picture
    cert_list_type: int = CERT_LIST_CERTS
    vid: str = "trustsvc"
    ext_datas: Sequence[tuple[str, bool, bytes]] = ()
    created: dt.datetime | None = None


def _utc(t: dt.datetime) -> dt.datetime:
    t = t if t.tzinfo else t.replace(tzinfo=UTC)
    return t.astimezone(UTC).replace(microsecond=0)


def _check(spec: SealSpec, maker: Signer, maker_cert: Certificate) -> None:
    if maker.algorithm is not SignatureAlgorithm.SM2_SM3:
        raise InvalidInput("seal makers sign with SM2-with-SM3", reason="UNSUPPORTED_ALGORITHM")
    if maker.public_key != maker_cert.public_key:
        raise KeyMismatch("the maker key does not match the maker certificate", reason="KEY_MISMATCH")
    if not spec.es_id or not spec.es_id.isascii() or len(spec.es_id) > 64:
        raise InvalidInput("esID must be 1..64 ASCII characters", reason="BAD_ES_ID")
    if not spec.name:
        raise InvalidInput("a seal needs a name", reason="BAD_SEAL_NAME")
    if not spec.holder_certs:
        raise InvalidInput("a seal needs at least one holder certificate", reason="NO_HOLDER_CERT")
    for der in spec.holder_certs:
        Certificate(der)
    if _utc(spec.valid_end) <= _utc(spec.valid_start):
        raise InvalidInput("validEnd must be later than validStart", reason="BAD_VALIDITY")
    if spec.picture.kind.upper() not in PICTURE_TYPES:
        raise InvalidInput(f"picture type must be one of {PICTURE_TYPES}", reason="BAD_PICTURE_TYPE")
    if not (0 < spec.picture.width_mm <= 1000 and 0 < spec.picture.height_mm <= 1000):
        raise InvalidInput("picture size must be 1..1000 mm", reason="BAD_PICTURE_SIZE")
    if spec.cert_list_type not in (CERT_LIST_CERTS, CERT_LIST_DIGESTS):
        raise InvalidInput("certListType is 1 (certificates) or 2 (SM3 digests)", reason="BAD_CERT_LIST_TYPE")


def seal_info(spec: SealSpec) -> asn1.SealInfoV4:
    """The SES_SealInfo structure for ``spec``."""
    if spec.cert_list_type == CERT_LIST_DIGESTS:
        cert_list = asn1.CertDigestList([{"type": "sm3", "value": sm3(c)} for c in spec.holder_certs])
    else:
        cert_list = asn1.CertList([asn1.OctetString(c) for c in spec.holder_certs])
    created = _utc(spec.created or dt.datetime.now(UTC))
    info: dict[str, object] = {
        "header": {"id": "ES", "version": 4, "vid": spec.vid},
        "es_id": spec.es_id,
        "property": {
            "type": int(spec.seal_type), "name": spec.name, "cert_list_type": spec.cert_list_type,
            "cert_list": asn1.Any.load(cert_list.dump()),
            "create_date": asn1.SealTime(name="general", value=created),
            "valid_start": asn1.SealTime(name="general", value=_utc(spec.valid_start)),
            "valid_end": asn1.SealTime(name="general", value=_utc(spec.valid_end)),
        },
        "picture": {"type": spec.picture.kind.upper(), "data": spec.picture.data,
                    "width": spec.picture.width_mm, "height": spec.picture.height_mm},
    }
    if spec.ext_datas:
        info["ext_datas"] = [{"extn_id": oid, "critical": crit, "extn_value": value}
                             for oid, crit, value in spec.ext_datas]
    return asn1.SealInfoV4(info)


def make_seal(spec: SealSpec, maker: Signer, maker_cert: Certificate | bytes) -> bytes:
    """DER SESeal v4 signed by ``maker`` (whose certificate is ``maker_cert``)."""
    cert = maker_cert if isinstance(maker_cert, Certificate) else Certificate(maker_cert)
    _check(spec, maker, cert)
    info_der = seal_info(spec).dump(force=True)
    signature = maker.sign(info_der)
    seal = asn1.SESealV4({"eseal_info": asn1.SealInfoV4.load(info_der), "cert": cert.der,
                          "sign_alg": oids.SM2_WITH_SM3, "signed_value": signature})
    return seal.dump()
