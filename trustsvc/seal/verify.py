"""Verify seals and seal signatures (GB/T 38540 §8 / GM/T 0031), step by step, over the received bytes.

Every step of STANDARDS.md is reported by name. Time: a seal is judged at ``at`` (default now); a
signature's certificates and seal are judged at its signing time (timeInfo), and expiry since then
at ``at`` is reported as a warning on ``signature.validity_now``.
"""

from __future__ import annotations

import datetime as dt
import functools
import hashlib
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Protocol, runtime_checkable

from asn1crypto import cms, tsp, x509

from trustsvc.algorithms import oids, sm2
from trustsvc.algorithms.keypair import PublicKey
from trustsvc.algorithms.sm2_engine import get_engine
from trustsvc.algorithms.sm3 import sm3
from trustsvc.errors import DecodeError, InvalidSignature, TrustsvcError
from trustsvc.pki.certificate import Certificate
from trustsvc.pki.crl import CertificateRevocationList
from trustsvc.pki.validation import validate
from trustsvc.seal.model import ParsedSeal, ParsedSignature
from trustsvc.seal.parse import NotASeal, parse
from trustsvc.seal.report import Check, Report, Status

if TYPE_CHECKING:
    from trustsvc.seal.registry import HistoryEntry

UTC = dt.UTC
PICTURE_MAGIC = {"PNG": (b"\x89PNG\r\n\x1a\n",), "GIF": (b"GIF87a", b"GIF89a"), "JPG": (b"\xff\xd8\xff",),
                 "JPEG": (b"\xff\xd8\xff",), "OFD": (b"PK\x03\x04",), "SVG": (b"<",)}
TimestampVerifier = Callable[[bytes, bytes], None]


class StatusSource(Protocol):
    def status(self, es_id: str) -> str | None: ...


@runtime_checkable
class HistorySource(Protocol):
    """A registry that also tells when a seal's status changed (``SealRegistry``)."""

    def status(self, es_id: str) -> str | None: ...

    def history(self, es_id: str) -> list[HistoryEntry]: ...


class UntrustedTimestamp(TrustsvcError):
    """The time stamp token verifies, but its TSA certificate does not chain to a trust anchor."""

    reason = "TIMESTAMP_UNTRUSTED"


def time_stamp_verifier(trust: Sequence[Certificate], intermediates: Sequence[Certificate] = (),
                        crls: Sequence[CertificateRevocationList] = ()) -> TimestampVerifier:
    """A ``TimestampVerifier`` checking an RFC 3161 token with ``trustsvc.tsa``: its signature, TSA certificate (key
    purpose, validity at genTime, revocation by ``crls``) and chain to ``trust``, and that it stamps the signature
    value. A token that only fails to chain to ``trust`` raises UntrustedTimestamp (a warning); any other failure
    InvalidSignature with its reason."""
    def check(token: bytes, signature_value: bytes) -> None:
        from trustsvc.tsa.verify import verify_timestamp_token

        result = verify_timestamp_token(token, signature_value, trust_anchors=list(trust),
                                        extra_certificates=list(intermediates), crls=list(crls))
        failed = [c for c in result.all_checks if c.ok is False]
        if failed and all(c.name == "chain" and c.reason != "REVOKED" for c in failed):
            raise UntrustedTimestamp(f"the TSA certificate does not chain to a trust anchor: {failed[0].detail}")
        if failed:
            raise InvalidSignature(f"time stamp token does not verify: {failed[0].name}: {failed[0].detail}",
                                   reason=failed[0].reason)
        if not result.ok:
            raise InvalidSignature("time stamp token does not verify", reason=result.reason)
    return check


# a time stamp's genTime (and the registry's times) may be whole seconds: a withdrawal within this much after the
# stamped time does not count as later
TIME_STAMP_PRECISION = dt.timedelta(seconds=1)


