"""Recognise and parse seal files: SESeal / SES_Signature v4 and v1, and say what else a file is.

Anything that is not a seal structure raises ``NotASeal`` with a reason naming what was found
(GM/T 0010 or PKCS#7 SignedData, an OFD zip, a bare SM2 signature ...). Only trustsvc errors escape.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from asn1crypto import core, parser

from trustsvc.algorithms import oids
from trustsvc.errors import DecodeError
from trustsvc.seal import asn1
from trustsvc.seal.model import ExtDatum, ParsedSeal, ParsedSignature

UTC = dt.UTC
_MAX_DEPTH = 64


class NotASeal(DecodeError):
    """The input is well-formed but not a GB/T 38540 / GM/T 0031 structure."""

    reason = "NOT_SES"

    def __init__(self, message: str, *, kind: str, reason: str | None = None) -> None:
        super().__init__(message, reason=reason)
        self.kind = kind


_CMS_TYPES = {
    oids.GMT0010_SIGNED_DATA: "GM/T 0010 SignedData",
    oids.CMS_SIGNED_DATA: "PKCS#7 SignedData",
    oids.GMT0010_DATA: "GM/T 0010 Data",
    oids.CMS_DATA: "PKCS#7 Data",
}


def _tlvs(data: bytes) -> list[tuple[int, int, int, bytes, bytes]]:
    """Children of a constructed value's contents as (class, method, tag, header, contents)."""
    out = []
    pos = 0
    while pos < len(data):
        (cls, method, tag, header, contents, _trailer), pos = parser._parse(data, len(data), pos)
        out.append((cls, method, tag, header, contents))
    return out


def sniff(data: bytes) -> str:
    """One of 'seal-v4', 'seal-v1', 'signature-v4', 'signature-v1'; raises NotASeal or DecodeError."""
    try:
        return _sniff(data)
    except DecodeError:
        raise
    except Exception as exc:  # noqa: BLE001 - hostile nesting
        raise DecodeError(f"not DER: {exc}", reason="BAD_DER") from None


def _sniff(data: bytes) -> str:
    if data[:4] == b"PK\x03\x04":
        raise NotASeal("a ZIP archive (an OFD document?), not a seal structure: extract "
                       "Doc_N/Signs/Sign_N/SignedValue.dat", kind="ofd-zip", reason="NOT_SES_OFD")
    try:
        cls, method, tag, _header, contents, trailer = parser.parse(data, strict=True)
        children = _tlvs(contents) if method else []
    except (ValueError, TypeError, KeyError, IndexError, OverflowError) as exc:
        raise DecodeError(f"not DER: {exc}", reason="BAD_DER") from None
    if (cls, tag, method) != (0, 16, 1) or not children:
        raise NotASeal("not a SEQUENCE: not a seal structure", kind="unknown")
    first = children[0]
    if first[:3] == (0, 0, 6):
        oid = core.ObjectIdentifier.load(first[3] + first[4]).dotted
        kind = _CMS_TYPES.get(oid, f"ContentInfo {oid}")
        raise NotASeal(f"{kind} (a CMS digital signature), not a GB/T 38540 seal structure",
                       kind="cms", reason="NOT_SES_CMS")
    if len(children) == 2 and all(c[:3] == (0, 0, 2) for c in children):
        raise NotASeal("a bare SM2 signature SEQUENCE{r, s}, not a seal structure", kind="sm2-signature",
                       reason="NOT_SES_BARE_SIGNATURE")
    if first[:3] != (0, 1, 16):
        raise NotASeal("first element is not a SEQUENCE: not a seal structure", kind="unknown")
    inner = _tlvs(first[4])
    if not inner:
        raise NotASeal("empty first element: not a seal structure", kind="unknown")
    if inner[0][:3] == (0, 1, 16):  # SES_SealInfo starts with SES_Header
        if len(children) >= 2 and children[1][:3] == (0, 0, 4):
            return "seal-v4"
        if len(children) >= 2 and children[1][:3] == (0, 1, 16):
            return "seal-v1"
    elif inner[0][:3] == (0, 0, 2) and len(inner) >= 2 and inner[1][:3] == (0, 1, 16):  # TBS_Sign
        seal_children = _tlvs(inner[1][4])
        if len(seal_children) >= 2 and seal_children[1][:3] == (0, 0, 4):
            return "signature-v4"
        if len(seal_children) >= 2 and seal_children[1][:3] == (0, 1, 16):
            return "signature-v1"
    raise NotASeal("SEQUENCE layout matches neither SESeal nor SES_Signature", kind="unknown")


