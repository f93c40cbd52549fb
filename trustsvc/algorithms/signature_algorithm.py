"""The signature algorithms trustsvc signs with, and their names in X.509/CMS and JOSE."""

from __future__ import annotations

import enum

from trustsvc.algorithms import oids
from trustsvc.errors import UnsupportedAlgorithm


class KeyType(str, enum.Enum):
    SM2 = "sm2"
    EC = "ec"
    RSA = "rsa"
    ED25519 = "ed25519"


class SignatureAlgorithm(str, enum.Enum):
    """A signature algorithm; its value is the trustsvc name used in configs and APIs."""

    SM2_SM3 = "sm2-sm3"
    ECDSA_P256_SHA256 = "ecdsa-p256-sha256"
    ECDSA_P384_SHA384 = "ecdsa-p384-sha384"
    RSA_PKCS1_SHA256 = "rsa-pkcs1-sha256"
    RSA_PSS_SHA256 = "rsa-pss-sha256"
    ED25519 = "ed25519"

    @property
    def key_type(self) -> KeyType:
        return _KEY_TYPE[self]

    @property
    def oid(self) -> str:
        """signatureAlgorithm OID for X.509 and CMS."""
        return _OID[self]

    @property
    def digest(self) -> str | None:
        """asn1crypto digest name ('sm3', 'sha256' ...); None for Ed25519."""
        return _DIGEST[self]

    @property
    def jose(self) -> str:
        """JWS ``alg`` (``SM2`` has no IANA registration; see docs/tokens.md)."""
        return _JOSE[self]

    @classmethod
    def parse(cls, name: str) -> SignatureAlgorithm:
        """From a trustsvc name, a JOSE name or an OID; raises UnsupportedAlgorithm."""
        for alg in cls:
            if name in (alg.value, alg.jose, alg.oid, alg.name):
                return alg
        raise UnsupportedAlgorithm(f"unknown signature algorithm {name!r}", reason="UNKNOWN_ALGORITHM")


_KEY_TYPE = {
    SignatureAlgorithm.SM2_SM3: KeyType.SM2,
    SignatureAlgorithm.ECDSA_P256_SHA256: KeyType.EC,
    SignatureAlgorithm.ECDSA_P384_SHA384: KeyType.EC,
    SignatureAlgorithm.RSA_PKCS1_SHA256: KeyType.RSA,
    SignatureAlgorithm.RSA_PSS_SHA256: KeyType.RSA,
    SignatureAlgorithm.ED25519: KeyType.ED25519,
}
_OID = {
    SignatureAlgorithm.SM2_SM3: oids.SM2_WITH_SM3,
    SignatureAlgorithm.ECDSA_P256_SHA256: oids.ECDSA_SHA256,
    SignatureAlgorithm.ECDSA_P384_SHA384: oids.ECDSA_SHA384,
    SignatureAlgorithm.RSA_PKCS1_SHA256: oids.RSA_SHA256,
    SignatureAlgorithm.RSA_PSS_SHA256: oids.RSA_PSS,
    SignatureAlgorithm.ED25519: oids.ED25519,
}
_DIGEST = {
    SignatureAlgorithm.SM2_SM3: "sm3",
    SignatureAlgorithm.ECDSA_P256_SHA256: "sha256",
    SignatureAlgorithm.ECDSA_P384_SHA384: "sha384",
    SignatureAlgorithm.RSA_PKCS1_SHA256: "sha256",
    SignatureAlgorithm.RSA_PSS_SHA256: "sha256",
    SignatureAlgorithm.ED25519: None,
}
_JOSE = {
    SignatureAlgorithm.SM2_SM3: "SM2",
    SignatureAlgorithm.ECDSA_P256_SHA256: "ES256",
    SignatureAlgorithm.ECDSA_P384_SHA384: "ES384",
    SignatureAlgorithm.RSA_PKCS1_SHA256: "RS256",
    SignatureAlgorithm.RSA_PSS_SHA256: "PS256",
    SignatureAlgorithm.ED25519: "EdDSA",
}
