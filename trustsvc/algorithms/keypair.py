"""Public and private keys of every supported type, behind one small surface.

SM2 keys are held as raw values (``cryptography`` has no SM2 curve) and use the native engine;
EC P-256/P-384, RSA and Ed25519 keys wrap ``cryptography`` objects.
"""

from __future__ import annotations

import contextlib
import hashlib
from collections.abc import Iterator, Sequence
from typing import Any

from asn1crypto import keys as asn1_keys
from cryptography.exceptions import InvalidSignature as _CryptoInvalidSignature
from cryptography.exceptions import UnsupportedAlgorithm as _CryptoUnsupported
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import Prehashed

from trustsvc.algorithms import asn1_registry, pem, sm2
from trustsvc.algorithms.signature_algorithm import KeyType, SignatureAlgorithm
from trustsvc.errors import InvalidInput, InvalidSignature, UnsupportedAlgorithm

asn1_registry.register()

_HASHES: dict[str, type[hashes.HashAlgorithm]] = {"sha256": hashes.SHA256, "sha384": hashes.SHA384}
KEY_SPECS = ("sm2", "ec-p256", "ec-p384", "rsa-2048", "rsa-3072", "rsa-4096", "ed25519")


def _pss() -> padding.PSS:
    return padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=32)


@contextlib.contextmanager
def _verification(algorithm: SignatureAlgorithm) -> Iterator[None]:
    """A ``cryptography`` verification inside: its failures become InvalidSignature with a reason."""
    try:
        yield
    except _CryptoInvalidSignature:
        raise InvalidSignature(f"{algorithm.value} signature does not verify") from None
    except ValueError as exc:  # malformed DER etc.
        raise InvalidSignature(f"{algorithm.value} signature is malformed: {exc}",
                               reason="BAD_SIGNATURE_ENCODING") from None


