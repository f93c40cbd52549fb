"""`trustsvc pdf sign|batch-sign|verify|inspect`: e-licence PDF signing and verification.

Signing keys come from the key store like ``trustsvc key`` (``--store soft|hsm --key NAME``, passphrase or PIN
from a file or an environment variable); ``--dev-identity`` signs with a throw-away demo key (tests/demos only).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from cli.common import (
    add_key_store_args,
    database_url,
    emit,
    key_source,
    read_certificates,
    read_file,
    read_input,
    unreadable,
    write_output,
)
from trustsvc.errors import InvalidInput

LEVELS = ("B-B", "B-T", "B-LT", "B-LTA")


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser("pdf", help="sign and verify e-licence PDFs")
    s = p.add_subparsers(dest="pdf_command", metavar="ACTION")
    v = s.add_parser("verify", help="verification report for every signature")
    v.add_argument("pdf")
    v.add_argument("--trust", action="append", default=[], help="trust anchor certificate (PEM/DER), repeatable")
    v.add_argument("--crl", action="append", default=[], help="CRL file (DER), repeatable")
    v.add_argument("--allow-form-filling", action="store_true",
                   help="report form fields changed after a signature without failing it (default: they fail it)")
    v.add_argument("--db", help="seal registry database URL: a bound seal's status is looked up there (read only; "
                                "default: none, the status is not checked)")
    v.add_argument("--json", action="store_true")
    v.set_defaults(func=_verify)
    i = s.add_parser("inspect", help="list signatures and licence metadata without checking trust")
    i.add_argument("pdf")
    i.add_argument("--json", action="store_true")
    i.set_defaults(func=_inspect)
    c = s.add_parser("sign", help="sign one PDF with a key from the key store")
    c.add_argument("input")
    c.add_argument("-o", "--output", required=True, help="signed PDF (written atomically)")
    c.add_argument("--licence", help="licence metadata JSON (LicenceMetadata fields), written as XMP and signed")
    _signing_args(c)
    c.set_defaults(func=_sign)
    b = s.add_parser("batch-sign", help="sign many PDFs (files or directories of *.pdf) into a directory")
    b.add_argument("inputs", nargs="+")
    b.add_argument("-o", "--output", required=True, help="output directory (same file names)")
    b.add_argument("--workers", type=int, default=None, help="processes (default: CPU count; 0 = in this process)")
    b.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    b.add_argument("--licences", help="JSON object: input file name -> its licence metadata (as --licence); "
                                      "every input must have one")
    _signing_args(b)
    b.set_defaults(func=_batch)


def _signing_args(c: argparse.ArgumentParser) -> None:
    k = c.add_argument_group("signing key (as `trustsvc key`; passphrase/PIN never on the command line)")
    who = k.add_mutually_exclusive_group(required=True)
    who.add_argument("--key", help="key NAME or NAME@VERSION in the store; its certificate chain is used")
    who.add_argument("--dev-identity", choices=["sm2", "ecdsa", "rsa"],
                     help="DEMO/TEST ONLY: a throw-away key and CA made up for this run; never for real documents")
    add_key_store_args(k)
    g = c.add_argument_group("PAdES level and certification")
    g.add_argument("--level", type=str.upper, choices=LEVELS, default="B-B", help="PAdES baseline level")
    g.add_argument("--tsa-url", help="RFC 3161 time-stamping service for B-T and up")
    g.add_argument("--tsa-key", help="time-stamp locally with this key from the same store (timeStamping cert)")
    g.add_argument("--certify", type=int, choices=(1, 2, 3), help="certify with DocMDP 1, 2 or 3")
    g.add_argument("--reason", help="the signature's /Reason, e.g. '电子证照签发'")
    g.add_argument("--location", help="the signature's /Location")
    g.add_argument("--trust", action="append", default=[],
                   help="extra trust anchor (PEM/DER) for B-LT/B-LTA validation data, e.g. a remote TSA's root")
    g.add_argument("--crl", action="append", default=[], dest="sign_crl",
                   help="CRL (PEM/DER) to embed as B-LT/B-LTA validation data, e.g. the signer's CA's (repeatable)")
    a = c.add_argument_group("visible seal")
    a.add_argument("--seal-png", help="seal picture (PNG with transparency)")
    a.add_argument("--seal-org", help="draw the round red seal for this organisation")
    a.add_argument("--seal-id", help="picture of this registered seal (esID; active, lists the signer's cert)")
    a.add_argument("--db", help="seal registry database URL for --seal-id (default: HOME/trustsvc.db)")
    a.add_argument("--box", help="x,y,w,h in PDF points (origin bottom left)")
    a.add_argument("--page", type=int, default=0, help="page index for --box/--anchor (0 = first)")
    a.add_argument("--field", help="existing empty signature field to sign and show the seal in")
    a.add_argument("--anchor", help="place the seal right of this text on the page")
    a.add_argument("--seal-size", help="w,h in points with --anchor (default: the registered size, or 120,120)")
    a.add_argument("--seal-text", help="text under the seal, e.g. '%%(signer)s %%(ts)s' (CJK allowed; batch-sign "
                                       "then takes the ordinary path, which subsets the font per document)")


def _verify(args: argparse.Namespace) -> int:
    from trustsvc.pdf.verify import verify_pdf

    roots = [c.der for t in args.trust for c in read_certificates(t)]
    crls = [read_file(c) for c in args.crl]
    registry = None
    if args.db:
        from cli.seal import existing_seal_registry
        from trustsvc.seal.registry import SealRegistry

        registry = SealRegistry(existing_seal_registry(args.db))
    with _open_input(args.pdf) as f:
        report = verify_pdf(f, trust_roots=roots, crls=crls, allow_form_filling=args.allow_form_filling,
                            seal_registry=registry)
    emit(report.to_dict(), args.json, report.to_text())
    return 0 if report.valid else 1


def _inspect(args: argparse.Namespace) -> int:
    from trustsvc.pdf.verify import verify_pdf

    report = verify_pdf(read_input(args.pdf))
    rows = [{"field": s.field_name, "signer": s.signer, "algorithm": s.algorithm, "level": s.pades_level,
             "time": s.signing_time, "seal": s.seal_id} for s in report.signatures]
    emit({"metadata": report.metadata, "signatures": rows}, args.json,
         json.dumps({"metadata": report.metadata, "signatures": rows}, ensure_ascii=False, indent=2))
    return 0


def _sign(args: argparse.Namespace) -> int:
    from trustsvc.pdf.signing import sign_pdf

    _check_level(args)
    metadata = _licence(args.licence) if args.licence else None
    with _keys(args) as (signer, factories):
        appearance = _appearance(args, signer)
        timestamper = factories["timestamper"]() if factories["timestamper"] else None
        with _open_input(args.input) as f:
            signed = sign_pdf(f, signer, level=args.level, timestamper=timestamper, certify=args.certify,
                              metadata=metadata, appearance=appearance, trust_roots=_roots(args, signer, factories),
                              reason=args.reason, location=args.location, crls=_sign_crls(args))
    write_output(args.output, signed)
    return 0


def _batch(args: argparse.Namespace) -> int:
    from trustsvc.pdf.batch import BatchOptions, batch_sign

    _check_level(args)
    files = _expand(args.inputs)
    licences = _licences(args.licences, files) if args.licences else None
    with _keys(args) as (signer, factories):
        appearance = _appearance(args, signer)
    options = BatchOptions(appearance=appearance, level=args.level, certify=args.certify,
                           timestamper_factory=factories["timestamper"], trust_roots=_roots(args, signer, factories),
                           reason=args.reason, location=args.location, crls=_sign_crls(args))
    try:
        Path(args.output).mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise InvalidInput(f"cannot write into {args.output}: {exc.strerror or exc}",
                           reason="OUTPUT_UNWRITABLE") from None
    show = not args.quiet and sys.stderr.isatty()
    results = batch_sign(files, args.output, factories["signer"], workers=args.workers, options=options,
                         licences=licences,
                         progress=_bar if show else None, start_method="spawn" if args.store == "hsm" else None)
    if show:
        print(file=sys.stderr)
    failed = [r for r in results if r.error]
    for r in failed:
        print(f"{r.source}: {r.error}", file=sys.stderr)
    if not failed:
        return 0
    return 2 if all(r.input_error for r in failed) else 3


def _roots(args: argparse.Namespace, signer: Any, factories: dict[str, Any]) -> tuple[bytes, ...]:
    """Trust anchors for B-LT/B-LTA validation data: the signer's and local TSA's roots, plus --trust files."""
    from trustsvc.pki.certificate import Certificate

    extra = []
    for path in args.trust:
        try:
            extra += [c.der for c in Certificate.load_all(Path(path).read_bytes())]
        except OSError as exc:
            raise InvalidInput(f"cannot read {path}: {exc.strerror}", reason="BAD_TRUST_ANCHOR") from None
    return (signer.certificate_chain[-1], *factories["tsa_roots"], *extra)


def _sign_crls(args: argparse.Namespace) -> tuple[bytes, ...]:
    """--crl files as DER, each checked to be a CRL (BAD_CRL) before anything is signed."""
    from trustsvc.pki.crl import CertificateRevocationList

    return tuple(CertificateRevocationList.load(read_file(path)).der for path in args.sign_crl)


def _bar(done: int, total: int) -> None:
    filled = 30 * done // total
    print(f"\r[{'#' * filled}{'.' * (30 - filled)}] {done}/{total}", end="", file=sys.stderr, flush=True)


def _expand(inputs: list[str]) -> list[Path]:
    """Files as given; directories contribute their *.pdf files (sorted)."""
    files: list[Path] = []
    for item in map(Path, inputs):
        if item.is_dir():
            files.extend(sorted(p for p in item.iterdir() if p.suffix.lower() == ".pdf" and p.is_file()))
        elif item.is_file():
            files.append(item)
        else:
            raise InvalidInput(f"no such file or directory: {item}", reason="INPUT_NOT_FOUND")
    if not files:
        raise InvalidInput("no PDF files to sign", reason="NO_INPUT_FILES")
    seen: dict[str, Path] = {}
    for f in files:  # outputs keep the file name: a second x.pdf would overwrite the first
        if f.name in seen:
            raise InvalidInput(f"{seen[f.name]} and {f} would both be written as {f.name}: sign them in separate "
                               "runs", reason="DUPLICATE_FILE_NAME")
        seen[f.name] = f
    return files


def _open_input(path: str) -> Any:
    try:
        return open(path, "rb")
    except OSError as exc:
        raise unreadable(path, exc) from None


def _check_level(args: argparse.Namespace) -> None:
    if args.level != "B-B" and not (args.tsa_url or args.tsa_key):
        raise InvalidInput(f"PAdES {args.level} needs --tsa-url or --tsa-key", reason="NO_TIMESTAMPER")
    if args.tsa_url and args.tsa_key:
        raise InvalidInput("give --tsa-url or --tsa-key, not both", reason="BAD_USAGE")
    if args.dev_identity and args.tsa_key:
        raise InvalidInput("--tsa-key needs a key store; with --dev-identity use --tsa-url", reason="BAD_USAGE")


class _keys:  # noqa: N801 (a context manager)
    """(signer, {"signer": factory, "timestamper": factory or None, "tsa_roots": ...}); the store is opened and the
    keys checked here, before any output is written."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.store: Any = None

    def __enter__(self) -> tuple[Any, dict[str, Any]]:
        import functools

        from trustsvc.keys.source import load_signer
        from trustsvc.pdf import keysource
        from trustsvc.pki.certificate import certificate_in_force

        args = self.args
        tsa: Any = functools.partial(keysource.http_timestamper, args.tsa_url) if args.tsa_url else None
        if args.dev_identity:
            from trustsvc.pdf.devkit import dev_identity

            print(f"warning: signing with a throw-away {args.dev_identity} demo identity (--dev-identity); "
                  "not for real documents", file=sys.stderr)
            factory = functools.partial(_dev_signer, args.dev_identity)
            return dev_identity(args.dev_identity).signer, {"signer": factory, "timestamper": tsa, "tsa_roots": ()}
        source = key_source(args)
        self.store = source.open()
        signer = source.signer(self.store, args.key)
        certificate_in_force(signer.certificate_chain[0], args.key)  # an expired key's signatures would not verify
        tsa_roots: tuple[bytes, ...] = ()
        if args.tsa_key:
            from trustsvc.tsa.authority import LocalTsa

            tsa_signer = source.signer(self.store, args.tsa_key)
            certificate_in_force(tsa_signer.certificate_chain[0], args.tsa_key)
            LocalTsa(tsa_signer)  # refuses a key without a timeStamping certificate
            tsa = functools.partial(keysource.local_tsa_timestamper, source, args.tsa_key)
            tsa_roots = (tsa_signer.certificate_chain[-1],)
        return signer, {"signer": functools.partial(load_signer, source, args.key), "timestamper": tsa,
                        "tsa_roots": tsa_roots}

    def __exit__(self, *exc: object) -> None:
        close = getattr(self.store, "close", None)
        if close is not None:
            close()


