"""Append-only, hash-chained audit log with signed checkpoints, stored through trustsvc.store.

Each record's ``hash`` is SM3 over ``prev_hash`` (32 bytes) followed by the canonical JSON of the
record's other fields; the first record chains from 32 zero bytes. A head row holds the last
``seq`` and ``hash``: appends lock it (``SELECT ... FOR UPDATE`` on PostgreSQL; ``BEGIN IMMEDIATE``
on SQLite), so concurrent daemons sharing a database keep one chain. Every ``checkpoint_every``
records, the audit Signer signs ``{"seq", "hash", "time"}`` in the same transaction. Records
committed together (group commit) share that commit's time and are inserted with one statement.

A state change kept in the same database (a token revocation, the seal registry) is made in ONE
transaction with its record through :meth:`AuditLog.transaction`: both commit, or neither does.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import fcntl
import functools
import os
import threading
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from trustsvc.algorithms.signer import Signer
from trustsvc.algorithms.sm3 import sm3
from trustsvc.audit.canonical import canonical_json
from trustsvc.errors import Conflict, StoreError, TrustsvcError
from trustsvc.store.database import Database, Transaction

GENESIS = "00" * 32
UTC = dt.UTC

MIGRATIONS = [
    """
    CREATE TABLE audit_log (
        seq BIGINT PRIMARY KEY, time TEXT NOT NULL, request_id TEXT NOT NULL, client TEXT NOT NULL,
        operation TEXT NOT NULL, ref TEXT NOT NULL, document_hash TEXT NOT NULL, result TEXT NOT NULL,
        detail TEXT NOT NULL, prev_hash TEXT NOT NULL, hash TEXT NOT NULL);
    CREATE TABLE audit_head (id INTEGER PRIMARY KEY, seq BIGINT NOT NULL, hash TEXT NOT NULL);
    INSERT INTO audit_head (id, seq, hash)
        VALUES (1, 0, '0000000000000000000000000000000000000000000000000000000000000000');
    CREATE TABLE audit_checkpoints (
        seq BIGINT PRIMARY KEY, time TEXT NOT NULL, hash TEXT NOT NULL, algorithm TEXT NOT NULL,
        public_key TEXT NOT NULL, signature TEXT NOT NULL)
    """,
]

COLUMNS = ("seq", "time", "request_id", "client", "operation", "ref", "document_hash", "result", "detail",
           "prev_hash", "hash")  # the audit_log columns, in AuditRecord's field order
_ROWS_PER_INSERT = 999 // len(COLUMNS)  # within SQLite's oldest default limit on bound parameters


@functools.lru_cache(maxsize=_ROWS_PER_INSERT)
def _insert_sql(n: int) -> str:
    """One INSERT of ``n`` rows: one statement step per batch instead of one per record."""
    row = "(" + ", ".join("?" * len(COLUMNS)) + ")"
    return f"INSERT INTO audit_log ({', '.join(COLUMNS)}) VALUES " + ", ".join([row] * n)


_MOVE_HEAD = "UPDATE audit_head SET seq = ?, hash = ? WHERE id = 1 AND seq = ? AND hash = ?"


class _Probed(Exception):
    """The probe row was written: roll it back."""


class _StaleHead(Exception):
    """Another writer moved the head since this process last saw it."""


@dataclasses.dataclass(frozen=True)
class AuditEvent:
    """What the caller records; ``detail`` must hold no keys, PINs or tokens."""

    operation: str
    client: str
    request_id: str = ""
    ref: str = ""  # key or seal reference
    document_hash: str = ""  # hex digest of what was signed
    result: str = "ok"
    detail: Mapping[str, Any] = dataclasses.field(default_factory=dict)


@dataclasses.dataclass(frozen=True)
class AuditRecord:
    seq: int
    time: str
    request_id: str
    client: str
    operation: str
    ref: str
    document_hash: str
    result: str
    detail: str  # canonical JSON text
    prev_hash: str
    hash: str

    def body(self) -> dict[str, Any]:
        """The hashed fields (everything but ``hash``)."""
        return {k: getattr(self, k) for k in COLUMNS if k != "hash"}

    def compute_hash(self) -> str:
        return record_hash(self.prev_hash, self.body())

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclasses.dataclass(frozen=True)
class Checkpoint:
    seq: int
    time: str
    hash: str
    algorithm: str
    public_key: str  # SPKI hex
    signature: str  # hex

    def message(self) -> bytes:
        return checkpoint_message(self.seq, self.hash, self.time)


def record_hash(prev_hash: str, body: Mapping[str, Any]) -> str:
    try:
        prev = bytes.fromhex(prev_hash)
    except ValueError:
        prev = prev_hash.encode()
    return sm3(prev + canonical_json(body if type(body) is dict else dict(body))).hex()


def checkpoint_message(seq: int, hash_hex: str, time: str) -> bytes:
    return canonical_json({"hash": hash_hex, "seq": seq, "time": time, "type": "trustsvc-audit-checkpoint"})


class AuditLog:
    """Appends records and checkpoints; safe for threads and for several processes sharing a database."""

    def __init__(self, db: Database, signer: Signer | None = None, *, checkpoint_every: int = 100,
                 shared: bool = False) -> None:
        """``shared``: other processes append to the same store all the time (``processes`` > 1): the
        head is read in every transaction, and on SQLite appends queue on a lock file beside the
        database, so a waiting process wakes when the lock is free (SQLite's busy handler sleeps)."""
        self.db = db
        self.shared = shared
        self._lock_fd: int | None = None
        self.signer = signer
        self.checkpoint_every = max(1, checkpoint_every)
        self._mu = threading.Lock()  # guards the queue and the leader flag
        self._io = threading.Lock()  # one transaction at a time per process: avoids SQLite busy-waits
        self._queue: list[_Pending] = []
        self._leading = False  # a caller is committing; newcomers queue behind it
        self._head_seen: tuple[int, str] | None = None  # the head as this process last wrote or read it
        self._tx_thread: int | None = None  # the thread inside transaction(), which must not append()
        db.migrate("audit", MIGRATIONS)

    # writing ----------------------------------------------------------------------
    def append(self, event: AuditEvent) -> AuditRecord:
        """Commit one record (raises StoreError when it cannot be written)."""
        return self.append_many([event])[-1]

    def append_many(self, events: Sequence[AuditEvent]) -> list[AuditRecord]:
        """Commit several records in one transaction, in order; return only once they are durable.

        Group commit without a writer thread: a caller that finds no commit under way commits
        everything queued (its own events first) in its own thread; callers arriving meanwhile
        queue and sleep. When the commit ends, each caller of the batch is woken with its records
        or the error, and the first caller still queued, if any, is woken to lead the next batch.
        No caller ever believes an uncommitted record was written.
        """
        if not events:
            return []
        if self._tx_thread is not None and self._tx_thread == threading.get_ident():
            raise RuntimeError("append() inside AuditLog.transaction() would deadlock: use the transaction's append")
        mine = _Pending(list(events))
        with self._mu:
            self._queue.append(mine)
            lead = not self._leading
            self._leading = True
        if not lead:
            mine.gate.acquire()  # released with a result, or to make this caller the next leader
            if mine.done:
                return mine.result()
        self._lead(mine)
        return mine.result()

    def _lead(self, mine: _Pending) -> None:
        """Commit the queue as one batch, answer its callers, hand leadership on (or give it up)."""
        with self._mu:
            batch, self._queue = self._queue, []
        try:
            self._write(batch)
        finally:
            with self._mu:
                successor = self._queue[0] if self._queue else None
                if successor is None:
                    self._leading = False
            for pending in batch:
                if not pending.done:  # _write was interrupted before deciding: refuse
                    pending.fail(StoreError("the audit write was interrupted", reason="AUDIT_UNAVAILABLE"))
                if pending is not mine:
                    pending.gate.release()
            if successor is not None:
                successor.gate.release()  # not done: it leads the next batch

    def _write(self, batch: list[_Pending]) -> None:
        """One transaction for ``batch``. The head is taken from memory when this process wrote it
        last; the conditional head update (and the seq primary key) detect another writer, and the
        transaction is then retried once from the stored head."""
        results: list[list[AuditRecord]] = []
        try:
            with self._io, self._across_processes():
                for attempt in (0, 1):
                    try:
                        with self.db.transaction() as tx:
                            head = self._head_seen
                            if head is None or attempt or self.shared or self.db.dialect != "sqlite":
                                head = self._head(tx)
                            results = self._insert(tx, [p.events for p in batch], head)
                            new_head = (results[-1][-1].seq, results[-1][-1].hash)
                            if tx.execute(_MOVE_HEAD, (*new_head, *head)).rowcount != 1:
                                raise _StaleHead()
                        self._head_seen = new_head
                        break
                    except (_StaleHead, Conflict) as exc:
                        self._head_seen = None
                        if attempt:
                            why = (f"the audit record was refused twice: {exc}" if isinstance(exc, Conflict)
                                   else "the audit head moved during the write (another writer)")
                            raise StoreError(why, reason="AUDIT_UNAVAILABLE") from None
        except BaseException as exc:
            self._head_seen = None
            for pending in batch:
                pending.fail(exc)
            return
        for pending, out in zip(batch, results, strict=True):
            pending.succeed(out)

    def check_writable(self) -> None:
        """Raise StoreError when a record could not be written now; writes nothing.

        Called before a change the log must record (a revocation, a seal or key change) that is hard
        or impossible to undo: a probe row and a no-op head update are written and rolled back, so an
        unwritable store refuses the call before anything changes."""
        try:
            with self.db.transaction() as tx:
                tx.execute("INSERT INTO audit_log (" + ", ".join(COLUMNS) + ") VALUES ("
                           + ", ".join("?" * len(COLUMNS)) + ")", (-1, *([""] * (len(COLUMNS) - 1))))
                tx.execute("UPDATE audit_head SET seq = seq WHERE id = 1")
                raise _Probed()
        except _Probed:
            return
        except StoreError:
            raise
        except Exception as exc:  # noqa: BLE001 - a Conflict from a trigger, a driver error: no record possible
            raise StoreError(f"the audit log cannot be written: {exc}", reason="AUDIT_UNAVAILABLE") from exc

    @contextlib.contextmanager
    def transaction(self) -> Iterator[AuditTransaction]:
        """One database transaction for a state change AND its audit record(s): both commit or neither.

        ::

            with audit.transaction() as atx:
                registry.revoke(es_id, actor=..., reason=..., tx=atx.tx)  # the change, in atx.tx
                atx.append(AuditEvent(...))                                # its record, same transaction

        The ``_io`` lock and (shared SQLite) the lock file are taken BEFORE the database transaction,
        in the same order as the group-commit leader, so neither waits for SQLite's write lock while
        holding what the other needs. The head is read inside the transaction (``FOR UPDATE`` on
        PostgreSQL), records and checkpoints due among them are written in it, and the head moves at
        the end. Group-commit appends from other threads queue meanwhile and chain after it.

        The body must append at least one record and must not call :meth:`append` (or open another
        transaction on this thread). Any exception rolls back the change and the records; a failure
        to write the records, sign a checkpoint or commit is a StoreError (``AUDIT_UNAVAILABLE``)."""
        if self._tx_thread is not None and self._tx_thread == threading.get_ident():
            raise RuntimeError("AuditLog.transaction() is not re-entrant")
        in_body = False
        atx: AuditTransaction | None = None
        try:
            with self._io, self._across_processes():
                self._head_seen = None  # known again only once this transaction committed
                self._tx_thread = threading.get_ident()
                try:
                    with self.db.transaction() as tx:
                        atx = AuditTransaction(self, tx, self._head(tx))
                        in_body = True
                        yield atx
                        in_body = False
                        atx._close()
                finally:
                    self._tx_thread = None
                self._head_seen = atx.head
        except BaseException as exc:
            if in_body or isinstance(exc, (TrustsvcError, RuntimeError)) or not isinstance(exc, Exception):
                raise  # the caller's own error (or a clear store error): as it is
            raise StoreError(f"the audited change could not be committed: {exc}", reason="AUDIT_UNAVAILABLE") \
                from exc

    @contextlib.contextmanager
    def _across_processes(self) -> Iterator[None]:
        """An exclusive lock on ``<database>.audit-lock`` while shared on a SQLite file; else nothing."""
        path = getattr(self.db, "path", ":memory:")
        if not self.shared or self.db.dialect != "sqlite" or path == ":memory:":
            yield
            return
        if self._lock_fd is None:
            self._lock_fd = os.open(f"{path}.audit-lock", os.O_RDWR | os.O_CREAT, 0o600)
        fcntl.flock(self._lock_fd, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(self._lock_fd, fcntl.LOCK_UN)

    def _insert(self, tx: Transaction, batch: Sequence[Sequence[AuditEvent]], head: tuple[int, str]
                ) -> list[list[AuditRecord]]:
        """Chain ``batch`` from ``head`` and write it, with the checkpoints due among it, in ``tx`` (the caller
        moves the head); the records per caller."""
        rows, results, due = self._build(batch, head)
        for i in range(0, len(rows), _ROWS_PER_INSERT):
            chunk = rows[i:i + _ROWS_PER_INSERT]
            tx.execute(_insert_sql(len(chunk)), [v for row in chunk for v in row])
        for rec in due:
            self._checkpoint(tx, rec)
        return results

    def _build(self, batch: Sequence[Sequence[AuditEvent]], head: tuple[int, str]
               ) -> tuple[list[tuple[Any, ...]], list[list[AuditRecord]], list[AuditRecord]]:
        """Rows to insert, the records per caller (one list of events each), and the records due a checkpoint."""
        seq, prev = head
        now = _now()
        rows: list[tuple[Any, ...]] = []
        due: list[AuditRecord] = []
        results: list[list[AuditRecord]] = []
        every = self.checkpoint_every if self.signer is not None else 0
        for events in batch:
            out: list[AuditRecord] = []
            for event in events:
                seq += 1
                detail = canonical_json(event.detail if type(event.detail) is dict else dict(event.detail)).decode()
                body = {
                    "seq": seq, "time": now, "request_id": event.request_id, "client": event.client,
                    "operation": event.operation, "ref": event.ref, "document_hash": event.document_hash,
                    "result": event.result, "detail": detail, "prev_hash": prev,
                }
                row = (seq, now, event.request_id, event.client, event.operation, event.ref,
                       event.document_hash, event.result, detail, prev, record_hash(prev, body))
                rec = AuditRecord(*row)
                rows.append(row)
                out.append(rec)
                prev = rec.hash
                if every and seq % every == 0:
                    due.append(rec)
            results.append(out)
        return rows, results, due

    def checkpoint(self) -> Checkpoint | None:
        """Sign the current head now (e.g. at shutdown); None when the log is empty or already there."""
        if self.signer is None:
            return None
        with self._io, self._across_processes():
            return self._checkpoint_now()

    def _checkpoint_now(self) -> Checkpoint | None:
        with self.db.transaction() as tx:
            seq, head_hash = self._head(tx)
            if seq == 0 or tx.execute("SELECT 1 FROM audit_checkpoints WHERE seq = ?", (seq,)).fetchone():
                return None
            row = tx.execute("SELECT " + ", ".join(COLUMNS) + " FROM audit_log WHERE seq = ?", (seq,)).fetchone()
            assert row is not None
            return self._checkpoint(tx, AuditRecord(*row))

    def _head(self, tx: Transaction) -> tuple[int, str]:
        lock = " FOR UPDATE" if self.db.dialect == "postgresql" else ""
        row = tx.execute("SELECT seq, hash FROM audit_head WHERE id = 1" + lock).fetchone()
        assert row is not None
        return int(row[0]), str(row[1])

    def _checkpoint(self, tx: Transaction, rec: AuditRecord) -> Checkpoint:
        assert self.signer is not None
        now = _now()
        sig = self.signer.sign(checkpoint_message(rec.seq, rec.hash, now))
        cp = Checkpoint(rec.seq, now, rec.hash, self.signer.algorithm.value, self.signer.public_key.spki.hex(),
                        sig.hex())
        tx.execute("INSERT INTO audit_checkpoints (seq, time, hash, algorithm, public_key, signature) "
                   "VALUES (?, ?, ?, ?, ?, ?)", dataclasses.astuple(cp))
        return cp

    # reading ----------------------------------------------------------------------
    def records(self, after: int = 0, limit: int | None = None) -> list[AuditRecord]:
        return read_records(self.db, after, limit)

    def tail(self, n: int = 20) -> list[AuditRecord]:
        with self.db.read() as tx:
            rows = tx.execute("SELECT " + ", ".join(COLUMNS) + " FROM audit_log ORDER BY seq DESC LIMIT ?",
                              (n,)).fetchall()
        return [AuditRecord(*r) for r in reversed(rows)]

    def head(self) -> tuple[int, str]:
        with self.db.read() as tx:
            return self._head_row(tx)

    @staticmethod
    def _head_row(tx: Transaction) -> tuple[int, str]:
        row = tx.execute("SELECT seq, hash FROM audit_head WHERE id = 1").fetchone()
        assert row is not None
        return int(row[0]), str(row[1])

    def find(self, request_id: str) -> list[AuditRecord]:
        with self.db.read() as tx:
            rows = tx.execute("SELECT " + ", ".join(COLUMNS) + " FROM audit_log WHERE request_id = ? ORDER BY seq",
                              (request_id,)).fetchall()
        return [AuditRecord(*r) for r in rows]


class AuditTransaction:
    """The records of one :meth:`AuditLog.transaction`; ``tx`` is the transaction the change uses."""

    def __init__(self, log: AuditLog, tx: Transaction, head: tuple[int, str]) -> None:
        self.log = log
        self.tx = tx
        self.start = head  # the head when the transaction began
        self.head = head  # the head after the records appended so far
        self.records: list[AuditRecord] = []

    def append(self, event: AuditEvent) -> AuditRecord:
        return self.append_many([event])[-1]

    def append_many(self, events: Sequence[AuditEvent]) -> list[AuditRecord]:
        """Write records (and any checkpoint due among them) in this transaction; they are durable only
        once the transaction commits. Raises StoreError (``AUDIT_UNAVAILABLE``) when they cannot be."""
        if not events:
            return []
        try:
            (out,) = self.log._insert(self.tx, [events], self.head)
        except StoreError as exc:
            if exc.reason == "STORE_READ_ONLY":
                raise
            raise StoreError(f"the audit record could not be written: {exc.message}",
                             reason="AUDIT_UNAVAILABLE") from exc
        except Exception as exc:  # a Conflict from a trigger, the audit key failing on a checkpoint ...
            raise StoreError(f"the audit record could not be written: {exc}", reason="AUDIT_UNAVAILABLE") from exc
        self.head = (out[-1].seq, out[-1].hash)
        self.records.extend(out)
        return out

    def _close(self) -> None:
        """Move the head row (before the commit); refuse a change that has no record."""
        if not self.records:
            raise RuntimeError("an audited change must append its record before the transaction ends")
        try:
            moved = self.tx.execute(_MOVE_HEAD, (*self.head, *self.start)).rowcount
        except Exception as exc:
            raise StoreError(f"the audit head could not be moved: {exc}", reason="AUDIT_UNAVAILABLE") from exc
        if moved != 1:  # cannot happen while the head is locked; never commit a fork of the chain
            raise StoreError("the audit head moved during the change", reason="AUDIT_UNAVAILABLE")


class _Pending:
    """One caller's events waiting for the group commit; ``gate`` is held until they are decided."""

    __slots__ = ("_error", "_records", "done", "events", "gate")

    def __init__(self, events: list[AuditEvent]) -> None:
        self.events = events
        self.done = False
        self._records: list[AuditRecord] = []
        self._error: BaseException | None = None
        self.gate = threading.Lock()
        self.gate.acquire()

    def succeed(self, records: list[AuditRecord]) -> None:
        self._records, self.done = records, True

    def fail(self, exc: BaseException) -> None:
        self._error, self.done = exc, True

    def result(self) -> list[AuditRecord]:
        if self._error is not None:
            raise self._error
        return self._records


def read_records(db: Database, after: int = 0, limit: int | None = None) -> list[AuditRecord]:
    with db.read() as tx:
        return select_records(tx, after, limit)


def select_records(tx: Transaction, after: int = 0, limit: int | None = None) -> list[AuditRecord]:
    sql = "SELECT " + ", ".join(COLUMNS) + " FROM audit_log WHERE seq > ? ORDER BY seq"
    params: list[Any] = [after]
    if limit is not None:
        sql += " LIMIT ?"
        params.append(limit)
    return [AuditRecord(*(int(r[0]), *r[1:])) for r in tx.execute(sql, params).fetchall()]


def read_checkpoints(db: Database) -> list[Checkpoint]:
    with db.read() as tx:
        return select_checkpoints(tx)


def select_checkpoints(tx: Transaction) -> list[Checkpoint]:
    rows = tx.execute("SELECT seq, time, hash, algorithm, public_key, signature FROM audit_checkpoints "
                      "ORDER BY seq").fetchall()
    return [Checkpoint(int(r[0]), *r[1:]) for r in rows]


def _now() -> str:
    return dt.datetime.now(UTC).isoformat(timespec="microseconds")
