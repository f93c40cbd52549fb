"""The key-store interface: named, versioned keys that hand out Signers.

Both the software keystore and the PKCS#11 backend implement it, so every format signs with
keys from either. A key is addressed as ``name`` (its current version) or ``name@version``.
"""

from __future__ import annotations

import abc
import dataclasses
import datetime as dt
import enum
import re

from asn1crypto import x509 as asn1_x509

from trustsvc.algorithms.keypair import PublicKey
from trustsvc.algorithms.signer import Signer
from trustsvc.errors import DecodeError, InvalidInput, KeyMismatch


class KeyState(str, enum.Enum):
    ACTIVE = "active"  # signs; the current version of its name
    PASSIVE = "passive"  # an older version after rotation: verifies, does not sign
    DISABLED = "disabled"  # neither


@dataclasses.dataclass(frozen=True)
class KeyInfo:
    """What a store knows about one key version (never the private key)."""

    name: str
    version: int
    spec: str  # "sm2", "ec-p256", "rsa-3072", "ed25519" ...
    state: KeyState
    created: dt.datetime
    public_key: PublicKey
    store: str  # "soft" or "hsm"
    certificate_chain: tuple[bytes, ...] = ()

    @property
    def ref(self) -> str:
        return f"{self.store}:{self.name}@{self.version}"


KEY_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")


def check_key_name(name: str) -> str:
    """``name`` if it is a key name (letters, digits, '.', '_', '-'; at most 64; not starting with
    a punctuation mark), else InvalidInput BAD_KEY_NAME. Every key store keeps to this rule."""
    if not isinstance(name, str) or not KEY_NAME.fullmatch(name):
        shown = repr(name[:64]) + ("..." if isinstance(name, str) and len(name) > 64 else "")
        raise InvalidInput(f"bad key name {shown}: use letters, digits, '.', '_' and '-' (max 64)",
                           reason="BAD_KEY_NAME")
    return name


def check_certificate_chain(public_key: PublicKey, chain: tuple[bytes, ...]) -> tuple[bytes, ...]:
    """``chain`` (leaf first) as bytes, if each element is a DER X.509 certificate and the leaf
    certifies ``public_key``; else DecodeError BAD_CERTIFICATE or KeyMismatch CERTIFICATE_KEY_MISMATCH."""
    out = []
    for i, der in enumerate(chain):
        try:
            cert = asn1_x509.Certificate.load(bytes(der), strict=True)
            _ = cert.native  # every field parses, not only the outer SEQUENCE
            spki = cert["tbs_certificate"]["subject_public_key_info"].dump()
        except (ValueError, TypeError, KeyError) as exc:
            raise DecodeError(f"certificate {i} of the chain is not DER X.509: {exc}",
                              reason="BAD_CERTIFICATE") from None
        if i == 0 and PublicKey.from_spki(spki) != public_key:
            raise KeyMismatch("the first certificate of the chain certifies another public key than the key's",
                              reason="CERTIFICATE_KEY_MISMATCH")
        out.append(bytes(der))
    return tuple(out)


def parse_key_ref(ref: str) -> tuple[str, int | None]:
    """'name' -> (name, None); 'name@3' -> (name, 3); anything else ('@:', 'name@x') is InvalidInput BAD_KEY_REF."""
    name, _, version = ref.partition("@")
    try:
        return name, (int(version) if version else None)
    except ValueError:
        raise InvalidInput(f"bad key reference {ref!r}; use NAME or NAME@VERSION", reason="BAD_KEY_REF") from None


class KeyStore(abc.ABC):
    """Named, versioned keys. Implementations must be safe for concurrent use."""

    kind: str = "abstract"

    @abc.abstractmethod
    def create(self, name: str, spec: str) -> KeyInfo:
        """Create version 1 of a new key; raises Conflict if the name exists."""

    @abc.abstractmethod
    def rotate(self, name: str) -> KeyInfo:
        """Create the next version (same spec); the old active version becomes passive."""

    @abc.abstractmethod
    def disable(self, name: str, version: int | None = None) -> KeyInfo:
        """Disable one version (default: the current one)."""

    @abc.abstractmethod
    def list(self) -> list[KeyInfo]:
        """Every version of every key."""

    @abc.abstractmethod
    def info(self, name: str, version: int | None = None) -> KeyInfo:
        """One version (default: the active one, else the latest); raises KeyNotFound."""

    @abc.abstractmethod
    def signer(self, name: str, version: int | None = None) -> Signer:
        """A Signer for an active version; raises KeyNotFound or KeyDisabled."""

    @abc.abstractmethod
    def set_certificate_chain(self, name: str, version: int, chain: tuple[bytes, ...]) -> None:
        """Store certificates (leaf first) beside the key."""

    def public_key(self, name: str, version: int | None = None) -> PublicKey:
        return self.info(name, version).public_key
