"""Issuing tokens: claims in, JWS compact out, signed through any Signer (software or HSM).

The protected header is encoded once per key, and absorbed once into the signer's hash state
(``Signer.prepare_prefix``); per token the work is one compact JSON dump, two base64url encodings
and one signature over the rest.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from trustsvc.algorithms.signer import Signer
from trustsvc.token import algs, identity
from trustsvc.token.codec import b64encode, check_finite, dumps
from trustsvc.token.errors import TokenConfigError
from trustsvc.token.identity import LegalPerson, NaturalPerson, Privacy
from trustsvc.token.keyset import check_kid, kid_for
from trustsvc.token.randomid import token_id

_REGISTERED = frozenset({"iss", "sub", "aud", "exp", "nbf", "iat", "jti"})


class TokenIssuer:
    """Issues tokens as ``issuer`` with one signer; ``kid`` defaults to the RFC 7638 thumbprint."""

    def __init__(self, signer: Signer, issuer: str, *, kid: str | None = None, ttl: int = 900,
                 audience: str | Sequence[str] | None = None, privacy: Privacy | None = None,
                 clock: Callable[[], float] = time.time) -> None:
        if not issuer:
            raise TokenConfigError("issuer must not be empty", reason="BAD_ISSUER")
        self.signer = signer
        self.issuer = issuer
        self.alg = algs.jose_name(signer.algorithm)
        self.kid = check_kid(kid or kid_for(signer.public_key))
        self.ttl = ttl
        self.audience = audience
        self.privacy = privacy or Privacy()
        self._clock = clock
        self._header_b64 = b64encode(dumps({"alg": self.alg, "typ": "JWT", "kid": self.kid}))
        self._prefix = signer.prepare_prefix((self._header_b64 + ".").encode("ascii"))
        self._algorithm = signer.algorithm

    def claims(self, sub: str, extra: Mapping[str, Any] | None = None, *, aud: str | Sequence[str] | None = None,
               ttl: int | None = None, person: NaturalPerson | LegalPerson | None = None,
               acr: str | None = None, amr: Sequence[str] | None = None, jti: str | None = None) -> dict[str, Any]:
        """The claim set that :meth:`issue` signs (registered claims always set here)."""
        if not isinstance(sub, str) or not sub:
            raise TokenConfigError("sub must be a non-empty string", reason="BAD_SUBJECT")
        now = int(self._clock())
        claims: dict[str, Any] = {}
        if extra:
            clash = _REGISTERED.intersection(extra) - {"aud"}
            if clash:
                raise TokenConfigError(f"registered claims are set by the issuer: {sorted(clash)}",
                                       reason="RESERVED_CLAIM")
            try:
                check_finite(extra)
            except ValueError as exc:
                raise TokenConfigError(f"extra claims are not JSON: {exc}", reason="BAD_CLAIMS") from None
            claims.update(extra)
        claims.update({"iss": self.issuer, "sub": sub, "iat": now, "nbf": now,
                       "exp": now + (self.ttl if ttl is None else ttl),
                       "jti": jti or token_id(16)})
        audience = aud if aud is not None else claims.pop("aud", None) or self.audience
        if audience is not None:
            claims["aud"] = audience if isinstance(audience, str) else list(audience)
        if person is not None:
            claims[identity.CLAIM] = person.claims(self.privacy)
        elif identity.CLAIM in claims:
            identity.check_identity(claims[identity.CLAIM])
        if acr is not None:
            claims["acr"] = acr
        if amr is not None:
            claims["amr"] = list(amr)
        return claims

    def sign_claims(self, claims: Mapping[str, Any]) -> str:
        """Sign a ready claim set as it is (no defaults added)."""
        payload_b64 = b64encode(dumps(claims))
        der = self.signer.sign_with_prefix(self._prefix, payload_b64.encode("ascii"))
        return self._header_b64 + "." + payload_b64 + "." + b64encode(algs.to_jws_signature(self._algorithm, der))

    def issue(self, sub: str, extra: Mapping[str, Any] | None = None, **kwargs: Any) -> str:
        """A signed token for ``sub``; keyword arguments as for :meth:`claims`."""
        return self.sign_claims(self.claims(sub, extra, **kwargs))

    def issue_batch(self, claim_sets: Sequence[Mapping[str, Any]]) -> list[str]:
        """Sign many ready claim sets with one ``sign_batch`` call (HSMs amortise round trips)."""
        inputs = [self._header_b64 + "." + b64encode(dumps(c)) for c in claim_sets]
        sigs = self.signer.sign_batch([i.encode("ascii") for i in inputs])
        return [i + "." + b64encode(algs.to_jws_signature(self._algorithm, s))
                for i, s in zip(inputs, sigs, strict=True)]
