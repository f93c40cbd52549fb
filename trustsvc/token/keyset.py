"""A set of verification keys by ``kid``: ours from a key store, or another issuer's JWKS.

Active and passive key versions verify; disabled ones are left out, so retiring a key is
disabling it. The JWKS document lists the same keys, so relying parties can rotate with us.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from trustsvc.algorithms.keypair import PublicKey
from trustsvc.keys.base import KeyInfo, KeyState, KeyStore
from trustsvc.token import algs, jwk
from trustsvc.token import errors as E
from trustsvc.token.errors import TokenInvalid

KID_PATTERN = re.compile(r"[A-Za-z0-9._@:+=-]{1,128}")


def check_kid(kid: object) -> str:
    """A header kid: present, text, short and of safe characters (refuses injection strings)."""
    if kid is None:
        raise TokenInvalid("header has no kid", reason=E.MISSING_KID)
    if not isinstance(kid, str) or not KID_PATTERN.fullmatch(kid):
        raise TokenInvalid("header kid is not a plain key identifier", reason=E.BAD_KID)
    return kid


@dataclass(frozen=True)
class VerificationKey:
    kid: str
    key: PublicKey
    alg: str  # canonical JWS alg this key verifies


class KeySource(Protocol):
    """Anything that resolves a kid to a key (a KeySet, a remote JWKS)."""

    def get(self, kid: str) -> VerificationKey | None: ...


def kid_for(key: PublicKey, name: str | None = None, version: int | None = None, *, style: str = "thumbprint") -> str:
    """``thumbprint`` (RFC 7638, default) or ``ref`` (``name@version``)."""
    if style == "ref" and name is not None:
        return f"{name}@{version}"
    return jwk.thumbprint(key)


class KeySet:
    """Keys by kid, immutable once built."""

    def __init__(self, keys: Iterable[VerificationKey] = ()) -> None:
        self._keys: dict[str, VerificationKey] = {}
        for k in keys:
            self._keys[k.kid] = k

    def get(self, kid: str) -> VerificationKey | None:
        return self._keys.get(kid)

    def __iter__(self) -> Any:
        return iter(self._keys.values())

    def __len__(self) -> int:
        return len(self._keys)

    @classmethod
    def of(cls, *pairs: tuple[str, PublicKey]) -> KeySet:
        """From (kid, key) pairs; the alg is the key's default."""
        return cls(VerificationKey(kid, k, algs.jose_name(k.default_algorithm())) for kid, k in pairs)

    @classmethod
    def from_keystore(cls, store: KeyStore, names: Iterable[str], *, kid_style: str = "thumbprint") -> KeySet:
        """Active and passive versions of the named keys (disabled versions are retired)."""
        wanted = set(names)
        infos: list[KeyInfo] = [i for i in store.list() if i.name in wanted and i.state is not KeyState.DISABLED]
        return cls(VerificationKey(kid_for(i.public_key, i.name, i.version, style=kid_style), i.public_key,
                                   algs.jose_name(i.public_key.default_algorithm())) for i in infos)

    @classmethod
    def from_jwks(cls, document: Mapping[str, Any], *, max_keys: int = 64) -> KeySet:
        """From a JWKS; keys that are not usable for signatures are skipped, a bad document refused."""
        keys = document.get("keys") if isinstance(document, Mapping) else None
        if not isinstance(keys, list):
            raise TokenInvalid("JWKS has no keys array", reason=E.BAD_JWK)
        out: list[VerificationKey] = []
        for entry in keys[:max_keys]:
            if not isinstance(entry, dict) or entry.get("use", "sig") != "sig":
                continue
            try:
                kid = check_kid(entry.get("kid"))
                key = jwk.from_jwk(entry)
                default = algs.jose_name(key.default_algorithm())
            except TokenInvalid:
                continue
            except Exception:  # noqa: BLE001 - a key we cannot use is skipped, never fatal
                continue
            alg = entry.get("alg", default)
            if alg != default:
                continue
            out.append(VerificationKey(kid, key, default))
        return cls(out)

    def jwks(self) -> dict[str, Any]:
        """The public JWKS document."""
        return {"keys": [jwk.to_jwk(k.key, k.kid, k.alg) for k in self._keys.values()]}
