"""Bind a registered electronic seal (GB/T 38540 SESeal) to a PDF signature, and check the binding.

A visible stamp is only a picture: from it a verifier cannot tell which registered seal was used, nor check
that seal. The signer therefore puts the SESeal, byte for byte as registered, into a signed CMS attribute
(``oids.REGISTERED_SEAL_ATTR``, one OCTET STRING value), which the signature covers like the document digest.
A verifier reads it back and checks the seal as GB/T 38540 checks the seal inside a seal signature: format,
maker signature and certificate, the seal's validity at the signing time, the PDF signer's certificate in the
seal's certList, and the registry status when a registry is given. Verifiers that do not know the attribute
ignore it, as CMS lets them (pyHanko, poppler and BouncyCastle are tested).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Callable, Sequence
from typing import Any

from asn1crypto import cms, core
from pyhanko.sign.attributes import CMSAttributeProvider

from trustsvc.algorithms import asn1_registry, oids
from trustsvc.errors import Conflict, DecodeError, InvalidInput, TrustsvcError
from trustsvc.pki.certificate import Certificate
from trustsvc.pki.crl import CertificateRevocationList
from trustsvc.seal.model import ParsedSeal
from trustsvc.seal.parse import parse_seal
from trustsvc.seal.report import Report, Status
from trustsvc.seal.verify import StatusSource, listed_in_seal, verify_seal, withdrawn_after

asn1_registry.register()

ATTRIBUTE = "trustsvc_registered_seal"  # asn1crypto's name for oids.REGISTERED_SEAL_ATTR


def seal_attribute(seal_der: bytes) -> cms.CMSAttribute:
    """The signed attribute that carries ``seal_der``."""
    return cms.CMSAttribute({"type": ATTRIBUTE, "values": [core.OctetString(seal_der)]})


def checked_seal(seal_der: bytes, signer_cert: bytes, at: dt.datetime | None = None,
                 parse: Callable[[bytes], ParsedSeal] = parse_seal, picture: bytes | None = None) -> ParsedSeal:
    """The parsed seal, refusing (Conflict) to bind one the signature would fail on: not valid at ``at`` (default
    now; SEAL_NOT_VALID_NOW) or not listing ``signer_cert`` in its certList (SIGNER_NOT_IN_CERT_LIST: a seal is
    stamped only by its holders). Bytes that are no seal raise the parser's error. A stamp ``picture`` other than
    the seal's own is refused (InvalidInput SEAL_PICTURE_MISMATCH): the document would show another seal than
    the one its signature names."""
    seal = parse(seal_der)
    if picture is not None and picture != seal.picture_data:
        raise InvalidInput(f"the stamp's picture is not seal {seal.es_id}'s own picture",
                           reason="SEAL_PICTURE_MISMATCH")
    now = at or dt.datetime.now(dt.UTC)
    if (seal.valid_start and now < seal.valid_start) or (seal.valid_end and now > seal.valid_end):
        raise Conflict(f"seal {seal.es_id} is not valid now ({seal.valid_start} .. {seal.valid_end})",
                       reason="SEAL_NOT_VALID_NOW")
    if not signer_cert or listed_in_seal(seal, signer_cert) is None:
        raise Conflict(f"the signing certificate is not in seal {seal.es_id}'s certList: the seal may only be "
                       "stamped by its holders", reason="SIGNER_NOT_IN_CERT_LIST")
    return seal


class RegisteredSealProvider(CMSAttributeProvider):
    """pyHanko signed-attribute provider for the seal binding."""

    attribute_type = ATTRIBUTE

    def __init__(self, seal_der: bytes) -> None:
        self.seal_der = seal_der

    async def build_attr_value(self, dry_run: bool = False) -> core.OctetString:
        return core.OctetString(self.seal_der)


def bound_seal(signer_info: cms.SignerInfo) -> bytes | None:
    """The SESeal bytes a signature binds, or None; DecodeError BAD_SEAL_BINDING when the attribute is not
    exactly one attribute with one OCTET STRING, or the signed attributes do not parse."""
    try:
        found = [a for a in signer_info["signed_attrs"] if a["type"].dotted == oids.REGISTERED_SEAL_ATTR]
        if not found:
            return None
        if len(found) > 1 or len(found[0]["values"]) != 1:
            raise DecodeError("the registered-seal attribute must occur once with one value",
                              reason="BAD_SEAL_BINDING")
        return bytes(found[0]["values"][0].native)  # an OCTET STRING: asn1_registry declares the value
    except (ValueError, TypeError, KeyError) as exc:  # asn1crypto parses lazily: a bad value surfaces here
        raise DecodeError(f"the registered-seal attribute does not parse: {type(exc).__name__}: {exc}",
                          reason="BAD_SEAL_BINDING") from None


@dataclasses.dataclass(frozen=True)
class SealBinding:
    """What a signature says about its seal: ``ok`` None when it binds none; ``report`` holds the seal's steps."""

    ok: bool | None
    detail: str
    es_id: str | None = None
    report: Report | None = None

    def to_dict(self) -> dict[str, Any] | None:
        if self.report is None:
            return None
        return {"es_id": self.es_id, "verdict": self.report.verdict.value, "facts": self.report.facts.get("seal"),
                "checks": [c.to_dict() for c in self.report.checks]}


