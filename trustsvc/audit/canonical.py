"""Canonical JSON for audit records: sorted keys, no spaces, UTF-8, non-ASCII kept as is.

The definition is the standard library's ``json.dumps(sort_keys=True, separators=(",", ":"),
ensure_ascii=False)``. For values made only of exact ``str``, ``int``, ``bool``, ``None``, ``dict``
(str keys), ``list`` and ``tuple`` orjson writes the same bytes about ten times faster, so it is
used for those; anything else (floats, subclasses, huge ints) takes the standard library path.
"""

from __future__ import annotations

import json
from typing import Any

try:
    import orjson
except ImportError:  # pragma: no cover - orjson is a dependency; the stdlib path is the definition
    orjson = None  # type: ignore[assignment]

_SCALARS = frozenset({str, int, bool, type(None)})
MAX_DEPTH = 64


def _plain(obj: Any, depth: int = 0) -> bool:
    """True when orjson's output for ``obj`` is byte-identical to the standard library's."""
    kind = type(obj)
    if kind in _SCALARS:
        return True
    if depth >= MAX_DEPTH:
        return False
    if kind is dict:
        for key, value in obj.items():
            if type(key) is not str or (type(value) not in _SCALARS and not _plain(value, depth + 1)):
                return False
        return True
    if kind is list or kind is tuple:
        for value in obj:
            if type(value) not in _SCALARS and not _plain(value, depth + 1):
                return False
        return True
    return False


def canonical_json_stdlib(obj: Any) -> bytes:
    """The reference encoding."""
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def canonical_json(obj: Any) -> bytes:
    """Sorted keys, no spaces, UTF-8: the bytes that are hashed and signed."""
    if orjson is not None and _plain(obj):
        try:
            return orjson.dumps(obj, option=orjson.OPT_SORT_KEYS)
        except TypeError:  # an int beyond 64 bits, a lone surrogate: the reference decides
            pass
    return canonical_json_stdlib(obj)
