"""Unified identity tokens: JWS/JWT with SM2, ES256, EdDSA and RS256; issue, verify, revoke,
introspect, JWKS with rotation, and mutual recognition of other issuers. See docs/tokens.md.
"""

from trustsvc.token.algs import AlgPolicy
from trustsvc.token.errors import TokenConfigError, TokenInvalid
from trustsvc.token.identity import LegalPerson, NaturalPerson, Privacy
from trustsvc.token.issuer import TokenIssuer
from trustsvc.token.keyset import KeySet, VerificationKey
from trustsvc.token.revocation import RevocationStore
from trustsvc.token.trust import IssuerConfig, RemoteJwks
from trustsvc.token.verifier import TokenVerifier, TrustedIssuer, VerifiedToken, introspect

__all__ = [
    "AlgPolicy", "IssuerConfig", "KeySet", "LegalPerson", "NaturalPerson", "Privacy", "RemoteJwks",
    "RevocationStore", "TokenConfigError", "TokenInvalid", "TokenIssuer", "TokenVerifier", "TrustedIssuer",
    "VerificationKey", "VerifiedToken", "introspect",
]
