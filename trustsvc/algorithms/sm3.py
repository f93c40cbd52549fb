"""SM3 (GB/T 32905-2016) through OpenSSL via ``cryptography``."""

from __future__ import annotations

from cryptography.hazmat.primitives import hashes, hmac

DIGEST_SIZE = 32


def sm3(data: bytes) -> bytes:
    """Return SM3(data)."""
    h = hashes.Hash(hashes.SM3())
    h.update(data)
    return h.finalize()


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
