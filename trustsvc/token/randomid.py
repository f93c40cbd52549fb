"""Random token identifiers (jti) from the OS CSPRNG, fetched in blocks: one system call per ~256 ids."""

from __future__ import annotations

import base64
import os
import threading

BLOCK = 4096


class RandomPool:
    """Bytes from ``os.urandom`` handed out once each; a forked child starts with an empty pool."""

    def __init__(self, block: int = BLOCK) -> None:
        self._block = block
        self._lock = threading.Lock()
        self._buf = b""
        self._pos = 0
        os.register_at_fork(after_in_child=self._reset)

    def _reset(self) -> None:
        self._lock = threading.Lock()
        self._buf, self._pos = b"", 0

    def take(self, n: int) -> bytes:
        with self._lock:
            if self._pos + n > len(self._buf):
                self._buf, self._pos = os.urandom(max(self._block, n)), 0
            out = self._buf[self._pos:self._pos + n]
            self._pos += n
            return out


_POOL = RandomPool()


def token_id(nbytes: int = 16) -> str:
    """Like ``secrets.token_urlsafe(nbytes)``: base64url of ``nbytes`` random bytes, no padding; never
    starting with "-" (one id in 64 would), so that ``trustsvc token revoke --jti ID`` takes it as a value
    rather than an option. Drawn again rather than altered, so the ids stay uniform over what remains."""
    while True:
        out = base64.urlsafe_b64encode(_POOL.take(nbytes)).rstrip(b"=").decode("ascii")
        if not out.startswith("-"):
            return out