def verify(data: bytes, *, document: bytes | None = None, document_hash: bytes | None = None,
           at: dt.datetime | None = None, trust: Sequence[Certificate] = (),
           registry: StatusSource | None = None, timestamp_verifier: TimestampVerifier | None = None,
           intermediates: Sequence[Certificate] = (), crls: Sequence[CertificateRevocationList] = ()) -> Report:
    """Verify a seal or a seal signature given as DER; never raises for bad content, reports it.

    ``trust``: anchors for the certificate paths; ``intermediates``: CA certificates that may sit between;
    ``crls``: revocation of the maker's and signer's certificates, judged at the signing time."""
    at = _aware(at or dt.datetime.now(UTC))
    try:
        parsed = parse(data)
    except NotASeal as exc:
        report = Report("not-ses", at)
        report.facts["found"] = exc.kind
        report.add("format", Status.FAIL, exc.reason, exc.message)
        return report
    except TrustsvcError as exc:
        report = Report("signature", at)
        report.add("format", Status.FAIL, exc.reason, exc.message)
        return report
    if isinstance(parsed, ParsedSeal):
        return verify_seal(parsed, at=at, trust=trust, registry=registry, intermediates=intermediates, crls=crls)
    return verify_signature(parsed, document=document, document_hash=document_hash, at=at, trust=trust,
                            registry=registry, timestamp_verifier=timestamp_verifier, intermediates=intermediates,
                            crls=crls)


def verify_seal(seal: ParsedSeal, *, at: dt.datetime | None = None, trust: Sequence[Certificate] = (),
                registry: StatusSource | None = None, report: Report | None = None,
                judged_at: dt.datetime | None = None, intermediates: Sequence[Certificate] = (),
                crls: Sequence[CertificateRevocationList] = ()) -> Report:
    """Seal steps: format, maker signature, maker certificate (chain, validity, usage), validity, status."""
    at = _aware(at or dt.datetime.now(UTC))
    when = judged_at or at
    report = report or Report("seal", at, seal.structure, seal.version, seal.es_id)
    report.facts.setdefault("seal", _seal_facts(seal))
    _seal_format(report, seal)
    maker = _cert(report, "seal.maker_cert", seal.maker_cert)
    if maker is None:
        report.add("seal.maker_signature", Status.FAIL, "NO_MAKER_CERT", "cannot verify without the maker certificate")
    else:
        _safe(_sm2_check, report, "seal.maker_signature", maker, seal.signed_bytes, seal.signature, seal.sign_alg)
        _safe(_chain, report, "seal.maker_chain", maker, trust, when, intermediates, crls)
        _safe(_validity, report, "seal.maker_cert_validity", maker, when)
        _safe(_usage, report, "seal.maker_key_usage", maker)
    _safe(_window, report, "seal.validity", seal, when)
    _safe(lambda r, _n: _picture(r, seal), report, "seal.picture")
    _registry(report, seal.es_id, registry)
    return report


