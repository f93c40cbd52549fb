"""Certificate path validation (RFC 5280 §6, simplified) for SM2 and every other key type.

``validate`` builds a path from a leaf through given intermediates to a configured trust anchor
and runs named checks at a given time: signatures (over the received TBS bytes), validity windows,
basic constraints and path length, key usage (keyCertSign for issuers, a required set for the leaf),
extended key usage, unknown critical extensions and CRL revocation. The result is a status object
with one entry per check; ``validate_or_raise`` raises PathValidationError naming the failed check.

Failure reasons: UNTRUSTED_ROOT, BAD_SIGNATURE (SM2_ID_MISMATCH / SM2_NO_Z when an SM2 signature is
valid under another user ID or without Z), EXPIRED, NOT_YET_VALID, NOT_A_CA, PATH_LENGTH_EXCEEDED,
KEY_USAGE, EXTENDED_KEY_USAGE, UNKNOWN_CRITICAL_EXTENSION, UNREADABLE_EXTENSIONS (a vendor certificate whose
extensions do not parse: nothing they constrain can be judged), MALFORMED_CERTIFICATE (another field of
such a certificate does not parse), REVOKED, CRL_BAD_SIGNATURE, CRL_EXPIRED,
CRL_NOT_YET_VALID, CRL_ISSUER_KEY_USAGE, REVOCATION_UNKNOWN.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import enum
from collections.abc import Iterable, Sequence
from typing import Any

from trustsvc.errors import InvalidSignature, PathValidationError, TrustsvcError
from trustsvc.pki.certificate import Certificate
from trustsvc.pki.crl import CertificateRevocationList

UTC = dt.UTC
MAX_PATH = 10
CLOCK_SKEW = dt.timedelta(minutes=5)  # a CRL's thisUpdate this far ahead of our clock is still accepted
# what asn1crypto raises on a field of a leniently read certificate that does not parse when first used
_UNPARSED = (ValueError, TypeError, KeyError, IndexError)

#: Extensions this validator understands (may be critical).
UNDERSTOOD_EXTENSIONS = frozenset({
    "key_usage", "basic_constraints", "extended_key_usage", "subject_alt_name", "issuer_alt_name",
    "certificate_policies", "key_identifier", "authority_key_identifier", "crl_distribution_points",
    "authority_information_access",
})
#: EKU names accepted anywhere (asn1crypto names or dotted OIDs).
EKU_ALIASES = {"serverAuth": "server_auth", "clientAuth": "client_auth", "timeStamping": "time_stamping",
               "codeSigning": "code_signing", "emailProtection": "email_protection", "OCSPSigning": "ocsp_signing"}
KU_ALIASES = {"digitalSignature": "digital_signature", "nonRepudiation": "non_repudiation",
              "contentCommitment": "non_repudiation", "keyEncipherment": "key_encipherment",
              "dataEncipherment": "data_encipherment", "keyAgreement": "key_agreement",
              "keyCertSign": "key_cert_sign", "cRLSign": "crl_sign"}


class CheckStatus(enum.StrEnum):
    PASS = "pass"
    FAIL = "fail"
    WARNING = "warning"
    SKIPPED = "skipped"


@dataclasses.dataclass(frozen=True)
class Check:
    """One named check on one certificate of the path (``depth`` 0 is the leaf)."""

    name: str
    status: CheckStatus
    depth: int
    subject: str
    reason: str = ""
    message: str = ""

    def to_json(self) -> dict[str, Any]:
        return {"check": self.name, "status": self.status.value, "depth": self.depth, "subject": self.subject,
                "reason": self.reason or None, "message": self.message}


@dataclasses.dataclass
class PathValidationResult:
    """The outcome: the path found (leaf first, anchor last) and every check run on it."""

    at: dt.datetime
    path: list[Certificate]
    checks: list[Check]
    trusted: bool

    @property
    def failures(self) -> list[Check]:
        return [c for c in self.checks if c.status is CheckStatus.FAIL]

    @property
    def warnings(self) -> list[Check]:
        return [c for c in self.checks if c.status is CheckStatus.WARNING]

    @property
    def valid(self) -> bool:
        return self.trusted and not self.failures

    @property
    def reason(self) -> str | None:
        """The first failure's reason (None when valid)."""
        failures = self.failures
        return failures[0].reason if failures else None

    def check(self, name: str, depth: int = 0) -> Check | None:
        for c in self.checks:
            if c.name == name and c.depth == depth:
                return c
        return None

    def raise_for_status(self) -> None:
        failures = self.failures
        if failures:
            first = failures[0]
            others = "; ".join(f"{f.name}@{f.depth}: {f.reason}" for f in failures[1:])
            raise PathValidationError(f"{first.name} failed for {first.subject!r}: {first.message}"
                                      + (f" (also: {others})" if others else ""), reason=first.reason)

    def to_json(self) -> dict[str, Any]:
        return {
            "valid": self.valid,
            "reason": self.reason,
            "at": self.at.isoformat(),
            "path": [{"subject": c.subject, "issuer": c.issuer, "serial": f"{c.serial_number:x}",
                      "not_before": c.not_before.isoformat(), "not_after": c.not_after.isoformat(),
                      "sha256": c.fingerprint_sha256} for c in self.path],
            "checks": [c.to_json() for c in self.checks],
        }

    def summary(self) -> str:
        """A few lines for people."""
        lines = [f"{'VALID' if self.valid else 'INVALID'} at {self.at.isoformat()}"
                 + ("" if self.valid else f" ({self.reason})")]
        for depth, cert in enumerate(self.path):
            lines.append(f"  [{depth}] {cert.subject}")
        for c in self.checks:
            if c.status is not CheckStatus.PASS:
                lines.append(f"  {c.status.value.upper()}: {c.name}@{c.depth} {c.reason}: {c.message}")
        return "\n".join(lines)


