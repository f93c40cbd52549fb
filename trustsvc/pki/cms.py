"""CMS SignedData (RFC 5652) for SM2 (GM/T 0010 / GB/T 35275), ECDSA and RSA: signing.

API:

- ``sign_cms(signer, data=..., detached=True) -> bytes``: DER ContentInfo(SignedData). Standard
  PKCS#7 content types; for SM2 the digest is SM3 (no parameters), the signature algorithm
  1.2.156.10197.1.501 (no parameters) and the signature DER SEQUENCE{r, s}. Signed attributes:
  contentType, messageDigest, signingTime and ESS signingCertificateV2 (RFC 5035). Pass
  ``digest=`` instead of ``data=`` to sign a precomputed hash (GM/T 0029 "hash given").
- ``CmsTemplate(signer).sign(data=... | digest=...) -> bytes``: the same detached CMS, built by
  splicing into pre-encoded bytes, so each document costs one hash and one signature.
- ``add_unsigned_attribute(cms_der, name, value_der) -> bytes``: e.g. a signature time stamp.
- ``hash_data(name, data)``: digest by asn1crypto name ('sm3', 'sha256', ...).

Verification lives in ``trustsvc.pki.cms_verify`` (``verify_cms``), re-exported here.
"""

from __future__ import annotations

import datetime as dt
import functools
import hashlib
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from asn1crypto import algos, cms, core, tsp, x509  # noqa: F401 (tsp registers ESS attributes)

from trustsvc.algorithms import asn1_registry
from trustsvc.algorithms.signature_algorithm import KeyType, SignatureAlgorithm
from trustsvc.algorithms.signer import Signer
from trustsvc.errors import DecodeError, InvalidInput, UnsupportedAlgorithm

asn1_registry.register()

UTC = dt.UTC
DIGEST_SIZES = {"sm3": 32, "sha1": 20, "sha224": 28, "sha256": 32, "sha384": 48, "sha512": 64}


def hash_data(name: str, data: bytes) -> bytes:
    """Digest of ``data`` with the asn1crypto-named algorithm."""
    if name not in DIGEST_SIZES:
        raise UnsupportedAlgorithm(f"digest algorithm {name!r} not supported", reason="UNSUPPORTED_DIGEST")
    return hashlib.new(name, data).digest()


def digest_algorithm_for(signer: Signer) -> str:
    """The CMS digest algorithm for a signer: SM3 for SM2, the signature's hash otherwise."""
    return signer.algorithm.digest or "sha512"


def signature_algorithm_id(algorithm: SignatureAlgorithm) -> algos.SignedDigestAlgorithm:
    """signatureAlgorithm for SignerInfo (no parameters except for RSA-PSS)."""
    value: dict[str, Any] = {"algorithm": algorithm.oid}
    if algorithm is SignatureAlgorithm.RSA_PSS_SHA256:
        value["parameters"] = {"hash_algorithm": {"algorithm": "sha256"}, "mask_gen_algorithm": {
            "algorithm": "mgf1", "parameters": {"algorithm": "sha256"}}, "salt_length": 32}
    return algos.SignedDigestAlgorithm(value)


def _attr(name: str, value: Any) -> cms.CMSAttribute:
    return cms.CMSAttribute({"type": name, "values": [value]})


def _signer_cert(signer: Signer) -> x509.Certificate:
    if signer.certificate is None:
        raise InvalidInput("CMS signing needs a signer with a certificate", reason="NO_SIGNER_CERTIFICATE")
    return x509.Certificate.load(signer.certificate)


@functools.lru_cache(maxsize=64)
def _ess_attr_der(cert_der: bytes, digest_name: str) -> bytes:
    """DER signingCertificateV2 attribute (RFC 5035) for a certificate, built from its bytes."""
    cert = x509.Certificate.load(cert_der)
    tbs = cert["tbs_certificate"]
    issuer_serial = tlv(0x30, tlv(0x30, tlv(0xA4, tbs["issuer"].dump())) + tbs["serial_number"].dump())
    hash_alg = b"" if digest_name == "sha256" else algos.DigestAlgorithm({"algorithm": digest_name}).dump()
    cert_id = tlv(0x30, hash_alg + tlv(0x04, hash_data(digest_name, cert_der)) + issuer_serial)
    value = tlv(0x30, tlv(0x30, cert_id))
    return tlv(0x30, core.ObjectIdentifier("1.2.840.113549.1.9.16.2.47").dump() + tlv(0x31, value))