def verify_signature(sig: ParsedSignature, *, document: bytes | None = None, document_hash: bytes | None = None,
                     at: dt.datetime | None = None, trust: Sequence[Certificate] = (),
                     registry: StatusSource | None = None,
                     timestamp_verifier: TimestampVerifier | None = None,
                     intermediates: Sequence[Certificate] = (),
                     crls: Sequence[CertificateRevocationList] = ()) -> Report:
    """Signature steps, the embedded seal's steps (judged at the signing time), and expiry since."""
    at = _aware(at or dt.datetime.now(UTC))
    report = Report("signature", at, sig.structure, sig.version, sig.seal.es_id)
    signing_time = sig.time_info
    report.facts["signature"] = {"time_info": signing_time.isoformat() if signing_time else None,
                                 "property_info": sig.property_info, "data_hash": sig.data_hash.hex(),
                                 "time_stamp": sig.time_stamp is not None}
    _signature_format(report, sig)
    when = signing_time or at
    verify_seal(sig.seal, at=at, trust=trust, registry=registry, report=report, judged_at=when,
                intermediates=intermediates, crls=crls)
    signer = _cert(report, "signature.signer_cert", sig.signer_cert)
    if signer is None:
        report.add("signature.signer_signature", Status.FAIL, "NO_SIGNER_CERT", "no usable signer certificate")
    else:
        _safe(_sm2_check, report, "signature.signer_signature", signer, sig.tbs_bytes, sig.signature, sig.signature_alg,
                   data_hash=sig.data_hash)
        _safe(_chain, report, "signature.signer_chain", signer, trust, when, intermediates, crls)
        _safe(_validity, report, "signature.signer_cert_validity", signer, when)
        _safe(_usage, report, "signature.signer_key_usage", signer)
    _safe(_time_in_seal, report, "signature.time_in_seal", sig)
    _safe(_data_hash, report, "signature.data_hash", sig, document, document_hash)
    _safe(_cert_in_list, report, "signature.cert_in_list", sig)
    _safe(_timestamp, report, "signature.timestamp", sig, timestamp_verifier)
    stamped = report.facts.get("timestamp_time")
    if stamped and report.status("signature.timestamp") is Status.PASS:
        try:
            withdrawn_after(report, registry, sig.seal.es_id, _aware(dt.datetime.fromisoformat(stamped)))
        except (ValueError, TypeError):  # an odd genTime: the registry's verdict stands
            pass
    _safe(_validity_now, report, "signature.validity_now", sig, signer, at)
    return report


# steps ------------------------------------------------------------------------------
def _safe(step: Callable[..., None], report: Report, name: str, *args: object, **kwargs: object) -> None:
    """Run a step; an unexpected error in hostile input fails that step instead of escaping."""
    try:
        if step in (_time_in_seal, _data_hash, _cert_in_list, _timestamp, _validity_now):
            step(report, *args, **kwargs)
        else:
            step(report, name, *args, **kwargs)
    except Exception as exc:  # noqa: BLE001
        first_line = str(exc).splitlines()[0] if str(exc) else ""
        report.add(name, Status.FAIL, "STEP_ERROR", f"{type(exc).__name__}: {first_line}")


def _aware(t: dt.datetime) -> dt.datetime:
    return t if t.tzinfo else t.replace(tzinfo=UTC)


def _seal_facts(seal: ParsedSeal) -> dict[str, object]:
    return {"es_id": seal.es_id, "name": seal.name, "type": seal.seal_type, "vid": seal.vid,
            "valid_start": seal.valid_start.isoformat() if seal.valid_start else None,
            "valid_end": seal.valid_end.isoformat() if seal.valid_end else None,
            "picture": f"{seal.picture_type} {seal.picture_width_mm}x{seal.picture_height_mm} mm"}


def _seal_format(report: Report, seal: ParsedSeal) -> None:
    problems = []
    if seal.header_id != "ES":
        problems.append(f"header ID {seal.header_id!r} is not 'ES'")
    if seal.structure == "v4" and seal.version not in (4, 5):
        problems.append(f"header version {seal.version} in a GB/T 38540 structure")
    if seal.structure == "v1" and seal.version != 1:
        problems.append(f"header version {seal.version} in a GM/T 0031 structure")
    if seal.sign_alg != oids.SM2_WITH_SM3:
        problems.append(f"signature algorithm {seal.sign_alg} is not SM2-with-SM3")
    if problems:
        report.add("seal.format", Status.FAIL, "BAD_SEAL_FORMAT", "; ".join(problems))
    else:
        std = "GB/T 38540" if seal.structure == "v4" else "GM/T 0031"
        report.add("seal.format", Status.PASS, "OK", f"{std} SESeal version {seal.version}")


def _signature_format(report: Report, sig: ParsedSignature) -> None:
    problems = []
    if sig.structure == "v4" and sig.version not in (4, 5):
        problems.append(f"TBS_Sign version {sig.version}")
    if sig.signature_alg != oids.SM2_WITH_SM3:
        problems.append(f"signature algorithm {sig.signature_alg} is not SM2-with-SM3")
    if sig.time_info is None:
        problems.append("timeInfo is not a readable time")
    if problems:
        report.add("signature.format", Status.FAIL, "BAD_SIGNATURE_FORMAT", "; ".join(problems))
    else:
        report.add("signature.format", Status.PASS, "OK", f"SES_Signature version {sig.version}")


