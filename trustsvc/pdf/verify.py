"""Verification report for every signature in a PDF: named checks per signature, a summary verdict, text and JSON."""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
from collections.abc import Sequence
from typing import Any

from asn1crypto import cms
from pyhanko.sign import fields
from pyhanko.sign.validation import validate_pdf_signature, validate_pdf_timestamp
from pyhanko.sign.validation.pdf_embedded import EmbeddedPdfSignature
from pyhanko.sign.validation.status import SignatureCoverageLevel

from trustsvc.errors import DecodeError, TrustsvcError
from trustsvc.pdf.errors import PdfInput, open_reader
from trustsvc.pdf.metadata import LicenceMetadata, read_metadata
from trustsvc.pdf.pyhanko_sm2 import is_sm2_key, sm2_failure_reason, validation_context
from trustsvc.pdf.seal_binding import SealBinding, check_binding
from trustsvc.seal.verify import StatusSource

logging.getLogger("pyhanko.sign.validation.generic_cms").setLevel(logging.CRITICAL)  # failures go into the report


@dataclasses.dataclass
class Check:
    """One named check: ``ok`` True/False, or None when not applicable; ``detail`` says what was found."""

    name: str
    ok: bool | None
    detail: str = ""


@dataclasses.dataclass
class SignatureReport:
    field_name: str
    signer: str
    algorithm: str
    digest: str
    subfilter: str
    signing_time: str | None
    pades_level: str
    checks: list[Check]
    seal: SealBinding | None = None  # the registered seal the signature binds, with its steps

    @property
    def valid(self) -> bool:
        return all(c.ok is not False for c in self.checks)

    @property
    def seal_id(self) -> str | None:
        return self.seal.es_id if self.seal is not None else None

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {f.name: (str(getattr(self, f.name)) if getattr(self, f.name) is not None else None)
                             for f in dataclasses.fields(self) if f.name not in ("checks", "seal")}
        d["seal"] = self.seal.to_dict() if self.seal is not None else None
        d["checks"] = [{"name": c.name, "ok": None if c.ok is None else bool(c.ok), "detail": str(c.detail)}
                       for c in self.checks]
        d["valid"] = self.valid
        return d


@dataclasses.dataclass
class PdfReport:
    signatures: list[SignatureReport]
    metadata: dict[str, str] | None
    error: str | None = None

    @property
    def valid(self) -> bool:
        return bool(self.signatures) and self.error is None and all(s.valid for s in self.signatures)

    def to_dict(self) -> dict[str, Any]:
        return {"verdict": "VALID" if self.valid else "INVALID", "valid": self.valid, "error": self.error,
                "metadata": self.metadata, "signatures": [s.to_dict() for s in self.signatures]}

    def to_text(self) -> str:
        lines = [f"verdict: {'VALID' if self.valid else 'INVALID'}"]
        if self.error:
            lines.append(f"error: {self.error}")
        if self.metadata:
            lines.append("licence metadata:")
            lines += [f"  {k}: {v}" for k, v in self.metadata.items() if v]
        if not self.signatures:
            lines.append("no signatures")
        for s in self.signatures:
            lines.append(f"signature {s.field_name}: {'VALID' if s.valid else 'INVALID'} ({s.algorithm}/{s.digest}, "
                         f"{s.subfilter}, {s.pades_level}) by {s.signer} at {s.signing_time}")
            for c in s.checks:
                mark = {True: "ok  ", False: "FAIL", None: "n/a "}[c.ok]
                lines.append(f"  [{mark}] {c.name}: {c.detail}")
        return "\n".join(lines)


_ALG_NAMES = {"1.2.156.10197.1.501": "sm2-sm3", "1.2.840.10045.4.3.2": "ecdsa-sha256",
              "1.2.840.113549.1.1.11": "rsa-sha256", "1.2.840.113549.1.1.1": "rsa", "1.2.840.113549.1.1.10": "rsa-pss"}


