"""``trustsvc tsa``: get, check and serve RFC 3161 time stamps.

    trustsvc tsa stamp FILE [--url URL | --key KEY --cert CERT] [--hash sm3] [--out TOKEN]
    trustsvc tsa verify TOKEN [--file FILE] [--ca ROOT_PEM] [--json]
    trustsvc tsa serve --key KEY --cert CERT [--chain PEM] [--host 127.0.0.1] [--port 3180]
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

from cli.common import emit, read_certificates, read_file, read_input, write_output
from trustsvc.algorithms import load_private_key
from trustsvc.algorithms.signer import SoftwareSigner
from trustsvc.errors import DecodeError, InvalidInput
from trustsvc.pki.certificate import Certificate


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("tsa", help="RFC 3161 time stamps: stamp, verify, serve")
    sub = parser.add_subparsers(dest="tsa_command", metavar="ACTION")

    stamp = sub.add_parser("stamp", help="time-stamp a file (remote TSA by --url, or a local key)")
    stamp.add_argument("file", help="file to time-stamp ('-' for stdin)")
    stamp.add_argument("--url", help="RFC 3161 HTTP endpoint")
    _key_flags(stamp, required=False)
    stamp.add_argument("--hash", default="sm3", choices=["sm3", "sha256", "sha384", "sha512"])
    stamp.add_argument("--out", help="write the TimeStampToken (DER) here; default FILE.tst")
    stamp.add_argument("--timeout", type=float, default=10.0)
    stamp.set_defaults(func=_stamp)

    verify = sub.add_parser("verify", help="verify a TimeStampToken (or TimeStampResp)")
    verify.add_argument("token", help="DER token or response file")
    verify.add_argument("--file", help="the time-stamped file, to check the imprint")
    verify.add_argument("--ca", help="PEM trust anchors for the TSA certificate chain")
    verify.add_argument("--json", action="store_true", help="print the full report as JSON")
    verify.set_defaults(func=_verify)

    serve = sub.add_parser("serve", help="run a local time-stamping authority over HTTP")
    _key_flags(serve, required=True)
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=3180)
    serve.add_argument("--policy", default=None, help="TSA policy OID")
    serve.set_defaults(func=_serve)


def _key_flags(parser: argparse.ArgumentParser, required: bool) -> None:
    parser.add_argument("--key", required=required, help="TSA private key (PEM/DER PKCS#8)")
    parser.add_argument("--cert", required=required, help="TSA certificate (critical EKU timeStamping)")
    parser.add_argument("--chain", help="PEM bundle of CA certificates to include")
    parser.add_argument("--key-password-env", help="environment variable holding the key password")


def _local_tsa(args: argparse.Namespace):  # type: ignore[no-untyped-def]
    from trustsvc.tsa import LocalTsa

    password = os.environ.get(args.key_password_env, "").encode() if args.key_password_env else None
    key = load_private_key(read_file(args.key), password)
    chain = [c.der for c in Certificate.load_all(read_file(args.cert))]
    if args.chain:
        chain += [c.der for c in Certificate.load_all(read_file(args.chain))]
    signer = SoftwareSigner(key, certificate_chain=chain)
    kwargs = {"policy_oid": args.policy} if getattr(args, "policy", None) else {}
    return LocalTsa(signer, **kwargs)


def _stamp(args: argparse.Namespace) -> int:
    from trustsvc.tsa import HttpTsaClient

    data = read_input(args.file)
    if args.url:
        token = HttpTsaClient(args.url, timeout=args.timeout).timestamp(data, hash_alg=args.hash)
    elif args.key and args.cert:
        token = _local_tsa(args).timestamp(data, hash_alg=args.hash)
    else:
        raise InvalidInput("give --url, or --key and --cert for a local authority", reason="BAD_USAGE")
    out = Path(args.out or (("stdin" if args.file == "-" else args.file) + ".tst"))
    write_output(out, token)
    print(str(out))
    return 0


def _verify(args: argparse.Namespace) -> int:
    from trustsvc.tsa import parse_response, verify_timestamp_token

    raw = read_input(args.token)
    try:
        status, token, text = parse_response(raw)
        if token is None:
            print(f"TSA response status {status}: {text}", file=sys.stderr)
            return 1
    except DecodeError:
        token = raw
    anchors = read_certificates(args.ca) if args.ca else None
    data = read_input(args.file) if args.file else None
    result = verify_timestamp_token(token, data, trust_anchors=anchors)
    report = result.to_dict()
    lines = [f"{'OK' if result.ok else 'FAILED'} ({result.reason})",
             f"genTime {report['gen_time']}  TSA {report['tsa']}  serial {report['serial_number']}"]
    lines += [f"  {'pass' if c.ok else 'FAIL' if c.ok is False else 'n/a '}  {c.name}: {c.reason}"
              + (f" - {c.detail}" if c.detail and c.ok is False else "") for c in result.all_checks]
    emit(report, args.json, "\n".join(lines))
    return 0 if result.ok else 1


def _serve(args: argparse.Namespace) -> int:
    from trustsvc.tsa import serve_http

    server = serve_http(_local_tsa(args), args.host, args.port)
    print(f"time-stamping authority at {server.url} (Ctrl-C to stop)", flush=True)
    try:
        while True:
            time.sleep(3600)
    finally:
        server.close()
