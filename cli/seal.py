"""``trustsvc seal``: make, list, show, suspend, resume, revoke, export, render, verify."""

from __future__ import annotations

import argparse
import datetime as dt
from typing import TYPE_CHECKING

from cli.common import (
    database_url,
    emit,
    existing_database,
    home,
    parse_time,
    read_certificates,
    read_file,
    read_input,
    write_output,
)

if TYPE_CHECKING:
    from trustsvc.store.database import Database

EXIT_OK, EXIT_INVALID, EXIT_BAD_INPUT = 0, 1, 2


def _registry(args: argparse.Namespace, *, read_only: bool = False):  # type: ignore[no-untyped-def]
    """The seal registry; ``read_only`` (verify, list, show, export) opens an existing one without writing to it."""
    from trustsvc.seal.registry import SealRegistry

    if read_only:
        return SealRegistry(existing_seal_registry(database_url(args)))
    return SealRegistry(database_url(args))


def existing_seal_registry(url: str) -> Database:
    """The database holding a seal registry, read-only (a missing or foreign file is bad input, exit 2)."""
    return existing_database(url, tables=("seal_records", "seal_history"), not_database="NOT_A_SEAL_DATABASE",
                             missing="NO_SEAL_REGISTRY")


def _time(text: str | None) -> dt.datetime | None:
    return parse_time(text) if text else None


def cmd_verify(args: argparse.Namespace) -> int:
    from trustsvc.pki.crl import CertificateRevocationList
    from trustsvc.seal.report import Verdict
    from trustsvc.seal.verify import time_stamp_verifier, verify

    trust = [c for path in args.trust or [] for c in read_certificates(path)]
    registry = _registry(args, read_only=True) if args.db else None
    crls = [CertificateRevocationList.load(read_file(path)) for path in args.crl]
    report = verify(read_input(args.file), document=read_file(args.doc) if args.doc else None,
                    at=_time(args.at), trust=trust, registry=registry,
                    timestamp_verifier=time_stamp_verifier(trust, crls=crls) if trust else None, crls=crls)
    emit(report.to_dict(), args.json, report.to_text())
    if report.verdict is Verdict.NOT_SES:
        return EXIT_BAD_INPUT
    return EXIT_OK if report.valid else EXIT_INVALID


def cmd_render(args: argparse.Namespace) -> int:
    from trustsvc.seal.picture import render_png, render_svg

    if args.output.endswith(".svg"):
        data = render_svg(args.org, name=args.name, code=args.code, diameter_mm=args.size)
    else:
        data = render_png(args.org, name=args.name, code=args.code, diameter_mm=args.size, dpi=args.dpi)
    write_output(args.output, data)
    print(args.output)
    return EXIT_OK


def cmd_make(args: argparse.Namespace) -> int:
    from trustsvc.algorithms.signer import Signer, SoftwareSigner
    from trustsvc.pki.certificate import Certificate
    from trustsvc.seal.make import Picture, SealSpec, SealType, make_seal
    from trustsvc.seal.picture import check_upload, render_png

    maker_cert = Certificate.load(read_file(args.maker_cert))
    if args.maker_key:
        from trustsvc.algorithms.encoding import load_private_key

        maker: Signer = SoftwareSigner(load_private_key(read_file(args.maker_key)))
    else:
        from trustsvc.keys.factory import open_keystore

        maker = open_keystore("soft", home(args)).signer(args.maker_keyname)
    holders = [c.der for p in args.holder_cert for c in Certificate.load_all(read_file(p))]
    if args.picture:
        data = read_file(args.picture)
        kind = check_upload(data)
    else:
        data = render_png(args.org or args.name, name=args.label, code=args.es_id or "", diameter_mm=args.size)
        kind = "PNG"
    registry = _registry(args)
    es_id = args.es_id or registry.next_es_id(args.prefix)
    now = dt.datetime.now(dt.UTC)
    spec = SealSpec(es_id=es_id, seal_type=SealType.parse(args.type), name=args.name, holder_certs=holders,
                    valid_start=_time(args.valid_from) or now,
                    valid_end=_time(args.valid_to) or now + dt.timedelta(days=args.days),
                    picture=Picture(kind, data, round(args.size), round(args.size)),
                    cert_list_type=2 if args.digests else 1)
    seal = make_seal(spec, maker, maker_cert)
    record = registry.register(seal, actor=args.actor, holder=args.holder)
    if args.output:
        write_output(args.output, seal)
    emit({"es_id": record.es_id, "status": record.status}, True)
    return EXIT_OK


def _record_dict(r) -> dict[str, object]:  # type: ignore[no-untyped-def]
    return {"es_id": r.es_id, "type": r.seal_type, "name": r.name, "holder": r.holder, "maker": r.maker,
            "status": r.status, "valid_start": r.valid_start.isoformat(), "valid_end": r.valid_end.isoformat()}


