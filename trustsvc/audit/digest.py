"""SM3 for audit records and document hashes (trustsvc.algorithms.sm3, hashlib's OpenSSL SM3 when present)."""

from __future__ import annotations

from trustsvc.algorithms.sm3 import sm3

__all__ = ["sm3", "sm3_hex"]


def sm3_hex(data: bytes) -> str:
    """SM3 of ``data`` as lower-case hex."""
    return sm3(data).hex()