def parse(data: bytes) -> ParsedSeal | ParsedSignature:
    """Parse a seal or a seal signature (v4 or v1)."""
    kind = sniff(data)
    return parse_seal(data) if kind.startswith("seal") else parse_signature(data)


def parse_seal(data: bytes) -> ParsedSeal:
    kind = sniff(data)
    if not kind.startswith("seal"):
        raise NotASeal("a seal signature (SES_Signature), not a seal", kind=kind, reason="NOT_A_SEAL")
    spec = asn1.SESealV4 if kind == "seal-v4" else asn1.SESealV1
    return _guard(lambda: _seal(spec.load(data, strict=True), data))


def parse_signature(data: bytes) -> ParsedSignature:
    kind = sniff(data)
    if not kind.startswith("signature"):
        raise NotASeal("a seal (SESeal), not a seal signature", kind=kind, reason="NOT_A_SIGNATURE")
    if kind == "signature-v4":
        return _guard(lambda: _signature_v4(data))
    return _guard(lambda: _signature_v1(data))


def _guard(fn: Any) -> Any:
    try:
        return fn()
    except DecodeError:
        raise
    except RecursionError:
        raise DecodeError("seal structure nested too deeply", reason="BAD_SEAL_STRUCTURE") from None
    except Exception as exc:  # asn1crypto raises several types on hostile input
        raise DecodeError(f"malformed seal structure: {type(exc).__name__}: {exc}",
                          reason="BAD_SEAL_STRUCTURE") from None


def _time(value: asn1.SealTime) -> dt.datetime:
    t = value.chosen.native
    if isinstance(t, dt.datetime) and t.tzinfo is None:
        t = t.replace(tzinfo=UTC)
    return t


def _bits(value: core.OctetBitString) -> bytes:
    """Bytes of a BIT STRING holding whole octets (a signature, a hash, a time): its unused-bits octet must be 0.

    A non-zero count would mean the value is not the octets that were signed or hashed, and an edit
    of that octet alone must not leave a seal verifying."""
    contents = value.contents or b""
    if not contents:
        raise DecodeError("empty BIT STRING", reason="BAD_SEAL_STRUCTURE")
    if contents[0] != 0:
        raise DecodeError(f"BIT STRING with {contents[0]} unused bits where whole octets are required",
                          reason="BAD_SEAL_STRUCTURE")
    return bytes(contents[1:])


def _exts(value: asn1.ExtensionDatas | core.Void) -> tuple[ExtDatum, ...]:
    if isinstance(value, core.Void):
        return ()
    return tuple(ExtDatum(e["extn_id"].dotted, bool(e["critical"].native), bytes(e["extn_value"].native))
                 for e in value)


def _cert_list(prop: core.Sequence, list_type: int) -> tuple[tuple[bytes, ...], tuple[tuple[str, bytes], ...]]:
    raw = prop["cert_list"].dump()
    if list_type == 2:
        digests = asn1.CertDigestList.load(raw, strict=True)
        return (), tuple((str(d["type"].native), bytes(d["value"].native)) for d in digests)
    certs = asn1.CertList.load(raw, strict=True)
    return tuple(bytes(c.contents or b"") for c in certs), ()


