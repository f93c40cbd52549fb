"""JWS compact serialisation (RFC 7515 §7.1): strict base64url, strict JSON, size bound.

Parsing never trusts anything: padding, non-url characters, duplicate JSON member names and
oversized input are each refused with their own reason.
"""

from __future__ import annotations

import base64
import binascii
import json
import json.encoder
import re
from dataclasses import dataclass
from typing import Any

from trustsvc.token import errors as E
from trustsvc.token.errors import TokenInvalid

MAX_TOKEN_BYTES = 16 * 1024
_B64URL = re.compile(r"[A-Za-z0-9_-]*")


def _not_json(obj: object) -> Any:
    raise TypeError(f"{type(obj).__name__} is not JSON serialisable")


try:  # orjson is about ten times faster than the stdlib encoder; same compact UTF-8 output
    import orjson as _orjson
except ImportError:  # pragma: no cover - orjson is a dependency; the stdlib path stays correct
    _orjson = None  # type: ignore[assignment]

# Else one C encoder built once (JSONEncoder.encode builds one per call): compact, UTF-8, no NaN.
_MAKE = getattr(json.encoder, "c_make_encoder", None)
_C_ENCODER = (_MAKE(None, _not_json, json.encoder.encode_basestring, None, ":", ",", False, False, False)
              if _MAKE is not None else None)
_PY_ENCODER = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False, allow_nan=False)


def b64encode(data: bytes) -> str:
    """base64url without padding."""
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def b64decode(text: str, what: str = "segment") -> bytes:
    """Strict base64url: url alphabet only, no padding, canonical trailing bits."""
    if not _B64URL.fullmatch(text) or len(text) % 4 == 1:
        raise TokenInvalid(f"{what} is not unpadded base64url", reason=E.BAD_BASE64)
    try:
        raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError):
        raise TokenInvalid(f"{what} is not base64url", reason=E.BAD_BASE64) from None
    if b64encode(raw) != text:  # non-zero unused bits: two spellings of one value
        raise TokenInvalid(f"{what} is not canonical base64url", reason=E.BAD_BASE64)
    return raw


def dumps(obj: Any) -> bytes:
    """Compact JSON, UTF-8. Callers refuse non-finite floats first (:func:`check_finite`)."""
    if _orjson is not None:
        return _orjson.dumps(obj)
    if _C_ENCODER is not None and isinstance(obj, dict):
        return "".join(_C_ENCODER(obj, 0)).encode("utf-8")
    return _PY_ENCODER.encode(obj).encode("utf-8")


def check_finite(obj: Any, depth: int = 0) -> None:
    """Raise ValueError on NaN/Infinity or nesting deeper than 32 anywhere in ``obj``."""
    if depth > 32:
        raise ValueError("JSON nested too deeply")
    if isinstance(obj, float):
        if obj != obj or obj in (float("inf"), float("-inf")):
            raise ValueError("NaN and Infinity are not JSON")
    elif isinstance(obj, dict):
        for value in obj.values():
            check_finite(value, depth + 1)
    elif isinstance(obj, (list, tuple)):
        for value in obj:
            check_finite(value, depth + 1)


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise TokenInvalid(f"duplicate JSON member {key[:40]!r}", reason=E.DUPLICATE_CLAIM)
        out[key] = value
    return out


def _no_constants(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def loads_object(raw: bytes, what: str) -> dict[str, Any]:
    """Parse a JSON object from UTF-8, refusing duplicate names, NaN/Infinity and non-objects."""
    try:
        text = raw.decode("utf-8")
        obj = json.loads(text, object_pairs_hook=_no_duplicates, parse_constant=_no_constants)
    except TokenInvalid as exc:
        raise TokenInvalid(f"{what}: {exc.message}", reason=exc.reason) from None
    except (UnicodeDecodeError, ValueError, RecursionError):
        raise TokenInvalid(f"{what} is not UTF-8 JSON", reason=E.BAD_JSON) from None
    if not isinstance(obj, dict):
        raise TokenInvalid(f"{what} is not a JSON object", reason=E.BAD_JSON)
    return obj


@dataclass(frozen=True)
class ParsedJws:
    """A JWS split and decoded, signature not yet checked."""

    header: dict[str, Any]
    payload: dict[str, Any]
    signing_input: bytes
    signature: bytes


def parse_compact(token: str | bytes, max_bytes: int = MAX_TOKEN_BYTES) -> ParsedJws:
    """Split and decode ``header.payload.signature``; raises TokenInvalid."""
    if isinstance(token, bytes):
        if len(token) > max_bytes:
            raise TokenInvalid(f"token longer than {max_bytes} bytes", reason=E.TOO_LARGE)
        try:
            token = token.decode("ascii")
        except UnicodeDecodeError:
            raise TokenInvalid("token is not ASCII", reason=E.BAD_BASE64) from None
    if not isinstance(token, str):
        raise TokenInvalid("token must be text", reason=E.MALFORMED)
    if len(token) > max_bytes:
        raise TokenInvalid(f"token longer than {max_bytes} bytes", reason=E.TOO_LARGE)
    parts = token.split(".")
    if len(parts) != 3:
        raise TokenInvalid(f"JWS compact form has 3 parts, this has {len(parts)}", reason=E.MALFORMED)
    h64, p64, s64 = parts
    if not h64:
        raise TokenInvalid("empty header", reason=E.MALFORMED)
    header = loads_object(b64decode(h64, "header"), "header")
    payload = loads_object(b64decode(p64, "payload"), "payload")
    signature = b64decode(s64, "signature")
    return ParsedJws(header, payload, f"{h64}.{p64}".encode("ascii"), signature)


def encode_compact(header_b64: str, payload: bytes, sign: Any) -> str:
    """``header_b64`` pre-encoded; ``sign(signing_input) -> JWS signature bytes``."""
    signing_input = header_b64 + "." + b64encode(payload)
    return signing_input + "." + b64encode(sign(signing_input.encode("ascii")))
