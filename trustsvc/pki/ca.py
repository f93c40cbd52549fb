"""A development certificate authority kept in a directory (not for production use).

Layout of the directory::

    ca.json         name, key spec, next serial, next CRL number
    ca-key.pem      root key: PKCS#8 encrypted with the passphrase when one is given; always mode 0600.
                    Absent when the key lives in a key store or HSM: ca.json then names it
                    ({"key": {"store": "hsm", "ref": "NAME@VERSION"}}) and ``open`` takes its Signer.
    ca-cert.pem     self-signed root certificate
    index.json      every issued certificate: serial, subject, profile, validity, revocation
    certs/<serial>.pem
    crl.pem         the latest CRL

Profiles fix key usage and extended key usage for the roles trustsvc needs (seal maker and holder,
time-stamp authority, token issuer, TLS server and client). Everything signs through a Signer.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import os
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from trustsvc.algorithms.encoding import load_private_key, private_key_to_pem
from trustsvc.algorithms.keypair import KEY_SPECS, PrivateKey, PublicKey
from trustsvc.algorithms.signature_algorithm import KeyType
from trustsvc.algorithms.signer import Signer, SoftwareSigner
from trustsvc.errors import CertificateError, Conflict, InvalidInput, NotFound
from trustsvc.fileio import write_atomic
from trustsvc.pki.certificate import Certificate, CertificateBuilder
from trustsvc.pki.crl import CertificateRevocationList, RevocationReason, RevokedEntry, build_crl
from trustsvc.pki.csr import CertificateRequest
from trustsvc.pki.validation import PathValidationResult, validate

UTC = dt.UTC
DEFAULT_NAME = "trustsvc development root CA"
CA_KEY_SPECS = ("sm2", "ec-p256", "ec-p384", "rsa-2048", "rsa-3072")


@dataclasses.dataclass(frozen=True)
class Profile:
    """What a certificate of one role may do."""

    name: str
    key_usage: frozenset[str]
    extended_key_usage: tuple[str, ...] = ()
    eku_critical: bool = False
    days: int = 365
    description: str = ""


PROFILES: dict[str, Profile] = {p.name: p for p in (
    Profile("seal-maker", frozenset({"digital_signature", "non_repudiation"}),
            description="makes electronic seals (GB/T 38540 SESeal maker)"),
    Profile("seal-holder", frozenset({"digital_signature", "non_repudiation"}),
            description="signs documents with a seal (GB/T 38540 SES_Signature signer)"),
    Profile("tsa", frozenset({"digital_signature", "non_repudiation"}), ("time_stamping",), True,
            description="RFC 3161 time-stamp authority (EKU timeStamping, critical)"),
    Profile("token-issuer", frozenset({"digital_signature"}), description="signs identity tokens"),
    Profile("server", frozenset({"digital_signature", "key_encipherment"}), ("server_auth",),
            description="TLS server (serverAuth, SAN dns/ip)"),
    Profile("client", frozenset({"digital_signature"}), ("client_auth",), description="TLS client (clientAuth)"),
)}


@dataclasses.dataclass(frozen=True)
class Issued:
    """A certificate just issued, with its private key when the CA generated it."""

    certificate: Certificate
    private_key: PrivateKey | None
    profile: Profile

    @property
    def serial(self) -> int:
        return self.certificate.serial_number


def profile(name: str) -> Profile:
    try:
        return PROFILES[name]
    except KeyError:
        raise InvalidInput(f"unknown profile {name!r}; known: {', '.join(PROFILES)}",
                           reason="UNKNOWN_PROFILE") from None


def _write(path: Path, data: bytes, mode: int = 0o644) -> None:
    """Write atomically (fileio.write_atomic: a fresh temporary file, fsync, rename, directory fsync) with
    ``mode`` set before any byte lands."""
    write_atomic(path, data, mode=mode)


class DevelopmentCA:
    """A root CA in a directory; open with ``init``, ``open`` or ``open_or_init``."""

    def __init__(self, directory: Path, signer: Signer, certificate: Certificate) -> None:
        self.directory = directory
        self.signer = signer.with_certificates([certificate.der])
        self.certificate = certificate
        self._lock = threading.Lock()

    # lifecycle -------------------------------------------------------------------------
    @classmethod
    def init(cls, directory: str | Path, *, name: str = DEFAULT_NAME, key_type: str = "sm2",
             passphrase: bytes | None = None, days: int = 3650, organization: str = "trustsvc",
             signer: Signer | None = None, key_location: dict[str, str] | None = None) -> DevelopmentCA:
        """Create a new CA; raises Conflict if ``directory`` already holds one.

        Without ``signer`` a root key of ``key_type`` is generated and kept in ca-key.pem. With a
        ``signer`` (a key store or HSM key) no key is written; ``key_location`` (e.g.
        ``{"store": "hsm", "ref": "ca@1"}``) is recorded in ca.json so that the CA can be reopened."""
        directory = Path(directory)
        if (directory / "ca.json").exists():
            raise Conflict(f"a CA already exists in {directory}", reason="CA_EXISTS")
        key: PrivateKey | None = None
        if signer is None:
            if key_type not in CA_KEY_SPECS:
                raise InvalidInput(f"CA key type {key_type!r} not supported; use one of {', '.join(CA_KEY_SPECS)}",
                                   reason="UNKNOWN_KEY_SPEC")
            key = PrivateKey.generate(key_type)
            signer = SoftwareSigner(key, key_ref="dev-ca")
        else:
            key_type = signer.public_key.spec  # the default spec of keys the CA generates
        directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        (directory / "certs").mkdir(exist_ok=True, mode=0o700)
        now = dt.datetime.now(UTC).replace(microsecond=0)
        cert = (CertificateBuilder()
                .subject({"country_name": "CN", "organization_name": organization, "common_name": name})
                .public_key(signer.public_key)
                .serial_number(int.from_bytes(os.urandom(15), "big") | 1)
                .validity(now - dt.timedelta(minutes=5), now + dt.timedelta(days=days))
                .basic_constraints(True, 1)
                .key_usage({"key_cert_sign", "crl_sign", "digital_signature"})
                .sign(signer))
        if key is not None:
            _write(directory / "ca-key.pem", private_key_to_pem(key, passphrase), 0o600)
        _write(directory / "ca-cert.pem", cert.to_pem())
        _write(directory / "index.json", b"[]\n")
        state: dict[str, Any] = {"name": name, "key_type": key_type,
                                 "encrypted": key is not None and passphrase is not None,
                                 "next_serial": 0x1000, "next_crl_number": 1, "created": now.isoformat()}
        if key is None:
            state["key"] = dict(key_location or {"store": "external", "ref": signer.key_ref})
        _write(directory / "ca.json", json.dumps(state, indent=2).encode())
        ca = cls(directory, signer, cert)
        ca.publish_crl()
        return ca

    @classmethod
    def open(cls, directory: str | Path, passphrase: bytes | None = None, *,
             signer: Signer | None = None) -> DevelopmentCA:
        """Load an existing CA; raises NotFound, WrongPassphrase. A CA whose key lives in a key store
        or HSM (see ``key_location``) needs that key's ``signer``."""
        directory = Path(directory)
        if not (directory / "ca.json").exists():
            raise NotFound(f"no CA in {directory}: run `trustsvc ca init` first", reason="CA_NOT_FOUND")
        cert = Certificate.load((directory / "ca-cert.pem").read_bytes())
        external = cls.key_location(directory)
        if signer is None:
            if external is not None:
                raise InvalidInput(f"the key of the CA in {directory} is {external.get('ref')!r} in the "
                                   f"{external.get('store')} store: open the CA with that key's signer",
                                   reason="CA_KEY_EXTERNAL")
            signer = SoftwareSigner(load_private_key((directory / "ca-key.pem").read_bytes(), passphrase),
                                    key_ref="dev-ca")
        if cert.public_key != signer.public_key:
            raise CertificateError("CA key and certificate do not match", reason="KEY_MISMATCH")
        return cls(directory, signer, cert)

    @staticmethod
    def key_location(directory: str | Path) -> dict[str, str] | None:
        """Where the CA's key lives when it is not ca-key.pem ({"store": ..., "ref": ...}), else None."""
        state = json.loads((Path(directory) / "ca.json").read_text())
        location = state.get("key")
        return dict(location) if isinstance(location, dict) else None

    @classmethod
    def open_or_init(cls, directory: str | Path, *, passphrase: bytes | None = None, **kwargs: Any) -> DevelopmentCA:
        if (Path(directory) / "ca.json").exists():
            return cls.open(directory, passphrase)
        return cls.init(directory, passphrase=passphrase, **kwargs)

    # state ---------------------------------------------------------------------------------
    def _state(self) -> dict[str, Any]:
        return json.loads((self.directory / "ca.json").read_text())

    def _save_state(self, state: dict[str, Any]) -> None:
        _write(self.directory / "ca.json", json.dumps(state, indent=2).encode())

    def index(self) -> list[dict[str, Any]]:
        """Every issued certificate's record (serial as hex)."""
        return json.loads((self.directory / "index.json").read_text())

    def _save_index(self, index: list[dict[str, Any]]) -> None:
        _write(self.directory / "index.json", json.dumps(index, indent=2).encode())

    @property
    def name(self) -> str:
        return self.certificate.common_name

    # issuing -------------------------------------------------------------------------------
    def issue(self, profile_name: str, common_name: str, *, public_key: PublicKey | None = None,
              key_type: str | None = None, dns: Sequence[str] = (), ips: Sequence[str] = (),
              days: int | None = None, organization: str | None = None,
              not_before: dt.datetime | None = None) -> Issued:
        """Issue a certificate of ``profile_name``; generates the key unless ``public_key`` is given."""
        prof = profile(profile_name)
        if not common_name:
            raise InvalidInput("a certificate needs a common name", reason="MISSING_COMMON_NAME")
        private_key = None
        if public_key is None:
            spec = key_type or self._state()["key_type"]
            if spec not in KEY_SPECS:
                raise InvalidInput(f"unknown key type {spec!r}; known: {', '.join(KEY_SPECS)}",
                                   reason="UNKNOWN_KEY_SPEC")
            private_key = PrivateKey.generate(spec)
            public_key = private_key.public_key
        if prof.name == "server" and not (dns or ips):
            raise InvalidInput("a server certificate needs at least one --dns or --ip name", reason="MISSING_SAN")
        usages = set(prof.key_usage)
        if "key_encipherment" in usages and public_key.key_type is not KeyType.RSA:
            usages.discard("key_encipherment")
        with self._lock:
            state = self._state()
            serial = int(state["next_serial"])
            state["next_serial"] = serial + 1
            self._save_state(state)
            start = (not_before or dt.datetime.now(UTC) - dt.timedelta(minutes=5)).replace(microsecond=0)
            end = min(start + dt.timedelta(days=days or prof.days), self.certificate.not_after)
            subject = {"country_name": "CN", "organization_name": organization or "trustsvc",
                       "common_name": common_name}
            builder = (CertificateBuilder().subject(subject).public_key(public_key).serial_number(serial)
                       .validity(start, end).basic_constraints(False).key_usage(usages))
            if prof.extended_key_usage:
                builder = builder.extension("extended_key_usage", list(prof.extended_key_usage), prof.eku_critical)
            if dns or ips:
                builder = builder.subject_alt_names(dns=dns, ips=ips)
            cert = builder.sign(self.signer, self.certificate)
            _write(self.directory / "certs" / f"{serial:x}.pem", cert.to_pem())
            index = self.index()
            index.append({"serial": f"{serial:x}", "subject": cert.subject, "profile": prof.name,
                          "not_before": cert.not_before.isoformat(), "not_after": cert.not_after.isoformat(),
                          "revoked_at": None, "reason": None})
            self._save_index(index)
        return Issued(cert, private_key, prof)

    def issue_for_request(self, request: CertificateRequest, profile_name: str, **kwargs: Any) -> Issued:
        """Issue for a PKCS#10 request after checking its self-signature; SANs come from kwargs."""
        request.verify()
        return self.issue(profile_name, request.common_name, public_key=request.public_key, **kwargs)

    def certificate_by_serial(self, serial: int) -> Certificate:
        path = self.directory / "certs" / f"{serial:x}.pem"
        if not path.exists():
            raise NotFound(f"no certificate with serial {serial:x} was issued by this CA", reason="UNKNOWN_SERIAL")
        return Certificate.load(path.read_bytes())

    # revocation ----------------------------------------------------------------------------
    def revoke(self, serial: int, reason: RevocationReason = RevocationReason.UNSPECIFIED,
               at: dt.datetime | None = None) -> CertificateRevocationList:
        """Mark ``serial`` revoked and publish a fresh CRL; raises NotFound, Conflict."""
        with self._lock:
            index = self.index()
            for record in index:
                if int(record["serial"], 16) == serial:
                    if record["revoked_at"]:
                        raise Conflict(f"serial {serial:x} is already revoked", reason="ALREADY_REVOKED")
                    record["revoked_at"] = (at or dt.datetime.now(UTC)).replace(microsecond=0).isoformat()
                    record["reason"] = reason.value
                    break
            else:
                raise NotFound(f"no certificate with serial {serial:x} was issued by this CA", reason="UNKNOWN_SERIAL")
            self._save_index(index)
        return self.publish_crl()

    def revoked_entries(self) -> list[RevokedEntry]:
        return [RevokedEntry(int(r["serial"], 16), dt.datetime.fromisoformat(r["revoked_at"]),
                             RevocationReason(r["reason"]) if r["reason"] else None)
                for r in self.index() if r["revoked_at"]]

    def publish_crl(self, days: int = 7) -> CertificateRevocationList:
        """Sign a new CRL over every revocation, write crl.pem and return it."""
        with self._lock:
            state = self._state()
            number = int(state["next_crl_number"])
            state["next_crl_number"] = number + 1
            self._save_state(state)
            now = dt.datetime.now(UTC).replace(microsecond=0) - dt.timedelta(minutes=1)
            crl = build_crl(self.signer, self.certificate, self.revoked_entries(), crl_number=number,
                            this_update=now, next_update=now + dt.timedelta(days=days))
            _write(self.directory / "crl.pem", crl.to_pem())
        return crl

    def current_crl(self) -> CertificateRevocationList:
        return CertificateRevocationList.load((self.directory / "crl.pem").read_bytes())

    def fresh_crl(self, margin: dt.timedelta = dt.timedelta(days=1)) -> CertificateRevocationList:
        """The current CRL, published anew first when its nextUpdate is less than ``margin`` away."""
        crl = self.current_crl()
        if crl.next_update is not None and crl.next_update - margin < dt.datetime.now(UTC):
            crl = self.publish_crl()
        return crl

    # checking ------------------------------------------------------------------------------
    def validate(self, cert: Certificate, *, at: dt.datetime | None = None, intermediates: Sequence[Certificate] = (),
                 key_usage: Sequence[str] = (), extended_key_usage: Sequence[str] = ()) -> PathValidationResult:
        """Validate ``cert`` against this CA's root and its current CRL."""
        return validate(cert, trust_anchors=[self.certificate], intermediates=intermediates, at=at,
                        key_usage=key_usage, extended_key_usage=extended_key_usage, crls=[self.current_crl()])
