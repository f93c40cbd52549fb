"""X.509 v2 certificate revocation lists (RFC 5280 §5): build through a Signer, parse, check.

The CRL signature is verified over the received ``tbsCertList`` bytes, never a re-encoding.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import enum
import hashlib
from collections.abc import Iterable

from asn1crypto import crl as asn1_crl
from asn1crypto import x509

from trustsvc.algorithms import asn1_registry, pem
from trustsvc.algorithms.keypair import PublicKey
from trustsvc.algorithms.signature_algorithm import SignatureAlgorithm
from trustsvc.algorithms.signer import Signer
from trustsvc.errors import CertificateError, InvalidSignature, TrustsvcError
from trustsvc.pki._asn1 import guarded, signature_algorithm_field
from trustsvc.pki.certificate import Certificate

asn1_registry.register()

UTC = dt.UTC


class RevocationReason(enum.StrEnum):
    """CRLReason (RFC 5280 §5.3.1); values are asn1crypto's names."""

    UNSPECIFIED = "unspecified"
    KEY_COMPROMISE = "key_compromise"
    CA_COMPROMISE = "ca_compromise"
    AFFILIATION_CHANGED = "affiliation_changed"
    SUPERSEDED = "superseded"
    CESSATION_OF_OPERATION = "cessation_of_operation"
    CERTIFICATE_HOLD = "certificate_hold"
    REMOVE_FROM_CRL = "remove_from_crl"
    PRIVILEGE_WITHDRAWN = "privilege_withdrawn"
    AA_COMPROMISE = "aa_compromise"

    @classmethod
    def parse(cls, name: str) -> RevocationReason:
        """From 'key_compromise', 'keyCompromise', 'KEY_COMPROMISE' or the code number."""
        wanted = name.replace("-", "_").replace(" ", "").lower()
        for reason in cls:
            if wanted in (reason.value, reason.value.replace("_", ""), reason.name.lower()):
                return reason
        if name.isdigit():
            codes = list(cls)
            number = int(name)
            if number == 8:
                return cls.REMOVE_FROM_CRL
            index = number if number < 7 else number - 1
            if 0 <= number <= 10 and number != 7 and index < len(codes):
                return codes[index]
        raise CertificateError(f"unknown revocation reason {name!r}", reason="BAD_REVOCATION_REASON")


@dataclasses.dataclass(frozen=True)
class RevokedEntry:
    """One revoked certificate as listed in a CRL."""

    serial: int
    revoked_at: dt.datetime
    reason: RevocationReason | None = None

    def to_json(self) -> dict[str, object]:
        return {"serial": f"{self.serial:x}", "revoked_at": self.revoked_at.isoformat(),
                "reason": self.reason.value if self.reason else None}


