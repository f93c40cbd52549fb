"""One façade for the daemon and the CLI: our issuer, our keys, trusted issuers, revocation.

Built from a key store, a database and a small configuration; every call reads current state
(keys through StoreKeySource, revocations from the shared database), so several daemons behind
a load balancer agree. The daemon passes its own signer lookup (policy-checked, briefly cached);
the issuer over a signer is built once and reused until the signer changes (rotation).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from trustsvc.algorithms.signer import Signer
from trustsvc.errors import InvalidInput
from trustsvc.keys.base import KeyStore, parse_key_ref
from trustsvc.store.database import Database, Transaction
from trustsvc.token.algs import AlgPolicy
from trustsvc.token.identity import LegalPerson, NaturalPerson, Privacy
from trustsvc.token.issuer import TokenIssuer
from trustsvc.token.keyset import kid_for
from trustsvc.token.local import DEFAULT_KEY, StoreKeySource, ensure_key
from trustsvc.token.revocation import RevocationStore
from trustsvc.token.trust import IssuerConfig
from trustsvc.token.verifier import TokenVerifier, TrustedIssuer, VerifiedToken, introspect


@dataclass(frozen=True)
class TokenConfig:
    """What a deployment chooses (see docs/tokens.md)."""

    issuer: str = "trustsvc"
    key: str = DEFAULT_KEY
    extra_keys: tuple[str, ...] = ()  # other keys that may issue tokens (published in the JWKS too)
    key_spec: str = "sm2"  # used when the key is created on first use
    kid_style: str = "thumbprint"
    ttl: int = 900
    audience: str | None = None  # required audience on verification (None: not checked)
    leeway: int = 60
    algorithms: tuple[str, ...] = ("SM2", "ES256", "EdDSA", "RS256")  # our own tokens
    sm2_aliases: tuple[str, ...] | None = None
    privacy: Privacy = field(default_factory=Privacy)
    trusted: tuple[IssuerConfig, ...] = ()
    keys_ttl: float = 60.0  # our key set is reloaded at least this often (seconds)

    @classmethod
    def from_dict(cls, obj: Mapping[str, Any], *, hmac_key: bytes = b"") -> TokenConfig:
        """From a JSON-like mapping; the HMAC key for privacy mode ``hash`` comes separately."""
        privacy = Privacy(str(obj.get("privacy", "mask")), hmac_key)
        aliases = obj.get("sm2_aliases")
        return cls(issuer=str(obj.get("issuer", cls.issuer)), key=str(obj.get("key", cls.key)),
                   extra_keys=tuple(str(k) for k in obj.get("extra_keys", ())),
                   key_spec=str(obj.get("key_spec", cls.key_spec)),
                   kid_style=str(obj.get("kid_style", cls.kid_style)), ttl=int(obj.get("ttl", cls.ttl)),
                   audience=obj.get("audience"), leeway=int(obj.get("leeway", cls.leeway)),
                   algorithms=tuple(obj.get("algorithms", cls.algorithms)),
                   sm2_aliases=tuple(aliases) if aliases is not None else None, privacy=privacy,
                   trusted=tuple(IssuerConfig.from_dict(e) for e in obj.get("issuers", [])),
                   keys_ttl=float(obj.get("keys_ttl", cls.keys_ttl)))

    @property
    def key_names(self) -> tuple[str, ...]:
        """Every key that may issue tokens: ``key``, then ``extra_keys``."""
        return (self.key, *(k for k in self.extra_keys if k != self.key))


@dataclass(frozen=True)
class IssuedToken:
    """A signed token with the claims it carries and the key version that signed it."""

    token: str
    claims: dict[str, Any]
    key_ref: str


class TokenService:
    """Issue, verify, introspect, revoke and publish keys for one deployment.

    ``signers(name)`` returns the Signer for a key name; by default the active version from the
    key store (the store is asked which version is active on every issue). ``create_key`` makes
    the configured key on first use when the store has none.
    """

    def __init__(self, keystore: KeyStore, db: Database, config: TokenConfig | None = None, *,
                 signers: Callable[[str], Signer] | None = None, create_key: bool = True) -> None:
        self.config = config or TokenConfig()
        self.keystore = keystore
        self.revocations = RevocationStore(db)
        if create_key:
            ensure_key(keystore, self.config.key, self.config.key_spec)
        self.keys = StoreKeySource(keystore, self.config.key_names, kid_style=self.config.kid_style,
                                   ttl=self.config.keys_ttl)
        policy = AlgPolicy.of(self.config.algorithms, self.config.sm2_aliases)
        own = TrustedIssuer(self.config.issuer, self.keys, policy)
        self._trusted = [own, *(t.trusted(self.config.sm2_aliases) for t in self.config.trusted)]
        self.verifier = self._verifier(self.config.audience)
        self._signers = signers or self._active_signer
        self._store_signers: dict[str, Signer] = {}
        self._issuers: dict[str, TokenIssuer] = {}
        self._lock = threading.Lock()

    def _verifier(self, audience: str | None, *, any_audience: bool = False) -> TokenVerifier:
        return TokenVerifier(self._trusted, audience=audience, any_audience=any_audience,
                             leeway=self.config.leeway, revocation=self.revocations)

    def _active_signer(self, name: str) -> Signer:
        info = self.keystore.info(name)
        signer = self._store_signers.get(name)
        if signer is None or signer.key_ref != info.ref:
            signer = self.keystore.signer(name, info.version)
            with self._lock:
                self._store_signers[name] = signer
        return signer

    def issuer(self, key: str | None = None) -> TokenIssuer:
        """The issuer over ``key`` (default the configured key), rebuilt when its signer changes.

        Only a key in ``config.key_names`` may issue: a token from any other key would carry a kid
        that the published key set lacks, so nobody could verify it (InvalidInput NOT_A_TOKEN_KEY)."""
        name = key or self.config.key
        if parse_key_ref(name)[0] not in self.config.key_names:
            raise InvalidInput(f"key {name!r} does not issue tokens here (token keys: "
                               f"{', '.join(self.config.key_names)}); its kid would not be in the JWKS",
                               reason="NOT_A_TOKEN_KEY")
        signer = self._signers(name)
        issuer = self._issuers.get(name)
        if issuer is None or issuer.signer is not signer:
            issuer = self._issuer_for(name, signer)
            with self._lock:
                if len(self._issuers) >= 64:
                    self._issuers.clear()
                self._issuers[name] = issuer
        return issuer

    def _issuer_for(self, name: str, signer: Signer) -> TokenIssuer:
        ref_name, version = parse_key_ref(signer.key_ref.partition(":")[2]) if signer.key_ref else (name, None)
        kid = kid_for(signer.public_key, ref_name, version, style=self.config.kid_style)
        return TokenIssuer(signer, self.config.issuer, kid=kid, ttl=self.config.ttl, privacy=self.config.privacy)

    def mint(self, sub: str, claims: Mapping[str, Any] | None = None, *, aud: str | Sequence[str] | None = None,
             ttl: int | None = None, key: str | None = None, person: NaturalPerson | LegalPerson | None = None,
             acr: str | None = None, amr: Sequence[str] | None = None) -> IssuedToken:
        """A signed token and its claims (``jti``, ``exp`` ... for receipts and audit records)."""
        issuer = self.issuer(key)
        full = issuer.claims(sub, claims, aud=aud, ttl=ttl, person=person, acr=acr, amr=amr)
        return IssuedToken(issuer.sign_claims(full), full, issuer.signer.key_ref)

    def issue(self, sub: str, claims: Mapping[str, Any] | None = None, *, aud: str | Sequence[str] | None = None,
              ttl: int | None = None, person: NaturalPerson | LegalPerson | None = None,
              acr: str | None = None, amr: Sequence[str] | None = None) -> str:
        return self.mint(sub, claims, aud=aud, ttl=ttl, person=person, acr=acr, amr=amr).token

    def verify(self, token: str | bytes, *, audience: str | None = None, any_audience: bool = False) -> VerifiedToken:
        """Verify for ``audience``, else the configured one; with neither a token naming an audience is
        refused (AUDIENCE_NOT_GIVEN) unless ``any_audience`` (the caller is the issuer, e.g. revoking)."""
        if audience or any_audience:
            return self._verifier(audience, any_audience=any_audience).verify(token)
        return self.verifier.verify(token)

    def introspect(self, token: str | bytes, *, audience: str | None = None) -> dict[str, Any]:
        """RFC 7662: for ``audience`` when given, else for any (the claims include ``aud``)."""
        return introspect(self._verifier(audience, any_audience=not audience), token)

    def revoke_jti(self, jti: str, *, iss: str | None = None, expires_at: int | None = None,
                   reason: str = "", tx: Transaction | None = None) -> None:
        """Revoke one token of ``iss`` (default ours); in ``tx`` when given (an audited change)."""
        self.revocations.revoke_jti(iss or self.config.issuer, jti, expires_at=expires_at, reason=reason, tx=tx)

    def revoke_subject(self, sub: str, before: int | None = None, *, iss: str | None = None,
                       reason: str = "") -> int:
        return self.revocations.revoke_subject(iss or self.config.issuer, sub, before, reason=reason)

    def jwks(self) -> dict[str, Any]:
        return self.keys.jwks()
