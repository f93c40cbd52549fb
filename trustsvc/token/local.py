"""Our own issuer over a key store: the signing key and the key set that verifies its tokens."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

from trustsvc.errors import KeyNotFound
from trustsvc.keys.base import KeyStore
from trustsvc.token.identity import Privacy
from trustsvc.token.issuer import TokenIssuer
from trustsvc.token.keyset import KeySet, VerificationKey, kid_for

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


class StoreKeySource:
    """Our key set, reloaded from the key store every ``ttl`` seconds and on an unknown kid (at most
    once per ``min_refresh`` seconds), so a daemon picks up rotations and retirements without restart."""

    def __init__(self, store: KeyStore, names: tuple[str, ...] = (DEFAULT_KEY,), *, kid_style: str = "thumbprint",
                 ttl: float = 60.0, min_refresh: float = 5.0, clock: Callable[[], float] = time.monotonic) -> None:
        self._store, self._names, self._kid_style = store, names, kid_style
        self.ttl, self.min_refresh, self._clock = ttl, min_refresh, clock
        self._lock = threading.Lock()
        self._keys = keyset_from_keystore(store, names, kid_style=kid_style)
        self._loaded_at = clock()

    def _reload(self, now: float) -> None:
        self._keys = keyset_from_keystore(self._store, self._names, kid_style=self._kid_style)
        self._loaded_at = now

    def get(self, kid: str) -> VerificationKey | None:
        with self._lock:
            now = self._clock()
            if now - self._loaded_at >= self.ttl:
                self._reload(now)
            found = self._keys.get(kid)
            if found is None and now - self._loaded_at >= self.min_refresh:
                self._reload(now)
                found = self._keys.get(kid)
            return found

    def jwks(self) -> dict[str, Any]:
        with self._lock:
            return self._keys.jwks()
