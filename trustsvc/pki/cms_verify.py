"""CMS SignedData verification: ``verify_cms(cms_der, data=None, *, digest=None, trust_anchors=None, at=None)``.

Returns a ``CmsVerification`` status object; it never raises for a bad signature, only names
the failed check. Top-level checks: ``format``, ``content-type``; each SignerInfo
(``.signers``) has ``message-digest``, ``signer-cert-found``, ``signature``, ``chain`` and
``signing-time``. A check's ``ok`` is True, False, or None when it did not apply.

With ``trust_anchors`` the chain is validated by ``trustsvc.pki.validation`` (its result is on
``SignerCheck.path_validation``). Accepts standard PKCS#7 and GM/T 0010 content types
(1.2.156.10197.6.1.4.2.x), SM3 with NULL parameters, SM2 signatures as DER or raw r||s,
signatureAlgorithm sm2-with-sm3 or SM2-1, ecdsa-with-SHA*, rsaEncryption / sha256WithRSA.
Signatures are checked over the received bytes of the signed attributes (tag changed to SET)
or of the content.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
from collections.abc import Mapping, Sequence
from typing import Any

from asn1crypto import cms, core

from trustsvc.algorithms import asn1_registry
from trustsvc.algorithms.signature_algorithm import KeyType, SignatureAlgorithm
from trustsvc.errors import InvalidInput, TrustsvcError
from trustsvc.pki.certificate import Certificate

asn1_registry.register()

UTC = dt.UTC
_DIGESTS = {"sm3", "sha1", "sha224", "sha256", "sha384", "sha512"}
_SIGNED_DATA_TYPES = {"signed_data", "gm_signed_data"}


@dataclasses.dataclass
class Check:
    """One named check: ok True/False, or None when not applicable; ``reason`` is UPPER_SNAKE."""

    name: str
    ok: bool | None
    reason: str = ""
    detail: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "ok": self.ok, "reason": self.reason, "detail": self.detail}


class _Checks:
    checks: list[Check]

    def find(self, name: str) -> Check | None:
        return next((c for c in self.checks if c.name == name), None)

    def check(self, name: str) -> Check:
        """The named check; one with ok None and reason NOT_RUN when it was not run."""
        return self.find(name) or Check(name, None, "NOT_RUN")

    def _add(self, name: str, ok: bool | None, reason: str = "", detail: str = "") -> Check:
        c = Check(name, ok, reason or ("OK" if ok else "NOT_APPLICABLE" if ok is None else "FAILED"), detail)
        self.checks.append(c)
        return c


@dataclasses.dataclass
class SignerCheck(_Checks):
    """Result for one SignerInfo."""

    checks: list[Check] = dataclasses.field(default_factory=list)
    certificate: Certificate | None = None
    digest_algorithm: str = ""
    signature_algorithm: str = ""
    signing_time: dt.datetime | None = None
    signature: bytes = b""
    signed_attrs: Any = None
    unsigned_attrs: Any = None
    path_validation: Any = None  # trustsvc.pki.validation.PathValidationResult, when a chain was checked

    @property
    def ok(self) -> bool:
        return all(c.ok is not False for c in self.checks)

    def to_dict(self) -> dict[str, Any]:
        return {"ok": self.ok, "certificate": self.certificate.subject if self.certificate else None,
                "digest_algorithm": self.digest_algorithm, "signature_algorithm": self.signature_algorithm,
                "signing_time": self.signing_time.isoformat() if self.signing_time else None,
                "checks": [c.to_dict() for c in self.checks]}


@dataclasses.dataclass
class CmsVerification(_Checks):
    """Outcome of ``verify_cms``; ``ok`` when every check of every signer passed (or did not apply)."""

    checks: list[Check] = dataclasses.field(default_factory=list)
    signers: list[SignerCheck] = dataclasses.field(default_factory=list)
    content_type: str = ""
    content: bytes | None = None  # the encapsulated content, when attached
    certificates: list[Certificate] = dataclasses.field(default_factory=list)

    @property
    def ok(self) -> bool:
        return bool(self.signers) and all(c.ok is not False for c in self.checks) and all(s.ok for s in self.signers)

    def find(self, name: str) -> Check | None:
        """A top-level check, else the first signer's check of that name."""
        found = super().find(name)
        if found is None and self.signers:
            found = self.signers[0].find(name)
        return found

    @property
    def failures(self) -> list[Check]:
        return [c for c in self.checks + [c for s in self.signers for c in s.checks] if c.ok is False]

    @property
    def reason(self) -> str:
        """The first failed check's reason, or OK."""
        fails = self.failures
        return fails[0].reason if fails else ("OK" if self.ok else "NO_SIGNERS")

    def to_dict(self) -> dict[str, Any]:
        return {"ok": self.ok, "reason": self.reason, "content_type": self.content_type,
                "checks": [c.to_dict() for c in self.checks], "signers": [s.to_dict() for s in self.signers]}


