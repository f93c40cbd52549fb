"""Structured JSON logs on stderr. Callers pass fields; keys, PINs and tokens are never logged.

Field names containing a sensitive word are redacted whatever their value. Records are built
without a caller lookup (the JSON line has no source location), so an access line per RPC is cheap.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import sys
from typing import Any

try:
    import orjson
except ImportError:  # pragma: no cover - orjson is a dependency; the stdlib path gives the same JSON
    orjson = None  # type: ignore[assignment]

_REDACT = ("token", "pin", "passphrase", "password", "private", "secret")
LOGGER = logging.getLogger("trustsvc.server")
_SENSITIVE: dict[str, bool] = {}


def sensitive(key: str) -> bool:
    """True when a field name says it holds a secret (decided once per name)."""
    found = _SENSITIVE.get(key)
    if found is None:
        found = any(w in key.lower() for w in _REDACT)
        if len(_SENSITIVE) < 4096:
            _SENSITIVE[key] = found
    return found


def _dumps(out: dict[str, Any]) -> str:
    if orjson is not None:
        try:
            return orjson.dumps(out, default=str).decode()
        except TypeError:  # e.g. an int beyond 64 bits, a non-str key: the stdlib handles it
            pass
    return json.dumps(out, ensure_ascii=False, default=str)


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {"time": dt.datetime.fromtimestamp(record.created, dt.UTC).isoformat(),
                               "level": record.levelname, "msg": record.getMessage()}
        for key, value in getattr(record, "fields", {}).items():
            out[key] = "[redacted]" if sensitive(key) else value
        if record.exc_info:
            out["exc"] = self.formatException(record.exc_info)
        return _dumps(out)


def setup(level: str = "INFO") -> None:
    if any(isinstance(h.formatter, JsonFormatter) for h in LOGGER.handlers):
        return
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter())
    LOGGER.addHandler(handler)
    LOGGER.setLevel(level)
    LOGGER.propagate = False


def log(level: int, msg: str, **fields: Any) -> None:
    if LOGGER.isEnabledFor(level):
        LOGGER.handle(LOGGER.makeRecord(LOGGER.name, level, "", 0, msg, (), None, extra={"fields": fields}))


def access_log(method: str, code: str, seconds: float, client: str | None, request_id: str | None) -> None:
    """The one INFO line per RPC."""
    if LOGGER.isEnabledFor(logging.INFO):
        log(logging.INFO, "rpc", method=method, code=code, ms=round(seconds * 1000, 3), client=client,
            request_id=request_id)
