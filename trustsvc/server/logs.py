"""Structured JSON logs on stderr. Callers pass fields; keys, PINs and tokens are never logged."""

from __future__ import annotations

import datetime as dt
import json
import logging
import sys
from typing import Any

_REDACT = ("token", "pin", "passphrase", "password", "private", "secret")
LOGGER = logging.getLogger("trustsvc.server")


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {"time": dt.datetime.fromtimestamp(record.created, dt.UTC).isoformat(),
                               "level": record.levelname, "msg": record.getMessage()}
        for key, value in getattr(record, "fields", {}).items():
            out[key] = "[redacted]" if any(w in key.lower() for w in _REDACT) else value
        if record.exc_info:
            out["exc"] = self.formatException(record.exc_info)
        return json.dumps(out, ensure_ascii=False, default=str)


def setup(level: str = "INFO") -> None:
    if any(isinstance(h.formatter, JsonFormatter) for h in LOGGER.handlers):
        return
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter())
    LOGGER.addHandler(handler)
    LOGGER.setLevel(level)
    LOGGER.propagate = False


def log(level: int, msg: str, **fields: Any) -> None:
    LOGGER.log(level, msg, extra={"fields": fields})
