"""SM3 for audit records and document hashes: hashlib's OpenSSL SM3 when present (copied from an
empty hash: under half the per-call cost of the ``cryptography`` Hash object), else
trustsvc.algorithms.sm3. Same digest."""

from __future__ import annotations

import hashlib
from collections.abc import Callable

from trustsvc.algorithms.sm3 import sm3 as _sm3_crypto


def _pick() -> Callable[[bytes], bytes]:
    try:
        empty = hashlib.new("sm3", b"")
    except ValueError:
        return _sm3_crypto

    def sm3(data: bytes) -> bytes:
        h = empty.copy()  # a copy skips looking the algorithm up by name (about half the cost of new())
        h.update(data)
        return h.digest()

    return sm3 if sm3(b"abc") == _sm3_crypto(b"abc") else _sm3_crypto


sm3 = _pick()


def sm3_hex(data: bytes) -> str:
    """SM3 of ``data`` as lower-case hex."""
    return sm3(data).hex()
