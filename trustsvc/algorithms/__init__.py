"""Algorithms: SM2/SM3/SM4, ECDSA, RSA, Ed25519 behind one Signer/Verifier interface."""

from trustsvc.algorithms import asn1_registry as _asn1_registry
from trustsvc.algorithms.encoding import (
    load_private_key,
    load_public_key,
    private_key_to_pem,
    private_key_to_pkcs8,
)
from trustsvc.algorithms.keypair import KEY_SPECS, PrivateKey, PublicKey
from trustsvc.algorithms.signature_algorithm import KeyType, SignatureAlgorithm
from trustsvc.algorithms.signer import Signer, SoftwareSigner, Verifier

_asn1_registry.register()

__all__ = [
    "KEY_SPECS", "KeyType", "PrivateKey", "PublicKey", "SignatureAlgorithm", "Signer", "SoftwareSigner",
    "Verifier", "load_private_key", "load_public_key", "private_key_to_pem", "private_key_to_pkcs8",
]