def _norm(names: Iterable[str], aliases: dict[str, str]) -> set[str]:
    return {aliases.get(n, n) for n in names}


def unreadable_extensions(cert: Certificate) -> str | None:
    """Why ``cert``'s extensions cannot be parsed (asn1crypto parses them all at once), or None."""
    a = cert.asn1
    try:  # each of these parses its extension's value on first use
        _ = (a.critical_extensions, a.key_identifier, a.authority_key_identifier, a.key_usage_value,
             a.basic_constraints_value, a.extended_key_usage_value)
    except _UNPARSED as exc:
        return str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    return None


def _issues(issuer: Certificate, child: Certificate) -> bool:
    """Name chaining, refined by key identifiers when both are present and readable."""
    try:
        if issuer.subject_name != child.issuer_name:
            return False
    except _UNPARSED:  # a name that does not parse names no issuer
        return False
    if unreadable_extensions(child) or unreadable_extensions(issuer):
        return True  # name chaining alone; the path's extensions check then fails
    aki = child.asn1.authority_key_identifier
    ski = issuer.asn1.key_identifier
    return aki is None or ski is None or aki == ski


def _signs(issuer: Certificate, child: Certificate) -> bool:
    try:
        child.verify_signed_by(issuer.public_key)
        return True
    except (TrustsvcError, *_UNPARSED):
        return False


def build_path(leaf: Certificate, anchors: Sequence[Certificate],
               intermediates: Sequence[Certificate] = ()) -> tuple[list[Certificate], bool]:
    """(path leaf first, ends_at_anchor). Prefers issuers whose signature verifies and anchors."""
    path = [leaf]
    if leaf in anchors:
        return path, True
    while len(path) <= MAX_PATH:
        current = path[-1]
        candidates = [c for c in list(anchors) + list(intermediates)
                      if c not in path and _issues(c, current)]
        if not candidates:
            return path, False
        candidates.sort(key=lambda c: (not _signs(c, current), c not in anchors))
        path.append(candidates[0])
        if candidates[0] in anchors:
            return path, True
    return path, False