def cmd_list(args: argparse.Namespace) -> int:
    from trustsvc.seal.make import SealType

    reg = _registry(args, read_only=True)
    rows = reg.query(holder=args.holder, status=args.status,
                     seal_type=int(SealType.parse(args.type)) if args.type else None)
    emit([_record_dict(r) for r in rows], True)
    return EXIT_OK


def cmd_show(args: argparse.Namespace) -> int:
    reg = _registry(args, read_only=True)
    out = _record_dict(reg.get(args.es_id))
    out["history"] = [{"at": h.at.isoformat(), "actor": h.actor, "action": h.action, "from": h.from_status,
                       "to": h.to_status, "reason": h.reason} for h in reg.history(args.es_id)]
    emit(out, True)
    return EXIT_OK


def cmd_change(args: argparse.Namespace) -> int:
    reg = _registry(args)
    record = getattr(reg, args.action)(args.es_id, actor=args.actor, reason=args.reason)
    emit(_record_dict(record), True)
    return EXIT_OK


def cmd_export(args: argparse.Namespace) -> int:
    der = _registry(args, read_only=True).get(args.es_id).der
    write_output(args.output, der)
    print(args.output)
    return EXIT_OK


def register(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = subparsers.add_parser("seal", help="electronic seals (GB/T 38540)")
    sub = p.add_subparsers(dest="seal_command", metavar="ACTION")

    def common(sp: argparse.ArgumentParser) -> argparse.ArgumentParser:
        sp.add_argument("--db", help="registry database URL (default: HOME/trustsvc.db)")
        return sp

    v = common(sub.add_parser("verify", help="verify a seal or seal signature"))
    v.add_argument("file")
    v.add_argument("--doc", help="the protected original (dataHash = SM3 of its bytes)")
    v.add_argument("--at", help="verification time, ISO 8601 (default now)")
    v.add_argument("--trust", action="append", help="trust anchor certificates (PEM/DER)")
    v.add_argument("--crl", action="append", default=[],
                   help="CRL (DER/PEM) for the maker's and signer's certificates, judged at the signing time "
                        "(repeatable)")
    v.add_argument("--json", action="store_true")
    v.set_defaults(func=cmd_verify)

    r = sub.add_parser("render", help="draw the round red seal picture (PNG or SVG by extension)")
    r.add_argument("org")
    r.add_argument("--name", default="")
    r.add_argument("--code", default="")
    r.add_argument("--size", type=float, default=42.0, help="diameter in mm")
    r.add_argument("--dpi", type=int, default=300)
    r.add_argument("-o", "--output", required=True)
    r.set_defaults(func=cmd_render)

    m = common(sub.add_parser("make", help="make and register a seal"))
    m.add_argument("--name", required=True)
    m.add_argument("--type", default="official")
    m.add_argument("--org", help="organisation name drawn on the seal (default: --name)")
    m.add_argument("--label", default="", help="horizontal text on the drawn seal")
    m.add_argument("--holder-cert", action="append", required=True)
    m.add_argument("--holder", help="holder name recorded in the registry")
    m.add_argument("--maker-cert", required=True)
    m.add_argument("--maker-key", help="PEM PKCS#8 maker key (else the soft keystore key --maker-keyname)")
    m.add_argument("--maker-keyname", default="seal-maker")
    m.add_argument("--es-id")
    m.add_argument("--prefix", default="000000", help="esID prefix (region/authority code) for the sequence")
    m.add_argument("--picture", help="PNG/GIF/SVG file")
    m.add_argument("--size", type=float, default=42.0)
    m.add_argument("--valid-from")
    m.add_argument("--valid-to")
    m.add_argument("--days", type=int, default=365)
    m.add_argument("--digests", action="store_true", help="certList as SM3 digests")
    m.add_argument("--actor", default="admin")
    m.add_argument("-o", "--output")
    m.set_defaults(func=cmd_make)

    ls = common(sub.add_parser("list", help="list seals"))
    ls.add_argument("--holder")
    ls.add_argument("--type")
    ls.add_argument("--status")
    ls.set_defaults(func=cmd_list)

    sh = common(sub.add_parser("show", help="one seal with its history"))
    sh.add_argument("es_id")
    sh.set_defaults(func=cmd_show)

    for action in ("suspend", "resume", "revoke"):
        c = common(sub.add_parser(action, help=f"{action} a seal"))
        c.add_argument("es_id")
        c.add_argument("--actor", required=True)
        c.add_argument("--reason", required=True)
        c.set_defaults(func=cmd_change, action=action)

    e = common(sub.add_parser("export", help="write a seal's DER"))
    e.add_argument("es_id")
    e.add_argument("-o", "--output", required=True)
    e.set_defaults(func=cmd_export)
