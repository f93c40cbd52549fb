"""Audit log: chain, checkpoints, tampering of each kind detected at the right seq, concurrency."""

from __future__ import annotations

import dataclasses
import threading

import pytest

from trustsvc.algorithms.signer import SoftwareSigner
from trustsvc.audit import AuditEvent, AuditLog, AuditRecord, verify_log
from trustsvc.errors import StoreError
from trustsvc.store.database import Database


def _run_all(threads: list[threading.Thread]) -> None:
    """Start every thread, then wait for all of them."""
    for t in threads:
        t.start()
    for t in threads:
        t.join()


def _log(url: str, every: int = 4) -> tuple[AuditLog, SoftwareSigner]:
    signer = SoftwareSigner.generate("sm2")
    return AuditLog(Database(url), signer, checkpoint_every=every), signer


def _fill(log: AuditLog, n: int = 10) -> None:
    for i in range(n):
        log.append(AuditEvent("SignData", f"client-{i % 3}", request_id=f"r{i}", ref="soft:k@1",
                              document_hash=f"{i:064x}", detail={"i": i}))


def _sql(log: AuditLog, sql: str, params: tuple = ()) -> None:
    with log.db.transaction() as tx:
        tx.execute(sql, params)


def test_clean_log_verifies_with_checkpoints(db_url: str) -> None:
    log, signer = _log(db_url)
    _fill(log, 10)
    assert log.checkpoint() is not None
    report = verify_log(log.db, trusted_keys=[signer.public_key])
    assert report.ok, report.problems
    assert report.records == 10 and report.checkpoints == 3 and report.head_seq == 10
    assert [r.seq for r in log.tail(3)] == [8, 9, 10]


# tampering, as someone with write access to the store would do it (each keeps the head row consistent
# where that would hide the change) -------------------------------------------------------------------
def tamper_edit(db: Database, seq: int) -> None:
    with db.transaction() as tx:
        tx.execute("UPDATE audit_log SET client = 'cn=someone-else' WHERE seq = ?", (seq,))


def tamper_delete(db: Database, seq: int) -> None:
    with db.transaction() as tx:
        tx.execute("DELETE FROM audit_log WHERE seq = ?", (seq,))


def tamper_delete_tail(db: Database, first: int) -> None:
    with db.transaction() as tx:
        tx.execute("DELETE FROM audit_log WHERE seq >= ?", (first,))


def tamper_insert(db: Database, at: int) -> None:
    """Make room at ``at`` (records from there move up one) and put a forged, self-consistent record there,
    chained from the record before it; the head is moved to the new end."""
    from trustsvc.audit.log import read_records, record_hash

    before = {r.seq: r for r in read_records(db)}[at - 1]
    body = dict(before.body(), seq=at, prev_hash=before.hash, request_id="forged", client="cn=forger")
    with db.transaction() as tx:
        tx.execute("UPDATE audit_log SET seq = seq + 1000000 WHERE seq >= ?", (at,))
        tx.execute("UPDATE audit_log SET seq = seq - 999999 WHERE seq >= 1000000")
        tx.execute("INSERT INTO audit_log (seq, time, request_id, client, operation, ref, document_hash, result, "
                   "detail, prev_hash, hash) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                   tuple(body[k] for k in ("seq", "time", "request_id", "client", "operation", "ref", "document_hash",
                                           "result", "detail", "prev_hash")) + (record_hash(before.hash, body),))
        tx.execute("UPDATE audit_head SET seq = (SELECT MAX(seq) FROM audit_log) WHERE id = 1")


def tamper_append(db: Database) -> None:
    """A forged, self-consistent record after the last one, which the head row does not know about."""
    from trustsvc.audit.log import read_records, record_hash

    last = read_records(db)[-1]
    body = dict(last.body(), seq=last.seq + 1, prev_hash=last.hash, request_id="forged")
    with db.transaction() as tx:
        tx.execute("INSERT INTO audit_log VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                   tuple(body[k] for k in ("seq", "time", "request_id", "client", "operation", "ref", "document_hash",
                                           "result", "detail", "prev_hash")) + (record_hash(last.hash, body),))


