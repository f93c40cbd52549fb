"""Verifying tokens: parse strictly, resolve issuer and kid, check signature, time, audience,
required claims and revocation. Every refusal is a TokenInvalid with a precise reason.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from trustsvc.token import algs, identity
from trustsvc.token import errors as E
from trustsvc.token.algs import AlgPolicy
from trustsvc.token.codec import MAX_TOKEN_BYTES, parse_compact
from trustsvc.token.errors import TokenConfigError, TokenInvalid
from trustsvc.token.keyset import KeySource, check_kid
from trustsvc.token.revocation import RevocationStore

# Headers that would let a token pick its own key; never followed.
FORBIDDEN_HEADERS = frozenset({"jku", "x5u", "jwk", "x5c"})
UNDERSTOOD_CRIT: frozenset[str] = frozenset()
DEFAULT_REQUIRED = ("iss", "sub", "exp", "iat", "jti")


@dataclass(frozen=True)
class TrustedIssuer:
    """An issuer whose tokens we accept: its ``iss``, where its keys come from, which algs it may use."""

    issuer: str
    keys: KeySource
    policy: AlgPolicy = field(default_factory=AlgPolicy)


@dataclass(frozen=True)
class VerifiedToken:
    header: dict[str, Any]
    claims: dict[str, Any]
    kid: str
    alg: str

    @property
    def identity(self) -> dict[str, Any] | None:
        return self.claims.get(identity.CLAIM)


def _numeric(claims: Mapping[str, Any], name: str) -> float | None:
    value = claims.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise TokenInvalid(f"{name} must be a NumericDate", reason=E.BAD_CLAIM)
    return float(value)


class TokenVerifier:
    """Checks tokens from a set of trusted issuers for one audience."""

    def __init__(self, issuers: Iterable[TrustedIssuer], *, audience: str | Iterable[str] | None = None,
                 any_audience: bool = False, leeway: int = 60, required: Iterable[str] = DEFAULT_REQUIRED,
                 revocation: RevocationStore | None = None, max_bytes: int = MAX_TOKEN_BYTES,
                 clock: Callable[[], float] = time.time) -> None:
        """``audience``: who this verifier checks tokens for. Without one, a token that names an audience
        is refused (RFC 7519 §4.1.3: AUDIENCE_NOT_GIVEN) unless ``any_audience`` (introspection,
        revocation: the caller is not the token's audience and judges ``aud`` itself)."""
        self.issuers = {t.issuer: t for t in issuers}
        if not self.issuers:
            raise TokenConfigError("a verifier needs at least one trusted issuer", reason="NO_ISSUERS")
        self.audiences = (frozenset([audience]) if isinstance(audience, str)
                          else frozenset(audience) if audience is not None else None)
        self.any_audience = any_audience
        self.leeway = leeway
        self.required = tuple(required)
        self.revocation = revocation
        self.max_bytes = max_bytes
        self._clock = clock

    def verify(self, token: str | bytes) -> VerifiedToken:
        """The verified token; raises TokenInvalid naming the first failed check."""
        jws = parse_compact(token, self.max_bytes)
        header, claims = jws.header, jws.payload
        alg_name = header.get("alg")
        if isinstance(alg_name, str) and alg_name.lower() == "none":
            raise TokenInvalid("alg none is never accepted", reason=E.ALG_NONE)
        bad = FORBIDDEN_HEADERS.intersection(header)
        if bad:
            raise TokenInvalid(f"header {sorted(bad)[0]} is refused: keys come from configuration only",
                               reason=E.UNSUPPORTED_HEADER)
        if "crit" in header:
            crit = header["crit"]
            if (not isinstance(crit, list) or not crit
                    or any(not isinstance(c, str) or c not in UNDERSTOOD_CRIT for c in crit)):
                raise TokenInvalid("header crit names extensions not understood", reason=E.UNKNOWN_CRIT)
        if "b64" in header:
            raise TokenInvalid("unencoded payload (b64) is not supported", reason=E.UNSUPPORTED_HEADER)
        kid = check_kid(header.get("kid"))
        iss = claims.get("iss")
        trusted = self.issuers.get(iss) if isinstance(iss, str) else None
        if trusted is None:
            raise TokenInvalid("issuer is not trusted" if iss is not None else "token has no iss",
                               reason=E.WRONG_ISSUER if iss is not None else E.MISSING_CLAIM)
        alg = trusted.policy.resolve(alg_name)
        vkey = trusted.keys.get(kid)
        if vkey is None:
            raise TokenInvalid("kid does not name a key of this issuer", reason=E.UNKNOWN_KID)
        if vkey.alg != alg:
            raise TokenInvalid(f"alg {alg} does not fit key {kid} ({vkey.alg})", reason=E.ALG_NOT_ALLOWED)
        algs.verify(alg, vkey.key, jws.signing_input, jws.signature)
        self._check_claims(claims)
        return VerifiedToken(header, claims, kid, alg)

    def _check_claims(self, claims: dict[str, Any]) -> None:
        for name in self.required:
            if name not in claims:
                raise TokenInvalid(f"required claim {name} is missing", reason=E.MISSING_CLAIM)
        for name in ("iss", "sub", "jti"):
            if name in claims and not isinstance(claims[name], str):
                raise TokenInvalid(f"{name} must be a string", reason=E.BAD_CLAIM)
        now = self._clock()
        exp, nbf, iat = _numeric(claims, "exp"), _numeric(claims, "nbf"), _numeric(claims, "iat")
        if exp is not None and now - self.leeway >= exp:
            raise TokenInvalid("token has expired", reason=E.EXPIRED)
        if nbf is not None and now + self.leeway < nbf:
            raise TokenInvalid("token is not yet valid", reason=E.NOT_YET_VALID)
        if iat is not None and now + self.leeway < iat:
            raise TokenInvalid("token was issued in the future", reason=E.NOT_YET_VALID)
        if self.audiences is None:
            if claims.get("aud") is not None and not self.any_audience:
                raise TokenInvalid("the token names an audience: verify it for one (RFC 7519 4.1.3)",
                                   reason=E.AUDIENCE_NOT_GIVEN)
        else:
            aud = claims.get("aud")
            auds = [aud] if isinstance(aud, str) else aud if isinstance(aud, list) else None
            if auds is None:
                raise TokenInvalid("token has no audience", reason=E.MISSING_CLAIM if aud is None else E.BAD_CLAIM)
            if not any(isinstance(a, str) and a in self.audiences for a in auds):
                raise TokenInvalid("token is for another audience", reason=E.WRONG_AUDIENCE)
        for name in ("acr",):
            if name in claims and not isinstance(claims[name], str):
                raise TokenInvalid(f"{name} must be a string", reason=E.BAD_CLAIM)
        if "amr" in claims and not (isinstance(claims["amr"], list) and all(isinstance(a, str) for a in claims["amr"])):
            raise TokenInvalid("amr must be an array of strings", reason=E.BAD_CLAIM)
        if identity.CLAIM in claims:
            identity.check_identity(claims[identity.CLAIM])
        if self.revocation is not None and self.revocation.is_revoked(
                claims["iss"], claims.get("jti"), claims.get("sub"), claims.get("iat")):
            raise TokenInvalid("token has been revoked", reason=E.REVOKED)


def introspect(verifier: TokenVerifier, token: str | bytes) -> dict[str, Any]:
    """RFC 7662 answer: ``{"active": false}`` for anything invalid (no reason given), else the claims.
    Give a verifier with ``any_audience`` unless the answer is for one audience: the resource server
    asking judges ``aud`` itself."""
    try:
        verified = verifier.verify(token)
    except TokenInvalid:
        return {"active": False}
    return {**verified.claims, "active": True, "token_type": "Bearer"}