def validate(leaf: Certificate, *, trust_anchors: Sequence[Certificate],
             intermediates: Sequence[Certificate] = (), at: dt.datetime | None = None,
             key_usage: Iterable[str] = (), extended_key_usage: Iterable[str] = (),
             crls: Sequence[CertificateRevocationList] = (), require_revocation: bool = False) -> PathValidationResult:
    """Validate ``leaf`` at ``at`` (default now); see the module docstring for the checks."""
    at = at or dt.datetime.now(UTC)
    if at.tzinfo is None:
        at = at.replace(tzinfo=UTC)
    path, trusted = build_path(leaf, list(trust_anchors), list(intermediates))
    checks: list[Check] = []

    def add(name: str, status: CheckStatus, depth: int, reason: str = "", message: str = "") -> None:
        checks.append(Check(name, status, depth, path[depth].subject, reason, message))

    last = len(path) - 1
    if trusted:
        add("trust_anchor", CheckStatus.PASS, last, message="path ends at a configured trust anchor")
    else:
        add("trust_anchor", CheckStatus.FAIL, last, "UNTRUSTED_ROOT",
            f"no issuer for {path[-1].issuer!r} among the trust anchors or intermediates")

    for depth, cert in enumerate(path):
        issuer = path[depth + 1] if depth < last else None
        try:
            _check_signature(add, depth, cert, issuer, is_anchor=trusted and depth == last)
            _check_validity(add, depth, cert, at)
            broken = unreadable_extensions(cert)
            if broken:  # critical extensions, usage and CA constraints cannot be judged: the path fails here
                add("extensions", CheckStatus.FAIL, depth, "UNREADABLE_EXTENSIONS",
                    f"extensions do not parse: {broken}")
            else:
                _check_critical(add, depth, cert)
                if depth == 0:
                    _check_leaf_usage(add, cert, _norm(key_usage, KU_ALIASES), _norm(extended_key_usage, EKU_ALIASES))
                else:
                    _check_issuer(add, depth, cert)
            if issuer is not None:
                _check_revocation(add, depth, cert, issuer, crls, at, require_revocation)
        except _UNPARSED as exc:  # any other field of a leniently read certificate
            add("certificate", CheckStatus.FAIL, depth, "MALFORMED_CERTIFICATE",
                f"a field does not parse: {str(exc).splitlines()[0] if str(exc) else type(exc).__name__}")
    return PathValidationResult(at, path, checks, trusted)


def validate_or_raise(leaf: Certificate, **kwargs: Any) -> PathValidationResult:
    """``validate`` and raise PathValidationError (``reason`` = the first failed check's) unless valid."""
    result = validate(leaf, **kwargs)
    result.raise_for_status()
    return result


# ------------------------------------------------------------------------------------- checks
def _check_signature(add: Any, depth: int, cert: Certificate, issuer: Certificate | None, is_anchor: bool) -> None:
    if issuer is None:
        add("signature", CheckStatus.SKIPPED, depth,
            message="trust anchor: trusted by configuration" if is_anchor else "issuer not found")
        return
    try:
        cert.verify_signed_by(issuer.public_key)
    except InvalidSignature as exc:
        reason = exc.reason if exc.reason in ("SM2_ID_MISMATCH", "SM2_NO_Z") else "BAD_SIGNATURE"
        add("signature", CheckStatus.FAIL, depth, reason, f"signature by {issuer.subject!r}: {exc.message}")
        return
    except TrustsvcError as exc:
        add("signature", CheckStatus.FAIL, depth, "BAD_SIGNATURE", f"signature unusable: {exc.message}")
        return
    add("signature", CheckStatus.PASS, depth, message=f"signed by {issuer.subject!r}")


def _check_validity(add: Any, depth: int, cert: Certificate, at: dt.datetime) -> None:
    if at < cert.not_before:
        add("validity", CheckStatus.FAIL, depth, "NOT_YET_VALID", f"not valid before {cert.not_before.isoformat()}")
    elif at > cert.not_after:
        add("validity", CheckStatus.FAIL, depth, "EXPIRED", f"expired at {cert.not_after.isoformat()}")
    else:
        window = f"{cert.not_before.isoformat()} .. {cert.not_after.isoformat()}"
        add("validity", CheckStatus.PASS, depth, message=window)


def _check_critical(add: Any, depth: int, cert: Certificate) -> None:
    unknown = sorted(str(e) for e in cert.asn1.critical_extensions if e not in UNDERSTOOD_EXTENSIONS)
    if unknown:
        add("critical_extensions", CheckStatus.FAIL, depth, "UNKNOWN_CRITICAL_EXTENSION",
            f"critical extensions not understood: {', '.join(unknown)}")
    else:
        add("critical_extensions", CheckStatus.PASS, depth)


