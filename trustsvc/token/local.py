"""Our own issuer over a key store: the signing key and the key set that verifies its tokens."""

from __future__ import annotations

from trustsvc.errors import KeyNotFound
from trustsvc.keys.base import KeyStore
from trustsvc.token.identity import Privacy
from trustsvc.token.issuer import TokenIssuer
from trustsvc.token.keyset import KeySet, kid_for

DEFAULT_KEY = "token-issuer"


def ensure_key(store: KeyStore, name: str = DEFAULT_KEY, spec: str = "sm2") -> None:
    """Create ``name`` (version 1, ``spec``) if the store has no such key."""
    try:
        store.info(name)
    except KeyNotFound:
        store.create(name, spec)


def issuer_from_keystore(store: KeyStore, issuer: str, name: str = DEFAULT_KEY, *, kid_style: str = "thumbprint",
                         ttl: int = 900, audience: str | None = None, privacy: Privacy | None = None) -> TokenIssuer:
    """A TokenIssuer signing with the active version of ``name``."""
    info = store.info(name)
    signer = store.signer(name, info.version)
    kid = kid_for(info.public_key, info.name, info.version, style=kid_style)
    return TokenIssuer(signer, issuer, kid=kid, ttl=ttl, audience=audience, privacy=privacy)


def keyset_from_keystore(store: KeyStore, names: tuple[str, ...] = (DEFAULT_KEY,), *,
                         kid_style: str = "thumbprint") -> KeySet:
    """Active and passive versions of ``names``: what verifies our tokens and what the JWKS lists."""
    return KeySet.from_keystore(store, names, kid_style=kid_style)
