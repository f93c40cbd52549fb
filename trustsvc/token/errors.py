"""The one error a token check raises: TokenInvalid, whose ``reason`` names the failed rule."""

from __future__ import annotations

from trustsvc.errors import TrustsvcError

# Reasons (stable, machine-readable; listed in docs/tokens.md).
MALFORMED = "MALFORMED_TOKEN"
TOO_LARGE = "TOKEN_TOO_LARGE"
BAD_BASE64 = "BAD_BASE64"
BAD_JSON = "BAD_JSON"
DUPLICATE_CLAIM = "DUPLICATE_CLAIM"
ALG_NONE = "ALG_NONE"
ALG_NOT_ALLOWED = "ALG_NOT_ALLOWED"
MISSING_KID = "MISSING_KID"
BAD_KID = "BAD_KID"
UNKNOWN_KID = "UNKNOWN_KID"
UNSUPPORTED_HEADER = "UNSUPPORTED_HEADER"
UNKNOWN_CRIT = "UNKNOWN_CRIT"
BAD_SIGNATURE = "BAD_SIGNATURE"
WRONG_ISSUER = "WRONG_ISSUER"
WRONG_AUDIENCE = "WRONG_AUDIENCE"
AUDIENCE_NOT_GIVEN = "AUDIENCE_NOT_GIVEN"
EXPIRED = "EXPIRED"
NOT_YET_VALID = "NOT_YET_VALID"
MISSING_CLAIM = "MISSING_CLAIM"
BAD_CLAIM = "BAD_CLAIM"
REVOKED = "REVOKED"
JWKS_UNAVAILABLE = "JWKS_UNAVAILABLE"
BAD_JWK = "BAD_JWK"


class TokenInvalid(TrustsvcError):
    """A token was refused; ``reason`` is one of the constants of this module."""

    reason = "TOKEN_INVALID"


class TokenConfigError(TrustsvcError):
    """A token issuer, verifier or trust configuration is unusable."""

    reason = "TOKEN_CONFIG"
