"""ASN.1 of electronic seals: GB/T 38540-2020 (version 4, also seen as 5) and GM/T 0031-2014 (version 1).

Nothing is IMPLICIT. Fields that real files fill in different ways (certList, timeStamp, trailing
vendor data) are declared ``Any`` and interpreted by ``parse``; everything else is typed.
"""

from __future__ import annotations

from asn1crypto.core import (
    Any,
    Boolean,
    Choice,
    GeneralizedTime,
    IA5String,
    Integer,
    ObjectIdentifier,
    OctetBitString,
    OctetString,
    PrintableString,
    Sequence,
    SequenceOf,
    UTCTime,
    UTF8String,
)


class SealTime(Choice):
    """GeneralizedTime (v4) or UTCTime (v1); accepted either way on input."""

    _alternatives = [("general", GeneralizedTime), ("utc", UTCTime)]


class TimeStampField(Choice):
    """timeStamp: ``[0] EXPLICIT BIT STRING`` per the standard, or an untagged BIT STRING as some write it."""

    _alternatives = [("tagged", OctetBitString, {"explicit": 0}), ("untagged", OctetBitString)]


class SESHeader(Sequence):
    _fields = [("id", IA5String), ("version", Integer), ("vid", IA5String)]


class CertDigestObj(Sequence):
    _fields = [("type", PrintableString), ("value", OctetString)]


class CertDigestList(SequenceOf):
    _child_spec = CertDigestObj


class CertList(SequenceOf):
    """certs: SEQUENCE OF OCTET STRING (some v1 files put other string types here)."""

    _child_spec = Any


class ExtData(Sequence):
    _fields = [("extn_id", ObjectIdentifier), ("critical", Boolean, {"default": False}),
               ("extn_value", OctetString)]


class ExtensionDatas(SequenceOf):
    _child_spec = ExtData


class ESPropertyInfoV4(Sequence):
    _fields = [("type", Integer), ("name", UTF8String), ("cert_list_type", Integer), ("cert_list", Any),
               ("create_date", SealTime), ("valid_start", SealTime), ("valid_end", SealTime)]


class ESPropertyInfoV1(Sequence):
    _fields = [("type", Integer), ("name", UTF8String), ("cert_list", Any),
               ("create_date", SealTime), ("valid_start", SealTime), ("valid_end", SealTime)]


class ESPictureInfo(Sequence):
    """SES_ESPictrueInfo; width and height in millimetres."""

    _fields = [("type", IA5String), ("data", OctetString), ("width", Integer), ("height", Integer)]


class SealInfoV4(Sequence):
    _fields = [("header", SESHeader), ("es_id", IA5String), ("property", ESPropertyInfoV4),
               ("picture", ESPictureInfo), ("ext_datas", ExtensionDatas, {"optional": True})]


class SealInfoV1(Sequence):
    _fields = [("header", SESHeader), ("es_id", IA5String), ("property", ESPropertyInfoV1),
               ("picture", ESPictureInfo), ("ext_datas", ExtensionDatas, {"optional": True})]


class SESealV4(Sequence):
    _fields = [("eseal_info", SealInfoV4), ("cert", OctetString), ("sign_alg", ObjectIdentifier),
               ("signed_value", OctetBitString), ("time_stamp", TimeStampField, {"optional": True})]


class SignInfoV1(Sequence):
    _fields = [("cert", OctetString), ("sign_alg", ObjectIdentifier), ("sign_data", OctetBitString)]


class SESealV1(Sequence):
    _fields = [("eseal_info", SealInfoV1), ("sign_info", SignInfoV1)]


class TBSSignV4(Sequence):
    _fields = [("version", Integer), ("eseal", SESealV4), ("time_info", SealTime),
               ("data_hash", OctetBitString), ("property_info", IA5String),
               ("ext_datas", ExtensionDatas, {"explicit": 0, "optional": True})]


class SESSignatureV4(Sequence):
    """timeStamp is ``[0] EXPLICIT BIT STRING`` in the standard; some files omit the tag."""

    _fields = [("to_sign", TBSSignV4), ("cert", OctetString), ("signature_alg", ObjectIdentifier),
               ("signature", OctetBitString), ("time_stamp", TimeStampField, {"optional": True})]


class TBSSignV1(Sequence):
    _fields = [("version", Integer), ("eseal", SESealV1), ("time_info", OctetBitString),
               ("data_hash", OctetBitString), ("property_info", IA5String), ("cert", OctetString),
               ("signature_alg", ObjectIdentifier)]


class SESSignatureV1(Sequence):
    _fields = [("to_sign", TBSSignV1), ("signature", OctetBitString)]