class _LenientCertificate(Certificate):
    """A vendor certificate whose names or extensions do not parse: key and validity only."""

    def __init__(self, der: bytes) -> None:  # noqa: D107 - deliberately skips the strict checks
        try:
            cert = x509.Certificate.load(der, strict=True)
            self.public_key = PublicKey.from_spki(cert["tbs_certificate"]["subject_public_key_info"].dump())
            _ = cert["tbs_certificate"]["validity"].native
        except TrustsvcError:
            raise
        except Exception as exc:  # noqa: BLE001
            raise DecodeError(f"certificate unusable even leniently: {exc}", reason="BAD_CERTIFICATE") from None
        self.der = der
        self.asn1 = cert

    @property
    def subject(self) -> str:
        try:
            return super().subject
        except Exception:  # noqa: BLE001
            return "(unreadable subject name)"

    @property
    def issuer(self) -> str:
        try:
            return super().issuer
        except Exception:  # noqa: BLE001
            return "(unreadable issuer name)"


@functools.lru_cache(maxsize=256)
def _parse_cert(der: bytes) -> tuple[Certificate, str | None]:
    """(certificate, why it is not strictly valid or None); raises TrustsvcError when unusable.

    Cached by the exact bytes: a verifier sees the same maker and holder certificates in every signature
    made with one seal, and parsing them is most of a report's cost. Certificates are not modified."""
    try:
        return Certificate(der), None
    except TrustsvcError as strict_error:
        return _LenientCertificate(der), strict_error.message.splitlines()[0]


def _cert(report: Report, name: str, der: bytes) -> Certificate | None:
    try:
        cert, strict_problem = _parse_cert(bytes(der))
    except TrustsvcError as exc:
        report.add(name, Status.FAIL, exc.reason, exc.message)
        return None
    status, reason, note = Status.PASS, "OK", ""
    if strict_problem is not None:
        status, reason = Status.WARNING, "NONCONFORMANT_CERTIFICATE"
        note = f" (not strictly valid X.509: {strict_problem})"
    if cert.public_key.point is None:
        report.add(name, Status.FAIL, "NOT_SM2_KEY", f"{cert.subject}: not an SM2 key")
        return None
    report.add(name, status, reason, cert.subject + note)
    return cert


def _sm2_check(report: Report, name: str, cert: Certificate, message: bytes, signature: bytes, alg: str,
               data_hash: bytes | None = None) -> None:
    point = cert.public_key.point
    assert point is not None
    try:
        sm2.verify(point, message, signature)
    except InvalidSignature as exc:
        if data_hash is not None and len(data_hash) == 32 and exc.reason == "INVALID_SIGNATURE":
            try:
                rs = sm2.signature_to_rs(signature)
                if get_engine().verify_e(point, data_hash, rs):
                    report.add(name, Status.FAIL, "SM2_RAW_DATAHASH",
                               "signature was made over the raw dataHash as the SM2 e value (no Z, not over "
                               "TBS_Sign): non-standard")
                    return
            except TrustsvcError:
                pass
        report.add(name, Status.FAIL, exc.reason, exc.message)
        return
    except TrustsvcError as exc:
        report.add(name, Status.FAIL, exc.reason, exc.message)
        return
    raw = sm2.is_raw_rs(signature)
    report.add(name, Status.PASS, "OK", "SM2 signature verifies" + (" (raw r||s encoding)" if raw else ""))


