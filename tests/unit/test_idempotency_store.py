"""Idempotency keys in the store, on SQLite and PostgreSQL: replay, reuse, retention and pruning,
and the housekeeper that prunes them with expired token revocations."""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable

import pytest
from google.protobuf.wrappers_pb2 import StringValue

from trustsvc.errors import Conflict, InvalidInput
from trustsvc.server.housekeeping import Housekeeper
from trustsvc.server.idempotency import IdempotencyStore, request_hash
from trustsvc.store.database import Database
from trustsvc.token import RevocationStore

T0 = dt.datetime(2026, 11, 23, 12, 0, tzinfo=dt.UTC)
DAY = dt.timedelta(days=1)


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> dt.datetime:
        return self.now


@pytest.fixture
def store(db_url: str) -> tuple[IdempotencyStore, Clock]:
    clock = Clock()
    return IdempotencyStore(Database(db_url), clock=clock), clock


def producing(calls: list[str], text: str) -> Callable[[], StringValue]:
    """A produce() for ``run`` that records each call."""
    def produce() -> StringValue:
        calls.append(text)
        return StringValue(value=f"signature over {text} #{len(calls)}")
    return produce


def rows(s: IdempotencyStore) -> int:
    with s.db.read() as tx:
        return int(tx.execute("SELECT count(*) FROM idempotency").fetchone()[0])


def test_a_key_replays_within_retention_and_is_forgotten_after(store: tuple[IdempotencyStore, Clock]) -> None:
    s, clock = store
    calls: list[str] = []
    h = request_hash("SignData", b"pay 100")
    first = s.run("alice", "k1", "SignData", h, StringValue, producing(calls, "pay 100"))
    clock.now = T0 + DAY - dt.timedelta(seconds=1)
    assert s.run("alice", "k1", "SignData", h, StringValue, producing(calls, "pay 100")) == first
    with pytest.raises(Conflict) as info:
        s.run("alice", "k1", "SignData", request_hash("SignData", b"pay 999"), StringValue, producing(calls, "x"))
    assert info.value.reason == "IDEMPOTENCY_KEY_REUSED"
    assert calls == ["pay 100"]

    clock.now = T0 + DAY  # forgotten, whether or not prune ran: a new request under the old key
    again = s.run("alice", "k1", "SignData", request_hash("SignData", b"pay 999"), StringValue,
                  producing(calls, "pay 999"))
    assert again.value == "signature over pay 999 #2"
    assert s.run("alice", "k1", "SignData", request_hash("SignData", b"pay 999"), StringValue,
                 producing(calls, "pay 999")) == again  # and remembered from its new first use
    assert rows(s) == 1


def test_prune_deletes_only_keys_past_retention(store: tuple[IdempotencyStore, Clock]) -> None:
    s, clock = store
    calls: list[str] = []
    s.run("alice", "old", "SignData", "h1", StringValue, producing(calls, "a"))
    clock.now = T0 + dt.timedelta(hours=12)
    s.run("alice", "new", "SignData", "h2", StringValue, producing(calls, "b"))
    s.run("bob", "old", "SignData", "h3", StringValue, producing(calls, "c"))
    clock.now = T0 + DAY + dt.timedelta(microseconds=1)
    assert s.prune() == 1
    assert rows(s) == 2
    assert s.run("alice", "new", "SignData", "h2", StringValue, producing(calls, "b")).value.endswith("#2")
    clock.now = T0 + 2 * DAY
    assert s.prune() == 2
    assert s.prune() == 0


def test_in_progress_then_abandoned_reservation(store: tuple[IdempotencyStore, Clock]) -> None:
    s, clock = store
    assert s._reserve("alice", "k", "SignData", "h") is None  # a first request, still running
    with pytest.raises(Conflict) as info:
        s.run("alice", "k", "SignData", "h", StringValue, producing([], "x"))
    assert info.value.reason == "REQUEST_IN_PROGRESS"
    clock.now = T0 + dt.timedelta(seconds=301)  # the first one died: a retry takes the key over
    assert s.run("alice", "k", "SignData", "h", StringValue, producing([], "x")).value


def test_a_failed_request_leaves_its_key_free(store: tuple[IdempotencyStore, Clock]) -> None:
    s, _ = store

    def fails() -> StringValue:
        raise InvalidInput("bad", reason="BAD")

    with pytest.raises(InvalidInput):
        s.run("alice", "k", "SignData", "h", StringValue, fails)
    assert rows(s) == 0
    with pytest.raises(InvalidInput) as info:
        s.run("alice", "k" * 201, "SignData", "h", StringValue, fails)
    assert info.value.reason == "BAD_IDEMPOTENCY_KEY"


def test_retention_must_outlast_a_request_in_progress(tmp_path: object) -> None:
    db = Database(f"sqlite:///{tmp_path}/t.db")
    with pytest.raises(ValueError):
        IdempotencyStore(db, retention_s=60)
    with pytest.raises(ValueError):
        IdempotencyStore(db, stale_s=0)


def test_housekeeper_prunes_keys_and_expired_revocations(db_url: str) -> None:
    db = Database(db_url)
    clock = Clock()
    keys = IdempotencyStore(db, clock=clock)
    revocations = RevocationStore(db)
    keys.run("alice", "k", "SignData", "h", StringValue, producing([], "a"))
    long_ago = int(time.time()) - 2 * 86_400
    revocations.revoke_jti("iss", "expired", expires_at=long_ago)
    revocations.revoke_jti("iss", "live", expires_at=int(time.time()) + 900)
    keeper = Housekeeper(keys, revocations, interval_s=600)
    assert keeper.run_once() == {"idempotency_keys": 0, "token_revocations": 1}
    clock.now = T0 + 2 * DAY
    assert keeper.run_once() == {"idempotency_keys": 1, "token_revocations": 0}
    assert revocations.is_revoked("iss", "live", None, None)


def test_housekeeper_thread_runs_rounds_until_stopped(tmp_path: object) -> None:
    db = Database(f"sqlite:///{tmp_path}/t.db")
    clock = Clock()
    keys = IdempotencyStore(db, clock=clock)
    keeper = Housekeeper(keys, RevocationStore(db), interval_s=0.01)
    keeper.start()
    try:
        keys.run("alice", "k", "SignData", "h", StringValue, producing([], "a"))
        clock.now = T0 + 2 * DAY
        for _ in range(1000):  # waits for a round, whenever it comes
            if rows(keys) == 0:
                break
            time.sleep(0.01)
        assert rows(keys) == 0
    finally:
        keeper.stop()
    assert keeper._thread is None
    never = Housekeeper(keys, RevocationStore(db), interval_s=0)
    never.start()
    assert never._thread is None  # 0: no thread, no rounds
