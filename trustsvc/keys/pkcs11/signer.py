"""Pkcs11Signer: a Signer whose private key stays in a PKCS#11 token."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import Any

from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature
from pkcs11 import MGF, Mechanism, ObjectClass

from trustsvc.algorithms import sm2
from trustsvc.algorithms.keypair import PublicKey
from trustsvc.algorithms.signature_algorithm import KeyType, SignatureAlgorithm
from trustsvc.algorithms.signer import MessageHasher, Signer, check_digest, message_hasher, prehash_unsupported
from trustsvc.algorithms.sm3 import sm3
from trustsvc.errors import HsmError
from trustsvc.keys.pkcs11 import module
from trustsvc.keys.pkcs11.pool import PooledSession, SessionPool
from trustsvc.keys.pkcs11.profiles import InputMode, OutputFormat, SignMode

_PSS = (Mechanism.SHA256, MGF.SHA256, 32)
_SHA256_DIGEST_INFO = bytes.fromhex("3031300d060960864801650304020105000420")  # RFC 8017 9.2


def ecdsa_raw_to_der(raw: bytes) -> bytes:
    """PKCS#11 CKM_ECDSA output r||s to DER SEQUENCE{r, s}."""
    half = len(raw) // 2
    return encode_dss_signature(int.from_bytes(raw[:half], "big"), int.from_bytes(raw[half:], "big"))


def find_private_key(ps: PooledSession, label: str, key_id: bytes) -> Any:
    """The private key object on this session (found once per session and cached)."""
    cache_key = ("priv", label, key_id)
    key = ps.keys.get(cache_key)
    if key is None:
        key = ps.keys[cache_key] = ps.session.get_key(
            object_class=ObjectClass.PRIVATE_KEY, label=label, id=key_id)
    return key