def _check_issuer(add: Any, depth: int, cert: Certificate) -> None:
    if not cert.is_ca:
        add("basic_constraints", CheckStatus.FAIL, depth, "NOT_A_CA",
            "issues certificates but basicConstraints cA is not true")
    else:
        add("basic_constraints", CheckStatus.PASS, depth)
    limit = cert.path_length
    below = depth - 1  # CA certificates between this issuer and the leaf
    if limit is not None and below > limit:
        add("path_length", CheckStatus.FAIL, depth, "PATH_LENGTH_EXCEEDED",
            f"pathLenConstraint {limit} but {below} CA certificate(s) follow")
    else:
        add("path_length", CheckStatus.PASS, depth)
    if cert.asn1.key_usage_value is None:
        add("key_usage", CheckStatus.WARNING, depth, "KEY_USAGE_ABSENT", "issuer has no keyUsage extension")
    elif "key_cert_sign" not in cert.key_usage:
        add("key_usage", CheckStatus.FAIL, depth, "KEY_USAGE", "issuer keyUsage lacks keyCertSign")
    else:
        add("key_usage", CheckStatus.PASS, depth)


def _check_leaf_usage(add: Any, cert: Certificate, required_ku: set[str], required_eku: set[str]) -> None:
    if required_ku:
        if cert.asn1.key_usage_value is None:
            add("key_usage", CheckStatus.WARNING, 0, "KEY_USAGE_ABSENT",
                "no keyUsage extension (any usage allowed by RFC 5280)")
        else:
            missing = required_ku - cert.key_usage
            if missing:
                add("key_usage", CheckStatus.FAIL, 0, "KEY_USAGE", f"keyUsage lacks {', '.join(sorted(missing))}")
            else:
                add("key_usage", CheckStatus.PASS, 0, message=", ".join(sorted(required_ku)))
    if required_eku:
        present = cert.extended_key_usage
        missing = required_eku - present
        if "any_extended_key_usage" in present:
            missing = set()
        if cert.asn1.extended_key_usage_value is None or missing:
            add("extended_key_usage", CheckStatus.FAIL, 0, "EXTENDED_KEY_USAGE",
                f"extendedKeyUsage lacks {', '.join(sorted(missing or required_eku))}")
        else:
            add("extended_key_usage", CheckStatus.PASS, 0, message=", ".join(sorted(required_eku)))


def _check_revocation(add: Any, depth: int, cert: Certificate, issuer: Certificate,
                      crls: Sequence[CertificateRevocationList], at: dt.datetime, required: bool) -> None:
    relevant = [c for c in crls if c.issuer_name == issuer.subject_name]
    if not relevant:
        if required:
            add("revocation", CheckStatus.FAIL, depth, "REVOCATION_UNKNOWN", f"no CRL from {issuer.subject!r}")
        else:
            add("revocation", CheckStatus.SKIPPED, depth, message=f"no CRL from {issuer.subject!r} given")
        return
    problem: tuple[str, str] | None = None
    for crl in relevant:
        try:
            crl.verify_signed_by(issuer.public_key)
        except TrustsvcError as exc:
            problem = ("CRL_BAD_SIGNATURE", f"CRL not signed by {issuer.subject!r}: {exc.message}")
            continue
        if issuer.asn1.key_usage_value is not None and "crl_sign" not in issuer.key_usage:
            problem = ("CRL_ISSUER_KEY_USAGE", "CRL issuer keyUsage lacks cRLSign")
            continue
        # A CRL issued after ``at`` is the evidence for a time judged in the past (a signing time): it lists the
        # revocations up to its thisUpdate, and one dated after ``at`` does not count. Only one issued in the
        # future is not yet valid.
        if crl.this_update > dt.datetime.now(UTC) + CLOCK_SKEW:
            problem = ("CRL_NOT_YET_VALID", f"CRL thisUpdate {crl.this_update.isoformat()} is in the future")
            continue
        if crl.next_update is not None and at > crl.next_update:
            problem = ("CRL_EXPIRED", f"CRL nextUpdate {crl.next_update.isoformat()} is before {at.isoformat()}")
            continue
        entry = crl.revocation(cert.serial_number)
        if crl.is_revoked(cert.serial_number, at) and entry is not None:
            why = entry.reason.value if entry.reason else "unspecified"
            add("revocation", CheckStatus.FAIL, depth, "REVOKED",
                f"serial {cert.serial_number:x} revoked at {entry.revoked_at.isoformat()} ({why})")
        else:
            add("revocation", CheckStatus.PASS, depth, message=f"not on CRL #{crl.crl_number} of {issuer.subject!r}")
        return
    assert problem is not None
    add("revocation", CheckStatus.FAIL, depth, *problem)