class PublicKey:
    """A public key; ``spki`` is its DER SubjectPublicKeyInfo."""

    def __init__(self, key_type: KeyType, spki: bytes, *, point: bytes | None = None,
                 crypto_key: Any = None) -> None:
        self.key_type = key_type
        self.spki = spki
        self.point = point  # SM2 only: 04‖X‖Y
        self._crypto = crypto_key
        self._z_cache: dict[bytes, bytes] = {}

    # construction -----------------------------------------------------------------
    @classmethod
    def from_sm2_point(cls, point: bytes) -> PublicKey:
        point = sm2.check_point(point)
        info = asn1_keys.PublicKeyInfo({
            "algorithm": {"algorithm": "ec", "parameters": asn1_keys.ECDomainParameters(("named", "sm2"))},
            "public_key": point,
        })
        return cls(KeyType.SM2, info.dump(), point=point)

    @classmethod
    def from_cryptography(cls, key: Any) -> PublicKey:
        spki = key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
        if isinstance(key, ec.EllipticCurvePublicKey):
            if not isinstance(key.curve, (ec.SECP256R1, ec.SECP384R1)):
                raise UnsupportedAlgorithm(f"EC curve {key.curve.name} not supported", reason="UNSUPPORTED_CURVE")
            return cls(KeyType.EC, spki, crypto_key=key)
        if isinstance(key, rsa.RSAPublicKey):
            if key.key_size < 2048:
                raise UnsupportedAlgorithm("RSA keys shorter than 2048 bits are refused", reason="WEAK_KEY")
            return cls(KeyType.RSA, spki, crypto_key=key)
        if isinstance(key, ed25519.Ed25519PublicKey):
            return cls(KeyType.ED25519, spki, crypto_key=key)
        raise UnsupportedAlgorithm(f"key type {type(key).__name__} not supported", reason="UNSUPPORTED_KEY_TYPE")

    @classmethod
    def from_spki(cls, der: bytes) -> PublicKey:
        """Parse DER SubjectPublicKeyInfo; raises InvalidInput / UnsupportedAlgorithm."""
        try:
            info = asn1_keys.PublicKeyInfo.load(der, strict=True)
            algo = info["algorithm"]["algorithm"].native
            params = info["algorithm"]["parameters"]
            is_sm2 = algo == "ec" and params.name == "named" and params.chosen.native == "sm2"
            point = bytes(info["public_key"]) if is_sm2 else b""
        except (ValueError, TypeError, KeyError) as exc:
            raise InvalidInput(f"not a DER SubjectPublicKeyInfo: {exc}", reason="BAD_PUBLIC_KEY") from None
        if is_sm2:
            return cls.from_sm2_point(point)
        try:
            key = serialization.load_der_public_key(der)
        except (ValueError, TypeError, _CryptoUnsupported) as exc:
            raise UnsupportedAlgorithm(f"public key not usable: {exc}", reason="UNSUPPORTED_KEY_TYPE") from None
        return cls.from_cryptography(key)

    # properties ---------------------------------------------------------------------
    @property
    def crypto_key(self) -> Any:
        """The ``cryptography`` key object (None for SM2)."""
        return self._crypto

    @property
    def curve(self) -> str | None:
        if self.key_type is KeyType.SM2:
            return "sm2"
        if self.key_type is KeyType.EC:
            return {"secp256r1": "p256", "secp384r1": "p384"}[self._crypto.curve.name]
        return None

    @property
    def spec(self) -> str:
        """The key spec as ``PrivateKey.generate`` takes it: sm2, ec-p256, rsa-3072, ed25519..."""
        if self.key_type is KeyType.SM2:
            return "sm2"
        if self.key_type is KeyType.EC:
            return "ec-" + (self.curve or "")
        if self.key_type is KeyType.RSA:
            return f"rsa-{self._crypto.key_size}"
        return "ed25519"

    @property
    def fingerprint(self) -> str:
        """SHA-256 of the SPKI, hex."""
        return hashlib.sha256(self.spki).hexdigest()

    def default_algorithm(self) -> SignatureAlgorithm:
        if self.key_type is KeyType.SM2:
            return SignatureAlgorithm.SM2_SM3
        if self.key_type is KeyType.EC:
            return (SignatureAlgorithm.ECDSA_P256_SHA256 if self.curve == "p256"
                    else SignatureAlgorithm.ECDSA_P384_SHA384)
        if self.key_type is KeyType.RSA:
            return SignatureAlgorithm.RSA_PKCS1_SHA256
        return SignatureAlgorithm.ED25519

    def check_algorithm(self, algorithm: SignatureAlgorithm) -> None:
        """Raise UnsupportedAlgorithm unless ``algorithm`` fits this key."""
        ok = algorithm.key_type is self.key_type
        if ok and self.key_type is KeyType.EC:
            ok = algorithm is self.default_algorithm()
        if not ok:
            raise UnsupportedAlgorithm(
                f"algorithm {algorithm.value} does not fit a {self.key_type.value} key"
                + (f" on {self.curve}" if self.curve else ""), reason="ALGORITHM_KEY_MISMATCH")

    def sm2_z(self, user_id: bytes = sm2.DEFAULT_ID) -> bytes:
        """Z_A for this SM2 key (cached per user ID)."""
        assert self.point is not None
        z = self._z_cache.get(user_id)
        if z is None:
            z = self._z_cache[user_id] = sm2.z_value(self.point, user_id)
        return z

    def to_pem(self) -> bytes:
        return pem.encode("PUBLIC KEY", self.spki)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, PublicKey) and other.spki == self.spki

    def __hash__(self) -> int:
        return hash(self.spki)

    def __repr__(self) -> str:
        return f"PublicKey({self.key_type.value}{'/' + self.curve if self.curve else ''}, {self.fingerprint[:16]})"

    # verification -------------------------------------------------------------------
    def verify(self, algorithm: SignatureAlgorithm, message: bytes, signature: bytes,
               *, sm2_id: bytes = sm2.DEFAULT_ID) -> None:
        """Raise InvalidSignature (with a reason) unless ``signature`` is valid over ``message``."""
        self.check_algorithm(algorithm)
        if self.key_type is KeyType.SM2:
            assert self.point is not None
            sm2.verify(self.point, message, signature, sm2_id)
            return
        with _verification(algorithm):
            if self.key_type is KeyType.EC:
                self._crypto.verify(signature, message, ec.ECDSA(_HASHES[algorithm.digest or ""]()))
            elif algorithm is SignatureAlgorithm.RSA_PSS_SHA256:
                self._crypto.verify(signature, message, _pss(), hashes.SHA256())
            elif self.key_type is KeyType.RSA:
                self._crypto.verify(signature, message, padding.PKCS1v15(), hashes.SHA256())
            else:
                self._crypto.verify(signature, message)

    def verify_digest(self, algorithm: SignatureAlgorithm, digest: bytes, signature: bytes) -> None:
        """Like ``verify``, given the digest the signature covers (for SM2 e = SM3(Z || M), see
        ``trustsvc.algorithms.signer.message_hasher``); Ed25519 has none (InvalidInput PREHASH_UNSUPPORTED)."""
        self.check_algorithm(algorithm)
        if self.key_type is KeyType.SM2:
            assert self.point is not None
            if not sm2.get_engine().verify_e(self.point, digest, sm2.signature_to_rs(signature)):
                raise InvalidSignature("SM2 signature does not verify: the data changed, the key is wrong, "
                                       "or the SM2 ID may differ")
            return
        hash_cls = _HASHES.get(algorithm.digest or "")
        if hash_cls is None or self.key_type is KeyType.ED25519:
            raise InvalidInput(f"{algorithm.value} cannot verify a precomputed digest; verify the whole message",
                               reason="PREHASH_UNSUPPORTED")
        pre = Prehashed(hash_cls())
        with _verification(algorithm):
            if self.key_type is KeyType.EC:
                self._crypto.verify(signature, digest, ec.ECDSA(pre))
            elif algorithm is SignatureAlgorithm.RSA_PSS_SHA256:
                self._crypto.verify(signature, digest, _pss(), pre)
            else:
                self._crypto.verify(signature, digest, padding.PKCS1v15(), pre)