def _seal(seal: asn1.SESealV4 | asn1.SESealV1, data: bytes) -> ParsedSeal:
    info = seal["eseal_info"]
    header, prop, pic = info["header"], info["property"], info["picture"]
    v4 = isinstance(seal, asn1.SESealV4)
    list_type = int(prop["cert_list_type"].native) if v4 else 1
    certs, digests = _cert_list(prop, list_type)
    info_der = info.dump()
    if v4:
        maker_cert, alg = bytes(seal["cert"].native), seal["sign_alg"].dotted
        signature, signed = _bits(seal["signed_value"]), info_der
    else:
        si = seal["sign_info"]
        maker_cert, alg = bytes(si["cert"].native), si["sign_alg"].dotted
        signature = _bits(si["sign_data"])
        body = info_der + si["cert"].dump() + si["sign_alg"].dump()
        signed = core.Sequence(contents=body).dump()  # GM/T 0031: SEQUENCE{SealInfo, cert, alg}
    return ParsedSeal(
        structure="v4" if v4 else "v1", version=int(header["version"].native), der=seal.dump(),
        header_id=str(header["id"].native), vid=str(header["vid"].native), es_id=str(info["es_id"].native),
        seal_type=int(prop["type"].native), name=str(prop["name"].native), cert_list_type=list_type,
        cert_list=certs, cert_digests=digests, create_date=_time(prop["create_date"]),
        valid_start=_time(prop["valid_start"]), valid_end=_time(prop["valid_end"]),
        picture_type=str(pic["type"].native), picture_data=bytes(pic["data"].native),
        picture_width_mm=int(pic["width"].native), picture_height_mm=int(pic["height"].native),
        ext_datas=_exts(info["ext_datas"]), maker_cert=maker_cert, sign_alg=alg, signature=signature,
        signed_bytes=signed, seal_info_der=info_der)


def _time_stamp(value: asn1.TimeStampField | core.Void) -> bytes | None:
    if isinstance(value, core.Void):
        return None
    return _bits(value.chosen)


def _signature_v4(data: bytes) -> ParsedSignature:
    sig = asn1.SESSignatureV4.load(data, strict=True)
    tbs = sig["to_sign"]
    seal = _seal(tbs["eseal"], data)
    return ParsedSignature(
        structure="v4", version=int(tbs["version"].native), der=data, seal=seal,
        time_info=_time(tbs["time_info"]), time_info_raw=tbs["time_info"].dump(),
        data_hash=_bits(tbs["data_hash"]), property_info=str(tbs["property_info"].native),
        signer_cert=bytes(sig["cert"].native), signature_alg=sig["signature_alg"].dotted,
        signature=_bits(sig["signature"]), tbs_bytes=tbs.dump(), time_stamp=_time_stamp(sig["time_stamp"]),
        ext_datas=_exts(tbs["ext_datas"]))


def _v1_time(raw: bytes) -> dt.datetime | None:
    text = raw.decode("ascii", "replace").strip("\0 ")
    try:
        t = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
        return t if t.tzinfo else t.replace(tzinfo=UTC)
    except ValueError:
        pass
    for fmt in ("%Y%m%d%H%M%SZ", "%y%m%d%H%M%SZ", "%Y-%m-%d %H:%M:%S", "%Y%m%d%H%M%S"):
        try:
            return dt.datetime.strptime(text, fmt).replace(tzinfo=UTC)
        except ValueError:
            continue
    return None


def _signature_v1(data: bytes) -> ParsedSignature:
    sig = asn1.SESSignatureV1.load(data, strict=True)
    tbs = sig["to_sign"]
    seal = _seal(tbs["eseal"], data)
    time_raw = _bits(tbs["time_info"])
    return ParsedSignature(
        structure="v1", version=int(tbs["version"].native), der=data, seal=seal,
        time_info=_v1_time(time_raw), time_info_raw=time_raw, data_hash=_bits(tbs["data_hash"]),
        property_info=str(tbs["property_info"].native), signer_cert=bytes(tbs["cert"].native),
        signature_alg=tbs["signature_alg"].dotted, signature=_bits(sig["signature"]), tbs_bytes=tbs.dump(),
        time_stamp=None, ext_datas=())