def check_binding(signer_info: cms.SignerInfo, signer_cert: bytes, signed_at: dt.datetime, *,
                  trust_roots: Sequence[bytes] = (), other_certs: Sequence[bytes] = (),
                  registry: StatusSource | None = None, at: dt.datetime | None = None,
                  time_stamped: bool = False, crls: Sequence[bytes] = ()) -> SealBinding:
    """Check the seal a PDF signature binds, judged at ``signed_at`` (GB/T 38540: the seal and its maker as at the
    signing time); never raises for bad content. Warnings (no trust anchors, no registry) do not fail it.

    A seal suspended or revoked in the registry fails the check, unless ``signed_at`` is a trusted time stamp's
    (``time_stamped``) and the registry's history shows the seal active then: a licence stamped while its seal
    was active stays valid after the seal is withdrawn (a warning says since when), as a signature with a time
    stamp outlives the revocation of its certificate. A self-reported signing time cannot show that."""
    try:
        der = bound_seal(signer_info)
    except DecodeError as exc:
        return SealBinding(False, f"{exc.reason}: {exc.message}")
    if der is None:
        return SealBinding(None, "no registered seal bound to this signature")
    try:
        seal = parse_seal(der)
    except TrustsvcError as exc:
        return SealBinding(False, f"the bound seal does not parse: {exc.reason}: {exc.message}")
    report = verify_seal(seal, at=at, trust=_certificates(trust_roots), registry=registry, judged_at=signed_at,
                         intermediates=_certificates(other_certs), crls=_crls(crls))
    if time_stamped:
        withdrawn_after(report, registry, seal.es_id, signed_at)
    listed = listed_in_seal(seal, signer_cert)
    if listed is None:
        report.add("seal.cert_in_list", Status.FAIL, "SIGNER_NOT_IN_CERT_LIST",
                   "the PDF signer's certificate is not in the seal's certList")
    else:
        report.add("seal.cert_in_list", Status.PASS, "OK", listed)
    name = f"seal {seal.es_id} ({seal.name})"
    if report.failed:
        first = report.failed[0]
        return SealBinding(False, f"{name}: {first.name} {first.reason}: {first.detail}", seal.es_id, report)
    warnings = [f"{c.name} {c.reason}" for c in report.checks if c.status is Status.WARNING]
    return SealBinding(True, f"{name}, signer listed, valid at {signed_at.isoformat()}"
                       + (f" (warnings: {', '.join(warnings)})" if warnings else ""), seal.es_id, report)


def _crls(ders: Sequence[bytes]) -> list[CertificateRevocationList]:
    """CRLs that parse; the PDF check reports on the others through pyHanko."""
    out = []
    for der in ders:
        try:
            out.append(CertificateRevocationList.load(der))
        except TrustsvcError:
            continue
    return out


def _certificates(ders: Sequence[bytes]) -> list[Certificate]:
    """Certificates that parse strictly; pyHanko took the others, the seal steps name what they lack."""
    out = []
    for der in ders:
        try:
            out.append(Certificate(der))
        except TrustsvcError:
            continue
    return out