def _dev_signer(kind: str) -> Any:
    """DEMO/TEST ONLY: a fresh throw-away identity per process."""
    from trustsvc.pdf.devkit import dev_identity

    return dev_identity(kind).signer


def _licence(path: str) -> Any:
    from trustsvc.pdf.metadata import LicenceMetadata

    data = _json_file(path, "BAD_LICENCE_METADATA")
    if not isinstance(data, dict):
        raise InvalidInput(f"{path} must hold a JSON object", reason="BAD_LICENCE_METADATA")
    return LicenceMetadata.parse(data, source=path)


def _licences(path: str, files: list[Path]) -> dict[str, Any]:
    """Licence metadata per input file name, each checked as --licence; one for every input, none for others."""
    from trustsvc.pdf.metadata import LicenceMetadata

    data = _json_file(path, "BAD_LICENCE_METADATA")
    if not isinstance(data, dict) or not all(isinstance(v, dict) for v in data.values()):
        raise InvalidInput(f"{path} must hold a JSON object mapping file names to licence metadata objects",
                           reason="BAD_LICENCE_METADATA")
    names = {f.name for f in files}
    missing, unknown = sorted(names - set(data)), sorted(set(data) - names)
    if missing or unknown:
        raise InvalidInput(f"{path}: no licence metadata for {missing[:10]}; entries for files not given: "
                           f"{unknown[:10]}", reason="BAD_LICENCE_METADATA")
    return {name: LicenceMetadata.parse(meta, source=f"{path}: {name}") for name, meta in data.items()}