def tamper_swap(db: Database, seq: int) -> None:
    """Records ``seq`` and ``seq + 1`` trade places."""
    with db.transaction() as tx:
        tx.execute("UPDATE audit_log SET seq = -1 WHERE seq = ?", (seq,))
        tx.execute("UPDATE audit_log SET seq = ? WHERE seq = ?", (seq, seq + 1))
        tx.execute("UPDATE audit_log SET seq = ? WHERE seq = -1", (seq + 1,))


def tamper_checkpoint_signature(db: Database, seq: int) -> None:
    """Another valid-looking signature: the first byte of the DER flipped."""
    with db.transaction() as tx:
        (sig,) = tx.execute("SELECT signature FROM audit_checkpoints WHERE seq = ?", (seq,)).fetchone()
        flipped = f"{int(sig[-2:], 16) ^ 1:02x}"
        tx.execute("UPDATE audit_checkpoints SET signature = ? WHERE seq = ?", (sig[:-2] + flipped, seq))


def tamper_rehash(db: Database, seq: int) -> None:
    """Edit a record and recompute its hash (the next record still chains from the old one)."""
    from trustsvc.audit.log import read_records

    rec = {r.seq: r for r in read_records(db)}[seq]
    forged = dataclasses.replace(rec, result="error")
    with db.transaction() as tx:
        tx.execute("UPDATE audit_log SET result = ?, hash = ? WHERE seq = ?", ("error", forged.compute_hash(), seq))


def tamper_renumber(db: Database, first: int) -> None:
    """Records from ``first`` on move up one seq, leaving a hole and losing nothing."""
    with db.transaction() as tx:
        tx.execute("UPDATE audit_log SET seq = seq + 1000000 WHERE seq >= ?", (first,))
        tx.execute("UPDATE audit_log SET seq = seq - 999999 WHERE seq >= 1000000")
        tx.execute("UPDATE audit_head SET seq = (SELECT MAX(seq) FROM audit_log) WHERE id = 1")


def problems(report: object) -> list[tuple[int, str]]:
    return [(p.seq, p.kind) for p in report.problems]  # type: ignore[attr-defined]


# with 10 records and a checkpoint every 4 (at 4 and 8)
TAMPERING = {
    "edited": (lambda db: tamper_edit(db, 5), [(5, "EDITED")]),
    "edited-checkpointed": (lambda db: tamper_edit(db, 4), [(4, "EDITED")]),
    "rehashed": (lambda db: tamper_rehash(db, 5), [(5, "EDITED")]),
    "deleted-middle": (lambda db: tamper_delete(db, 6), [(6, "DELETED")]),
    "deleted-first": (lambda db: tamper_delete(db, 1), [(1, "DELETED")]),
    "deleted-checkpointed": (lambda db: tamper_delete(db, 4), [(4, "DELETED")]),
    "deleted-tail": (lambda db: tamper_delete_tail(db, 8), [(8, "TRUNCATED")]),
    "deleted-last": (lambda db: tamper_delete_tail(db, 10), [(10, "TRUNCATED")]),
    "inserted-middle": (lambda db: tamper_insert(db, 6), [(6, "INSERTED")]),
    "inserted-before-checkpoint": (lambda db: tamper_insert(db, 4), [(4, "INSERTED")]),
    "appended-past-head": (tamper_append, [(11, "INSERTED")]),
    "reordered": (lambda db: tamper_swap(db, 3), [(3, "REORDERED"), (4, "REORDERED")]),
    "reordered-first": (lambda db: tamper_swap(db, 1), [(1, "REORDERED"), (2, "REORDERED")]),
    "renumbered": (lambda db: tamper_renumber(db, 6), [(s, "EDITED") for s in range(7, 12)]),
    "checkpoint-signature": (lambda db: tamper_checkpoint_signature(db, 8), [(8, "BAD_CHECKPOINT")]),
    "checkpoint-hash": (lambda db: _sql_db(db, "UPDATE audit_checkpoints SET hash = (SELECT hash FROM audit_log "
                                               "WHERE seq = 3) WHERE seq = 4"), [(4, "BAD_CHECKPOINT")]),
}


