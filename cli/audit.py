"""`trustsvc audit verify|tail|find`: check the daemon's hash-chained audit log, show its latest records, find
the records of a document, a request, a client, a key or seal, or a time span."""

from __future__ import annotations

import argparse
import json
from typing import TYPE_CHECKING

from cli.common import database_url, emit, existing_database, parse_time, read_file, read_input

if TYPE_CHECKING:
    from trustsvc.algorithms.keypair import PublicKey
    from trustsvc.audit import AuditRecord
    from trustsvc.audit.search import Match
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

    for rec in AuditLog(_existing_log(args)).tail(args.n):
        print(json.dumps(rec.to_json(), ensure_ascii=False) if args.json else _line(rec))
    return 0


def _line(rec: AuditRecord, matched: str = "") -> str:
    return (f"{rec.seq:>8} {rec.time} {rec.client:<24} {rec.operation:<36} {rec.ref:<24} {rec.result} "
            f"{rec.document_hash[:16]}" + (f"  [{matched}]" if matched else ""))


def _find(args: argparse.Namespace) -> int:
    """Exit 0 when something matched, 1 when nothing did (as grep)."""
    from trustsvc.audit.search import AuditQuery, document_hashes, find_records

    hashes: dict[str, str] = {h.strip().lower(): "given hash" for h in args.hash}
    for path in args.document:
        hashes.update(document_hashes(read_input(path)))
    query = AuditQuery(request_id=args.request_id, operation=args.operation, client=args.client, ref=args.ref,
                       seal=args.seal,
                       since=parse_time(args.since) if args.since else None,
                       until=parse_time(args.until) if args.until else None, hashes=list(hashes), limit=args.n)
    matches = find_records(_existing_log(args), query)
    if args.json:
        for m in matches:
            print(json.dumps({**m.to_json(), "hash_is": _hash_is(m, hashes)}, ensure_ascii=False))
    else:
        for m in matches:
            print(_line(m.record, f"{m.matched}: {_hash_is(m, hashes)}" if m.matched else ""))
        if len(matches) == args.n:
            print(f"(first {args.n} matches; -n for more, or narrow the query)")
    return 0 if matches else 1


def _hash_is(match: Match, hashes: dict[str, str]) -> str | None:
    """What the matched hash was computed over (``--document``) or "given hash" (``--hash``)."""
    if not match.matched:
        return None
    record, detail = match.record, json.loads(match.record.detail)
    if match.matched == "document":
        return hashes.get(record.document_hash.lower())
    if match.matched == "signed output":
        return hashes.get(str(detail.get("signed_sha256", "")).lower())
    item = next(i for i in detail["items"] if str(i[0]) == match.matched.removeprefix("batch item "))
    return hashes.get(str(item[1]).lower())


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
    f = sub.add_parser("find", help="records of a document, request, client, key or seal, or time span (exit 1 when "
                                    "none match)")
    f.add_argument("--db", help="database URL (default: <home>/trustsvc.db)")
    f.add_argument("--document", action="append", default=[],
                   help="a file (e.g. a signed PDF): records naming its SHA-256 or SM3, or those of an earlier PDF "
                        "revision (what a signer received), as input, signed output or batch item; repeatable")
    f.add_argument("--hash", action="append", default=[], help="a hex digest a record names; repeatable")
    f.add_argument("--request-id")
    f.add_argument("--operation", help="e.g. DocumentService/SignPdf, or a prefix ending in * (DocumentService/*)")
    f.add_argument("--client", help="the caller's identity as recorded, e.g. cn=demo-client")
    f.add_argument("--ref", help="the key or seal as recorded, e.g. default@1 or seal:TS00000001")
    f.add_argument("--seal", help="an esID: the seal's own operations and the PDFs stamped with it")
    f.add_argument("--since", help="ISO 8601 time (inclusive; naive times are UTC)")
    f.add_argument("--until", help="ISO 8601 time (inclusive)")
    f.add_argument("-n", type=int, default=100, help="at most this many matches (default 100)")
    f.add_argument("--json", action="store_true", help="one JSON object per line")
    f.set_defaults(func=_find)
