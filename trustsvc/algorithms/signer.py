"""The one interface every format signs through: a Signer signs messages, a Verifier checks them.

A signer knows its algorithm, its public key and its certificate chain, and signs a *message*
(SM2 hashes Z over the public key and user ID). Software keys, HSM keys and remote keys are all
Signers, so seals, PDFs, tokens, time stamps and the CA work with all of them.

For messages too large to hold, a signer may also sign a digest it defined itself:
``h = signer.digest_hasher(); h.update(chunk)...; signer.sign_digest(h.digest())`` makes the same
kind of signature as ``signer.sign(message)`` (for SM2 the hasher is SM3 primed with Z, so the
digest is e = SM3(Z || M); for ECDSA/RSA it is the algorithm's hash). Signers that cannot (Ed25519,
tokens that hash the message themselves) raise InvalidInput with reason PREHASH_UNSUPPORTED.
"""

from __future__ import annotations

import abc
from collections.abc import Sequence
from typing import Any

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding
from cryptography.hazmat.primitives.asymmetric.utils import Prehashed

from trustsvc.algorithms import sm2
from trustsvc.algorithms.keypair import PrivateKey, PublicKey
from trustsvc.algorithms.signature_algorithm import KeyType, SignatureAlgorithm
from trustsvc.errors import InvalidInput

_HASHES: dict[str, type[hashes.HashAlgorithm]] = {"sm3": hashes.SM3, "sha256": hashes.SHA256, "sha384": hashes.SHA384}


class Verifier:
    """Checks signatures made with one public key and algorithm."""

    def __init__(self, public_key: PublicKey, algorithm: SignatureAlgorithm | None = None,
                 *, sm2_id: bytes = sm2.DEFAULT_ID) -> None:
        self.public_key = public_key
        self.algorithm = algorithm or public_key.default_algorithm()
        public_key.check_algorithm(self.algorithm)
        self.sm2_id = sm2_id

    def verify(self, message: bytes, signature: bytes) -> None:
        """Raise InvalidSignature (with a reason) unless valid."""
        self.public_key.verify(self.algorithm, message, signature, sm2_id=self.sm2_id)

    def digest_hasher(self) -> MessageHasher:
        """A running hash whose ``digest()`` ``verify_digest`` takes (PREHASH_UNSUPPORTED for Ed25519)."""
        return message_hasher(self.public_key, self.algorithm, self.sm2_id)

    def verify_digest(self, digest: bytes, signature: bytes) -> None:
        """``verify`` for the message whose ``digest_hasher()`` digest is ``digest``."""
        self.public_key.verify_digest(self.algorithm, check_digest(self.algorithm, digest), signature)


class PreparedPrefix:
    """The fixed first part of messages signed many times (see ``Signer.prepare_prefix``).

    ``data`` is the prefix itself; ``state`` is whatever the signer that made it precomputed (an SM3 state
    over Z || data for software SM2 keys), or None. Only the signer that prepared it uses ``state``.
    """

    __slots__ = ("data", "owner", "state")

    def __init__(self, data: bytes, owner: object = None, state: Any = None) -> None:
        self.data = bytes(data)
        self.owner = owner
        self.state = state


class MessageHasher:
    """A running hash of a message, for ``Signer.sign_digest`` (SM3 over Z || M for SM2)."""

    __slots__ = ("_h", "algorithm")

    def __init__(self, algorithm: SignatureAlgorithm, prefix: bytes = b"") -> None:
        self.algorithm = algorithm
        self._h = hashes.Hash(_hash_for(algorithm)())
        if prefix:
            self._h.update(prefix)

    @property
    def digest_size(self) -> int:
        return self._h.algorithm.digest_size

    def update(self, data: bytes) -> None:
        self._h.update(data)

    def digest(self) -> bytes:
        """The digest so far (the hasher can still be updated)."""
        return self._h.copy().finalize()


def prehash_unsupported(what: str) -> InvalidInput:
    return InvalidInput(f"{what} cannot sign a precomputed digest; sign the whole message",
                        reason="PREHASH_UNSUPPORTED")


def _hash_for(algorithm: SignatureAlgorithm) -> type[hashes.HashAlgorithm]:
    cls = _HASHES.get(algorithm.digest or "")
    if cls is None:
        raise prehash_unsupported(algorithm.value)
    return cls


def message_hasher(public_key: PublicKey, algorithm: SignatureAlgorithm,
                   sm2_id: bytes = sm2.DEFAULT_ID) -> MessageHasher:
    """The hasher whose digest ``algorithm`` signs for ``public_key``: SM3 primed with Z for SM2."""
    if public_key.key_type is KeyType.ED25519:
        raise prehash_unsupported("Ed25519 (it hashes the message twice)")
    if algorithm is SignatureAlgorithm.SM2_SM3:
        return MessageHasher(algorithm, public_key.sm2_z(sm2_id))
    return MessageHasher(algorithm)


def check_digest(algorithm: SignatureAlgorithm, digest: bytes) -> bytes:
    """``digest`` if it has the length of ``algorithm``'s hash; else InvalidInput BAD_DIGEST_LENGTH."""
    size = _hash_for(algorithm)().digest_size
    if len(digest) != size:
        raise InvalidInput(f"{algorithm.value} signs a {size}-byte digest, got {len(digest)} bytes",
                           reason="BAD_DIGEST_LENGTH")
    return bytes(digest)


