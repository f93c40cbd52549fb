"""JWS ``alg`` names and signature encodings for the four token algorithms.

JWS signatures are fixed-length: SM2 and ES256 as r‖s (32+32 bytes, like RFC 7518 §3.4),
RS256 and EdDSA as the raw signature. The Signer interface returns DER for SM2/ECDSA, so
this module converts both ways. HMAC algorithms and "none" are never accepted.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature, encode_dss_signature

from trustsvc.algorithms import sm2_curve
from trustsvc.algorithms.keypair import PublicKey
from trustsvc.algorithms.signature_algorithm import SignatureAlgorithm
from trustsvc.algorithms.sm2_engine import get_engine
from trustsvc.algorithms.sm3 import sm3
from trustsvc.errors import TrustsvcError
from trustsvc.token import errors as E
from trustsvc.token.errors import TokenInvalid

SM2 = "SM2"
DEFAULT_SM2_ALIASES: tuple[str, ...] = ("SM3withSM2", "SM2SM3", "SM2-SM3")

_BY_NAME: dict[str, SignatureAlgorithm] = {
    "SM2": SignatureAlgorithm.SM2_SM3,
    "ES256": SignatureAlgorithm.ECDSA_P256_SHA256,
    "RS256": SignatureAlgorithm.RSA_PKCS1_SHA256,
    "EdDSA": SignatureAlgorithm.ED25519,
}
SUPPORTED: frozenset[str] = frozenset(_BY_NAME)
_RS_SIZE = {SignatureAlgorithm.SM2_SM3: 32, SignatureAlgorithm.ECDSA_P256_SHA256: 32}


@dataclass(frozen=True)
class AlgPolicy:
    """Which ``alg`` values one issuer may use, and which aliases mean SM2 on input."""

    allowed: frozenset[str] = SUPPORTED
    sm2_aliases: frozenset[str] = frozenset(DEFAULT_SM2_ALIASES)

    @classmethod
    def of(cls, allowed: Iterable[str] | None = None, sm2_aliases: Iterable[str] | None = None) -> AlgPolicy:
        names = frozenset(allowed) if allowed is not None else SUPPORTED
        unknown = names - SUPPORTED
        if unknown:
            from trustsvc.token.errors import TokenConfigError

            raise TokenConfigError(f"algorithms not supported for tokens: {sorted(unknown)}",
                                   reason="ALG_NOT_SUPPORTED")
        aliases = frozenset(sm2_aliases) if sm2_aliases is not None else frozenset(DEFAULT_SM2_ALIASES)
        return cls(names, aliases)

    def resolve(self, alg: object) -> str:
        """Canonical name of a header ``alg``; raises ALG_NONE / ALG_NOT_ALLOWED."""
        if not isinstance(alg, str):
            raise TokenInvalid("header alg missing or not a string", reason=E.ALG_NOT_ALLOWED)
        if alg.lower() == "none":
            raise TokenInvalid("alg none is never accepted", reason=E.ALG_NONE)
        name = SM2 if alg in self.sm2_aliases else alg
        if name not in self.allowed:
            raise TokenInvalid(f"alg {alg[:20]!r} is not allowed", reason=E.ALG_NOT_ALLOWED)
        return name


def signature_algorithm(name: str) -> SignatureAlgorithm:
    return _BY_NAME[name]


def jose_name(algorithm: SignatureAlgorithm) -> str:
    """The JWS ``alg`` for a signer's algorithm; raises TokenConfigError when it has none here."""
    for name, alg in _BY_NAME.items():
        if alg is algorithm:
            return name
    from trustsvc.token.errors import TokenConfigError

    raise TokenConfigError(f"{algorithm.value} cannot sign tokens", reason="ALG_NOT_SUPPORTED")


def to_jws_signature(algorithm: SignatureAlgorithm, signature: bytes) -> bytes:
    """Signer output (DER for SM2/ECDSA) to the JWS form (r‖s)."""
    size = _RS_SIZE.get(algorithm)
    if size is None:
        return signature
    r, s = decode_dss_signature(signature)
    return r.to_bytes(size, "big") + s.to_bytes(size, "big")


def verify(name: str, key: PublicKey, signing_input: bytes, signature: bytes) -> None:
    """Check a JWS signature; raises TokenInvalid(BAD_SIGNATURE or ALG_NOT_ALLOWED)."""
    algorithm = _BY_NAME[name]
    try:
        key.check_algorithm(algorithm)
    except TrustsvcError:
        raise TokenInvalid(f"alg {name} does not fit the {key.key_type.value} key", reason=E.ALG_NOT_ALLOWED) from None
    size = _RS_SIZE.get(algorithm)
    if size is not None:
        if len(signature) != 2 * size:
            raise TokenInvalid(f"{name} signature must be r||s of {2 * size} bytes", reason=E.BAD_SIGNATURE)
        r, s = int.from_bytes(signature[:size], "big"), int.from_bytes(signature[size:], "big")
        if algorithm is SignatureAlgorithm.SM2_SM3:
            if not (0 < r < sm2_curve.N and 0 < s < sm2_curve.N):
                raise TokenInvalid("SM2 signature r or s out of range", reason=E.BAD_SIGNATURE)
            # e = SM3(Z ‖ M) with Z cached on the key; no failure diagnosis (it would cost three
            # more verifications per forged token).
            assert key.point is not None
            if not get_engine().verify_e(key.point, sm3(key.sm2_z() + signing_input), signature):
                raise TokenInvalid("SM2 signature does not verify", reason=E.BAD_SIGNATURE)
            return
        else:
            wire = encode_dss_signature(r, s)
    else:
        wire = signature
    try:
        key.verify(algorithm, signing_input, wire)
    except TrustsvcError as exc:
        raise TokenInvalid(f"signature does not verify ({exc.reason})", reason=E.BAD_SIGNATURE) from None