def _time(value: dt.datetime) -> cms.Time:
    value = value.astimezone(UTC).replace(microsecond=0)
    if 1950 <= value.year < 2050:
        return cms.Time(name="utc_time", value=value)
    return cms.Time(name="generalized_time", value=value)


def der_set_of(items: Iterable[bytes]) -> bytes:
    """DER SET OF from encoded members, sorted as X.690 §11.6 requires."""
    return tlv(0x31, b"".join(sorted(items)))


def der_length(n: int) -> bytes:
    if n < 0x80:
        return bytes([n])
    body = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return bytes([0x80 | len(body)]) + body


def tlv(tag: int, content: bytes) -> bytes:
    """One DER TLV with a single-byte tag."""
    return bytes([tag]) + der_length(len(content)) + content


def build_signed_attrs(signer: Signer, message_digest: bytes, *, content_type: str = "data",
                       signing_time: dt.datetime | None | bool = None,
                       extra: Sequence[cms.CMSAttribute] | Mapping[str, Any] | None = None) -> bytes:
    """DER SET OF signed attributes (tag 0x31, sorted): the bytes the signature covers."""
    digest_name = digest_algorithm_for(signer)
    if signer.certificate is None:
        raise InvalidInput("CMS signing needs a signer with a certificate", reason="NO_SIGNER_CERTIFICATE")
    attrs = [_attr("content_type", content_type).dump(), _attr("message_digest", message_digest).dump(),
             _ess_attr_der(signer.certificate, digest_name)]
    if signing_time is not False:
        when = signing_time if isinstance(signing_time, dt.datetime) else dt.datetime.now(UTC)
        attrs.append(_attr("signing_time", _time(when)).dump())
    attrs.extend(a.dump() for a in _extra_attrs(extra))
    return der_set_of(attrs)


def _extra_attrs(extra: Sequence[cms.CMSAttribute] | Mapping[str, Any] | None) -> list[cms.CMSAttribute]:
    if not extra:
        return []
    if isinstance(extra, Mapping):
        return [_attr(k, v) for k, v in extra.items()]
    return list(extra)


def sign_cms(signer: Signer, data: bytes | None = None, *, digest: bytes | None = None, detached: bool = True,
             signed_attributes: bool = True, include_chain: bool = True, include_crls: Sequence[bytes] = (),
             content_type: str = "data",
             extra_signed_attrs: Sequence[cms.CMSAttribute] | Mapping[str, Any] | None = None,
             unsigned_attrs: Sequence[cms.CMSAttribute] | Mapping[str, Any] | None = None,
             signing_time: dt.datetime | None | bool = None, include_certificates: bool = True) -> bytes:
    """DER ContentInfo(SignedData) over ``data`` (or a precomputed ``digest``) signed by ``signer``.

    ``detached=False`` embeds ``data``. ``signed_attributes=False`` signs the content itself
    (needs ``data``). ``signing_time=False`` omits signingTime; a datetime fixes it.
    ``include_chain=False`` carries only the signer's certificate, ``include_certificates=False``
    none (RFC 3161 certReq false). ``include_crls`` are DER CRLs to carry. ``content_type`` is an
    asn1crypto name or OID.
    """
    if (data is None) == (digest is None):
        raise InvalidInput("give exactly one of data or digest", reason="BAD_ARGUMENTS")
    digest_name = digest_algorithm_for(signer)
    if digest is not None:
        if not detached or not signed_attributes:
            raise InvalidInput("a precomputed digest needs a detached CMS with signed attributes",
                               reason="DIGEST_NEEDS_SIGNED_ATTRIBUTES")
        if len(digest) != DIGEST_SIZES[digest_name]:
            raise InvalidInput(f"a {digest_name} digest is {DIGEST_SIZES[digest_name]} bytes, got {len(digest)}",
                               reason="BAD_DIGEST_LENGTH")
    cert = _signer_cert(signer)
    if signed_attributes:
        md = digest if digest is not None else hash_data(digest_name, data or b"")
        attrs_der = build_signed_attrs(signer, md, content_type=content_type, signing_time=signing_time,
                                       extra=extra_signed_attrs)
        signature = signer.sign(attrs_der)
        signed_attrs: Any = cms.CMSAttributes.load(attrs_der)
    else:
        if content_type != "data" or extra_signed_attrs:
            raise InvalidInput("content types other than data and extra attributes need signed attributes",
                               reason="NEEDS_SIGNED_ATTRIBUTES")
        assert data is not None
        signature = signer.sign(data)
        signed_attrs = None
    signer_info: dict[str, Any] = {
        "version": "v1",
        "sid": cms.SignerIdentifier(name="issuer_and_serial_number", value={
            "issuer": cert.issuer, "serial_number": cert.serial_number}),
        "digest_algorithm": {"algorithm": digest_name},
        "signature_algorithm": signature_algorithm_id(signer.algorithm),
        "signature": signature,
    }
    if signed_attrs is not None:
        signer_info["signed_attrs"] = signed_attrs
    if unsigned_attrs:
        signer_info["unsigned_attrs"] = _extra_attrs(unsigned_attrs)
    chain = signer.certificate_chain if include_chain else signer.certificate_chain[:1]
    encap: dict[str, Any] = {"content_type": content_type}
    if not detached:
        encap["content"] = (data or b"") if content_type == "data" else cms.ParsableOctetString(data or b"")
    signed_data: dict[str, Any] = {
        "version": "v3" if content_type != "data" else "v1",
        "digest_algorithms": [{"algorithm": digest_name}],
        "encap_content_info": encap,
        "signer_infos": [signer_info],
    }
    if include_certificates:
        signed_data["certificates"] = [x509.Certificate.load(c) for c in chain]
    if include_crls:
        signed_data["crls"] = [cms.RevocationInfoChoice(name="crl", value=_load_crl(c)) for c in include_crls]
    return cms.ContentInfo({"content_type": "signed_data", "content": cms.SignedData(signed_data)}).dump()


