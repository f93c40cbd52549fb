"""Find audit records: by request, operation, client, key or seal, time, and by the hashes of a document.

An auditor holding a document asks "did the platform sign this, when, for whom, with which key or seal?".
Records name what was signed by hash: ``document_hash`` (SHA-256 of a PDF as received, SM3 of data, a seal
signature's digest, a token), ``detail.signed_sha256`` (the PDF as returned) and, for a batch, one hash per item
in ``detail.items``. A match says which of these it was. Reading only: the database may be opened read-only.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import json
import re
from collections.abc import Sequence
from typing import Any

from trustsvc.algorithms.sm3 import sm3
from trustsvc.audit.canonical import canonical_json
from trustsvc.audit.log import COLUMNS, AuditRecord
from trustsvc.errors import InvalidInput
from trustsvc.store.database import Database

MAX_HASHES = 256
MAX_REVISIONS = 32  # earlier PDF revisions hashed per document
_HEX = re.compile(r"[0-9a-f]{32,128}")
_EOF = re.compile(rb"%%EOF(?:\r\n|\r|\n)?")


@dataclasses.dataclass(frozen=True)
class AuditQuery:
    """What to look for; every given field must match. ``operation`` is exact, or a prefix ending in ``*``
    (``DocumentService/*``); ``seal`` is an esID: the seal's own operations (ref ``seal:ESID``) and the PDFs
    stamped with it (``detail.seal``); ``since``/``until`` bound the record time (inclusive); ``hashes`` are hex
    digests."""

    request_id: str | None = None
    operation: str | None = None
    client: str | None = None
    ref: str | None = None
    seal: str | None = None
    since: dt.datetime | None = None
    until: dt.datetime | None = None
    hashes: Sequence[str] = ()
    limit: int = 100


@dataclasses.dataclass(frozen=True)
class Match:
    """A record found, and for a hash query which of its hashes matched: ``document``, ``signed output`` or
    ``batch item <id>``."""

    record: AuditRecord
    matched: str = ""

    def to_json(self) -> dict[str, Any]:
        return {**self.record.to_json(), "matched": self.matched}


def find_records(db: Database, query: AuditQuery) -> list[Match]:
    """Records matching ``query`` in log order, at most ``query.limit``; InvalidInput for a malformed query."""
    hashes = _checked_hashes(query.hashes)
    if query.limit < 1:
        raise InvalidInput("limit must be at least 1", reason="BAD_LIMIT")
    where: list[str] = []
    params: list[object] = []
    for column, text in (("request_id", query.request_id), ("client", query.client), ("ref", query.ref)):
        if text is not None:
            where.append(f"{column} = ?")
            params.append(text)
    if query.operation is not None:
        if query.operation.endswith("*"):
            where.append("substr(operation, 1, ?) = ?")
            params += [len(query.operation) - 1, query.operation[:-1]]
        else:
            where.append("operation = ?")
            params.append(query.operation)
    if query.seal is not None:  # the detail is canonical JSON: "seal":"ESID" as the record holds it
        where.append("(ref = ? OR detail LIKE ?)")
        params += [f"seal:{query.seal}", "%" + canonical_json({"seal": query.seal}).decode()[1:-1] + "%"]
    for op, bound in ((">=", query.since), ("<=", query.until)):
        if bound is not None:
            where.append(f"time {op} ?")
            params.append(_record_time(bound))
    if hashes:  # the detail is canonical JSON: a hash it names appears there as text
        alternatives = ["document_hash IN (" + ", ".join("?" * len(hashes)) + ")"]
        alternatives += ["detail LIKE ?"] * len(hashes)
        where.append("(" + " OR ".join(alternatives) + ")")
        params += [*hashes, *(f"%{h}%" for h in hashes)]
    sql = "SELECT " + ", ".join(COLUMNS) + " FROM audit_log"
    if where:
        sql += " WHERE " + " AND ".join(where)
    matches: list[Match] = []
    with db.read() as tx:
        for row in tx.execute(sql + " ORDER BY seq", params).fetchall():
            record = AuditRecord(*row)
            matched = _matched(record, hashes) if hashes else ""
            if matched is not None and (query.seal is None or _names_seal(record, query.seal)):
                matches.append(Match(record, matched))
                if len(matches) >= query.limit:
                    break
    return matches


def document_hashes(data: bytes) -> dict[str, str]:
    """Hex digest -> what it is a digest of, for every way a record may name ``data``: SHA-256 and SM3 of the
    whole, and for a PDF of each earlier revision (the bytes a signer received, before its incremental update
    was appended), up to MAX_REVISIONS."""
    ends = [m.end() for m in _EOF.finditer(data) if m.end() < len(data)][-MAX_REVISIONS:]
    found = {}
    for end in ends:
        found[hashlib.sha256(data[:end]).hexdigest()] = f"SHA-256 of the revision in bytes 0..{end}"
        found[sm3(data[:end]).hex()] = f"SM3 of the revision in bytes 0..{end}"
    found[hashlib.sha256(data).hexdigest()] = "SHA-256 of the file"
    found[sm3(data).hex()] = "SM3 of the file"
    return found


def _checked_hashes(hashes: Sequence[str]) -> list[str]:
    if len(hashes) > MAX_HASHES:
        raise InvalidInput(f"at most {MAX_HASHES} hashes per query", reason="BAD_HASH")
    out = []
    for h in hashes:
        value = h.strip().lower()
        if not _HEX.fullmatch(value):
            raise InvalidInput(f"{h!r} is not a hex digest (32 to 128 hex digits)", reason="BAD_HASH")
        out.append(value)
    return out


def _record_time(value: dt.datetime) -> str:
    """A bound in the records' own time format (UTC ISO 8601 with microseconds), so text order is time order."""
    aware = value if value.tzinfo else value.replace(tzinfo=dt.UTC)
    return aware.astimezone(dt.UTC).isoformat(timespec="microseconds")


def _detail(record: AuditRecord) -> dict[str, Any]:
    try:
        detail = json.loads(record.detail)
    except ValueError:
        return {}
    return detail if isinstance(detail, dict) else {}


def _names_seal(record: AuditRecord, es_id: str) -> bool:
    """The record is about seal ``es_id``, not merely mentioning it in a message."""
    return record.ref == f"seal:{es_id}" or _detail(record).get("seal") == es_id


def _matched(record: AuditRecord, hashes: Sequence[str]) -> str | None:
    """Which of the record's hashes is one of ``hashes``, the output first (a signed PDF's earlier revision is the
    record's input too); None when only unrelated detail text contained one."""
    detail = _detail(record)
    if str(detail.get("signed_sha256", "")).lower() in hashes:
        return "signed output"
    if record.document_hash.lower() in hashes:
        return "document"
    for item in detail.get("items") or []:
        if isinstance(item, list) and len(item) >= 2 and str(item[1]).lower() in hashes:
            return f"batch item {item[0]}"
    return None
