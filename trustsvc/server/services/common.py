"""Helpers shared by the services: generated modules, receipts, verification results, field checks."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable, Iterator
from typing import TYPE_CHECKING, Any

from google.protobuf import timestamp_pb2
from google.rpc import status_pb2

from trustsvc import codegen
from trustsvc.audit import AuditRecord
from trustsvc.errors import InvalidInput, TrustsvcError
from trustsvc.server import context as ctx
from trustsvc.server.errors import status_for
from trustsvc.server.idempotency import request_hash

if TYPE_CHECKING:
    from trustsvc.server.runtime import Runtime

common_pb2, _ = codegen.load("common")


def once(rt: Runtime, idem_key: str, request: Any, response_type: type, produce: Callable[[], Any],
         *extra: bytes) -> Any:
    """``produce()`` at most once per (caller, idempotency key); a retry of the same request gets the
    stored reply. ``request`` (and ``extra`` bytes) identify the request; no key: just ``produce()``."""
    if not idem_key:
        return produce()
    call = ctx.current()
    req_hash = request_hash(call.operation, request.SerializeToString(deterministic=True), *extra)
    return rt.idempotency.run(call.client, idem_key, call.operation, req_hash, response_type, produce)


def receipt(rec: AuditRecord) -> Any:
    return common_pb2.AuditReceipt(seq=rec.seq, record_hash=rec.hash, request_id=rec.request_id)


def require(value: Any, field: str) -> Any:
    if not value:
        raise InvalidInput(f"{field} is required", reason="MISSING_FIELD")
    return value


def first_part(request_iterator: Iterator[Any], part: str) -> Any:
    """The ``part`` a client stream must open with (its init, options or CMS); else STREAM_INIT_MISSING."""
    first = next(request_iterator, None)
    if first is None or first.WhichOneof("part") != part:
        raise InvalidInput(f"the first stream message must be `{part}`", reason="STREAM_INIT_MISSING")
    return getattr(first, part)


MAX_TEXT = 1024  # a free-text field (a reason, a propertyInfo, a token id) kept in records and signatures


def bounded(value: str, field: str, limit: int = MAX_TEXT) -> str:
    """``value`` when at most ``limit`` characters, else InvalidInput FIELD_TOO_LONG (it would be stored for good)."""
    if len(value) > limit:
        raise InvalidInput(f"{field} is {len(value)} characters; at most {limit}", reason="FIELD_TOO_LONG")
    return value


def result(valid: bool, reason: str = "", message: str = "", checks: Iterable[tuple[str, bool, str, str]] = ()) -> Any:
    return common_pb2.VerificationResult(
        valid=valid, reason="" if valid else (reason or "INVALID"), message=message,
        checks=[common_pb2.Check(name=n, passed=p, reason=r, detail=d) for n, p, r, d in checks])


def when(value: timestamp_pb2.Timestamp, field: str) -> dt.datetime:
    """A request's Timestamp as an aware datetime; one outside 0001..9999 or with bad nanos is refused."""
    try:
        return value.ToDatetime(tzinfo=dt.UTC)
    except (ValueError, OverflowError) as exc:
        raise InvalidInput(f"{field} is not a valid time: {exc}", reason="BAD_TIMESTAMP") from None


def ts(value: dt.datetime | None) -> timestamp_pb2.Timestamp | None:
    if value is None:
        return None
    out = timestamp_pb2.Timestamp()
    out.FromDatetime(value if value.tzinfo else value.replace(tzinfo=dt.UTC))
    return out


def item_error(exc: TrustsvcError) -> status_pb2.Status:
    return status_for(exc)