def verify_pdf(pdf: PdfInput, *, trust_roots: Sequence[bytes] = (), crls: Sequence[bytes] = (),
               other_certs: Sequence[bytes] = (), moment: dt.datetime | None = None,
               allow_form_filling: bool = False, seal_registry: StatusSource | None = None) -> PdfReport:
    """Verify every signature; trusted only if its chain reaches one of ``trust_roots``.

    A form field other than a signature filled or changed after a signature fails that signature's ``form_fields``
    check: PDF lets an approval signature be followed by form filling, but on an e-licence a field is content.
    ``allow_form_filling`` reports such changes without failing (as a generic PDF viewer would).

    A signature that binds a registered seal (``seal_binding``) gets a ``seal`` check: the seal's own steps at the
    signing time and the signer in its certList; ``seal_registry`` adds the seal's status in the registry."""
    reader = open_reader(pdf)
    try:
        meta = read_metadata(reader)
        sigs = list(reader.embedded_signatures)
    except TrustsvcError:
        raise
    except Exception as exc:  # pyHanko parses lazily: PdfReadError, ValueError ... surface here
        raise DecodeError(f"PDF is malformed: {type(exc).__name__}: {exc}", reason="PDF_MALFORMED") from None
    reports = []
    for sig in sigs:
        try:
            report = _verify_one(sig, trust_roots, crls, other_certs, moment, allow_form_filling, seal_registry)
            if sig.sig_object_type != "/DocTimeStamp":
                report.checks.append(_licence_check(reader, sig, meta))
            reports.append(report)
        except TrustsvcError:
            raise
        except Exception as exc:  # a broken signature dictionary or CMS: reported, not raised
            reports.append(_unreadable(sig, exc))
    return PdfReport(reports, meta.to_dict() if meta else None)


def _form_check(sig: EmbeddedPdfSignature, changed: set[str], allowed: bool) -> Check:
    """Form fields other than signatures that later revisions changed (pyHanko's diff analysis names them)."""
    if not changed:  # the usual case: no need to walk the document's fields
        return Check("form_fields", None, "no form field changed after this signature")
    signatures = {name for name, _, _ in fields.enumerate_sig_fields(sig.reader)}
    content = sorted(changed - signatures)
    if not content:
        return Check("form_fields", True, "only signature fields added")
    names = ", ".join(content[:10]) + (" ..." if len(content) > 10 else "")
    if allowed:
        return Check("form_fields", None, f"form fields filled or changed after this signature (allowed): {names}")
    return Check("form_fields", False, f"form fields filled or changed after this signature: {names}")


def _licence_check(reader: Any, sig: EmbeddedPdfSignature, now: LicenceMetadata | None) -> Check:
    """The licence metadata the document shows must be what this signature signed. pyHanko's modification
    analysis allows a later XMP update (harmless in a generic PDF), but for an e-licence the metadata is content:
    a licence number or holder changed, added or removed after signing fails here."""
    signed = read_metadata(reader, sig.signed_revision)
    if signed == now:
        return Check("licence_metadata", None if now is None else True,
                     "no licence metadata" if now is None else f"licence {now.licence_number} as signed")
    if signed is None:
        return Check("licence_metadata", False, f"licence metadata (licence {now.licence_number if now else '?'}) "
                     "was added after this signature")
    if now is None:
        return Check("licence_metadata", False, f"the signed licence metadata (licence {signed.licence_number}) "
                     "was removed after this signature")
    changed = [k for k, v in signed.to_dict().items() if now.to_dict()[k] != v]
    return Check("licence_metadata", False, f"licence metadata changed after this signature: {', '.join(changed)} "
                 f"(signed licence {signed.licence_number}, now {now.licence_number})")