def _load_crl(der: bytes) -> Any:
    from asn1crypto import crl

    try:
        return crl.CertificateList.load(der, strict=True)
    except ValueError as exc:
        raise DecodeError(f"not a DER CRL: {exc}", reason="BAD_CRL") from None


def add_unsigned_attribute(cms_der: bytes, name: str, value: Any, *, signer_index: int = 0) -> bytes:
    """Return ``cms_der`` with an unsigned attribute added to one SignerInfo.

    Only the SignerInfo's unsignedAttrs change; signed bytes are copied as received.
    ``value`` is an asn1crypto value or DER bytes (e.g. a TimeStampToken for
    'signature_time_stamp_token').
    """
    try:
        info = cms.ContentInfo.load(cms_der, strict=True)
        sd = info["content"]
        si = sd["signer_infos"][signer_index]
        if isinstance(value, bytes):
            spec = cms.CMSAttribute._oid_specs.get(name)  # a SET OF spec: load one member
            value = spec._child_spec.load(value) if spec is not None else core.Any.load(value)
        attrs = list(si["unsigned_attrs"]) if si["unsigned_attrs"].native is not None else []
        attrs.append(_attr(name, value))
        si["unsigned_attrs"] = attrs
        return info.dump(force=False)
    except (ValueError, TypeError, KeyError, IndexError) as exc:
        raise DecodeError(f"cannot add an attribute to this CMS: {exc}", reason="BAD_CMS") from None


