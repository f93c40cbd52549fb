"""One façade for the daemon and the CLI: our issuer, our keys, trusted issuers, revocation.

Built from a key store, a database and a small configuration; every call reads current state
(keys through StoreKeySource, revocations from the shared database), so several daemons behind
a load balancer agree.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from trustsvc.keys.base import KeyStore
from trustsvc.store.database import Database
from trustsvc.token.algs import AlgPolicy
from trustsvc.token.identity import LegalPerson, NaturalPerson, Privacy
from trustsvc.token.issuer import TokenIssuer
from trustsvc.token.local import DEFAULT_KEY, StoreKeySource, ensure_key, issuer_from_keystore
from trustsvc.token.revocation import RevocationStore
from trustsvc.token.trust import IssuerConfig
from trustsvc.token.verifier import TokenVerifier, TrustedIssuer, VerifiedToken, introspect


@dataclass(frozen=True)
class TokenConfig:
    """What a deployment chooses (see docs/tokens.md)."""

    issuer: str = "trustsvc"
    key: str = DEFAULT_KEY
    key_spec: str = "sm2"  # used when the key is created on first use
    kid_style: str = "thumbprint"
    ttl: int = 900
    audience: str | None = None  # required audience on verification (None: not checked)
    leeway: int = 60
    algorithms: tuple[str, ...] = ("SM2", "ES256", "EdDSA", "RS256")  # our own tokens
    sm2_aliases: tuple[str, ...] | None = None
    privacy: Privacy = field(default_factory=Privacy)
    trusted: tuple[IssuerConfig, ...] = ()

    @classmethod
    def from_dict(cls, obj: Mapping[str, Any], *, hmac_key: bytes = b"") -> TokenConfig:
        """From a JSON-like mapping; the HMAC key for privacy mode ``hash`` comes separately."""
        privacy = Privacy(str(obj.get("privacy", "mask")), hmac_key)
        aliases = obj.get("sm2_aliases")
        return cls(issuer=str(obj.get("issuer", cls.issuer)), key=str(obj.get("key", cls.key)),
                   key_spec=str(obj.get("key_spec", cls.key_spec)),
                   kid_style=str(obj.get("kid_style", cls.kid_style)), ttl=int(obj.get("ttl", cls.ttl)),
                   audience=obj.get("audience"), leeway=int(obj.get("leeway", cls.leeway)),
                   algorithms=tuple(obj.get("algorithms", cls.algorithms)),
                   sm2_aliases=tuple(aliases) if aliases is not None else None, privacy=privacy,
                   trusted=tuple(IssuerConfig.from_dict(e) for e in obj.get("issuers", [])))


class TokenService:
    """Issue, verify, introspect, revoke and publish keys for one deployment."""

    def __init__(self, keystore: KeyStore, db: Database, config: TokenConfig | None = None) -> None:
        self.config = config or TokenConfig()
        self.keystore = keystore
        self.revocations = RevocationStore(db)
        ensure_key(keystore, self.config.key, self.config.key_spec)
        self.keys = StoreKeySource(keystore, (self.config.key,), kid_style=self.config.kid_style)
        policy = AlgPolicy.of(self.config.algorithms, self.config.sm2_aliases)
        own = TrustedIssuer(self.config.issuer, self.keys, policy)
        others = [t.trusted(self.config.sm2_aliases) for t in self.config.trusted]
        self.verifier = TokenVerifier([own, *others], audience=self.config.audience, leeway=self.config.leeway,
                                      revocation=self.revocations)
        self._issuer: TokenIssuer | None = None
        self._issuer_ref = ""

    def issuer(self) -> TokenIssuer:
        """The issuer over the current active key version (rebuilt after a rotation)."""
        info = self.keystore.info(self.config.key)
        if self._issuer is None or self._issuer_ref != info.ref:
            self._issuer = issuer_from_keystore(self.keystore, self.config.issuer, self.config.key,
                                                kid_style=self.config.kid_style, ttl=self.config.ttl,
                                                privacy=self.config.privacy)
            self._issuer_ref = info.ref
        return self._issuer

    def issue(self, sub: str, claims: Mapping[str, Any] | None = None, *, aud: str | Sequence[str] | None = None,
              ttl: int | None = None, person: NaturalPerson | LegalPerson | None = None,
              acr: str | None = None, amr: Sequence[str] | None = None) -> str:
        return self.issuer().issue(sub, claims, aud=aud, ttl=ttl, person=person, acr=acr, amr=amr)

    def verify(self, token: str | bytes) -> VerifiedToken:
        return self.verifier.verify(token)

    def introspect(self, token: str | bytes) -> dict[str, Any]:
        return introspect(self.verifier, token)

    def revoke_jti(self, jti: str, *, iss: str | None = None, reason: str = "") -> None:
        self.revocations.revoke_jti(iss or self.config.issuer, jti, reason=reason)

    def revoke_subject(self, sub: str, before: int | None = None, *, iss: str | None = None,
                       reason: str = "") -> int:
        return self.revocations.revoke_subject(iss or self.config.issuer, sub, before, reason=reason)

    def jwks(self) -> dict[str, Any]:
        return self.keys.jwks()