def _revocation_check(sig: EmbeddedPdfSignature, status: Any, roots: Sequence[bytes], other: Sequence[bytes],
                      crls: Sequence[bytes], moment: dt.datetime | None) -> Check:
    """The signer's path against the CRLs given and those in the document security store (trustsvc.pki.validation).

    pyHanko looks at CRLs only for certificates that declare a distribution point; trustsvc's certificates need
    not. Judged at a trusted signature time stamp's time, else now: without proof of when it signed, a signature
    whose certificate is revoked now fails (AdES REVOKED_NO_POE). A CRL that is stale or does not verify leaves
    the status unknown (not a failure); no CRL from an issuer on the path: not checked."""
    from trustsvc.pki.certificate import Certificate
    from trustsvc.pki.crl import CertificateRevocationList
    from trustsvc.pki.validation import validate

    stamped_at = _trusted_stamp_time(status)
    stamped = stamped_at is not None
    at = stamped_at if stamped else moment
    lists = []
    for der in [*crls, *_dss_crls(sig)]:
        try:
            lists.append(CertificateRevocationList.load(der))
        except TrustsvcError:
            continue
    if not lists:
        return Check("revocation", None, "not checked: no CRL given or embedded")
    try:
        certs = [Certificate(der) for der in _cms_certificates(sig)]
        result = validate(Certificate(status.signing_cert.dump()), trust_anchors=[Certificate(r) for r in roots],
                          intermediates=[*certs, *(Certificate(o) for o in other)], at=at, crls=lists)
    except TrustsvcError as exc:
        return Check("revocation", None, f"not checked: {exc.reason}: {exc.message}")
    found = [c for c in result.checks if c.name == "revocation"]
    revoked = next((c for c in found if c.reason == "REVOKED"), None)
    when = f"at {'the time stamp, ' if stamped else ''}{(at or dt.datetime.now(dt.UTC)).isoformat()}"
    if revoked is not None:
        return Check("revocation", False, f"{revoked.subject}: {revoked.message} (judged {when})")
    unknown = [c for c in found if c.status.value == "fail"]
    if unknown:
        return Check("revocation", None, f"unknown: {unknown[0].reason}: {unknown[0].message}")
    if any(c.status.value == "pass" for c in found):
        return Check("revocation", True, f"not revoked {when} ({len(lists)} CRL(s) given or embedded)")
    return Check("revocation", None, "not checked: no CRL from an issuer on the path")


def _trusted_stamp_time(status: Any) -> dt.datetime | None:
    """The signature time stamp's time when the token is intact, valid and trusted; else None."""
    ts = status.timestamp_validity
    return ts.timestamp if ts is not None and ts.intact and ts.valid and ts.trusted else None


def _cms_certificates(sig: EmbeddedPdfSignature) -> list[bytes]:
    """The X.509 certificates the signature's CMS carries (DER)."""
    return [c.chosen.dump() for c in sig.signed_data["certificates"] if c.name == "certificate"]


def _dss_crls(sig: EmbeddedPdfSignature) -> list[bytes]:
    """CRLs in the document security store (PAdES B-LT); none when it has none or they do not read."""
    try:
        root = sig.reader.root
        dss = root["/DSS"] if "/DSS" in root else None
        return [bytes(ref.get_object().data) for ref in dss["/CRLs"]] if dss is not None and "/CRLs" in dss else []
    except Exception:  # noqa: BLE001 - a malformed DSS only means no CRLs from it
        return []


def _seal_check(sig: EmbeddedPdfSignature, status: Any, roots: Sequence[bytes], other: Sequence[bytes],
                registry: StatusSource | None, moment: dt.datetime | None, crls: Sequence[bytes]) -> SealBinding:
    """The bound seal judged at the signing time: a trusted time stamp's when it verifies, else the signer's claim."""
    stamped_at = _trusted_stamp_time(status)
    stamped = stamped_at is not None
    when = stamped_at if stamped else status.signer_reported_dt
    certs = _cms_certificates(sig)
    return check_binding(sig.signer_info, status.signing_cert.dump(), when or moment or dt.datetime.now(dt.UTC),
                         trust_roots=roots, other_certs=[*other, *certs], registry=registry, at=moment,
                         time_stamped=stamped, crls=crls)


def _unreadable(sig: EmbeddedPdfSignature, exc: Exception) -> SignatureReport:
    """Report for a signature whose dictionary or CMS cannot be parsed."""
    def safe(get: Any) -> str:
        try:
            return str(get())
        except Exception:
            return "?"

    return SignatureReport(safe(lambda: _field_name(sig)), safe(lambda: _signer_name(sig)), "?", "?",
                           safe(lambda: sig.sig_object.get("/SubFilter", "")), None, "none",
                           [Check("format", False, f"signature unreadable: {type(exc).__name__}: {exc}")])