def _chain(report: Report, name: str, cert: Certificate, trust: Sequence[Certificate], when: dt.datetime,
           intermediates: Sequence[Certificate] = (), crls: Sequence[CertificateRevocationList] = ()) -> None:
    """RFC 5280 path from ``cert`` through ``intermediates`` to one of ``trust`` (trustsvc.pki.validation), every
    certificate on it judged at ``when`` (the signing time for signatures): signatures, validity windows, CA
    basic constraints and path length, issuers' keyCertSign, critical extensions, and revocation at ``when`` by
    the ``crls`` given (none given: not checked). The leaf's own key usage is the separate *_key_usage step
    (digitalSignature or nonRepudiation)."""
    if not trust:
        report.add(name, Status.WARNING, "NO_TRUST_ANCHORS", "no trust anchors given: chain not checked")
        return
    result = validate(cert, trust_anchors=list(trust), intermediates=list(intermediates), at=when, crls=list(crls))
    path = " <- ".join(c.subject for c in result.path)
    if not result.valid:
        first = result.failures[0]
        others = "; ".join(f"{f.name}@{f.depth}: {f.reason}" for f in result.failures[1:])
        report.add(name, Status.FAIL, first.reason or "CHAIN_INVALID",
                   f"{first.name} at depth {first.depth} ({first.subject}): {first.message}"
                   + (f" (also: {others})" if others else "") + f"; path {path}; judged at {when}")
    elif result.warnings:
        w = result.warnings[0]
        report.add(name, Status.WARNING, w.reason or "CHAIN_WARNING",
                   f"{w.name} at depth {w.depth} ({w.subject}): {w.message}; path {path}; judged at {when}")
    else:
        report.add(name, Status.PASS, "OK", f"path {path} to a trust anchor, valid at {when}")


def _validity(report: Report, name: str, cert: Certificate, when: dt.datetime) -> None:
    if when < cert.not_before:
        report.add(name, Status.FAIL, "CERT_NOT_YET_VALID", f"valid from {cert.not_before} (judged at {when})")
    elif when > cert.not_after:
        report.add(name, Status.FAIL, "CERT_EXPIRED", f"expired {cert.not_after} (judged at {when})")
    else:
        report.add(name, Status.PASS, "OK", f"{cert.not_before} .. {cert.not_after} (judged at {when})")


def _usage(report: Report, name: str, cert: Certificate) -> None:
    try:
        usage = cert.key_usage
    except Exception as exc:  # noqa: BLE001 - vendor certificates with malformed extensions
        report.add(name, Status.WARNING, "UNREADABLE_EXTENSIONS", f"certificate extensions unreadable: {exc}")
        return
    if not usage or "digital_signature" in usage or "non_repudiation" in usage:
        report.add(name, Status.PASS, "OK", ", ".join(sorted(usage)) or "no key usage extension")
    else:
        report.add(name, Status.FAIL, "BAD_KEY_USAGE", f"key usage {sorted(usage)} does not allow signing")


def _window(report: Report, name: str, seal: ParsedSeal, when: dt.datetime) -> None:
    start, end = seal.valid_start, seal.valid_end
    if start is None or end is None:
        report.add(name, Status.FAIL, "NO_VALIDITY", "seal has no validity window")
    elif when < start:
        report.add(name, Status.FAIL, "SEAL_NOT_YET_VALID", f"valid from {start} (judged at {when})")
    elif when > end:
        report.add(name, Status.FAIL, "SEAL_EXPIRED", f"expired {end} (judged at {when})")
    else:
        report.add(name, Status.PASS, "OK", f"{start} .. {end} (judged at {when})")


def _picture(report: Report, seal: ParsedSeal) -> None:
    kind = seal.picture_type.upper()
    magics = PICTURE_MAGIC.get(kind)
    data = seal.picture_data.lstrip() if kind == "SVG" else seal.picture_data
    if not seal.picture_data:
        report.add("seal.picture", Status.FAIL, "EMPTY_PICTURE", "no picture data")
    elif magics is None:
        report.add("seal.picture", Status.WARNING, "UNKNOWN_PICTURE_TYPE", f"picture type {seal.picture_type!r}")
    elif not data.startswith(magics):
        report.add("seal.picture", Status.FAIL, "PICTURE_TYPE_MISMATCH",
                   f"data is not {seal.picture_type} (starts {seal.picture_data[:8].hex()})")
    elif seal.picture_width_mm <= 0 or seal.picture_height_mm <= 0:
        report.add("seal.picture", Status.FAIL, "BAD_PICTURE_SIZE", "width/height must be positive millimetres")
    else:
        report.add("seal.picture", Status.PASS, "OK",
                   f"{seal.picture_type} {len(seal.picture_data)} bytes, {seal.picture_width_mm}x"
                   f"{seal.picture_height_mm} mm")


