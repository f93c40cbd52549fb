"""`trustsvc audit verify|tail`: check the daemon's hash-chained audit log, show its latest records."""

from __future__ import annotations

import argparse
import json
from typing import TYPE_CHECKING

from cli.common import database_url, emit, existing_database, read_file

if TYPE_CHECKING:
    from trustsvc.algorithms.keypair import PublicKey
    from trustsvc.store.database import Database


def _existing_log(args: argparse.Namespace) -> Database:
    """The audit database, read-only: a missing, empty or foreign file is reported (exit 2), never created,
    given the audit tables or passed as OK."""
    return existing_database(database_url(args), tables=("audit_log", "audit_head", "audit_checkpoints"),
                             not_database="NOT_AN_AUDIT_DATABASE", missing="NO_AUDIT_LOG")


def _trusted(args: argparse.Namespace) -> list[PublicKey] | None:
    if not args.audit_key:
        return None
    from trustsvc.algorithms.encoding import load_public_key

    return [load_public_key(read_file(args.audit_key))]


def _verify(args: argparse.Namespace) -> int:
    from trustsvc.audit import verify_log

    keys = _trusted(args)
    report = verify_log(_existing_log(args), trusted_keys=keys)
    lines = [f"audit log: {report.records} records, {report.checkpoints} signed checkpoints, head {report.head_seq}"]
    lines += [f"  seq {p.seq}: {p.kind}: {p.message}" for p in report.problems]
    lines.append("OK" if report.ok else f"TAMPERED (first problem at seq {report.first_bad_seq})")
    emit(report.to_json(), args.json, "\n".join(lines))
    return 0 if report.ok else 1


def _tail(args: argparse.Namespace) -> int:
    from trustsvc.audit import AuditLog

    records = AuditLog(_existing_log(args)).tail(args.n)
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
