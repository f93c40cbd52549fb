"""`trustsvc pdf sign|batch-sign|verify|inspect`: e-licence PDF signing and verification."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from cli.common import emit, read_input


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("pdf", help="sign and verify e-licence PDFs")
    s = p.add_subparsers(dest="pdf_command", metavar="ACTION")
    v = s.add_parser("verify", help="verification report for every signature")
    v.add_argument("pdf")
    v.add_argument("--trust", action="append", default=[], help="trust anchor certificate (PEM/DER), repeatable")
    v.add_argument("--crl", action="append", default=[], help="CRL file (DER), repeatable")
    v.add_argument("--json", action="store_true")
    v.set_defaults(func=_verify)
    i = s.add_parser("inspect", help="list signatures and licence metadata without checking trust")
    i.add_argument("pdf")
    i.add_argument("--json", action="store_true")
    i.set_defaults(func=_inspect)
    for name, func in (("sign", _sign), ("batch-sign", _batch)):
        c = s.add_parser(name, help=f"{name} with a development identity (demo keys)")
        c.add_argument("inputs", nargs="+" if name == "batch-sign" else 1)
        c.add_argument("-o", "--output", required=True, help="output file (sign) or directory (batch-sign)")
        c.add_argument("--key-type", default="sm2", choices=["sm2", "ecdsa", "rsa"])
        c.add_argument("--workers", type=int, default=None)
        c.set_defaults(func=func)
        if name == "sign":
            g = c.add_argument_group("visible seal (ordinary path only)")
            g.add_argument("--seal-png", help="seal picture (PNG with transparency)")
            g.add_argument("--seal-org", help="draw the round red seal for this organisation instead of --seal-png")
            g.add_argument("--box", help="x,y,w,h in PDF points (origin bottom left)")
            g.add_argument("--page", type=int, default=0, help="page index for --box/--anchor (0 = first)")
            g.add_argument("--field", help="existing empty signature field to sign and show the seal in")
            g.add_argument("--anchor", help="place the seal right of this text on the page")
            g.add_argument("--seal-size", default="120,120", help="w,h in points with --anchor")
            g.add_argument("--seal-text", help="text under the seal, e.g. '%%(signer)s %%(ts)s' (CJK allowed)")


def _verify(args: argparse.Namespace) -> int:
    from trustsvc.pdf.verify import verify_pdf
    from trustsvc.pki.certificate import Certificate

    roots = [c.der for t in args.trust for c in Certificate.load_all(Path(t).read_bytes())]
    crls = [Path(c).read_bytes() for c in args.crl]
    with open(args.pdf, "rb") as f:
        report = verify_pdf(f, trust_roots=roots, crls=crls)
    emit(report.to_dict(), args.json, report.to_text())
    return 0 if report.valid else 1


def _inspect(args: argparse.Namespace) -> int:
    from trustsvc.pdf.verify import verify_pdf

    report = verify_pdf(read_input(args.pdf))
    rows = [{"field": s.field_name, "signer": s.signer, "algorithm": s.algorithm, "level": s.pades_level,
             "time": s.signing_time} for s in report.signatures]
    emit({"metadata": report.metadata, "signatures": rows}, args.json,
         json.dumps({"metadata": report.metadata, "signatures": rows}, ensure_ascii=False, indent=2))
    return 0


def _dev_signer(kind: str):  # demo identity; production keys come from the keystore/HSM via the daemon
    from trustsvc.pdf.devkit import dev_identity

    return dev_identity(kind).signer


def _sign(args: argparse.Namespace) -> int:
    from trustsvc.fileio import write_atomic
    from trustsvc.pdf.signing import sign_pdf

    appearance = _appearance(args)
    with open(args.inputs[0], "rb") as f:
        write_atomic(Path(args.output), sign_pdf(f, _dev_signer(args.key_type), appearance=appearance))
    return 0


def _numbers(text: str, n: int, what: str) -> tuple[float, ...]:
    from trustsvc.errors import InvalidInput

    try:
        values = tuple(float(v) for v in text.split(","))
    except ValueError:
        values = ()
    if len(values) != n:
        raise InvalidInput(f"{what} must be {n} comma-separated numbers, got {text!r}", reason="BAD_SEAL_PLACEMENT")
    return values


def _appearance(args: argparse.Namespace):  # type: ignore[no-untyped-def]
    from trustsvc.pdf.appearance import SealAppearance

    if not (args.seal_png or args.seal_org):
        return None
    if args.seal_png:
        picture = Path(args.seal_png).read_bytes()
    else:
        from trustsvc.seal.picture import render_png

        picture = render_png(args.seal_org)
    box = _numbers(args.box, 4, "--box") if args.box else None
    return SealAppearance(picture, page=args.page, box=box, field=args.field, anchor=args.anchor,  # type: ignore[arg-type]
                          size=_numbers(args.seal_size, 2, "--seal-size"), text=args.seal_text)  # type: ignore[arg-type]


def _batch(args: argparse.Namespace) -> int:
    import functools

    from trustsvc.pdf.batch import batch_sign

    def bar(done: int, total: int) -> None:
        filled = 30 * done // total
        print(f"\r[{'#' * filled}{'.' * (30 - filled)}] {done}/{total}", end="", file=sys.stderr, flush=True)

    results = batch_sign(args.inputs, args.output, functools.partial(_dev_signer, args.key_type),
                         workers=args.workers, progress=bar)
    print(file=sys.stderr)
    failed = [r for r in results if r.error]
    for r in failed:
        print(f"{r.source}: {r.error}", file=sys.stderr)
    return 3 if failed else 0
