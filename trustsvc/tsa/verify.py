"""Time-stamp token verification (RFC 3161 §2.4.2, RFC 5816).

``verify_timestamp_token(token_der, data=None, *, digest=None, trust_anchors=None, at=None)``
returns a ``TimestampVerification``: the CMS checks (format, content-type, message-digest,
signer-cert-found, signature, chain) plus ``tst-info``, ``imprint``, ``eku`` (critical,
timeStamping only), ``signing-certificate`` (ESS certificate hash) and ``gen-time``
(within the TSA certificate's validity). ``gen_time``, ``serial_number``, ``policy``,
``hash_algorithm``, ``hashed_message`` and ``nonce`` carry the TSTInfo fields.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
from collections.abc import Sequence
from typing import Any

from asn1crypto import cms, core, tsp

from trustsvc.errors import TrustsvcError
from trustsvc.pki.certificate import Certificate
from trustsvc.pki.cms_verify import Check, CmsVerification, verify_cms


class TimeStampResp(core.Sequence):
    """RFC 3161 TimeStampResp with the token OPTIONAL (asn1crypto's requires it)."""

    _fields = [("status", tsp.PKIStatusInfo), ("time_stamp_token", cms.ContentInfo, {"optional": True})]


_DIGESTS = {"sm3", "sha1", "sha224", "sha256", "sha384", "sha512"}


@dataclasses.dataclass
class TimestampVerification:
    """Outcome of ``verify_timestamp_token``; ``ok`` when no check failed."""

    cms: CmsVerification
    checks: list[Check] = dataclasses.field(default_factory=list)
    gen_time: dt.datetime | None = None
    serial_number: int | None = None
    policy: str | None = None
    hash_algorithm: str | None = None
    hashed_message: bytes | None = None
    nonce: int | None = None
    tst_info: Any = None

    @property
    def all_checks(self) -> list[Check]:
        base = list(self.cms.checks) + (list(self.cms.signers[0].checks) if self.cms.signers else [])
        return base + self.checks

    @property
    def ok(self) -> bool:
        return self.cms.ok and all(c.ok is not False for c in self.checks)

    @property
    def reason(self) -> str:
        fails = [c for c in self.all_checks if c.ok is False]
        return fails[0].reason if fails else ("OK" if self.ok else self.cms.reason)

    def check(self, name: str) -> Check:
        """The named check; one with ok None and reason NOT_RUN when it was not run."""
        return next((c for c in self.all_checks if c.name == name), Check(name, None, "NOT_RUN"))

    def to_dict(self) -> dict[str, Any]:
        return {"ok": self.ok, "reason": self.reason,
                "gen_time": self.gen_time.isoformat() if self.gen_time else None,
                "serial_number": self.serial_number, "policy": self.policy, "hash_algorithm": self.hash_algorithm,
                "hashed_message": self.hashed_message.hex() if self.hashed_message else None, "nonce": self.nonce,
                "tsa": self.cms.signers[0].certificate.subject if self.cms.signers and self.cms.signers[0].certificate
                else None, "checks": [c.to_dict() for c in self.all_checks]}

    def _add(self, name: str, ok: bool | None, reason: str = "", detail: str = "") -> None:
        self.checks.append(Check(name, ok, reason or ("OK" if ok else "NOT_APPLICABLE" if ok is None else "FAILED"),
                                 detail))


def verify_timestamp_token(token_der: bytes, data: bytes | None = None, *, digest: bytes | None = None,
                           trust_anchors: Sequence[Certificate | bytes] | None = None, at: dt.datetime | None = None,
                           extra_certificates: Sequence[Certificate | bytes] = (),
                           crls: Sequence[Any] = ()) -> TimestampVerification:
    """Verify a TimeStampToken (DER ContentInfo); give ``data`` or ``digest`` to check the imprint. ``crls`` (DER
    or CertificateRevocationList) feed the TSA chain's revocation check."""
    try:
        return _verify(token_der, data, digest, trust_anchors, at, extra_certificates, crls)
    except (ValueError, TypeError, KeyError, AttributeError, OverflowError, IndexError) as exc:
        out = TimestampVerification(CmsVerification())
        out._add("format", False, "BAD_TIMESTAMP_TOKEN", f"token unreadable: {exc}")
        return out


def _verify(token_der: bytes, data: bytes | None, digest: bytes | None,
            trust_anchors: Sequence[Certificate | bytes] | None, at: dt.datetime | None,
            extra_certificates: Sequence[Certificate | bytes], crls: Sequence[Any]) -> TimestampVerification:
    cms_result = verify_cms(token_der, trust_anchors=trust_anchors, at=at, extra_certificates=extra_certificates,
                            crls=crls)
    out = TimestampVerification(cms_result)
    if not cms_result.check("format").ok:
        return out
    if cms_result.content_type != "tst_info" or cms_result.content is None:
        out._add("tst-info", False, "NOT_A_TIMESTAMP_TOKEN", f"eContentType is {cms_result.content_type}")
        return out
    try:
        info = tsp.TSTInfo.load(cms_result.content, strict=True)
        out.gen_time = info["gen_time"].native
        out.serial_number = info["serial_number"].native
        out.policy = info["policy"].dotted
        out.hash_algorithm = info["message_imprint"]["hash_algorithm"]["algorithm"].native
        out.hashed_message = bytes(info["message_imprint"]["hashed_message"])
        out.nonce = info["nonce"].native
        if info["version"].native != "v1":
            raise ValueError("TSTInfo version is not 1")
        out.tst_info = info
    except (ValueError, TypeError, KeyError, AttributeError, OverflowError) as exc:
        out._add("tst-info", False, "BAD_TST_INFO", f"TSTInfo unreadable: {exc}")
        return out
    out._add("tst-info", True)
    if len(cms_result.signers) != 1:
        out._add("signers", False, "NOT_ONE_SIGNER", "a time-stamp token has exactly one SignerInfo")

    # imprint --------------------------------------------------------------------------
    if out.hash_algorithm not in _DIGESTS:
        out._add("imprint", False, "UNSUPPORTED_DIGEST", f"imprint hash {out.hash_algorithm} not supported")
    elif data is None and digest is None:
        out._add("imprint", None, "NO_DATA", "no data or digest given: imprint not checked")
    else:
        expected = digest if digest is not None else hashlib.new(out.hash_algorithm, data or b"").digest()
        if expected != out.hashed_message:
            out._add("imprint", False, "IMPRINT_MISMATCH", "messageImprint does not match the data")
        else:
            out._add("imprint", True, detail=out.hash_algorithm)

    signer = cms_result.signers[0] if cms_result.signers else None
    cert = signer.certificate if signer else None
    if cert is None:
        out._add("eku", False, "SIGNER_CERT_NOT_FOUND", "no TSA certificate")
        return out
    # EKU ------------------------------------------------------------------------------
    ext = next((e for e in cert.asn1["tbs_certificate"]["extensions"]
                if e["extn_id"].native == "extended_key_usage"), None)
    if ext is None:
        out._add("eku", False, "TSA_CERT_EKU", "TSA certificate has no extendedKeyUsage")
    elif not ext["critical"].native:
        out._add("eku", False, "TSA_CERT_EKU", "TSA certificate extendedKeyUsage is not critical")
    elif set(ext["extn_value"].native) != {"time_stamping"}:
        out._add("eku", False, "TSA_CERT_EKU", "TSA certificate extendedKeyUsage is not timeStamping only")
    else:
        out._add("eku", True)
    # ESS signing certificate ---------------------------------------------------------------
    _check_ess(out, signer, cert)
    # genTime --------------------------------------------------------------------------
    if out.gen_time is not None and not cert.valid_at(out.gen_time):
        out._add("gen-time", False, "GEN_TIME_OUTSIDE_VALIDITY",
                 f"genTime {out.gen_time.isoformat()} outside the TSA certificate's validity")
    else:
        out._add("gen-time", True, detail=out.gen_time.isoformat() if out.gen_time else "")
    return out


def _check_ess(out: TimestampVerification, signer: Any, cert: Certificate) -> None:
    try:
        attrs = {a["type"].native: a["values"][0] for a in signer.signed_attrs} if signer.signed_attrs else {}
        if "signing_certificate_v2" in attrs:
            cid = attrs["signing_certificate_v2"]["certs"][0]
            alg = cid["hash_algorithm"]["algorithm"].native
        elif "signing_certificate" in attrs:
            cid, alg = attrs["signing_certificate"]["certs"][0], "sha1"
        else:
            out._add("signing-certificate", False, "NO_SIGNING_CERTIFICATE",
                     "token lacks the ESS signingCertificate(V2) attribute")
            return
        if alg not in _DIGESTS:
            raise ValueError(f"ESS hash {alg} not supported")
        ok = hashlib.new(alg, cert.der).digest() == bytes(cid["cert_hash"])
    except (ValueError, TypeError, KeyError, IndexError, TrustsvcError) as exc:
        out._add("signing-certificate", False, "BAD_SIGNING_CERTIFICATE", str(exc))
        return
    out._add("signing-certificate", ok, "" if ok else "SIGNING_CERTIFICATE_MISMATCH",
             "" if ok else "ESS certificate hash does not match the TSA certificate")


def parse_response(response_der: bytes) -> tuple[str, bytes | None, str]:
    """(status, token DER or None, failure text) from a TimeStampResp DER; raises DecodeError."""
    from trustsvc.errors import DecodeError

    try:
        resp = TimeStampResp.load(response_der, strict=True)
        status_info = resp["status"]
        status = status_info["status"].native
        texts = status_info["status_string"].native or []
        fails = sorted(status_info["fail_info"].native or []) if status_info["fail_info"].native else []
        token = resp["time_stamp_token"]
        token_der = None if isinstance(token, core.Void) else token.dump()
    except (ValueError, TypeError, KeyError, AttributeError, OverflowError) as exc:
        raise DecodeError(f"not a DER TimeStampResp: {exc}", reason="BAD_TSA_RESPONSE") from None
    return str(status), token_der, "; ".join([*map(str, texts), *map(str, fails)])