def _registry(report: Report, es_id: str, registry: StatusSource | None) -> None:
    if registry is None:
        report.add("seal.status", Status.SKIPPED, "NO_REGISTRY", "no seal registry given")
        return
    try:
        status = registry.status(es_id)
    except TrustsvcError as exc:
        report.add("seal.status", Status.WARNING, exc.reason, f"registry unavailable: {exc.message}")
        return
    if status is None:
        report.add("seal.status", Status.WARNING, "SEAL_NOT_REGISTERED", f"esID {es_id!r} not in the registry")
    elif status == "active":
        report.add("seal.status", Status.PASS, "OK", "active in the registry")
    elif status == "expired":
        report.add("seal.status", Status.WARNING, "SEAL_EXPIRED", "registry marks the seal expired")
    else:
        report.add("seal.status", Status.FAIL, f"SEAL_{status.upper()}", f"registry marks the seal {status}")


def withdrawn_after(report: Report, registry: StatusSource | None, es_id: str, stamped_at: dt.datetime) -> None:
    """A failed ``seal.status`` becomes a warning (``SEAL_REVOKED_SINCE`` ...) when ``stamped_at`` is a trusted time
    stamp's time and the registry's history shows the seal active then and withdrawn later: a document stamped while
    its seal was in force outlives the seal, as a time-stamped signature outlives its certificate's revocation."""
    at = next((i for i, c in enumerate(report.checks) if c.name == "seal.status" and c.status is Status.FAIL), None)
    if at is None or not isinstance(registry, HistorySource):
        return
    try:
        history = registry.history(es_id)
    except TrustsvcError:
        return  # the failure stands
    then = None
    for entry in history:  # oldest first
        if entry.at > stamped_at:
            break
        then = entry.to_status
    change = next((e for e in history if e.at > stamped_at and e.to_status != "active"), None)
    if then != "active" or change is None or change.at <= stamped_at + TIME_STAMP_PRECISION:
        return
    report.checks[at] = Check("seal.status", Status.WARNING, f"{report.checks[at].reason}_SINCE",
                              f"{change.to_status} at {change.at.isoformat()} ({change.reason}), after the "
                              f"time-stamped signing time {stamped_at.isoformat()}: the seal was active when stamped")


def _time_in_seal(report: Report, sig: ParsedSignature) -> None:
    t, seal = sig.time_info, sig.seal
    if t is None or seal.valid_start is None or seal.valid_end is None:
        report.add("signature.time_in_seal_validity", Status.FAIL, "NO_TIME", "signing time or seal window missing")
    elif not seal.valid_start <= t <= seal.valid_end:
        report.add("signature.time_in_seal_validity", Status.FAIL, "SIGNED_OUTSIDE_SEAL_VALIDITY",
                   f"signed {t}, seal valid {seal.valid_start} .. {seal.valid_end}")
    else:
        report.add("signature.time_in_seal_validity", Status.PASS, "OK", f"signed {t}")


def _data_hash(report: Report, sig: ParsedSignature, document: bytes | None, document_hash: bytes | None) -> None:
    if document is None and document_hash is None:
        report.add("signature.data_hash", Status.SKIPPED, "NO_DOCUMENT", "original not given: dataHash not compared")
        return
    expected = document_hash if document_hash is not None else sm3(document or b"")
    if expected == sig.data_hash:
        report.add("signature.data_hash", Status.PASS, "OK", "dataHash equals SM3 of the original")
    else:
        report.add("signature.data_hash", Status.FAIL, "DATA_HASH_MISMATCH",
                   f"dataHash {sig.data_hash.hex()} != SM3(original) {expected.hex()}")


