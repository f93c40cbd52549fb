"""`trustsvc audit verify|tail`: check the daemon's hash-chained audit log, show its latest records."""

from __future__ import annotations

import argparse
import json
import sqlite3
from pathlib import Path

from cli.common import emit, home, read_file, unreadable
from trustsvc.errors import InvalidInput

SQLITE_MAGIC = b"SQLite format 3\x00"


def _db(args: argparse.Namespace, *, existing: bool = False) -> object:
    from trustsvc.store.database import Database, sqlite_path

    url = args.db or f"sqlite:///{home(args) / 'trustsvc.db'}"
    path = sqlite_path(url)
    if existing and path is not None:
        _check_sqlite_log(path)
    return Database(url)


def _check_sqlite_log(path: str) -> None:
    """The SQLite file to verify exists and holds an audit log; checked read-only, so that a missing path, an empty
    or foreign file is reported (exit 2) instead of being created or given the audit tables and passed as OK."""
    if path == ":memory:":
        return
    file = Path(path)
    if file.exists() and not file.is_file():
        raise InvalidInput(f"cannot read {path}: not a regular file", reason="INPUT_UNREADABLE")
    try:
        with file.open("rb") as fh:
            head = fh.read(16)
    except OSError as exc:
        raise unreadable(path, exc) from None
    if head != SQLITE_MAGIC:
        raise InvalidInput(f"{path} is not an SQLite database" + ("" if head else " (an empty file)"),
                           reason="NOT_AN_AUDIT_DATABASE")
    try:
        conn = sqlite3.connect(f"{Path(path).resolve().as_uri()}?mode=ro", uri=True)
        try:
            tables = {row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        finally:
            conn.close()
    except sqlite3.Error as exc:
        raise InvalidInput(f"{path} is not a readable SQLite database: {exc}", reason="NOT_AN_AUDIT_DATABASE") from None
    missing = sorted({"audit_log", "audit_head", "audit_checkpoints"} - tables)
    if missing:
        raise InvalidInput(f"{path} holds no audit log (no table {', '.join(missing)})", reason="NO_AUDIT_LOG")


def _trusted(args: argparse.Namespace) -> list[object] | None:
    if not args.audit_key:
        return None
    from trustsvc.algorithms.encoding import load_public_key

    return [load_public_key(read_file(args.audit_key))]


def _verify(args: argparse.Namespace) -> int:
    from trustsvc.audit import verify_log

    keys = _trusted(args)
    report = verify_log(_db(args, existing=True), trusted_keys=keys)  # type: ignore[arg-type]
    lines = [f"audit log: {report.records} records, {report.checkpoints} signed checkpoints, head {report.head_seq}"]
    lines += [f"  seq {p.seq}: {p.kind}: {p.message}" for p in report.problems]
    lines.append("OK" if report.ok else f"TAMPERED (first problem at seq {report.first_bad_seq})")
    emit(report.to_json(), args.json, "\n".join(lines))
    return 0 if report.ok else 1


def _tail(args: argparse.Namespace) -> int:
    from trustsvc.audit import AuditLog

    records = AuditLog(_db(args, existing=True)).tail(args.n)  # type: ignore[arg-type]  # never creates one
    for rec in records:
        if args.json:
            print(json.dumps(rec.to_json(), ensure_ascii=False))
        else:
            print(f"{rec.seq:>8} {rec.time} {rec.client:<24} {rec.operation:<36} {rec.ref:<24} {rec.result} "
                  f"{rec.document_hash[:16]}")
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = subparsers.add_parser("audit", help="verify or show the daemon's audit log", description=__doc__)
    sub = p.add_subparsers(dest="audit_command", metavar="ACTION")
    v = sub.add_parser("verify", help="recompute the hash chain and check signed checkpoints (exit 1 on tampering)")
    v.add_argument("--db", help="database URL (default: <home>/trustsvc.db)")
    v.add_argument("--audit-key", help="PEM public key the checkpoints must be signed with")
    v.add_argument("--json", action="store_true")
    v.set_defaults(func=_verify)
    t = sub.add_parser("tail", help="the latest records")
    t.add_argument("--db", help="database URL (default: <home>/trustsvc.db)")
    t.add_argument("-n", type=int, default=20)
    t.add_argument("--json", action="store_true")
    t.set_defaults(func=_tail)