def verify_cms(cms_der: bytes, data: bytes | None = None, *, digest: bytes | Mapping[str, bytes] | None = None,
               trust_anchors: Sequence[Certificate | bytes] | None = None, at: dt.datetime | None = None,
               extra_certificates: Sequence[Certificate | bytes] = (), crls: Sequence[Any] = ()) -> CmsVerification:
    """Verify DER ContentInfo(SignedData), attached or detached (then give ``data`` or ``digest``: the
    content's digest, or digests by algorithm name as ``detached_digest_algorithms`` lists them).

    ``trust_anchors`` turn on the ``chain`` check (trustsvc.pki.validation, at ``at`` or the
    signingTime); ``crls`` (DER or CertificateRevocationList) feed its revocation check.
    """
    result = CmsVerification()
    try:
        sd, ctype = _parse(cms_der)
    except _Bad as exc:
        result._add("format", False, exc.reason, str(exc))
        return result
    result._add("format", True)
    try:
        result.certificates = _certificates(sd) + [_cert(c) for c in extra_certificates]
        encap = sd["encap_content_info"]
        result.content_type = encap["content_type"].native or encap["content_type"].dotted
        content = encap["content"]
        attached = None if isinstance(content, core.Void) else bytes(content)
        signer_infos = list(sd["signer_infos"])
    except (*_PARSE_ERRORS, TrustsvcError) as exc:  # asn1crypto parses lazily: damage may surface here
        result.checks[0] = Check("format", False, "BAD_CMS", f"SignedData fields unreadable: {exc}")
        return result
    result.content = attached
    result._add("content-type", True, detail=f"{ctype}, eContentType {result.content_type}")
    if attached is not None and data is not None and attached != data:
        result._add("detached-content", False, "CONTENT_MISMATCH", "attached content differs from the data given")
    content_bytes = attached if attached is not None else data
    if not signer_infos:
        result._add("signers", False, "NO_SIGNERS", "SignedData has no SignerInfo")
    anchors = [_cert(a) for a in trust_anchors] if trust_anchors is not None else None
    for si in signer_infos:
        result.signers.append(_verify_signer(si, result, content_bytes, digest, anchors, at, crls))
    return result


def detached_digest_algorithms(cms_der: bytes) -> list[str]:
    """The supported digest algorithms of a detached CMS's signers, to hash its content with while it
    streams; InvalidInput (BAD_CMS ..., CMS_NOT_DETACHED) when it is not a detached SignedData."""
    try:
        sd, _ = _parse(cms_der)
        attached = not isinstance(sd["encap_content_info"]["content"], core.Void)
        names = {si["digest_algorithm"]["algorithm"].native for si in sd["signer_infos"]}
    except _Bad as exc:
        raise InvalidInput(f"not a CMS SignedData: {exc}", reason=exc.reason) from None
    except _PARSE_ERRORS as exc:  # asn1crypto parses lazily
        raise InvalidInput(f"SignedData fields unreadable: {exc}", reason="BAD_CMS") from None
    if attached:
        raise InvalidInput("the CMS carries its content: verify it with VerifySignedMessage",
                           reason="CMS_NOT_DETACHED")
    return sorted(n for n in names if n in _DIGESTS)


class _Bad(Exception):
    def __init__(self, message: str, reason: str) -> None:
        super().__init__(message)
        self.reason = reason