class PrivateKey:
    """A private key held in this process (software keys only; HSM keys never become one)."""

    def __init__(self, public_key: PublicKey, *, scalar: bytes | None = None, crypto_key: Any = None) -> None:
        self.public_key = public_key
        self._scalar = scalar
        self._crypto = crypto_key
        self._ctx: Any = None

    @property
    def key_type(self) -> KeyType:
        return self.public_key.key_type

    @classmethod
    def generate(cls, spec: str) -> PrivateKey:
        """A new key: 'sm2', 'ec-p256', 'ec-p384', 'rsa-2048', 'rsa-3072', 'rsa-4096' or 'ed25519'."""
        if spec == "sm2":
            scalar, point = sm2.generate_keypair()
            return cls(PublicKey.from_sm2_point(point), scalar=scalar)
        if spec == "ec-p256":
            return cls.from_cryptography(ec.generate_private_key(ec.SECP256R1()))
        if spec == "ec-p384":
            return cls.from_cryptography(ec.generate_private_key(ec.SECP384R1()))
        if spec.startswith("rsa-") and spec in KEY_SPECS:
            return cls.from_cryptography(rsa.generate_private_key(65537, int(spec[4:])))
        if spec == "ed25519":
            return cls.from_cryptography(ed25519.Ed25519PrivateKey.generate())
        raise UnsupportedAlgorithm(f"unknown key spec {spec!r}; known: {', '.join(KEY_SPECS)}",
                                   reason="UNKNOWN_KEY_SPEC")

    @classmethod
    def from_sm2_scalar(cls, scalar: bytes, point: bytes | None = None) -> PrivateKey:
        scalar = sm2.check_scalar(scalar)
        derived = sm2.public_point(scalar)
        if point is not None and sm2.check_point(point) != derived:
            raise InvalidInput("SM2 public point does not match the private key", reason="KEY_MISMATCH")
        return cls(PublicKey.from_sm2_point(derived), scalar=scalar)

    @classmethod
    def from_cryptography(cls, key: Any) -> PrivateKey:
        return cls(PublicKey.from_cryptography(key.public_key()), crypto_key=key)

    @property
    def spec(self) -> str:
        return self.public_key.spec

    def sm2_scalar(self) -> bytes:
        """The raw SM2 private scalar (for encoding only)."""
        if self._scalar is None:
            raise UnsupportedAlgorithm("not an SM2 key", reason="ALGORITHM_KEY_MISMATCH")
        return self._scalar

    @property
    def crypto_key(self) -> Any:
        return self._crypto

    def sign(self, algorithm: SignatureAlgorithm, message: bytes, *, sm2_id: bytes = sm2.DEFAULT_ID) -> bytes:
        """Sign ``message``: DER for SM2 and ECDSA, raw for RSA and Ed25519."""
        self.public_key.check_algorithm(algorithm)
        if self.key_type is KeyType.SM2:
            return self._sign_sm2(message, sm2_id)
        if self.key_type is KeyType.EC:
            return self._crypto.sign(message, ec.ECDSA(_HASHES[algorithm.digest or ""]()))
        if algorithm is SignatureAlgorithm.RSA_PSS_SHA256:
            return self._crypto.sign(message, _pss(), hashes.SHA256())
        if self.key_type is KeyType.RSA:
            return self._crypto.sign(message, padding.PKCS1v15(), hashes.SHA256())
        return self._crypto.sign(message)

    def _sign_sm2(self, message: bytes, sm2_id: bytes) -> bytes:
        from trustsvc.algorithms.sm3 import sm3

        e = sm3(self.public_key.sm2_z(sm2_id) + message)
        return self._sign_sm2_e(e)

    def sm2_hash_state(self, prefix: bytes, *, sm2_id: bytes = sm2.DEFAULT_ID) -> Any:
        """An SM3 state that has absorbed Z || ``prefix``: ``copy()`` it, feed the rest, then ``sign_sm2_state``."""
        if self.key_type is not KeyType.SM2:
            raise UnsupportedAlgorithm("not an SM2 key", reason="ALGORITHM_KEY_MISMATCH")
        state = hashes.Hash(hashes.SM3())
        state.update(self.public_key.sm2_z(sm2_id))
        state.update(prefix)
        return state

    def sign_sm2_state(self, state: Any, suffix: bytes) -> bytes:
        """DER SM2 signature over prefix || ``suffix``, from a state made by ``sm2_hash_state`` (left untouched)."""
        h = state.copy()
        h.update(suffix)
        return self._sign_sm2_e(h.finalize())

    def sign_sm2_many(self, messages: Sequence[bytes], *, sm2_id: bytes = sm2.DEFAULT_ID) -> list[bytes]:
        """DER SM2 signatures over each of ``messages``, in order; one engine call when it signs in batches."""
        state = self.sm2_hash_state(b"", sm2_id=sm2_id)  # refuses a key that is not SM2
        digests = []
        for message in messages:
            h = state.copy()
            h.update(message)
            digests.append(h.finalize())
        ctx = self._sm2_context()
        if ctx is None or not hasattr(ctx, "sign_digests"):
            return [self._sign_sm2_e(e) for e in digests]
        raw = bytes(ctx.sign_digests(b"".join(digests)))
        return [sm2.rs_to_der(raw[i:i + 64]) for i in range(0, len(raw), 64)]

    def _sm2_context(self) -> Any:
        """The engine's reusable per-key signing context, made on first use (None if the engine has none)."""
        if self._ctx is None:
            from trustsvc.algorithms.sm2_engine import get_engine

            engine = get_engine()
            if hasattr(engine, "context"):
                assert self.public_key.point is not None and self._scalar is not None
                self._ctx = engine.context(self._scalar, self.public_key.point)
        return self._ctx

    def _sign_sm2_e(self, e: bytes) -> bytes:
        """DER SM2 signature for the digest e = SM3(Z || M)."""
        ctx = self._sm2_context()
        if ctx is not None:
            return sm2.rs_to_der(bytes(ctx.sign_digest(e)))
        from trustsvc.algorithms.sm2_engine import get_engine

        point = self.public_key.point
        assert point is not None and self._scalar is not None
        return sm2.rs_to_der(get_engine().sign_e(self._scalar, point, e))

    def decrypt_sm2(self, ciphertext: bytes) -> bytes:
        assert self.public_key.point is not None
        return sm2.decrypt(self.sm2_scalar(), self.public_key.point, ciphertext)

    def __repr__(self) -> str:  # never show key material
        return f"PrivateKey({self.spec}, {self.public_key.fingerprint[:16]})"
