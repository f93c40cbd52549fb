"""X.509 certificates for every key type, SM2 included (GM/T 0015), built and parsed with asn1crypto.

``cryptography`` cannot sign or verify with SM2, so certificates are assembled as asn1crypto
structures and signed through a trustsvc Signer; parsing keeps the received bytes and
signatures are always checked over them.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import os
from collections.abc import Sequence

from asn1crypto import x509

from trustsvc.algorithms import asn1_registry, pem
from trustsvc.algorithms.keypair import PublicKey
from trustsvc.algorithms.signature_algorithm import SignatureAlgorithm
from trustsvc.algorithms.signer import Signer
from trustsvc.errors import CertificateError, Conflict, DecodeError, InvalidSignature

asn1_registry.register()

UTC = dt.UTC


class Certificate:
    """A parsed X.509 certificate; ``der`` is exactly the bytes received."""

    def __init__(self, der: bytes) -> None:
        try:
            cert = x509.Certificate.load(der, strict=True)
            _ = cert["tbs_certificate"]["validity"].native  # force a parse of the core fields
            _ = cert.subject.native, cert.issuer.native, cert.serial_number
            _ = cert.native, bytes(cert["signature_value"]), cert.critical_extensions  # parse everything now
            _ = cert.key_usage_value, cert.extended_key_usage_value, cert.basic_constraints_value
            _ = cert.self_signed, cert.max_path_length
            self.public_key = PublicKey.from_spki(cert["tbs_certificate"]["subject_public_key_info"].dump())
        except (ValueError, TypeError, KeyError, OverflowError) as exc:
            raise DecodeError(f"not a DER X.509 certificate: {exc}", reason="BAD_CERTIFICATE") from None
        except CertificateError:
            raise
        except Exception as exc:  # asn1crypto may raise others on hostile input
            if isinstance(exc, (DecodeError,)):
                raise
            from trustsvc.errors import TrustsvcError

            if isinstance(exc, TrustsvcError):
                raise DecodeError(f"certificate public key unusable: {exc}", reason="BAD_CERTIFICATE") from None
            raise DecodeError(f"not a DER X.509 certificate: {exc}", reason="BAD_CERTIFICATE") from None
        self.der = der
        self.asn1 = cert

    @classmethod
    def load(cls, data: bytes) -> Certificate:
        """From PEM or DER."""
        return cls(pem.der_of(data, "CERTIFICATE", "X509 CERTIFICATE"))

    @classmethod
    def load_all(cls, data: bytes) -> list[Certificate]:
        """Every certificate in a PEM bundle, or the one DER certificate."""
        if pem.is_pem(data):
            return [cls(der) for label, der in pem.decode_all(data) if label == "CERTIFICATE"]
        return [cls(data)]

    # fields ------------------------------------------------------------------------
    @property
    def subject(self) -> str:
        return self.asn1.subject.human_friendly

    @property
    def issuer(self) -> str:
        return self.asn1.issuer.human_friendly

    @property
    def subject_name(self) -> x509.Name:
        return self.asn1.subject

    @property
    def issuer_name(self) -> x509.Name:
        return self.asn1.issuer

    @property
    def serial_number(self) -> int:
        return int(self.asn1.serial_number)

    @property
    def not_before(self) -> dt.datetime:
        return self.asn1["tbs_certificate"]["validity"]["not_before"].native

    @property
    def not_after(self) -> dt.datetime:
        return self.asn1["tbs_certificate"]["validity"]["not_after"].native

    @property
    def signature_algorithm_oid(self) -> str:
        return self.asn1["signature_algorithm"]["algorithm"].dotted

    @property
    def key_usage(self) -> set[str]:
        ku = self.asn1.key_usage_value
        return set(ku.native) if ku is not None else set()

    @property
    def extended_key_usage(self) -> set[str]:
        eku = self.asn1.extended_key_usage_value
        return set(eku.native) if eku is not None else set()

    @property
    def is_ca(self) -> bool:
        return bool(self.asn1.ca)

    @property
    def path_length(self) -> int | None:
        return self.asn1.max_path_length

    @property
    def is_self_signed(self) -> bool:
        return self.asn1.self_signed != "no"

    @property
    def fingerprint_sha256(self) -> str:
        return hashlib.sha256(self.der).hexdigest()

    @property
    def common_name(self) -> str:
        return str(self.asn1.subject.native.get("common_name", ""))

    def to_pem(self) -> bytes:
        return pem.encode("CERTIFICATE", self.der)

    def valid_at(self, when: dt.datetime) -> bool:
        return self.not_before <= when <= self.not_after

    def verify_signed_by(self, issuer_key: PublicKey) -> None:
        """Raise InvalidSignature unless ``issuer_key`` signed this certificate (over the received TBS)."""
        try:
            algorithm = SignatureAlgorithm.parse(self.signature_algorithm_oid)
        except Exception:
            raise InvalidSignature(f"certificate signature algorithm {self.signature_algorithm_oid} is not supported",
                                   reason="UNSUPPORTED_ALGORITHM") from None
        try:
            tbs, signature = self.asn1["tbs_certificate"].dump(), bytes(self.asn1["signature_value"])
        except (ValueError, TypeError, KeyError, IndexError) as exc:  # a leniently read certificate
            raise InvalidSignature(f"certificate signature value does not parse: {exc}",
                                   reason="BAD_SIGNATURE_ENCODING") from None
        issuer_key.verify(algorithm, tbs, signature)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Certificate) and other.der == self.der

    def __hash__(self) -> int:
        return hash(self.der)

    def __repr__(self) -> str:
        return f"Certificate({self.subject!r}, serial={self.serial_number:x})"


def certificate_in_force(der: bytes, key: str, at: dt.datetime | None = None) -> Certificate:
    """The certificate of signing key ``key``, refused (Conflict KEY_CERTIFICATE_EXPIRED or
    KEY_CERTIFICATE_NOT_YET_VALID) outside its validity at ``at`` (default now): what it signed would not verify."""
    return check_in_force(Certificate(der), f"key {key!r}", at)


def check_in_force(cert: Certificate, signer: str, at: dt.datetime | None = None) -> Certificate:
    """``cert``, refused as in :func:`certificate_in_force` outside its validity at ``at``; ``signer`` names
    whose certificate it is in the message."""
    now = at or dt.datetime.now(dt.UTC)
    if not cert.valid_at(now):
        reason = "KEY_CERTIFICATE_EXPIRED" if now > cert.not_after else "KEY_CERTIFICATE_NOT_YET_VALID"
        raise Conflict(f"{signer}: its certificate is valid {cert.not_before} .. {cert.not_after}, not at {now}",
                       reason=reason)
    return cert


def _name(value: x509.Name | dict[str, str] | str) -> x509.Name:
    if isinstance(value, x509.Name):
        return value
    if isinstance(value, str):
        value = {"common_name": value}
    return x509.Name.build(value, use_printable=False)


@dataclasses.dataclass(frozen=True)
class CertificateBuilder:
    """An immutable, fluent X.509 v3 builder; ``sign`` signs the TBS through any Signer.

    >>> cert = (CertificateBuilder().subject({"common_name": "x"}).public_key(pk)
    ...         .validity(start, end).key_usage({"digital_signature"}).sign(issuer_signer, issuer_cert))
    """

    _subject: x509.Name | None = None
    _public_key: PublicKey | None = None
    _serial: int | None = None
    _not_before: dt.datetime | None = None
    _not_after: dt.datetime | None = None
    _extensions: tuple[tuple[str, object, bool], ...] = ()

    def subject(self, name: x509.Name | dict[str, str] | str) -> CertificateBuilder:
        return dataclasses.replace(self, _subject=_name(name))

    def public_key(self, key: PublicKey) -> CertificateBuilder:
        return dataclasses.replace(self, _public_key=key)

    def serial_number(self, serial: int) -> CertificateBuilder:
        return dataclasses.replace(self, _serial=serial)

    def validity(self, not_before: dt.datetime, not_after: dt.datetime) -> CertificateBuilder:
        return dataclasses.replace(self, _not_before=not_before, _not_after=not_after)

    def extension(self, extn_id: str, value: object, critical: bool = False) -> CertificateBuilder:
        """Add an extension by asn1crypto name ('key_usage', 'basic_constraints', ...) or dotted OID."""
        kept = tuple(e for e in self._extensions if e[0] != extn_id)
        return dataclasses.replace(self, _extensions=kept + ((extn_id, value, critical),))

    def key_usage(self, usages: set[str]) -> CertificateBuilder:
        return self.extension("key_usage", x509.KeyUsage(set(usages)), True)

    def extended_key_usage(self, purposes: Sequence[str]) -> CertificateBuilder:
        return self.extension("extended_key_usage", list(purposes), False)

    def basic_constraints(self, ca: bool, path_length: int | None = None) -> CertificateBuilder:
        value: dict[str, object] = {"ca": ca}
        if ca and path_length is not None:
            value["path_len_constraint"] = path_length
        return self.extension("basic_constraints", value, True)

    def subject_alt_names(self, dns: Sequence[str] = (), uris: Sequence[str] = (),
                          ips: Sequence[str] = ()) -> CertificateBuilder:
        names = ([x509.GeneralName(name="dns_name", value=d) for d in dns]
                 + [x509.GeneralName(name="uniform_resource_identifier", value=u) for u in uris]
                 + [x509.GeneralName(name="ip_address", value=i) for i in ips])
        return self.extension("subject_alt_name", names, False)

    def crl_distribution_points(self, urls: Sequence[str]) -> CertificateBuilder:
        points = [{"distribution_point": x509.DistributionPointName(
            name="full_name", value=[x509.GeneralName(name="uniform_resource_identifier", value=u)])}
            for u in urls]
        return self.extension("crl_distribution_points", points, False)

    def sign(self, signer: Signer, issuer: Certificate | None = None) -> Certificate:
        """Sign with ``signer``; ``issuer`` None makes a self-signed certificate."""
        if self._subject is None or self._public_key is None:
            raise CertificateError("a certificate needs a subject and a public key", reason="INCOMPLETE_BUILDER")
        now = dt.datetime.now(UTC).replace(microsecond=0)
        not_before = self._not_before or now - dt.timedelta(minutes=5)
        not_after = self._not_after or now + dt.timedelta(days=365)
        if not_after <= not_before:
            raise CertificateError("notAfter must be later than notBefore", reason="BAD_VALIDITY")
        if issuer is None and signer.public_key != self._public_key:
            raise CertificateError("a self-signed certificate must be signed by its own key", reason="KEY_MISMATCH")
        if issuer is not None and issuer.public_key != signer.public_key:
            raise CertificateError("the signer's key is not the issuer certificate's key", reason="KEY_MISMATCH")
        issuer_name = issuer.subject_name if issuer is not None else self._subject
        ski = hashlib.sha1(self._public_key.spki).digest()
        extensions = [{"extn_id": "key_identifier", "critical": False, "extn_value": ski}]
        aki_source = issuer.asn1.key_identifier if issuer is not None else ski
        if aki_source:
            extensions.append({"extn_id": "authority_key_identifier", "critical": False,
                               "extn_value": {"key_identifier": aki_source}})
        for extn_id, value, critical in self._extensions:
            extensions.append({"extn_id": extn_id, "critical": critical, "extn_value": value})
        sig_alg: dict[str, object] = {"algorithm": signer.algorithm.oid}
        if signer.algorithm is SignatureAlgorithm.RSA_PSS_SHA256:
            sig_alg["parameters"] = {"hash_algorithm": {"algorithm": "sha256"}, "mask_gen_algorithm": {
                "algorithm": "mgf1", "parameters": {"algorithm": "sha256"}}, "salt_length": 32}
        tbs = x509.TbsCertificate({
            "version": "v3",
            "serial_number": self._serial if self._serial is not None else int.from_bytes(os.urandom(16), "big") >> 1,
            "signature": sig_alg,
            "issuer": issuer_name,
            "validity": {"not_before": x509.Time(name="utc_time" if not_before.year < 2050 else "general_time",
                                                 value=not_before),
                         "not_after": x509.Time(name="utc_time" if not_after.year < 2050 else "general_time",
                                                value=not_after)},
            "subject": self._subject,
            "subject_public_key_info": x509.PublicKeyInfo.load(self._public_key.spki),
            "extensions": extensions,
        })
        signature = signer.sign(tbs.dump())
        cert = x509.Certificate({"tbs_certificate": tbs, "signature_algorithm": sig_alg,
                                 "signature_value": signature})
        return Certificate(cert.dump())