def _cert(c: Certificate | bytes) -> Certificate:
    return c if isinstance(c, Certificate) else Certificate.load(c)


def _parse(der: bytes) -> tuple[Any, str]:
    try:
        info = cms.ContentInfo.load(der, strict=True)
        ctype = info["content_type"].native
        if ctype not in _SIGNED_DATA_TYPES:
            raise _Bad(f"content type {info['content_type'].dotted} is not SignedData", "NOT_SIGNED_DATA")
        sd = info["content"]
        if not isinstance(sd, cms.SignedData):
            raise _Bad("ContentInfo content is not SignedData", "NOT_SIGNED_DATA")
        _ = sd["version"].native, sd["encap_content_info"]["content_type"].dotted
        return sd, ctype
    except _Bad:
        raise
    except (ValueError, TypeError, KeyError, AttributeError, OverflowError) as exc:
        raise _Bad(f"not a DER ContentInfo(SignedData): {exc}", "BAD_CMS") from None


def _certificates(sd: Any) -> list[Certificate]:
    out: list[Certificate] = []
    certs = sd["certificates"]
    if certs.native is None:
        return out
    for choice in certs:
        if choice.name == "certificate":
            try:
                out.append(Certificate(choice.chosen.dump()))
            except TrustsvcError:
                continue
    return out


def _find_cert(sid: Any, certs: Sequence[Certificate]) -> Certificate | None:
    if sid.name == "issuer_and_serial_number":
        issuer, serial = sid.chosen["issuer"], sid.chosen["serial_number"].native
        for c in certs:
            if c.serial_number == serial and c.issuer_name == issuer:
                return c
    else:
        ski = bytes(sid.chosen)
        for c in certs:
            if c.asn1.key_identifier == ski:
                return c
    return None


def _algorithm(sig_oid: str, sig_name: str | None, digest_name: str, cert: Certificate) -> SignatureAlgorithm:
    key_type = cert.public_key.key_type
    if key_type is KeyType.SM2:
        if sig_name in ("sm2_sm3", "sm2") or sig_oid == "1.2.840.10045.2.1":
            return SignatureAlgorithm.SM2_SM3
    elif key_type is KeyType.EC:
        if sig_name in ("sha256_ecdsa", "sha384_ecdsa", "ecdsa") or sig_oid == "1.2.840.10045.2.1":
            return cert.public_key.default_algorithm()
    elif key_type is KeyType.RSA:
        if sig_name == "rsassa_pss":
            return SignatureAlgorithm.RSA_PSS_SHA256
        if sig_name in ("rsassa_pkcs1v15", "sha256_rsa") and digest_name == "sha256":
            return SignatureAlgorithm.RSA_PKCS1_SHA256
    elif key_type is KeyType.ED25519 and sig_name == "ed25519":
        return SignatureAlgorithm.ED25519
    raise _Bad(f"signature algorithm {sig_oid} with digest {digest_name} does not fit a {key_type.value} key",
               "UNSUPPORTED_ALGORITHM")


_PARSE_ERRORS = (ValueError, TypeError, KeyError, AttributeError, OverflowError, IndexError)


def _verify_signer(si: Any, result: CmsVerification, content: bytes | None, digest: bytes | Mapping[str, bytes] | None,
                   anchors: list[Certificate] | None, at: dt.datetime | None, crls: Sequence[Any]) -> SignerCheck:
    out = SignerCheck()
    try:
        return _verify_signer_inner(out, si, result, content, digest, anchors, at, crls)
    except _PARSE_ERRORS as exc:  # asn1crypto parses lazily: damage may surface late
        out._add("format", False, "BAD_SIGNER_INFO", f"SignerInfo unreadable: {exc}")
        return out


