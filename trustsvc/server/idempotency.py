"""Idempotency keys for signing RPCs, kept in the store so retries across daemons never sign twice.

A key is scoped to (client, key). The first request reserves it (state "pending"), does the work,
then stores the serialised response ("done"). The same request again gets the stored response;
a different request under the same key gets FAILED_PRECONDITION; a retry while the first is still
running gets ABORTED (retry later). A pending reservation older than ``stale_s`` is taken over.

A key is remembered for ``retention_s`` (a day by default) from its first use; after that it is
forgotten, as if never used (the same request again is signed again), and ``prune`` deletes it.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Callable
from typing import TypeVar

from google.protobuf.message import Message

from trustsvc.errors import Conflict, InvalidInput
from trustsvc.store.database import Database

MIGRATIONS = [
    """
    CREATE TABLE idempotency (
        client TEXT NOT NULL, idem_key TEXT NOT NULL, operation TEXT NOT NULL, request_hash TEXT NOT NULL,
        state TEXT NOT NULL, response TEXT NOT NULL, created TEXT NOT NULL, PRIMARY KEY (client, idem_key))
    """,
    "CREATE INDEX idempotency_created ON idempotency (created)",
]
STALE_S = 300.0  # a pending reservation this old is taken over by a retry
RETENTION_S = 86_400.0

M = TypeVar("M", bound=Message)
UTC = dt.UTC


def request_hash(operation: str, *parts: bytes) -> str:
    h = hashlib.sha256(operation.encode() + b"\0")
    for p in parts:
        h.update(len(p).to_bytes(8, "big") + p)
    return h.hexdigest()


class IdempotencyStore:
    def __init__(self, db: Database, *, stale_s: float = STALE_S, retention_s: float = RETENTION_S,
                 clock: Callable[[], dt.datetime] = lambda: dt.datetime.now(UTC)) -> None:
        if not 0 < stale_s <= retention_s:
            raise ValueError("idempotency: need 0 < stale_s <= retention_s")
        self.db = db
        self.clock = clock
        self.stale_s = stale_s
        self.retention_s = retention_s
        db.migrate("idempotency", MIGRATIONS)

    def prune(self) -> int:
        """Delete keys first used more than ``retention_s`` ago (done or abandoned); returns how many."""
        cut = _stamp(self.clock() - dt.timedelta(seconds=self.retention_s))
        with self.db.transaction() as tx:
            return tx.execute("DELETE FROM idempotency WHERE created < ?", (cut,)).rowcount

    def run(self, client: str, idem_key: str, operation: str, req_hash: str, response_type: type[M],
            produce: Callable[[], M]) -> M:
        """``produce()`` once per (client, idem_key); later identical calls get its stored response."""
        if not idem_key:
            return produce()
        if len(idem_key) > 200:
            raise InvalidInput("idempotency_key is longer than 200 characters", reason="BAD_IDEMPOTENCY_KEY")
        stored = self._reserve(client, idem_key, operation, req_hash)
        if stored is not None:
            return response_type.FromString(stored)
        try:
            response = produce()
        except BaseException:
            with self.db.transaction() as tx:
                tx.execute("DELETE FROM idempotency WHERE client = ? AND idem_key = ? AND state = 'pending'",
                           (client, idem_key))
            raise
        with self.db.transaction() as tx:
            tx.execute("UPDATE idempotency SET state = 'done', response = ? WHERE client = ? AND idem_key = ?",
                       (response.SerializeToString().hex(), client, idem_key))
        return response

    def _reserve(self, client: str, idem_key: str, operation: str, req_hash: str) -> bytes | None:
        now = self.clock()
        with self.db.transaction() as tx:
            lock = " FOR UPDATE" if self.db.dialect == "postgresql" else ""
            row = tx.execute("SELECT operation, request_hash, state, response, created FROM idempotency "
                             "WHERE client = ? AND idem_key = ?" + lock, (client, idem_key)).fetchone()
            if row is None:
                try:
                    tx.execute("INSERT INTO idempotency (client, idem_key, operation, request_hash, state, response, "
                               "created) VALUES (?, ?, ?, ?, 'pending', '', ?)",
                               (client, idem_key, operation, req_hash, _stamp(now)))
                except Conflict:
                    raise Conflict("the same idempotency key is being used by a request in progress; retry",
                                   reason="REQUEST_IN_PROGRESS") from None
                return None
            op, stored_hash, state, response, created = row
            age = (now - dt.datetime.fromisoformat(created)).total_seconds()
            if age >= self.retention_s:  # forgotten: this is a first use (prune may not have run yet)
                tx.execute("UPDATE idempotency SET operation = ?, request_hash = ?, state = 'pending', response = '',"
                           " created = ? WHERE client = ? AND idem_key = ?",
                           (operation, req_hash, _stamp(now), client, idem_key))
                return None
            if op != operation or stored_hash != req_hash:
                raise Conflict(f"idempotency key {idem_key!r} was used for a different request",
                               reason="IDEMPOTENCY_KEY_REUSED")
            if state == "done":
                return bytes.fromhex(response)
            if age < self.stale_s:
                raise Conflict("a request with this idempotency key is still in progress; retry",
                               reason="REQUEST_IN_PROGRESS")
            tx.execute("UPDATE idempotency SET created = ? WHERE client = ? AND idem_key = ?",
                       (_stamp(now), client, idem_key))
            return None


def _stamp(when: dt.datetime) -> str:
    """UTC ISO 8601 with microseconds always present, so stored stamps order as text."""
    return when.astimezone(UTC).isoformat(timespec="microseconds")
