"""SM3 (GB/T 32905-2016) through OpenSSL: hashlib's when it has SM3 (a copy of an empty hash costs
under half of a ``cryptography`` Hash object per call), else ``cryptography``'s. Same digest."""

from __future__ import annotations

import hashlib
from collections.abc import Callable

from cryptography.hazmat.primitives import hashes, hmac

DIGEST_SIZE = 32


def sm3_cryptography(data: bytes) -> bytes:
    """SM3(data) through ``cryptography`` (the reference the hashlib path is checked against)."""
    h = hashes.Hash(hashes.SM3())
    h.update(data)
    return h.finalize()


def _pick() -> Callable[[bytes], bytes]:
    try:
        empty = hashlib.new("sm3", b"")
    except ValueError:  # an OpenSSL without SM3 for hashlib (e.g. a FIPS build)
        return sm3_cryptography

    def sm3_hashlib(data: bytes) -> bytes:
        h = empty.copy()  # a copy skips looking the algorithm up by name
        h.update(data)
        return h.digest()

    return sm3_hashlib if sm3_hashlib(b"abc") == sm3_cryptography(b"abc") else sm3_cryptography


sm3: Callable[[bytes], bytes] = _pick()
"""Return SM3(data)."""


def sm3_hex(data: bytes) -> str:
    """SM3 of ``data`` as lower-case hex (document hashes in audit records)."""
    return sm3(data).hex()


def sm3_hmac(key: bytes, data: bytes) -> bytes:
    """Return HMAC-SM3(key, data)."""
    h = hmac.HMAC(key, hashes.SM3())
    h.update(data)
    return h.finalize()


class Sm3Hasher:
    """Incremental SM3, for streams."""

    def __init__(self) -> None:
        self._h = hashes.Hash(hashes.SM3())

    def update(self, data: bytes) -> None:
        self._h.update(data)

    def digest(self) -> bytes:
        return self._h.copy().finalize()