def _verify_signer_inner(out: SignerCheck, si: Any, result: CmsVerification, content: bytes | None,
                         digest: bytes | Mapping[str, bytes] | None, anchors: list[Certificate] | None,
                         at: dt.datetime | None, crls: Sequence[Any]) -> SignerCheck:
    try:
        digest_name = si["digest_algorithm"]["algorithm"].native
        sig_alg = si["signature_algorithm"]
        sig_oid, sig_name = sig_alg["algorithm"].dotted, sig_alg["algorithm"].native
        signature = bytes(si["signature"].native)
        signed_attrs = si["signed_attrs"]
        has_attrs = signed_attrs.native is not None
        sid = si["sid"]
        out.digest_algorithm, out.signature_algorithm, out.signature = digest_name, sig_oid, signature
        out.signed_attrs = signed_attrs if has_attrs else None
        out.unsigned_attrs = si["unsigned_attrs"] if si["unsigned_attrs"].native is not None else None
        attrs = _attr_map(signed_attrs) if has_attrs else {}
    except (ValueError, TypeError, KeyError, AttributeError, OverflowError) as exc:
        out._add("format", False, "BAD_SIGNER_INFO", f"SignerInfo unreadable: {exc}")
        return out
    if digest_name not in _DIGESTS:
        out._add("message-digest", False, "UNSUPPORTED_DIGEST", f"digest algorithm {digest_name} not supported")
        return out

    # message digest -----------------------------------------------------------------------
    if has_attrs:
        ctype_attr = attrs.get("content_type")
        if ctype_attr is None or ctype_attr.dotted != si_content_type(result):
            out._add("content-type", False, "CONTENT_TYPE_MISMATCH",
                     "signed contentType attribute missing or differs from eContentType")
        md_attr = attrs.get("message_digest")
        if content is not None:
            actual: bytes | None = hashlib.new(digest_name, content).digest()
        else:
            actual = digest.get(digest_name) if isinstance(digest, Mapping) else digest
        if md_attr is None:
            out._add("message-digest", False, "NO_MESSAGE_DIGEST", "signed attributes lack messageDigest")
        elif actual is None:
            out._add("message-digest", False, "NO_CONTENT", "detached CMS: give the data or its digest")
        elif bytes(md_attr.native) != actual:
            out._add("message-digest", False, "MESSAGE_DIGEST_MISMATCH",
                     f"messageDigest does not equal the {digest_name} of the content")
        else:
            out._add("message-digest", True)
        signed_bytes: bytes | None = b"\x31" + signed_attrs.dump()[1:]
    else:
        if content is None:
            out._add("message-digest", False, "NO_CONTENT",
                     "CMS without signed attributes needs the content itself, not a digest")
            signed_bytes = None
        else:
            out._add("message-digest", None, "NO_SIGNED_ATTRIBUTES", "signature covers the content directly")
            signed_bytes = content

    # signer certificate ---------------------------------------------------------------------
    cert = _find_cert(sid, result.certificates)
    out.certificate = cert
    if cert is None:
        out._add("signer-cert-found", False, "SIGNER_CERT_NOT_FOUND",
                 "no certificate in the CMS (or given) matches the SignerInfo sid")
    else:
        out._add("signer-cert-found", True, detail=cert.subject)

    # signature ----------------------------------------------------------------------------
    if cert is None or signed_bytes is None:
        out._add("signature", False, "NOT_CHECKED", "signature not checked: no certificate or no content")
    else:
        try:
            algorithm = _algorithm(sig_oid, sig_name, digest_name, cert)
            if algorithm.digest not in (None, digest_name) and algorithm is not SignatureAlgorithm.ED25519:
                raise _Bad(f"digest {digest_name} differs from the signature's hash {algorithm.digest}",
                           "DIGEST_ALGORITHM_MISMATCH")
            cert.public_key.verify(algorithm, signed_bytes, signature)
            out._add("signature", True, detail=algorithm.value)
        except _Bad as exc:
            out._add("signature", False, exc.reason, str(exc))
        except TrustsvcError as exc:
            out._add("signature", False, exc.reason, exc.message)

    # chain --------------------------------------------------------------------------------
    when = at
    if "signing_time" in attrs:
        try:
            out.signing_time = attrs["signing_time"].native
        except ValueError:
            out._add("signing-time", False, "BAD_SIGNING_TIME", "signingTime unreadable")
    if when is None:
        when = out.signing_time or dt.datetime.now(UTC)
    if anchors is None:
        out._add("chain", None, "NO_TRUST_ANCHORS", "no trust anchors given")
    elif cert is None:
        out._add("chain", False, "SIGNER_CERT_NOT_FOUND", "no signer certificate")
    else:
        reason, detail = _chain(out, cert, result.certificates, anchors, when, crls)
        out._add("chain", reason == "OK", reason, detail)

    # signing time -------------------------------------------------------------------------
    if out.find("signing-time") is None:
        if out.signing_time is None:
            out._add("signing-time", None, "NO_SIGNING_TIME", "no signingTime attribute")
        elif cert is not None and not cert.valid_at(out.signing_time):
            out._add("signing-time", False, "SIGNING_TIME_OUTSIDE_VALIDITY",
                     f"signingTime {out.signing_time.isoformat()} outside the signer certificate's validity")
        else:
            out._add("signing-time", True, detail=out.signing_time.isoformat())
    return out