class CmsTemplate:
    """A detached SignedData prepared once for one signer; ``sign`` fills digest, time and signature.

    ``signing_time_attr=False`` leaves out the signingTime attribute (PAdES baseline puts the time in
    the PDF signature dictionary instead).

    Everything but messageDigest, signingTime and the signature value is pre-encoded; signed
    attributes keep a fixed layout (UTCTime is fixed-width, DER order does not depend on the
    values), so each document costs one hash plus one signature and a few length bytes.
    """

    _PLACEHOLDER_TIME = dt.datetime(2000, 1, 1, tzinfo=UTC)

    def __init__(self, signer: Signer, *, include_chain: bool = True, include_crls: Sequence[bytes] = (),
                 content_type: str = "data",
                 extra_signed_attrs: Sequence[cms.CMSAttribute] | Mapping[str, Any] | None = None,
                 signing_time_attr: bool = True) -> None:
        self.signer = signer
        self.digest_name = digest_algorithm_for(signer)
        size = DIGEST_SIZES[self.digest_name]
        md_mark = b"\xa5" * size
        when: dt.datetime | bool = self._PLACEHOLDER_TIME if signing_time_attr else False
        attrs = bytearray(build_signed_attrs(signer, md_mark, content_type=content_type,
                                             signing_time=when, extra=extra_signed_attrs))
        # located through their whole attributes: an extra attribute (a seal's picture) may hold the marks too
        md_attr = _attr("message_digest", md_mark).dump()
        time_attr = _attr("signing_time", _time(self._PLACEHOLDER_TIME)).dump()
        self._md_at = _inside(attrs, md_attr, md_mark)
        self._time_at: int | None = _inside(attrs, time_attr, b"000101000000Z") if signing_time_attr else None
        if self._md_at < 0 or (self._time_at is not None and self._time_at < 0):
            raise InvalidInput("template placeholders not found", reason="TEMPLATE_ERROR")
        self._attrs = bytes(attrs)
        self._md_len = size
        # Pre-encode the rest by building a full CMS with a marked signature and cutting it apart.
        sig_mark = b"\x5a" * 40
        skeleton = cms.ContentInfo.load(sign_cms(_FixedSigner(signer, sig_mark), digest=md_mark,
                                                 include_chain=include_chain, include_crls=include_crls,
                                                 content_type=content_type, extra_signed_attrs=extra_signed_attrs,
                                                 signing_time=when))
        sd = skeleton["content"]
        si = sd["signer_infos"][0]
        self._si_head = si["version"].dump() + si["sid"].dump() + si["digest_algorithm"].dump()
        self._si_tail_alg = si["signature_algorithm"].dump()
        sd_head = sd["version"].dump() + sd["digest_algorithms"].dump() + sd["encap_content_info"].dump()
        sd_head += sd["certificates"].dump() if len(sd["certificates"]) else b""
        if include_crls:
            sd_head += sd["crls"].dump()
        self._sd_head = sd_head
        self._ci_head = cms.ContentType("signed_data").dump()

    def sign(self, data: bytes | None = None, *, digest: bytes | None = None,
             signing_time: dt.datetime | None = None) -> bytes:
        """DER ContentInfo(SignedData), detached, over ``data`` or its precomputed ``digest``."""
        if (data is None) == (digest is None):
            raise InvalidInput("give exactly one of data or digest", reason="BAD_ARGUMENTS")
        md = digest if digest is not None else hashlib.new(self.digest_name, data or b"").digest()
        if len(md) != self._md_len:
            raise InvalidInput(f"a {self.digest_name} digest is {self._md_len} bytes", reason="BAD_DIGEST_LENGTH")
        attrs = self.signed_attrs(md, signing_time)
        return self.assemble(attrs, self.signer.sign(attrs))

    def signed_attrs(self, digest: bytes, signing_time: dt.datetime | None = None) -> bytes:
        """The DER SET the signature covers, for ``digest`` and ``signing_time`` (default now; unused
        when the template was made with ``signing_time_attr=False``)."""
        buf = bytearray(self._attrs)
        buf[self._md_at:self._md_at + self._md_len] = digest
        if self._time_at is not None:
            when = (signing_time or dt.datetime.now(UTC)).astimezone(UTC)
            if not 1950 <= when.year < 2050:
                raise InvalidInput("template signing time must fit UTCTime (1950-2049)", reason="BAD_SIGNING_TIME")
            buf[self._time_at:self._time_at + 13] = when.strftime("%y%m%d%H%M%SZ").encode()
        return bytes(buf)

    def assemble(self, signed_attrs: bytes, signature: bytes) -> bytes:
        """The ContentInfo from signed attributes (as returned by ``signed_attrs``) and a signature."""
        si = tlv(0x30, self._si_head + b"\xa0" + signed_attrs[1:] + self._si_tail_alg + tlv(0x04, signature))
        sd = tlv(0x30, self._sd_head + tlv(0x31, si))
        return tlv(0x30, self._ci_head + tlv(0xA0, sd))

    def sign_batch(self, digests: Sequence[bytes], signing_time: dt.datetime | None = None) -> list[bytes]:
        """Detached CMS for many precomputed digests through ``signer.sign_batch``."""
        attrs = [self.signed_attrs(d, signing_time) for d in digests]
        return [self.assemble(a, s) for a, s in zip(attrs, self.signer.sign_batch(attrs), strict=True)]


def _inside(haystack: bytes | bytearray, whole: bytes, part: bytes) -> int:
    """Offset of ``part`` within the first occurrence of ``whole`` in ``haystack``, or -1."""
    at = bytes(haystack).find(whole)
    return -1 if at < 0 else at + whole.index(part)


class _FixedSigner(Signer):
    """Returns a fixed signature; used to lay out a template."""

    def __init__(self, inner: Signer, value: bytes) -> None:
        super().__init__(inner.public_key, inner.algorithm, certificate_chain=inner.certificate_chain)
        self._value = value

    def sign(self, message: bytes) -> bytes:
        return self._value


def is_sm2(signer: Signer) -> bool:
    return signer.key_type is KeyType.SM2


from trustsvc.pki.cms_verify import Check, CmsVerification, SignerCheck, verify_cms  # noqa: E402

__all__ = ["Check", "CmsTemplate", "CmsVerification", "SignerCheck", "add_unsigned_attribute", "hash_data",
           "sign_cms", "verify_cms"]