class CertificateRevocationList:
    """A parsed CRL; ``der`` is exactly the bytes received."""

    def __init__(self, der: bytes) -> None:
        def parse() -> tuple[asn1_crl.CertificateList, dict[int, RevokedEntry]]:
            crl = asn1_crl.CertificateList.load(der, strict=True)
            tbs = crl["tbs_cert_list"]
            _ = tbs["issuer"].native, tbs["this_update"].native, tbs["next_update"].native
            _ = crl["signature_algorithm"]["algorithm"].dotted, bytes(crl["signature"])
            _ = tbs["crl_extensions"].native
            entries: dict[int, RevokedEntry] = {}
            for item in tbs["revoked_certificates"]:
                reason_value = item.crl_reason_value
                reason = RevocationReason(reason_value.native) if reason_value is not None else None
                serial = int(item["user_certificate"].native)
                entries[serial] = RevokedEntry(serial, item["revocation_date"].native, reason)
            return crl, entries

        self.asn1, self._entries = guarded("CRL", "BAD_CRL", parse)
        self.der = der

    @classmethod
    def load(cls, data: bytes) -> CertificateRevocationList:
        """From PEM ('X509 CRL') or DER."""
        return cls(pem.der_of(data, "X509 CRL"))

    @property
    def issuer_name(self) -> x509.Name:
        return self.asn1["tbs_cert_list"]["issuer"]

    @property
    def issuer(self) -> str:
        return self.issuer_name.human_friendly

    @property
    def this_update(self) -> dt.datetime:
        return self.asn1["tbs_cert_list"]["this_update"].native

    @property
    def next_update(self) -> dt.datetime | None:
        return self.asn1["tbs_cert_list"]["next_update"].native

    @property
    def crl_number(self) -> int | None:
        value = self.asn1.crl_number_value
        return int(value.native) if value is not None else None

    @property
    def signature_algorithm_oid(self) -> str:
        return self.asn1["signature_algorithm"]["algorithm"].dotted

    @property
    def entries(self) -> list[RevokedEntry]:
        return list(self._entries.values())

    def revocation(self, serial: int) -> RevokedEntry | None:
        """The entry for ``serial``, or None when it is not listed."""
        return self._entries.get(serial)

    def is_revoked(self, serial: int, at: dt.datetime | None = None) -> bool:
        """True when ``serial`` is listed (and, with ``at``, was revoked at or before it)."""
        entry = self._entries.get(serial)
        if entry is None or entry.reason is RevocationReason.REMOVE_FROM_CRL:
            return False
        return at is None or entry.revoked_at <= at

    def is_current(self, at: dt.datetime) -> bool:
        """thisUpdate <= at <= nextUpdate (no nextUpdate: only the first bound)."""
        nxt = self.next_update
        return self.this_update <= at and (nxt is None or at <= nxt)

    def verify_signed_by(self, issuer_key: PublicKey) -> None:
        """Raise InvalidSignature unless ``issuer_key`` signed this CRL (over the received TBS)."""
        try:
            algorithm = SignatureAlgorithm.parse(self.signature_algorithm_oid)
        except TrustsvcError:
            raise InvalidSignature(f"CRL signature algorithm {self.signature_algorithm_oid} is not supported",
                                   reason="UNSUPPORTED_ALGORITHM") from None
        tbs = self.asn1["tbs_cert_list"].dump()
        try:
            issuer_key.verify(algorithm, tbs, bytes(self.asn1["signature"]))
        except InvalidSignature:
            raise
        except TrustsvcError as exc:
            raise InvalidSignature(f"CRL signature unusable: {exc.message}", reason=exc.reason) from None

    def to_pem(self) -> bytes:
        return pem.encode("X509 CRL", self.der)

    def __repr__(self) -> str:
        return f"CertificateRevocationList({self.issuer!r}, {len(self._entries)} entries)"


def _time(value: dt.datetime) -> x509.Time:
    return x509.Time(name="utc_time" if value.year < 2050 else "general_time", value=value)


def build_crl(signer: Signer, issuer: Certificate, revoked: Iterable[RevokedEntry], *,
              crl_number: int, this_update: dt.datetime | None = None,
              next_update: dt.datetime | None = None) -> CertificateRevocationList:
    """A v2 CRL listing ``revoked``, signed by ``signer`` (which must hold ``issuer``'s key)."""
    if issuer.public_key != signer.public_key:
        raise CertificateError("the signer's key is not the CRL issuer certificate's key", reason="KEY_MISMATCH")
    this_update = (this_update or dt.datetime.now(UTC)).replace(microsecond=0)
    next_update = (next_update or this_update + dt.timedelta(days=7)).replace(microsecond=0)
    if next_update <= this_update:
        raise CertificateError("nextUpdate must be later than thisUpdate", reason="BAD_VALIDITY")
    entries = []
    for entry in sorted(revoked, key=lambda e: e.serial):
        item: dict[str, object] = {"user_certificate": entry.serial,
                                   "revocation_date": _time(entry.revoked_at.replace(microsecond=0))}
        if entry.reason is not None:
            item["crl_entry_extensions"] = [{"extn_id": "crl_reason", "critical": False,
                                             "extn_value": entry.reason.value}]
        entries.append(item)
    extensions: list[dict[str, object]] = [{"extn_id": "crl_number", "critical": False, "extn_value": crl_number}]
    ski = issuer.asn1.key_identifier or hashlib.sha1(issuer.public_key.spki).digest()
    extensions.append({"extn_id": "authority_key_identifier", "critical": False,
                       "extn_value": {"key_identifier": ski}})
    sig_alg = signature_algorithm_field(signer)
    tbs_fields: dict[str, object] = {
        "version": "v2",
        "signature": sig_alg,
        "issuer": issuer.subject_name,
        "this_update": _time(this_update),
        "next_update": _time(next_update),
        "crl_extensions": extensions,
    }
    if entries:
        tbs_fields["revoked_certificates"] = entries
    tbs = asn1_crl.TbsCertList(tbs_fields)
    signature = signer.sign(tbs.dump())
    crl = asn1_crl.CertificateList({"tbs_cert_list": tbs, "signature_algorithm": sig_alg, "signature": signature})
    return CertificateRevocationList(crl.dump())
