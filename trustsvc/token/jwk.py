"""JWK (RFC 7517/7518) for token keys, SM2 included, and RFC 7638 thumbprints.

SM2 public keys are ``{"kty": "EC", "crv": "SM2", "x": ..., "y": ...}`` with 32-byte
coordinates, exactly like P-256 keys apart from the curve name.
"""

from __future__ import annotations

import hashlib
from typing import Any

from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from trustsvc.algorithms.keypair import PublicKey
from trustsvc.algorithms.signature_algorithm import KeyType
from trustsvc.errors import TrustsvcError
from trustsvc.token import errors as E
from trustsvc.token.codec import b64decode, b64encode, dumps
from trustsvc.token.errors import TokenInvalid

_PRIVATE_MEMBERS = ("d", "p", "q", "dp", "dq", "qi", "oth", "k")


def _int_b64(value: int, size: int | None = None) -> str:
    length = size if size is not None else max(1, (value.bit_length() + 7) // 8)
    return b64encode(value.to_bytes(length, "big"))


def public_members(key: PublicKey) -> dict[str, str]:
    """The required members of the JWK (RFC 7638 §3.2), in lexicographic order."""
    if key.key_type is KeyType.SM2:
        assert key.point is not None
        return {"crv": "SM2", "kty": "EC", "x": b64encode(key.point[1:33]), "y": b64encode(key.point[33:65])}
    crypto = key.crypto_key
    if key.key_type is KeyType.EC:
        if key.curve != "p256":
            raise TokenInvalid("only P-256 EC keys sign tokens", reason=E.BAD_JWK)
        nums = crypto.public_numbers()
        return {"crv": "P-256", "kty": "EC", "x": _int_b64(nums.x, 32), "y": _int_b64(nums.y, 32)}
    if key.key_type is KeyType.RSA:
        nums = crypto.public_numbers()
        return {"e": _int_b64(nums.e), "kty": "RSA", "n": _int_b64(nums.n)}
    raw = crypto.public_bytes(Encoding.Raw, PublicFormat.Raw)
    return {"crv": "Ed25519", "kty": "OKP", "x": b64encode(raw)}


def thumbprint(key: PublicKey) -> str:
    """RFC 7638 SHA-256 thumbprint, base64url."""
    return b64encode(hashlib.sha256(dumps(public_members(key))).digest())


def to_jwk(key: PublicKey, kid: str, alg: str) -> dict[str, str]:
    """Public JWK with kid, alg and use "sig"."""
    return {**public_members(key), "kid": kid, "alg": alg, "use": "sig"}


def _member(jwk: dict[str, Any], name: str) -> bytes:
    value = jwk.get(name)
    if not isinstance(value, str):
        raise TokenInvalid(f"JWK member {name!r} missing", reason=E.BAD_JWK)
    return b64decode(value, f"JWK member {name!r}")


def from_jwk(jwk: dict[str, Any]) -> PublicKey:
    """Public key from a JWK; refuses private members and unknown curves (TokenInvalid BAD_JWK)."""
    if not isinstance(jwk, dict):
        raise TokenInvalid("JWK is not an object", reason=E.BAD_JWK)
    if any(m in jwk for m in _PRIVATE_MEMBERS):
        raise TokenInvalid("JWK carries private key members", reason=E.BAD_JWK)
    kty, crv = jwk.get("kty"), jwk.get("crv")
    try:
        if kty == "EC" and crv in ("SM2", "P-256"):
            x, y = _member(jwk, "x"), _member(jwk, "y")
            if len(x) != 32 or len(y) != 32:
                raise TokenInvalid("EC JWK coordinates must be 32 bytes", reason=E.BAD_JWK)
            if crv == "SM2":
                return PublicKey.from_sm2_point(b"\x04" + x + y)
            nums = ec.EllipticCurvePublicNumbers(int.from_bytes(x, "big"), int.from_bytes(y, "big"), ec.SECP256R1())
            return PublicKey.from_cryptography(nums.public_key())
        if kty == "RSA":
            n, e = _member(jwk, "n"), _member(jwk, "e")
            pub = rsa.RSAPublicNumbers(int.from_bytes(e, "big"), int.from_bytes(n, "big")).public_key()
            return PublicKey.from_cryptography(pub)
        if kty == "OKP" and crv == "Ed25519":
            return PublicKey.from_cryptography(ed25519.Ed25519PublicKey.from_public_bytes(_member(jwk, "x")))
    except TokenInvalid:
        raise
    except (TrustsvcError, ValueError) as exc:
        raise TokenInvalid(f"JWK is not a usable public key: {exc}", reason=E.BAD_JWK) from None
    raise TokenInvalid(f"JWK kty/crv {str(kty)[:10]}/{str(crv)[:10]} not supported", reason=E.BAD_JWK)
