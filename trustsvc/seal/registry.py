"""Seal registry and lifecycle on trustsvc.store: status, holder, maker, DER, and a history of changes.

States: active, suspended, revoked (final), expired (final). Every change records who, when and why.
A seal past its validEnd reads as expired (``get``, ``query``, ``status``) whether or not ``expire_due``
has recorded it yet, and no longer takes suspend, resume or revoke.
``register`` and the lifecycle changes take ``tx=``, a transaction already open on the same database
(the daemon's audited change: the change and its audit record commit together); without it they open
their own.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Sequence

from trustsvc.errors import Conflict, InvalidInput, NotFound
from trustsvc.pki.certificate import Certificate
from trustsvc.seal.parse import parse_seal
from trustsvc.store.database import Database, Transaction

UTC = dt.UTC
STATES = ("active", "suspended", "revoked", "expired")
_TRANSITIONS = {"suspend": ({"active"}, "suspended"), "resume": ({"suspended"}, "active"),
                "revoke": ({"active", "suspended"}, "revoked"), "expire": ({"active", "suspended"}, "expired")}

MIGRATIONS = [
    """
    CREATE TABLE seal_records (
        es_id TEXT PRIMARY KEY, seal_type INTEGER NOT NULL, name TEXT NOT NULL, holder TEXT NOT NULL,
        maker TEXT NOT NULL, valid_start TEXT NOT NULL, valid_end TEXT NOT NULL, status TEXT NOT NULL,
        created_at TEXT NOT NULL, updated_at TEXT NOT NULL, der BYTEA NOT NULL);
    CREATE INDEX seal_records_holder ON seal_records (holder);
    CREATE INDEX seal_records_type_status ON seal_records (seal_type, status);
    CREATE TABLE seal_history (
        id INTEGER PRIMARY KEY, es_id TEXT NOT NULL REFERENCES seal_records (es_id), at TEXT NOT NULL,
        actor TEXT NOT NULL, action TEXT NOT NULL, from_status TEXT, to_status TEXT NOT NULL, reason TEXT NOT NULL);
    CREATE INDEX seal_history_es_id ON seal_history (es_id);
    CREATE TABLE seal_sequences (prefix TEXT PRIMARY KEY, next_value INTEGER NOT NULL)
    """,
]


@dataclasses.dataclass(frozen=True)
class SealRecord:
    es_id: str
    seal_type: int
    name: str
    holder: str
    maker: str
    valid_start: dt.datetime
    valid_end: dt.datetime
    status: str
    created_at: dt.datetime
    updated_at: dt.datetime
    der: bytes


@dataclasses.dataclass(frozen=True)
class HistoryEntry:
    es_id: str
    at: dt.datetime
    actor: str
    action: str
    from_status: str | None
    to_status: str
    reason: str


_COLUMNS = "es_id, seal_type, name, holder, maker, valid_start, valid_end, status, created_at, updated_at, der"


def _now() -> dt.datetime:
    return dt.datetime.now(UTC).replace(microsecond=0)


def _ts(t: dt.datetime) -> str:
    return t.astimezone(UTC).isoformat()


def _due_status(status: str, valid_end: dt.datetime, now: dt.datetime) -> str:
    """``status`` with expiry applied: an active or suspended seal past its validEnd is expired."""
    return "expired" if status in ("active", "suspended") and valid_end < now else status


def _in_force(record: SealRecord, now: dt.datetime) -> SealRecord:
    status = _due_status(record.status, record.valid_end, now)
    return record if status == record.status else dataclasses.replace(record, status=status)


def _record(row: tuple[object, ...]) -> SealRecord:
    es_id, seal_type, name, holder, maker, vs, ve, status, ca, ua, der = row
    return SealRecord(str(es_id), int(seal_type), str(name), str(holder), str(maker),  # type: ignore[call-overload]
                      dt.datetime.fromisoformat(str(vs)), dt.datetime.fromisoformat(str(ve)), str(status),
                      dt.datetime.fromisoformat(str(ca)), dt.datetime.fromisoformat(str(ua)), bytes(der))  # type: ignore[call-overload]


class SealRegistry:
    """The seal registry over one Database (SQLite or PostgreSQL)."""

    def __init__(self, db: Database | str) -> None:
        self.db = db if isinstance(db, Database) else Database(db)
        if self.db.dialect == "sqlite":
            migrations = [m.replace("BYTEA", "BLOB") for m in MIGRATIONS]
        else:
            migrations = [m.replace("id INTEGER PRIMARY KEY", "id BIGSERIAL PRIMARY KEY") for m in MIGRATIONS]
        self.db.migrate("seal", migrations)

    def next_es_id(self, prefix: str, width: int = 8) -> str:
        """``prefix`` + a zero-padded sequence number, unique per prefix (e.g. region+authority code)."""
        if not prefix.isascii() or not prefix.isalnum():
            raise InvalidInput("esID prefix must be ASCII letters and digits", reason="BAD_ES_ID")
        with self.db.transaction() as tx:
            row = tx.execute("SELECT next_value FROM seal_sequences WHERE prefix = ?", (prefix,)).fetchone()
            value = int(row[0]) if row else 1
            if row:
                tx.execute("UPDATE seal_sequences SET next_value = ? WHERE prefix = ?", (value + 1, prefix))
            else:
                tx.execute("INSERT INTO seal_sequences (prefix, next_value) VALUES (?, ?)", (prefix, value + 1))
        return f"{prefix}{value:0{width}d}"

    def register(self, seal_der: bytes, *, actor: str, holder: str | None = None, reason: str = "made",
                 tx: Transaction | None = None) -> SealRecord:
        """Record a newly made seal as active (in ``tx`` when given)."""
        seal = parse_seal(seal_der)
        maker = _subject(seal.maker_cert)
        if holder is None:
            holder = _subject(seal.cert_list[0]) if seal.cert_list else ""
        now = _now()
        assert seal.valid_start is not None and seal.valid_end is not None
        with self.db.within(tx) as tx:
            tx.execute(f"INSERT INTO seal_records ({_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                       (seal.es_id, seal.seal_type, seal.name, holder, maker, _ts(seal.valid_start),
                        _ts(seal.valid_end), "active", _ts(now), _ts(now), seal_der))
            self._history(tx, seal.es_id, now, actor, "make", None, "active", reason)
            return self.get(seal.es_id, tx=tx)

    def get(self, es_id: str, *, tx: Transaction | None = None) -> SealRecord:
        """The seal's record, its status with expiry applied."""
        with self.db.within(tx, read=True) as tx:
            row = tx.execute(f"SELECT {_COLUMNS} FROM seal_records WHERE es_id = ?", (es_id,)).fetchone()
        if row is None:
            raise NotFound(f"no seal with esID {es_id!r}", reason="SEAL_NOT_FOUND")
        return _in_force(_record(row), _now())

    def status(self, es_id: str) -> str | None:
        """Current status, with expiry applied; None when unknown."""
        try:
            return self.get(es_id).status
        except NotFound:
            return None

    def query(self, *, holder: str | None = None, seal_type: int | None = None, status: str | None = None,
              es_id: str | None = None, after: str | None = None, limit: int | None = None) -> list[SealRecord]:
        """Records in esID order, statuses with expiry applied (``status`` filters on that): those matching
        every filter given, with esID greater than ``after``, at most ``limit``."""
        if status is not None and status not in STATES:
            raise InvalidInput(f"unknown seal state {status!r}; one of {', '.join(STATES)}", reason="BAD_SEAL_STATE")
        now = _now()
        where, params = [], []
        for column, value in (("holder", holder), ("seal_type", seal_type), ("es_id", es_id)):
            if value is not None:
                where.append(f"{column} = ?")
                params.append(value)
        if status is not None:  # the stored states that may read as ``status`` now; expiry is applied below
            stored = ("expired", "active", "suspended") if status == "expired" else (status,)
            where.append(f"status IN ({', '.join('?' for _ in stored)})")
            params.extend(stored)
        if after is not None:
            where.append("es_id > ?")
            params.append(after)
        sql = f"SELECT {_COLUMNS} FROM seal_records" + (" WHERE " + " AND ".join(where) if where else "")
        found: list[SealRecord] = []
        with self.db.read() as tx:
            rows = tx.execute(sql + " ORDER BY es_id", params)
            while limit is None or len(found) < limit:
                row = rows.fetchone()
                if row is None:
                    break
                record = _in_force(_record(row), now)
                if status is None or record.status == status:
                    found.append(record)
        return found

    def history(self, es_id: str) -> list[HistoryEntry]:
        with self.db.read() as tx:
            rows = tx.execute("SELECT es_id, at, actor, action, from_status, to_status, reason FROM seal_history "
                              "WHERE es_id = ? ORDER BY id", (es_id,)).fetchall()
        return [HistoryEntry(str(r[0]), dt.datetime.fromisoformat(str(r[1])), str(r[2]), str(r[3]),
                             None if r[4] is None else str(r[4]), str(r[5]), str(r[6])) for r in rows]

    def suspend(self, es_id: str, *, actor: str, reason: str, tx: Transaction | None = None) -> SealRecord:
        return self._change(es_id, "suspend", actor, reason, tx)

    def resume(self, es_id: str, *, actor: str, reason: str, tx: Transaction | None = None) -> SealRecord:
        return self._change(es_id, "resume", actor, reason, tx)

    def revoke(self, es_id: str, *, actor: str, reason: str, tx: Transaction | None = None) -> SealRecord:
        return self._change(es_id, "revoke", actor, reason, tx)

    def expire_due(self, *, actor: str = "system", at: dt.datetime | None = None) -> Sequence[str]:
        """Mark seals past their validEnd as expired; returns their esIDs."""
        at = at or _now()
        with self.db.read() as tx:
            rows = tx.execute("SELECT es_id, valid_end FROM seal_records WHERE status IN ('active', 'suspended')"
                              " ORDER BY es_id").fetchall()
        due = [str(es_id) for es_id, valid_end in rows if dt.datetime.fromisoformat(str(valid_end)) < at]
        for es_id in due:
            self._change(es_id, "expire", actor, "validity ended")
        return due

    def _change(self, es_id: str, action: str, actor: str, reason: str, tx: Transaction | None = None) -> SealRecord:
        if not actor or not reason:
            raise InvalidInput("who and why are required for every state change", reason="MISSING_ACTOR_OR_REASON")
        allowed, target = _TRANSITIONS[action]
        now = _now()
        with self.db.within(tx) as tx:
            row = tx.execute("SELECT status, valid_end FROM seal_records WHERE es_id = ?", (es_id,)).fetchone()
            if row is None:
                raise NotFound(f"no seal with esID {es_id!r}", reason="SEAL_NOT_FOUND")
            current = str(row[0])
            # an expired seal is final whether or not its expiry is recorded yet; "expire" records it
            shown = current if action == "expire" else _due_status(current, dt.datetime.fromisoformat(str(row[1])), now)
            if shown not in allowed:
                raise Conflict(f"cannot {action} seal {es_id}: it is {shown}", reason=f"SEAL_{shown.upper()}")
            updated = tx.execute("UPDATE seal_records SET status = ?, updated_at = ? WHERE es_id = ? AND status = ?",
                                 (target, _ts(now), es_id, current))
            if updated.rowcount != 1:
                raise Conflict(f"seal {es_id} changed concurrently", reason="CONCURRENT_CHANGE")
            self._history(tx, es_id, now, actor, action, current, target, reason)
            return self.get(es_id, tx=tx)

    @staticmethod
    def _history(tx: object, es_id: str, at: dt.datetime, actor: str, action: str, from_status: str | None,
                 to_status: str, reason: str) -> None:
        tx.execute("INSERT INTO seal_history (es_id, at, actor, action, from_status, to_status, reason) "  # type: ignore[attr-defined]
                   "VALUES (?, ?, ?, ?, ?, ?, ?)", (es_id, _ts(at), actor, action, from_status, to_status, reason))


def _subject(der: bytes) -> str:
    try:
        return Certificate(der).subject
    except Exception:  # noqa: BLE001 - vendor certificates with odd names
        return "(unreadable certificate)"