def _sql_db(db: Database, sql: str) -> None:
    with db.transaction() as tx:
        tx.execute(sql)


@pytest.mark.parametrize("name", list(TAMPERING))
def test_tampering_is_detected_with_its_kind_where_it_happened(tmp_path, name: str) -> None:
    log, signer = _log(f"sqlite:///{tmp_path}/a.db")
    _fill(log, 10)
    assert verify_log(log.db, trusted_keys=[signer.public_key]).ok
    tamper, expected = TAMPERING[name]
    tamper(log.db)
    report = verify_log(log.db, trusted_keys=[signer.public_key])
    assert problems(report) == expected, report.problems
    assert report.first_bad_seq == expected[0][0]


def test_truncated_tail_detected(tmp_path) -> None:
    log, _ = _log(f"sqlite:///{tmp_path}/a.db")
    _fill(log, 10)
    _sql(log, "DELETE FROM audit_log WHERE seq > 7")
    report = verify_log(log.db)
    assert any(p.kind == "TRUNCATED" and p.seq == 8 for p in report.problems)


def test_untrusted_checkpoint_key(tmp_path) -> None:
    log, _ = _log(f"sqlite:///{tmp_path}/a.db")
    _fill(log, 4)
    other = SoftwareSigner.generate("sm2")
    problems = verify_log(log.db, trusted_keys=[other.public_key]).problems
    assert any(p.kind == "UNTRUSTED_CHECKPOINT_KEY" for p in problems)


def test_concurrent_appends_keep_one_chain(db_url: str) -> None:
    log, signer = _log(db_url, every=7)

    def worker(k: int) -> None:
        for i in range(10):
            log.append(AuditEvent("SignData", f"c{k}", request_id=f"{k}-{i}"))

    threads = [threading.Thread(target=worker, args=(k,)) for k in range(8)]
    _run_all(threads)
    report = verify_log(log.db, trusted_keys=[signer.public_key])
    assert report.ok and report.records == 80


class ReadOnlyDatabase(Database):
    """A real SQLite store switched to query_only: every write fails as on a read-only file (root ignores chmod)."""

    writes_refused = False  # not Database.read_only, which refuses before SQLite is asked

    def transaction(self):  # type: ignore[override]
        self._connection().execute(f"PRAGMA query_only={'ON' if self.writes_refused else 'OFF'}")
        return super().transaction()


def test_read_only_store_raises_store_error(tmp_path) -> None:
    db = ReadOnlyDatabase(f"sqlite:///{tmp_path}/ro.db")
    log = AuditLog(db, SoftwareSigner.generate("sm2"))
    _fill(log, 2)
    db.writes_refused = True
    with pytest.raises(StoreError) as err:
        log.append(AuditEvent("SignData", "c"))
    assert err.value.reason == "STORE_READ_ONLY"
    db.writes_refused = False
    assert verify_log(db).records == 2


def test_a_refused_append_says_why(tmp_path) -> None:
    """A write the store refuses (here a trigger standing for a full disk) names its cause, not a moved head."""
    log, _ = _log(f"sqlite:///{tmp_path}/t.db")
    _fill(log, 1)
    with log.db.transaction() as tx:
        tx.execute("CREATE TRIGGER full BEFORE INSERT ON audit_log BEGIN SELECT RAISE(ABORT, 'disk is full'); END")
    with pytest.raises(StoreError) as err:
        log.append(AuditEvent("SignData", "c"))
    assert err.value.reason == "AUDIT_UNAVAILABLE" and "disk is full" in err.value.message, err.value.message
    with log.db.transaction() as tx:
        tx.execute("DROP TRIGGER full")
    log.append(AuditEvent("SignData", "c"))
    assert verify_log(log.db).records == 2