class Signer(abc.ABC):
    """Signs messages with one private key. Subclasses implement ``sign``; may override ``sign_batch``."""

    def __init__(self, public_key: PublicKey, algorithm: SignatureAlgorithm | None = None, *,
                 certificate_chain: Sequence[bytes] = (), sm2_id: bytes = sm2.DEFAULT_ID,
                 key_ref: str = "") -> None:
        self.public_key = public_key
        self.algorithm = algorithm or public_key.default_algorithm()
        public_key.check_algorithm(self.algorithm)
        self.certificate_chain: tuple[bytes, ...] = tuple(certificate_chain)
        self.sm2_id = sm2_id
        self.key_ref = key_ref  # "store:name:version", for audit records and errors

    @property
    def key_type(self) -> KeyType:
        return self.public_key.key_type

    @property
    def certificate(self) -> bytes | None:
        """The signer's own certificate (DER), first in the chain."""
        return self.certificate_chain[0] if self.certificate_chain else None

    @abc.abstractmethod
    def sign(self, message: bytes) -> bytes:
        """Signature over ``message``: DER for SM2/ECDSA, raw for RSA/Ed25519."""

    def sign_batch(self, messages: Sequence[bytes]) -> list[bytes]:
        """Sign many messages; backends override this to amortise round trips."""
        return [self.sign(m) for m in messages]

    def prepare_prefix(self, prefix: bytes) -> PreparedPrefix:
        """Prepare ``prefix`` once for many ``sign_with_prefix`` calls (default: nothing precomputed)."""
        return PreparedPrefix(prefix)

    def sign_with_prefix(self, prefix: PreparedPrefix, suffix: bytes) -> bytes:
        """Signature over ``prefix.data + suffix``; the same bytes as ``sign`` would make it over."""
        return self.sign(prefix.data + suffix)

    def digest_hasher(self) -> MessageHasher:
        """A hasher whose ``digest()`` ``sign_digest`` signs; InvalidInput PREHASH_UNSUPPORTED if not supported."""
        raise prehash_unsupported(repr(self))

    def sign_digest(self, digest: bytes) -> bytes:
        """Signature over the message whose ``digest_hasher()`` digest is ``digest`` (e for SM2)."""
        raise prehash_unsupported(repr(self))

    def verifier(self) -> Verifier:
        return Verifier(self.public_key, self.algorithm, sm2_id=self.sm2_id)

    def with_certificates(self, chain: Sequence[bytes]) -> Signer:
        """A copy of this signer that carries ``chain`` (leaf first)."""
        import copy

        clone = copy.copy(self)
        clone.certificate_chain = tuple(chain)
        return clone

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.algorithm.value}, {self.key_ref or self.public_key.fingerprint[:16]})"


class SoftwareSigner(Signer):
    """A signer over a private key held in this process."""

    def __init__(self, private_key: PrivateKey, algorithm: SignatureAlgorithm | None = None, *,
                 certificate_chain: Sequence[bytes] = (), sm2_id: bytes = sm2.DEFAULT_ID,
                 key_ref: str = "") -> None:
        super().__init__(private_key.public_key, algorithm, certificate_chain=certificate_chain,
                         sm2_id=sm2_id, key_ref=key_ref)
        self._key = private_key

    @classmethod
    def generate(cls, spec: str = "sm2", **kwargs: object) -> SoftwareSigner:
        """A signer over a fresh key (tests and development)."""
        return cls(PrivateKey.generate(spec), **kwargs)  # type: ignore[arg-type]

    def sign(self, message: bytes) -> bytes:
        return self._key.sign(self.algorithm, message, sm2_id=self.sm2_id)

    def sign_batch(self, messages: Sequence[bytes]) -> list[bytes]:
        """For SM2-with-SM3, one engine call for the batch (the native engine signs it without the GIL)."""
        if self.algorithm is SignatureAlgorithm.SM2_SM3:
            return self._key.sign_sm2_many(messages, sm2_id=self.sm2_id)
        return [self.sign(m) for m in messages]

    def prepare_prefix(self, prefix: bytes) -> PreparedPrefix:
        """For SM2-with-SM3, absorb Z || prefix into an SM3 state once; each signature then hashes only its suffix."""
        if self.algorithm is SignatureAlgorithm.SM2_SM3:
            state = self._key.sm2_hash_state(prefix, sm2_id=self.sm2_id)
            return PreparedPrefix(prefix, (self._key, self.sm2_id), state)
        return PreparedPrefix(prefix)

    def sign_with_prefix(self, prefix: PreparedPrefix, suffix: bytes) -> bytes:
        if prefix.state is not None and prefix.owner == (self._key, self.sm2_id):
            return self._key.sign_sm2_state(prefix.state, suffix)
        return self.sign(prefix.data + suffix)

    def digest_hasher(self) -> MessageHasher:
        return message_hasher(self.public_key, self.algorithm, self.sm2_id)

    def sign_digest(self, digest: bytes) -> bytes:
        alg = self.algorithm
        if self.key_type is KeyType.ED25519:
            raise prehash_unsupported("Ed25519 (it hashes the message twice)")
        digest = check_digest(alg, digest)
        if alg is SignatureAlgorithm.SM2_SM3:
            return self._key._sign_sm2_e(digest)
        key, pre = self._key.crypto_key, Prehashed(_hash_for(alg)())
        if self.key_type is KeyType.EC:
            return key.sign(digest, ec.ECDSA(pre))  # type: ignore[no-any-return]
        if alg is SignatureAlgorithm.RSA_PSS_SHA256:
            return key.sign(digest, padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=32), pre)  # type: ignore[no-any-return]
        return key.sign(digest, padding.PKCS1v15(), pre)  # type: ignore[no-any-return]
