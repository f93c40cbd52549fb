"""Structured JSON logs on stderr. Callers pass fields; keys, PINs and tokens are never logged.

Field names containing a sensitive word are redacted whatever their value. Records are built
without a caller lookup (the JSON line has no source location), and INFO lines are written in
batches (at least every ``FLUSH_S`` seconds, at once for WARNING and above, and at exit), so the
access line per RPC costs no system call of its own.
"""

from __future__ import annotations

import atexit
import collections
import datetime as dt
import json
import logging
import sys
import threading
import time
from typing import IO, Any

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


FLUSH_S = 0.2
MAX_BUFFERED = 256


class BatchingStreamHandler(logging.Handler):
    """Formats each record at once and writes lines in batches from a background flusher."""

    def __init__(self, stream: IO[str] | None = None, *, flush_s: float = FLUSH_S) -> None:
        super().__init__()
        self.stream = stream or sys.stderr
        self._lines: collections.deque[str] = collections.deque()  # append/popleft are atomic
        self._wake = threading.Event()
        self._closed = False
        self._flusher = threading.Thread(target=self._run, args=(flush_s,), name="trustsvc-log-flush", daemon=True)
        self._flusher.start()
        atexit.register(self.flush)

    def emit(self, record: logging.LogRecord) -> None:
        try:
            line = self.format(record)
        except Exception:  # noqa: BLE001 - logging must not fail the caller
            self.handleError(record)
            return
        self.write_line(line, urgent=record.levelno >= logging.WARNING)

    def write_line(self, line: str, *, urgent: bool = False) -> None:
        """Queue one formatted line (no lock, no system call unless ``urgent`` or the queue is long)."""
        self._lines.append(line)
        if urgent or len(self._lines) >= MAX_BUFFERED:
            self.flush()

    def flush(self) -> None:
        with self.lock:  # type: ignore[union-attr]
            lines = []
            try:
                while True:
                    lines.append(self._lines.popleft())
            except IndexError:
                pass
            if lines:
                try:
                    self.stream.write("\n".join(lines) + "\n")
                    self.stream.flush()
                except (OSError, ValueError):  # a closed or broken stream: drop, never raise into an RPC
                    pass

    def _run(self, flush_s: float) -> None:
        while not self._closed:
            self._wake.wait(flush_s)
            self.flush()

    def close(self) -> None:
        self._closed = True
        self._wake.set()
        self.flush()
        super().close()


def setup(level: str = "INFO") -> None:
    if any(isinstance(h.formatter, JsonFormatter) for h in LOGGER.handlers):
        return
    handler = BatchingStreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter())
    LOGGER.addHandler(handler)
    LOGGER.setLevel(level)
    LOGGER.propagate = False


def log(level: int, msg: str, **fields: Any) -> None:
    if LOGGER.isEnabledFor(level):
        LOGGER.handle(LOGGER.makeRecord(LOGGER.name, level, "", 0, msg, (), None, extra={"fields": fields}))


def access_log(method: str, code: str, seconds: float, client: str | None, request_id: str | None) -> None:
    """The one INFO line per RPC: the same JSON as ``log``, queued straight to batching handlers."""
    if not LOGGER.isEnabledFor(logging.INFO):
        return
    fields = {"method": method, "code": code, "ms": round(seconds * 1000, 3), "client": client,
              "request_id": request_id}
    line = ""
    for handler in LOGGER.handlers:
        if type(handler) is BatchingStreamHandler and handler.level <= logging.INFO and not handler.filters:
            if not line:
                now = dt.datetime.fromtimestamp(time.time(), dt.UTC).isoformat()
                line = _dumps({"time": now, "level": "INFO", "msg": "rpc", **fields})
            handler.write_line(line)
        else:
            handler.handle(LOGGER.makeRecord(LOGGER.name, logging.INFO, "", 0, "rpc", (), None,
                                             extra={"fields": fields}))