def test_cli_audit_verify_and_tail(tmp_path, capsys) -> None:
    import json

    from cli.main import main

    url = f"sqlite:///{tmp_path}/cli.db"
    log, signer = _log(url)
    _fill(log, 6)
    key = tmp_path / "audit.pub.pem"
    key.write_bytes(signer.public_key.to_pem())
    assert main(["audit", "verify", "--db", url, "--audit-key", str(key), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["ok"] is True
    assert main(["audit", "tail", "--db", url, "-n", "2", "--json"]) == 0
    assert [json.loads(line)["seq"] for line in capsys.readouterr().out.splitlines()] == [5, 6]
    _sql(log, "DELETE FROM audit_log WHERE seq = 2")
    assert main(["audit", "verify", "--db", url]) == 1
    assert "seq 2: DELETED" in capsys.readouterr().out

    missing = tmp_path / "nothing-here.db"
    assert main(["audit", "tail", "--db", f"sqlite:///{missing}", "--json"]) == 2  # not created, not shown as empty
    assert not missing.exists() and "INPUT_NOT_FOUND" in capsys.readouterr().err


@pytest.mark.parametrize("value", [
    {"b": 1, "a": "中文\n\x01\x7f\u2028\"\\", "c": None, "d": True, "e": [1, -2, {"z": "y", "": 0}]},
    {"f": 1.5, "g": 1e16, "h": 2**70, "i": -(2**64)},  # floats and huge ints take the reference path
    {"t": (1, "x"), "deep": [[[[["x"]]]]], "k\U0001f600": "\U0001f600", "K": "A"},
    "plain", 0, [], {},
])
def test_canonical_json_fast_path_matches_the_reference(value: object) -> None:
    from trustsvc.audit.canonical import canonical_json, canonical_json_stdlib

    assert canonical_json(value) == canonical_json_stdlib(value)


def test_group_commit_is_fail_closed_for_every_caller(tmp_path) -> None:
    db = ReadOnlyDatabase(f"sqlite:///{tmp_path}/gc.db")
    log = AuditLog(db, SoftwareSigner.generate("sm2"), checkpoint_every=3)
    _fill(log, 2)
    outcomes: list[object] = []
    start = threading.Barrier(8)

    def worker(k: int) -> None:
        start.wait()
        try:
            outcomes.append(log.append_many([AuditEvent("SignData", f"c{k}", request_id=f"{k}-{i}")
                                             for i in range(3)]))
        except StoreError as exc:
            outcomes.append(exc)

    db.writes_refused = True
    threads = [threading.Thread(target=worker, args=(k,)) for k in range(8)]
    _run_all(threads)
    db.writes_refused = False
    assert len(outcomes) == 8 and all(isinstance(o, StoreError) for o in outcomes)
    log.append(AuditEvent("SignData", "after"))
    report = verify_log(db)
    assert report.ok and report.records == 3, report.problems


@pytest.mark.parametrize("shared", [False, True])
def test_two_writers_on_one_database_keep_one_chain(tmp_path, shared: bool) -> None:
    """Two logs (as two daemons would) over one SQLite file: each notices the other's appends; with
    ``shared`` (processes > 1) they queue on the lock file and read the head in every transaction."""
    url = f"sqlite:///{tmp_path}/shared.db"
    signer = SoftwareSigner.generate("sm2")
    a, b = (AuditLog(Database(url), signer, checkpoint_every=5, shared=shared) for _ in range(2))

    def worker(log: AuditLog, k: int) -> None:
        for i in range(15):
            log.append_many([AuditEvent("SignData", f"c{k}", request_id=f"{k}-{i}-{j}") for j in range(1 + i % 3)])

    threads = [threading.Thread(target=worker, args=(log, k)) for k, log in enumerate([a, b, a, b])]
    _run_all(threads)
    report = verify_log(a.db, trusted_keys=[signer.public_key])
    assert report.ok and report.records == 4 * sum(1 + i % 3 for i in range(15)), report.problems
    assert report.checkpoints >= 1


# one transaction for a state change and its record (AuditLog.transaction) ---------------------------------------
class BrokenSigner:
    """The audit key failing (an HSM gone, a PIN revoked) while everything else works."""

    def __init__(self, signer: SoftwareSigner) -> None:
        self._signer = signer

    def __getattr__(self, name: str) -> object:
        return getattr(self._signer, name)

    def sign(self, message: bytes) -> bytes:
        raise RuntimeError("the audit key is unavailable")


def _changing_log(url: str, every: int = 4) -> tuple[AuditLog, SoftwareSigner]:
    log, signer = _log(url, every)
    _sql(log, "CREATE TABLE things (name TEXT PRIMARY KEY, seq BIGINT NOT NULL)")
    return log, signer


def _things(log: AuditLog) -> dict[str, int]:
    with log.db.read() as tx:
        return {str(name): int(seq) for name, seq in tx.execute("SELECT name, seq FROM things").fetchall()}


def _change(log: AuditLog, name: str, *, fail: str = "") -> AuditRecord:
    """A change (a row in ``things``) and its record in one transaction; ``fail`` raises at that point."""
    with log.transaction() as atx:
        atx.tx.execute("INSERT INTO things (name, seq) VALUES (?, ?)", (name, atx.head[0] + 1))
        if fail == "before-record":
            raise ValueError("failed after the change, before its record")
        rec = atx.append(AuditEvent("SealService/RevokeSeal", "cn=admin", request_id=name, ref=f"thing:{name}"))
        assert rec.seq == atx.head[0]
        if fail == "after-record":
            raise ValueError("failed after the change and its record")
    return rec


def test_change_and_record_commit_together(db_url: str) -> None:
    log, signer = _changing_log(db_url, every=4)
    _fill(log, 2)
    rec = _change(log, "a")
    assert _things(log) == {"a": 3} and log.head() == (3, rec.hash)
    assert log.find("a") == [rec] and rec.prev_hash == log.records()[1].hash
    log.append(AuditEvent("SignData", "c", request_id="after"))  # the group commit chains on from it
    assert _change(log, "b").seq == 5
    report = verify_log(log.db, trusted_keys=[signer.public_key])
    assert report.ok and report.records == 5 and report.checkpoints == 1, report.problems


@pytest.mark.parametrize("fail", ["before-record", "after-record"])
def test_exception_after_the_change_rolls_back_change_and_record(db_url: str, fail: str) -> None:
    log, signer = _changing_log(db_url, every=3)
    _fill(log, 2)
    head = log.head()
    with pytest.raises(ValueError):  # the caller's own error, as it was raised
        _change(log, "x", fail=fail)
    assert _things(log) == {} and log.head() == head and log.find("x") == []
    with pytest.raises(RuntimeError), log.transaction() as atx:  # a change without its record never commits
        atx.tx.execute("INSERT INTO things (name, seq) VALUES ('unrecorded', 0)")
    assert _things(log) == {} and log.head() == head
    log.append(AuditEvent("SignData", "c"))
    assert _change(log, "y").seq == 4
    report = verify_log(log.db, trusted_keys=[signer.public_key])
    assert report.ok and report.records == 4 and report.checkpoints == 1, report.problems


def test_a_checkpoint_due_inside_the_change_is_signed_in_it(db_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    log, signer = _changing_log(db_url, every=4)
    _fill(log, 3)
    rec = _change(log, "a")  # seq 4: due a checkpoint
    with log.db.read() as tx:
        assert tx.execute("SELECT seq, hash FROM audit_checkpoints").fetchall() == [(4, rec.hash)]
    _fill(log, 3)  # head 7: the next record is due again
    head = log.head()
    monkeypatch.setattr(log, "signer", BrokenSigner(signer))
    with pytest.raises(StoreError) as err:
        _change(log, "b")
    assert err.value.reason == "AUDIT_UNAVAILABLE" and "audit key" in err.value.message
    assert _things(log) == {"a": 4} and log.head() == head  # neither the change nor its record
    with log.db.read() as tx:
        assert [r[0] for r in tx.execute("SELECT seq FROM audit_checkpoints").fetchall()] == [4]
    monkeypatch.setattr(log, "signer", signer)
    assert _change(log, "b").seq == 8
    report = verify_log(log.db, trusted_keys=[signer.public_key])
    assert report.ok and report.records == 8 and report.checkpoints == 2, report.problems


def test_append_inside_a_transaction_is_refused_not_deadlocked(db_url: str) -> None:
    log, _ = _changing_log(db_url)
    with log.transaction() as atx:
        with pytest.raises(RuntimeError):
            log.append(AuditEvent("SignData", "c"))
        with pytest.raises(RuntimeError):
            with log.transaction():
                pass
        atx.append(AuditEvent("SealService/MakeSeal", "cn=admin"))
    assert log.head()[0] == 1 and verify_log(log.db).ok


def test_changes_interleave_with_concurrent_group_commits(db_url: str) -> None:
    """Appending threads (the group commit) and changing threads at once: one chain, every change at the
    seq of its own record, checkpoints wherever they fell."""
    log, signer = _changing_log(db_url, every=5)
    start = threading.Barrier(6)
    errors: list[BaseException] = []

    def appender(k: int) -> None:
        start.wait()
        try:
            for i in range(12):
                log.append_many([AuditEvent("SignData", f"c{k}", request_id=f"{k}-{i}-{j}") for j in range(1 + i % 2)])
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    def changer(k: int) -> None:
        start.wait()
        try:
            for i in range(8):
                _change(log, f"t{k}-{i}")
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=appender, args=(k,)) for k in range(4)]
    threads += [threading.Thread(target=changer, args=(k,)) for k in range(2)]
    _run_all(threads)
    assert errors == []
    report = verify_log(log.db, trusted_keys=[signer.public_key])
    assert report.ok and report.records == 4 * 18 + 16, report.problems
    assert report.checkpoints == (4 * 18 + 16) // 5  # every 5th seq, whoever wrote it
    by_seq = {r.seq: r for r in log.records()}
    things = _things(log)
    assert len(things) == 16 and all(by_seq[seq].request_id == name for name, seq in things.items())


@pytest.mark.parametrize("shared", [False, True])
def test_two_logs_change_and_append_on_one_sqlite_file(tmp_path, shared: bool) -> None:
    """Two logs (two daemons) on one SQLite file, each changing and appending: the locks are taken in the
    same order everywhere (audit locks, then the write lock), so nothing deadlocks and the chain is one."""
    url = f"sqlite:///{tmp_path}/shared.db"
    signer = SoftwareSigner.generate("sm2")
    a, b = (AuditLog(Database(url), signer, checkpoint_every=4, shared=shared) for _ in range(2))
    _sql(a, "CREATE TABLE things (name TEXT PRIMARY KEY, seq BIGINT NOT NULL)")

    def work(log: AuditLog, k: int) -> None:
        for i in range(10):
            if (i + k) % 2:
                _change(log, f"{k}-{i}")
            else:
                log.append(AuditEvent("SignData", f"c{k}", request_id=f"{k}-{i}"))

    threads = [threading.Thread(target=work, args=(log, k)) for k, log in enumerate([a, b, a, b])]
    _run_all(threads)
    report = verify_log(a.db, trusted_keys=[signer.public_key])
    assert report.ok and report.records == 40 and report.checkpoints == 10, report.problems
    assert len(_things(a)) == 20