def _verify_one(sig: EmbeddedPdfSignature, roots: Sequence[bytes], crls: Sequence[bytes],
                other: Sequence[bytes], moment: dt.datetime | None, allow_form_filling: bool,
                registry: StatusSource | None) -> SignatureReport:
    checks: list[Check] = []
    vc = validation_context(list(roots), other_certs=list(other), crls=list(crls), moment=moment)
    if sig.sig_object_type == "/DocTimeStamp":
        return _verify_doc_timestamp(sig, vc)
    sig_alg = sig.signer_info["signature_algorithm"]["algorithm"].dotted
    subfilter = str(sig.sig_object.get("/SubFilter", ""))
    try:
        status = validate_pdf_signature(sig, vc)
    except Exception as exc:  # pyHanko raises on malformed CMS or byte ranges
        checks.append(Check("format", False, f"{type(exc).__name__}: {exc}"))
        return SignatureReport(_field_name(sig), _signer_name(sig), _ALG_NAMES.get(sig_alg, sig_alg), "?", subfilter,
                               None, "none", checks)
    checks.append(Check("intact", status.intact, "document digest matches the signed messageDigest"
                        if status.intact else "the covered bytes changed after signing"))
    valid_detail = "signature value verifies with the signer certificate"
    if not status.valid:
        valid_detail = "signature value does not verify"
        if is_sm2_key(status.signing_cert.public_key) and status.intact:
            signed = b"\x31" + sig.signer_info["signed_attrs"].dump()[1:]  # signed as a SET, stored [0] IMPLICIT
            err = sm2_failure_reason(status.signing_cert.public_key, signed,
                                     sig.signer_info["signature"].native)
            if err is not None:
                valid_detail = f"{err.reason}: {err.message}"
    checks.append(Check("signature", status.valid, valid_detail))
    cov = status.coverage
    checks.append(Check("byte_range", cov in (SignatureCoverageLevel.ENTIRE_FILE,
                                              SignatureCoverageLevel.ENTIRE_REVISION),
                        "covers the whole file except /Contents" if cov is SignatureCoverageLevel.ENTIRE_FILE
                        else "covers its whole revision except /Contents; later incremental updates follow"
                        if cov is SignatureCoverageLevel.ENTIRE_REVISION
                        else f"covers {cov.name.lower() if cov else 'unknown'}"))
    trusted = status.trusted
    checks.append(Check("chain_trusted", trusted,
                        "chain ends at a given trust anchor" if trusted else
                        f"untrusted: {status.trust_problem_indic or 'no path to a trust anchor'}"))
    rev = status.revocation_details
    if rev is not None:
        checks.append(Check("revocation", False, f"revoked: {rev.revocation_reason} on {rev.revocation_date}"))
    elif trusted:
        checks.append(_revocation_check(sig, status, roots, other, crls, moment))
    else:
        checks.append(Check("revocation", None, "not checked: chain not trusted"))
    ts = status.timestamp_validity
    if ts is None:
        checks.append(Check("timestamp", None, "no signature time stamp"))
    else:
        checks.append(Check("timestamp", ts.intact and ts.valid,
                            f"time stamp at {ts.timestamp} intact={ts.intact} valid={ts.valid} trusted={ts.trusted}"))
    diff = status.diff_result
    mod_level = getattr(diff, "modification_level", None)
    docmdp_ok = status.docmdp_ok
    # ANNOTATIONS (comments, stamps drawn over the page after signing) fails too: on an e-licence an overlay is content
    checks.append(Check("modifications", docmdp_ok is not False and
                        (mod_level is None or mod_level.name not in ("ANNOTATIONS", "OTHER")),
                        f"{cov.name.lower() if cov else ''}; modification level "
                        f"{mod_level.name if mod_level else 'none'}; "
                        f"DocMDP {'respected' if docmdp_ok is not False else 'violated'}"))
    checks.append(_form_check(sig, getattr(diff, "changed_form_fields", None) or set(), allow_form_filling))
    seal = _seal_check(sig, status, roots, other, registry, moment, crls)
    checks.append(Check("seal", seal.ok, seal.detail))
    level = _pades_level(sig, status)
    signing_time = status.signer_reported_dt.isoformat() if status.signer_reported_dt else None
    return SignatureReport(_field_name(sig), _signer_name(sig), _ALG_NAMES.get(sig_alg, sig_alg),
                           status.md_algorithm or "?", subfilter, signing_time, level, checks, seal)


