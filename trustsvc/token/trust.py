"""Mutual recognition: another issuer's keys from its JWKS (a file or an https URL).

The document is cached for ``ttl`` seconds and size-bounded; an unknown kid triggers at most
one refetch per ``min_refresh`` seconds, so a flood of forged kids cannot hammer the issuer.
If a refresh fails the last good key set stays in use; while one caller refreshes a stale set, the
others verify with it rather than wait. With no set yet, a failed fetch is retried at most once per
``min_refresh`` (tokens of an unreachable issuer fail at once, not after a network time-out each).
"""

from __future__ import annotations

import ipaddress
import threading
import time
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from trustsvc.token import errors as E
from trustsvc.token.algs import AlgPolicy
from trustsvc.token.codec import loads_object
from trustsvc.token.errors import TokenConfigError, TokenInvalid
from trustsvc.token.keyset import KeySet, VerificationKey
from trustsvc.token.verifier import TrustedIssuer

MAX_JWKS_BYTES = 64 * 1024


def _loopback(host: str | None) -> bool:
    if host in ("localhost",):
        return True
    try:
        return ipaddress.ip_address(host or "").is_loopback
    except ValueError:
        return False


def _fetchable(url: str) -> bool:
    """An https URL, or http on loopback only: where keys that decide whom we trust may come from."""
    parsed = urllib.parse.urlsplit(url)
    return parsed.scheme == "https" or (parsed.scheme == "http" and _loopback(parsed.hostname))


class _SameRulesRedirects(urllib.request.HTTPRedirectHandler):
    """Follows a redirect only to a URL the source itself could have been (no https -> http downgrade)."""

    def redirect_request(self, req: urllib.request.Request, fp: Any, code: int, msg: str, headers: Any,
                         newurl: str) -> urllib.request.Request | None:
        if not _fetchable(newurl):
            raise OSError(f"JWKS redirect to {newurl[:200]!r} refused: not https")
        return super().redirect_request(req, fp, code, msg, headers, newurl)


_OPENER = urllib.request.build_opener(_SameRulesRedirects)


class RemoteJwks:
    """A cached JWKS from ``source``: a path, ``file://``, ``https://`` (or ``http://`` on loopback only).
    A redirect is followed only to a URL of the same kind."""

    def __init__(self, source: str, *, ttl: float = 300.0, min_refresh: float = 30.0,
                 max_bytes: int = MAX_JWKS_BYTES, max_keys: int = 64, timeout: float = 5.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        parsed = urllib.parse.urlsplit(source)
        if _fetchable(source):
            self._url: str | None = source
            self._path: Path | None = None
        elif parsed.scheme in ("", "file"):
            self._url, self._path = None, Path(parsed.path if parsed.scheme == "file" else source)
        else:
            raise TokenConfigError(f"JWKS source must be a file or an https URL: {source}", reason="BAD_JWKS_SOURCE")
        self.source = source
        self.ttl, self.min_refresh = ttl, min_refresh
        self.max_bytes, self.max_keys, self.timeout = max_bytes, max_keys, timeout
        self._clock = clock
        self._fetch_lock = threading.Lock()  # one fetch at a time; readers of a set in hand never take it
        self._keys: KeySet | None = None
        self._fetched_at = float("-inf")
        self._attempted_at = float("-inf")
        self.fetches = 0

    def _read(self) -> bytes:
        if self._path is not None:
            with self._path.open("rb") as fh:
                data = fh.read(self.max_bytes + 1)
        else:
            assert self._url is not None
            request = urllib.request.Request(self._url, headers={"Accept": "application/json"})
            with _OPENER.open(request, timeout=self.timeout) as resp:  # scheme checked, redirects too
                data = resp.read(self.max_bytes + 1)
        if len(data) > self.max_bytes:
            raise TokenInvalid(f"JWKS larger than {self.max_bytes} bytes", reason=E.JWKS_UNAVAILABLE)
        return data

    def _refresh(self) -> None:
        """Fetch the document (the caller holds ``_fetch_lock``); on failure keep the last good set, or raise
        JWKS_UNAVAILABLE when there is none."""
        self._attempted_at = self._clock()
        self.fetches += 1
        try:
            document = loads_object(self._read(), "JWKS")
            keys = KeySet.from_jwks(document, max_keys=self.max_keys)
        except (OSError, ValueError, TokenInvalid):
            if self._keys is None:
                raise TokenInvalid(f"JWKS of {self.source} unavailable", reason=E.JWKS_UNAVAILABLE) from None
            return  # keep the last good set
        self._keys, self._fetched_at = keys, self._clock()

    def get(self, kid: str) -> VerificationKey | None:
        keys = self._current()
        found = keys.get(kid)
        if found is None:  # perhaps a key rotated in since the last fetch
            found = self._after_unknown_kid(keys).get(kid)
        return found

    def _current(self) -> KeySet:
        """The key set to use now. A stale set is refreshed by one caller while the others go on with it
        (nobody waits on the network then); with no set yet, callers wait for the fetch."""
        keys = self._keys
        if keys is not None and self._clock() - self._fetched_at < self.ttl:
            return keys
        if keys is not None:
            if self._fetch_lock.acquire(blocking=False):
                try:
                    if self._clock() - self._attempted_at >= min(self.min_refresh, self.ttl):
                        self._refresh()
                finally:
                    self._fetch_lock.release()
            return self._keys or keys
        with self._fetch_lock:
            if self._keys is None:
                if self._clock() - self._attempted_at < min(self.min_refresh, self.ttl):  # failed a moment ago
                    raise TokenInvalid(f"JWKS of {self.source} unavailable (retried after {self.min_refresh:g} s)",
                                       reason=E.JWKS_UNAVAILABLE)
                self._refresh()
            assert self._keys is not None
            return self._keys

    def _after_unknown_kid(self, seen: KeySet) -> KeySet:
        """The key set after at most one refetch per ``min_refresh`` (a flood of unknown kids cannot hammer
        the issuer); a set another caller fetched meanwhile counts as that refetch."""
        with self._fetch_lock:
            if self._keys is seen and self._clock() - self._attempted_at >= self.min_refresh:
                self._refresh()
            assert self._keys is not None
            return self._keys


@dataclass(frozen=True)
class IssuerConfig:
    """One entry of the mutual-recognition configuration (see docs/tokens.md)."""

    issuer: str
    jwks: str
    algorithms: tuple[str, ...] = ("SM2", "ES256")
    ttl: float = 300.0
    min_refresh: float = 30.0

    @classmethod
    def from_dict(cls, obj: dict[str, Any]) -> IssuerConfig:
        try:
            return cls(issuer=str(obj["issuer"]), jwks=str(obj["jwks"]),
                       algorithms=tuple(obj.get("algorithms", cls.algorithms)),
                       ttl=float(obj.get("ttl", 300.0)), min_refresh=float(obj.get("min_refresh", 30.0)))
        except (KeyError, TypeError, ValueError) as exc:
            raise TokenConfigError(f"bad trusted issuer entry: {exc}", reason="BAD_TRUST_CONFIG") from None

    def trusted(self, sm2_aliases: Iterable[str] | None = None) -> TrustedIssuer:
        return TrustedIssuer(self.issuer, RemoteJwks(self.jwks, ttl=self.ttl, min_refresh=self.min_refresh),
                             AlgPolicy.of(self.algorithms, sm2_aliases))