def si_content_type(result: CmsVerification) -> str:
    return cms.ContentType(result.content_type).dotted if result.content_type else ""


def _attr_map(attrs: Any) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for attr in attrs:
        name = attr["type"].native
        values = attr["values"]
        if name in out:
            raise ValueError(f"signed attribute {name} appears twice")
        if len(values) != 1 and name in ("content_type", "message_digest", "signing_time"):
            raise ValueError(f"signed attribute {name} must have one value")
        out[name] = values[0] if len(values) else None
    return out


def _chain(out: SignerCheck, cert: Certificate, pool: Sequence[Certificate], anchors: Sequence[Certificate],
           when: dt.datetime, crls: Sequence[Any]) -> tuple[str, str]:
    """RFC 5280 validation through trustsvc.pki.validation when present, else ``build_chain``."""
    try:
        from trustsvc.pki import validation
    except ImportError:
        return build_chain(cert, pool, anchors, when)
    from trustsvc.pki.crl import CertificateRevocationList

    try:
        crl_objs = [c if isinstance(c, CertificateRevocationList) else CertificateRevocationList(c) for c in crls]
        path = validation.validate(cert, trust_anchors=list(anchors), intermediates=list(pool), at=when,
                                   crls=crl_objs)
    except TrustsvcError as exc:
        return exc.reason, exc.message
    out.path_validation = path
    if path.valid:
        return "OK", " <- ".join(c.subject for c in path.path)
    first = path.failures[0] if path.failures else None
    return (path.reason or "PATH_VALIDATION_FAILED"), (first.message if first else "")


def build_chain(cert: Certificate, pool: Sequence[Certificate], anchors: Sequence[Certificate],
                when: dt.datetime) -> tuple[str, str]:
    """(reason, detail): a simple path from ``cert`` through ``pool`` to one of ``anchors``.

    Checks issuer names, signatures and validity at ``when``. Full RFC 5280 validation with
    revocation belongs to trustsvc.pki.validation.
    """
    current = cert
    for _ in range(10):
        if not current.valid_at(when):
            return "CERT_EXPIRED_OR_NOT_YET_VALID", f"{current.subject} not valid at {when.isoformat()}"
        if any(a.der == current.der for a in anchors):
            return "OK", f"anchored at {current.subject}"
        for anchor in anchors:
            if anchor.subject_name == current.issuer_name and _signed_by(current, anchor):
                if not anchor.valid_at(when):
                    return "CERT_EXPIRED_OR_NOT_YET_VALID", f"anchor {anchor.subject} not valid at {when.isoformat()}"
                return "OK", f"anchored at {anchor.subject}"
        nxt = next((c for c in pool if c.der != current.der and c.subject_name == current.issuer_name
                    and c.is_ca and _signed_by(current, c)), None)
        if nxt is None:
            return "NO_PATH_TO_TRUST_ANCHOR", f"no trusted issuer found for {current.subject}"
        current = nxt
    return "PATH_TOO_LONG", "certificate path longer than 10"


def _signed_by(cert: Certificate, issuer: Certificate) -> bool:
    try:
        cert.verify_signed_by(issuer.public_key)
        return True
    except TrustsvcError:
        return False


__all__ = ["Check", "CmsVerification", "SignerCheck", "build_chain", "verify_cms"]