def _json_file(path: str, reason: str) -> Any:
    try:
        return json.loads(Path(path).read_text(encoding="utf-8"))
    except OSError as exc:
        raise InvalidInput(f"cannot read {path}: {exc.strerror}", reason=reason) from None
    except ValueError as exc:
        raise InvalidInput(f"{path} is not JSON: {exc}", reason=reason) from None


def _numbers(text: str, n: int, what: str) -> tuple[float, ...]:
    try:
        values = tuple(float(v) for v in text.split(","))
    except ValueError:
        values = ()
    if len(values) != n:
        raise InvalidInput(f"{what} must be {n} comma-separated numbers, got {text!r}", reason="BAD_SEAL_PLACEMENT")
    return values


def _appearance(args: argparse.Namespace, signer: Any) -> Any:
    from trustsvc.pdf.appearance import SealAppearance

    given = [x for x in (args.seal_png, args.seal_org, args.seal_id) if x]
    if not given:
        if args.box or args.anchor or args.seal_text:
            raise InvalidInput("--box/--anchor/--seal-text need a seal picture: --seal-png, --seal-org or --seal-id",
                               reason="BAD_SEAL_PLACEMENT")
        return None
    if len(given) > 1:
        raise InvalidInput("give one of --seal-png, --seal-org, --seal-id", reason="BAD_SEAL_PICTURE")
    size: tuple[float, ...] = (120.0, 120.0)
    registered = None  # the SESeal of --seal-id: the signature binds it
    if args.seal_png:
        try:
            picture = Path(args.seal_png).read_bytes()
        except OSError as exc:
            raise InvalidInput(f"cannot read {args.seal_png}: {exc.strerror}", reason="BAD_SEAL_PICTURE") from None
    elif args.seal_org:
        from trustsvc.seal.picture import render_png

        picture = render_png(args.seal_org)
    else:
        from cli.seal import existing_seal_registry
        from trustsvc.pdf.registered_seal import registered_seal_picture
        from trustsvc.seal.registry import SealRegistry

        registry = SealRegistry(existing_seal_registry(database_url(args)))
        seal = registered_seal_picture(registry, args.seal_id, signer.certificate_chain[0])
        picture, size, registered = seal.picture, seal.size, seal.der
    if args.seal_size:
        size = _numbers(args.seal_size, 2, "--seal-size")
    box = _numbers(args.box, 4, "--box") if args.box else None
    return SealAppearance(picture, page=args.page, box=box, field=args.field, anchor=args.anchor,  # type: ignore[arg-type]
                          size=size, text=args.seal_text, seal=registered)  # type: ignore[arg-type]