def _verify_doc_timestamp(sig: EmbeddedPdfSignature, vc: Any) -> SignatureReport:
    """Report for a document time stamp (PAdES B-LTA): token intact, valid, trusted; later changes allowed."""
    sig_alg = sig.signer_info["signature_algorithm"]["algorithm"].dotted
    subfilter = str(sig.sig_object.get("/SubFilter", ""))
    name = _ALG_NAMES.get(sig_alg, sig_alg)
    try:
        status = validate_pdf_timestamp(sig, vc)
    except Exception as exc:  # pyHanko raises on malformed tokens or byte ranges
        return SignatureReport(_field_name(sig), _signer_name(sig), name, "?", subfilter, None, "document time stamp",
                               [Check("format", False, f"{type(exc).__name__}: {exc}")])
    mod_level = getattr(status.diff_result, "modification_level", None)
    checks = [
        Check("intact", status.intact, "document digest matches the token's message imprint"
              if status.intact else "the covered bytes changed after time-stamping"),
        Check("signature", status.valid, "token signature verifies with the TSA certificate"
              if status.valid else "token signature does not verify"),
        Check("chain_trusted", status.trusted, "TSA chain ends at a given trust anchor" if status.trusted
              else f"untrusted: {status.trust_problem_indic or 'no path to a trust anchor'}"),
        Check("modifications", mod_level is None or mod_level.name != "OTHER",
              f"modification level {mod_level.name if mod_level else 'none'}"),
    ]
    return SignatureReport(_field_name(sig), _signer_name(sig), name, status.md_algorithm or "?", subfilter,
                           status.timestamp.isoformat() if status.timestamp else None, "document time stamp", checks)


def _field_name(sig: EmbeddedPdfSignature) -> str:
    """The field's /T as text: pyHanko gives a byte string for a name that is not a PDF text string (a report,
    its JSON and the daemon's protobuf reply need text)."""
    name = sig.field_name
    if isinstance(name, bytes):
        return name.decode("utf-8", "replace")
    return str(name)


def _signer_name(sig: EmbeddedPdfSignature) -> str:
    try:
        return sig.signer_cert.subject.human_friendly
    except Exception:
        return "?"


def _pades_level(sig: EmbeddedPdfSignature, status: Any) -> str:
    """B-B, B-T, B-LT or B-LTA as far as the document shows (not a full ETSI conformance check)."""
    if sig.sig_object.get("/SubFilter") != "/ETSI.CAdES.detached":
        return "none (not a PAdES signature)"
    level = "B-B"
    if status.timestamp_validity is not None:
        level = "B-T"
        root = sig.reader.root
        if "/DSS" in root:
            level = "B-LT"
            try:
                if any(s.sig_object.get("/Type") == "/DocTimeStamp" for s in sig.reader.embedded_timestamp_signatures):
                    level = "B-LTA"
            except Exception:
                pass
    return level


def signed_bytes(sig: EmbeddedPdfSignature) -> tuple[bytes, bytes]:
    """(CMS DER from /Contents without padding, the bytes /ByteRange covers) for external tools."""
    br = [int(x) for x in sig.sig_object["/ByteRange"]]
    stream = sig.reader.stream
    stream.seek(br[0])
    data = stream.read(br[1])
    stream.seek(br[2])
    data += stream.read(br[3])
    return cms.ContentInfo.load(bytes(sig.pkcs7_content)).dump(), data