_DIGESTS: dict[str, Callable[[bytes], bytes]] = {
    "sm3": sm3, oids.SM3: sm3, "sha1": lambda b: hashlib.sha1(b).digest(),
    "sha256": lambda b: hashlib.sha256(b).digest()}


def listed_in_seal(seal: ParsedSeal, cert: bytes) -> str | None:
    """How the seal's certList names ``cert`` (the certificate itself, or its SM3/SHA-1/SHA-256 digest when
    certListType is 2), or None when it does not: only a listed holder may stamp the seal."""
    if seal.cert_list_type == 2:
        for kind, value in seal.cert_digests:
            fn = _DIGESTS.get(kind.strip().lower())
            if fn is not None and fn(cert) == value:
                return f"signer cert {kind} digest listed"
        return None
    return "signer certificate listed in the seal" if cert in seal.cert_list else None


def _cert_in_list(report: Report, sig: ParsedSignature) -> None:
    listed = listed_in_seal(sig.seal, sig.signer_cert)
    if listed is not None:
        report.add("signature.cert_in_list", Status.PASS, "OK", listed)
    else:
        report.add("signature.cert_in_list", Status.FAIL, "SIGNER_NOT_IN_CERT_LIST",
                   "the signer certificate is not in the seal's certList")


def _timestamp(report: Report, sig: ParsedSignature, verifier: TimestampVerifier | None) -> None:
    token = sig.time_stamp
    if token is None:
        report.add("signature.timestamp", Status.SKIPPED, "NO_TIMESTAMP", "no time stamp")
        return
    try:
        info = cms.ContentInfo.load(token, strict=True)
        tst = info["content"]["encap_content_info"]["content"].parsed
        if not isinstance(tst, tsp.TSTInfo):
            tst = tsp.TSTInfo.load(bytes(info["content"]["encap_content_info"]["content"]))
        imprint = tst["message_imprint"]
        alg = imprint["hash_algorithm"]["algorithm"].native
        fn = _DIGESTS.get(alg) or (lambda b: hashlib.new(alg, b).digest())
        bound = fn(sig.signature) == bytes(imprint["hashed_message"].native)
        gen_time = tst["gen_time"].native
    except Exception as exc:  # noqa: BLE001 - any parse problem is a format failure
        report.add("signature.timestamp", Status.FAIL, "BAD_TIMESTAMP", f"time stamp token unreadable: {exc}")
        return
    if not bound:
        report.add("signature.timestamp", Status.FAIL, "TIMESTAMP_NOT_BOUND",
                   "messageImprint is not the hash of the signature value")
        return
    report.facts["timestamp_time"] = str(gen_time)
    if verifier is None:
        report.add("signature.timestamp", Status.WARNING, "TIMESTAMP_SIGNATURE_NOT_CHECKED",
                   f"bound to the signature, time {gen_time}; token signature not checked (no verifier)")
        return
    try:
        verifier(token, sig.signature)
    except UntrustedTimestamp as exc:
        report.add("signature.timestamp", Status.WARNING, exc.reason, f"time {gen_time}: {exc.message}")
        return
    except TrustsvcError as exc:
        report.add("signature.timestamp", Status.FAIL, exc.reason, exc.message)
        return
    report.add("signature.timestamp", Status.PASS, "OK", f"valid, bound to the signature, time {gen_time}")


def _validity_now(report: Report, sig: ParsedSignature, signer: Certificate | None, at: dt.datetime) -> None:
    expired = []
    if sig.seal.valid_end is not None and at > sig.seal.valid_end:
        expired.append(f"seal expired {sig.seal.valid_end}")
    if signer is not None and at > signer.not_after:
        expired.append(f"signer certificate expired {signer.not_after}")
    if expired:
        report.add("signature.validity_now", Status.WARNING, "EXPIRED_SINCE_SIGNING",
                   f"at {at}: " + "; ".join(expired))
    else:
        report.add("signature.validity_now", Status.PASS, "OK", f"seal and signer certificate valid at {at}")