class Pkcs11Signer(Signer):
    """Signs with a token key through a session pool; the digest or e is computed on the host."""

    def __init__(self, pool: SessionPool, label: str, key_id: bytes, public_key: PublicKey,
                 algorithm: SignatureAlgorithm | None = None, *, sm2_mode: SignMode | None = None,
                 **kwargs: Any) -> None:
        super().__init__(public_key, algorithm, **kwargs)
        self.pool = pool
        self.label = label
        self.key_id = key_id
        if self.key_type is KeyType.SM2 and sm2_mode is None:
            raise HsmError("no self-tested SM2 mechanism for this token", reason="HSM_NO_SM2")
        if (sm2_mode is not None and sm2_mode.input is InputMode.MSG_Z_INTERNAL
                and self.sm2_id != sm2.DEFAULT_ID):
            raise HsmError("the token computes Z with the default SM2 ID only; another ID needs "
                           "a host-hashed (E_PREHASHED) mechanism", reason="HSM_SM2_ID_UNSUPPORTED")
        self.sm2_mode = sm2_mode
        self._mech, self._param, self._prepare, self._finish = self._plan()
        self._cache_key = ("priv", label, key_id)
        self._what = f"signing with {self.key_ref or self.label}"

    def _plan(self) -> tuple[Any, Any, Any, Any]:
        """(mechanism, parameter, message -> token input, token output -> signature)."""
        alg = self.algorithm
        ident = _identity
        if self.key_type is KeyType.EC:
            h = hashlib.sha256 if alg is SignatureAlgorithm.ECDSA_P256_SHA256 else hashlib.sha384
            return Mechanism.ECDSA, None, lambda m: h(m).digest(), ecdsa_raw_to_der
        if alg is SignatureAlgorithm.RSA_PSS_SHA256:
            return Mechanism.SHA256_RSA_PKCS_PSS, _PSS, ident, ident
        if self.key_type is KeyType.RSA:
            return Mechanism.SHA256_RSA_PKCS, None, ident, ident
        if self.key_type is KeyType.ED25519:
            return Mechanism.EDDSA, None, ident, ident
        mode = self.sm2_mode
        assert mode is not None
        mech = module.mechanism(mode.mechanism)
        z = self.public_key.sm2_z(self.sm2_id)
        if mode.input is InputMode.E_PREHASHED:
            prep = lambda m: sm3(z + m)  # noqa: E731
        elif mode.input is InputMode.MSG_NO_Z:
            if not mode.host_z_prefix:
                raise HsmError(
                    f"SM2 mechanism 0x{mode.mechanism:08X} signs SM3(M) without Z: not GM/T 0009, refused "
                    "for X.509, CMS and seals (declare host_z_prefix to pass Z||M instead)",
                    reason="HSM_SM2_NO_Z")
            prep = lambda m: z + m  # noqa: E731
        elif mode.input is InputMode.MSG_Z_INTERNAL:
            prep = ident
        elif mode.input is InputMode.MSG_ID_PARAM:  # the token computes Z over the ID we pass
            return mech, bytes(self.sm2_id), ident, self._finish_for(mode)
        else:
            raise HsmError(f"unknown SM2 input mode {mode.input!r}", reason="HSM_BAD_PROFILE")
        return mech, None, prep, self._finish_for(mode)

    @staticmethod
    def _finish_for(mode: SignMode) -> Any:
        """Token output (raw r||s or DER) to a DER SM2 signature."""
        if mode.output is OutputFormat.DER:
            return lambda s: sm2.rs_to_der(sm2.signature_to_rs(s))
        return sm2.rs_to_der

    def _sign_on(self, ps: PooledSession, messages: Sequence[bytes]) -> list[bytes]:
        key = find_private_key(ps, self.label, self.key_id)
        mech, param, prep, fin = self._mech, self._param, self._prepare, self._finish
        return [fin(key.sign(prep(m), mechanism=mech, mechanism_param=param)) for m in messages]

    def _sign_one(self, ps: PooledSession, message: bytes) -> bytes:
        key = ps.keys.get(self._cache_key) or find_private_key(ps, self.label, self.key_id)
        return self._finish(key.sign(self._prepare(message), mechanism=self._mech, mechanism_param=self._param))

    def sign(self, message: bytes) -> bytes:
        return self.pool.run_with(self._what, self._sign_one, message)

    def sign_batch(self, messages: Sequence[bytes]) -> list[bytes]:
        """Every message on one session (one pool round trip)."""
        return self.pool.run(self._what, lambda ps: self._sign_on(ps, messages))


    # prehashed signing (SignDataStream) -------------------------------------------------
    def _digest_plan(self) -> tuple[Any, Any, Any]:
        """(mechanism, parameter, digest -> token input); PREHASH_UNSUPPORTED when the token takes the message."""
        if self.key_type is KeyType.EC:
            return Mechanism.ECDSA, None, _identity
        if self.algorithm is SignatureAlgorithm.RSA_PSS_SHA256:
            return Mechanism.RSA_PKCS_PSS, _PSS, _identity
        if self.key_type is KeyType.RSA:
            return Mechanism.RSA_PKCS, None, lambda d: _SHA256_DIGEST_INFO + d
        mode = self.sm2_mode
        if self.key_type is KeyType.SM2 and mode is not None and mode.input is InputMode.E_PREHASHED:
            return self._mech, None, _identity
        what = f"SM2 mechanism input {mode.input.value}" if mode is not None else self.key_type.value
        raise prehash_unsupported(f"{self!r} ({what} takes the message)")

    def digest_hasher(self) -> MessageHasher:
        """SM3 primed with Z (E_PREHASHED SM2 profiles), or SHA-256/384 for ECDSA and RSA."""
        self._digest_plan()
        return message_hasher(self.public_key, self.algorithm, self.sm2_id)

    def sign_digest(self, digest: bytes) -> bytes:
        mech, param, prep = self._digest_plan()
        data = prep(check_digest(self.algorithm, digest))

        def run(ps: PooledSession) -> bytes:
            key = find_private_key(ps, self.label, self.key_id)
            return self._finish(key.sign(data, mechanism=mech, mechanism_param=param))  # type: ignore[no-any-return]
        return self.pool.run(f"signing with {self.key_ref or self.label}", run)  # type: ignore[no-any-return]


def _identity(b: bytes) -> bytes:
    return b


__all__ = ["Pkcs11Signer", "ecdsa_raw_to_der", "find_private_key"]
