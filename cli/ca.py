"""`trustsvc ca`: a development certificate authority in <home>/ca (init, issue, revoke, crl, verify, list)."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from cli.common import (
    add_key_store_args,
    check_output,
    emit,
    home,
    key_source,
    parse_time,
    read_certificates,
    read_file,
    read_input,
    write_output,
)
from trustsvc.algorithms.encoding import private_key_to_pem
from trustsvc.errors import InvalidInput
from trustsvc.pki.ca import CA_KEY_SPECS, DEFAULT_NAME, PROFILES, DevelopmentCA
from trustsvc.pki.certificate import Certificate
from trustsvc.pki.crl import CertificateRevocationList, RevocationReason
from trustsvc.pki.csr import CertificateRequest
from trustsvc.pki.validation import validate

PASSPHRASE_ENV = "TRUSTSVC_CA_PASSPHRASE"


def ca_dir(args: argparse.Namespace) -> Path:
    return home(args) / "ca"


def passphrase() -> bytes | None:
    """The CA key passphrase from $TRUSTSVC_CA_PASSPHRASE (never from the command line)."""
    value = os.environ.get(PASSPHRASE_ENV)
    return value.encode() if value else None


def parse_serial(text: str) -> int:
    try:
        return int(text, 16)
    except ValueError:
        raise InvalidInput(f"bad serial {text!r}: give it in hex as `ca list` prints it", reason="BAD_SERIAL") from None


def _init(args: argparse.Namespace) -> int:
    if args.key:  # the root key lives in a key store or HSM; ca-key.pem is not written
        store = args.store or "soft"
        source = key_source(args, store)
        signer = source.signer(source.open(), args.key, require_certificate=False)
        # key_ref is "store:NAME@VERSION": pin the version the root certifies (a later rotation keeps it)
        ref = signer.key_ref.split(":", 1)[1] if ":" in signer.key_ref else args.key
        ca = DevelopmentCA.init(ca_dir(args), name=args.name, days=args.days, signer=signer,
                                key_location={"store": store, "ref": ref})
        where = f"key {args.key} in the {store} store"
    else:
        ca = DevelopmentCA.init(ca_dir(args), name=args.name, key_type=args.key_type, passphrase=passphrase(),
                                days=args.days)
        where = ("ca-key.pem, encrypted" if passphrase() else
                 f"ca-key.pem, unencrypted (mode 0600); set {PASSPHRASE_ENV} to encrypt it")
    emit({"directory": str(ca.directory), "subject": ca.certificate.subject, "key_type": ca.signer.public_key.spec,
          "key": where, "sha256": ca.certificate.fingerprint_sha256}, args.json,
         f"CA created in {ca.directory}\n  {ca.certificate.subject}\n  sha256 {ca.certificate.fingerprint_sha256}"
         f"\n  key: {where}")
    return 0


def open_ca(args: argparse.Namespace) -> DevelopmentCA:
    """The CA in <home>/ca, with its key from ca-key.pem or from the key store/HSM named in ca.json."""
    directory = ca_dir(args)
    location = DevelopmentCA.key_location(directory) if (directory / "ca.json").exists() else None
    if location is None:
        return DevelopmentCA.open(directory, passphrase())
    source = key_source(args, location["store"])
    try:
        signer = source.signer(source.open(), location["ref"], require_certificate=False)
    except InvalidInput as exc:
        raise InvalidInput(f"the CA key is {location['ref']} in the {location['store']} store: {exc.message}",
                           reason=exc.reason) from None
    return DevelopmentCA.open(directory, signer=signer)


def _issue(args: argparse.Namespace) -> int:
    ca = open_ca(args)
    for path in (args.out_cert, args.out_key):  # before issuing: a key written without its certificate is lost work
        if path:
            check_output(path)
    kwargs = {"dns": args.dns or (), "ips": args.ip or (), "days": args.days}
    if args.csr:
        request = CertificateRequest.load(read_input(args.csr))
        issued = ca.issue_for_request(request, args.profile, **kwargs)
    else:
        if not args.cn:
            raise InvalidInput("--cn is required unless --csr is given", reason="MISSING_COMMON_NAME")
        issued = ca.issue(args.profile, args.cn, key_type=args.key_type, **kwargs)
    serial = f"{issued.serial:x}"
    out_cert = Path(args.out_cert or f"{serial}.crt.pem")
    files = {"certificate": str(out_cert)}
    if issued.private_key is not None:  # the key first: a certificate without its key is no use
        out_key = Path(args.out_key or f"{serial}.key.pem")
        write_output(out_key, private_key_to_pem(issued.private_key), mode=0o600)
        files["private_key"] = str(out_key)
    write_output(out_cert, issued.certificate.to_pem())
    emit({"serial": serial, "subject": issued.certificate.subject, "profile": args.profile, **files}, args.json,
         f"issued {args.profile} certificate serial {serial}: {issued.certificate.subject}\n"
         + "\n".join(f"  {k}: {v}" for k, v in files.items()))
    return 0


def _revoke(args: argparse.Namespace) -> int:
    ca = open_ca(args)
    crl = ca.revoke(parse_serial(args.serial), RevocationReason.parse(args.reason))
    emit({"revoked": args.serial.lower(), "reason": args.reason, "crl_number": crl.crl_number}, args.json,
         f"revoked {args.serial.lower()} ({args.reason}); CRL #{crl.crl_number} published")
    return 0


def _crl(args: argparse.Namespace) -> int:
    ca = open_ca(args)
    crl = ca.publish_crl(days=args.days)
    if args.out:
        write_output(args.out, crl.to_pem() if not args.der else crl.der)
    emit({"crl_number": crl.crl_number, "this_update": crl.this_update.isoformat(),
          "next_update": crl.next_update.isoformat() if crl.next_update else None,
          "revoked": [e.to_json() for e in crl.entries], "file": args.out or str(ca.directory / "crl.pem")},
         args.json, f"CRL #{crl.crl_number}: {len(crl.entries)} revoked, next update {crl.next_update}; "
         f"written to {args.out or ca.directory / 'crl.pem'}")
    return 0


def _list(args: argparse.Namespace) -> int:
    ca = open_ca(args)
    records = ca.index()
    emit(records, args.json, "\n".join(
        f"{r['serial']:>8}  {r['profile']:<12} {'REVOKED ' if r['revoked_at'] else 'valid   '} {r['subject']}"
        for r in records) or "(no certificates issued)")
    return 0


def _verify(args: argparse.Namespace) -> int:
    certs = Certificate.load_all(read_input(args.cert))
    if not certs:
        raise InvalidInput(f"no certificate in {args.cert}", reason="BAD_CERTIFICATE")
    leaf, intermediates = certs[0], certs[1:]
    for path in args.chain or ():
        intermediates += read_certificates(path)
    crls = [CertificateRevocationList.load(read_file(p)) for p in args.crl or ()]
    if args.trust:
        anchors = [c for p in args.trust for c in read_certificates(p)]
    else:
        ca_cert = ca_dir(args) / "ca-cert.pem"
        if not ca_cert.exists():
            raise InvalidInput("no --trust given and no CA in the home directory", reason="NO_TRUST_ANCHOR")
        anchors = [Certificate.load(ca_cert.read_bytes())]
        crl_path = ca_dir(args) / "crl.pem"
        if not args.crl and crl_path.exists():
            crls.append(CertificateRevocationList.load(crl_path.read_bytes()))
    result = validate(leaf, trust_anchors=anchors, intermediates=intermediates,
                      at=parse_time(args.at) if args.at else None, key_usage=args.key_usage or (),
                      extended_key_usage=args.eku or (), crls=crls, require_revocation=args.require_crl)
    emit(result.to_json(), args.json, result.summary())
    return 0 if result.valid else 1


def register(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    parser = subparsers.add_parser("ca", help="development certificate authority (not for production)")
    parser.add_argument("--json", action="store_true", help="print JSON")
    add_key_store_args(parser.add_argument_group(
        "the CA key when it lives in a key store or HSM (init --key; later commands read ca.json)"),
        store_default=None)
    sub = parser.add_subparsers(dest="ca_command", metavar="ACTION", required=True)

    p = sub.add_parser("init", help="create a root CA in <home>/ca")
    p.add_argument("--key-type", default="sm2", choices=CA_KEY_SPECS, help="for a new key in ca-key.pem")
    p.add_argument("--key", help="use this existing key (NAME or NAME@VERSION) from --store soft|hsm instead")
    p.add_argument("--name", default=DEFAULT_NAME, help="root CA common name")
    p.add_argument("--days", type=int, default=3650)
    p.set_defaults(func=_init)

    p = sub.add_parser("issue", help="issue a certificate for a profile")
    p.add_argument("--profile", required=True, choices=sorted(PROFILES))
    p.add_argument("--cn", help="subject common name")
    p.add_argument("--csr", help="PKCS#10 request (PEM/DER) to certify instead of generating a key")
    p.add_argument("--key-type", default=None, help="sm2 (default: the CA's), ec-p256, rsa-2048 ...")
    p.add_argument("--dns", action="append", help="subjectAltName DNS name (repeatable)")
    p.add_argument("--ip", action="append", help="subjectAltName IP address (repeatable)")
    p.add_argument("--days", type=int, default=None)
    p.add_argument("--out-cert", help="certificate file (default <serial>.crt.pem)")
    p.add_argument("--out-key", help="private key file, written mode 0600 (default <serial>.key.pem)")
    p.set_defaults(func=_issue)

    p = sub.add_parser("revoke", help="revoke a certificate by serial (hex) and publish a CRL")
    p.add_argument("serial")
    p.add_argument("--reason", default="unspecified", help="e.g. key_compromise, superseded")
    p.set_defaults(func=_revoke)

    p = sub.add_parser("crl", help="publish a fresh CRL")
    p.add_argument("--out", help="also write it here")
    p.add_argument("--der", action="store_true", help="write --out as DER")
    p.add_argument("--days", type=int, default=7, help="days until nextUpdate")
    p.set_defaults(func=_crl)

    p = sub.add_parser("list", help="list issued certificates")
    p.set_defaults(func=_list)

    p = sub.add_parser("verify", help="validate a certificate chain (exit 1 when invalid)")
    p.add_argument("cert", help="leaf certificate, optionally followed by intermediates (PEM bundle)")
    p.add_argument("--at", help="validation time, ISO 8601 (default now)")
    p.add_argument("--chain", action="append", help="intermediate certificates file")
    p.add_argument("--trust", action="append", help="trust anchor file (default: this CA's root)")
    p.add_argument("--crl", action="append", help="CRL file (default: this CA's crl.pem)")
    p.add_argument("--require-crl", action="store_true", help="fail when no CRL covers a certificate")
    p.add_argument("--key-usage", action="append", help="required leaf key usage, e.g. digital_signature")
    p.add_argument("--eku", action="append", help="required extended key usage, e.g. server_auth")
    p.set_defaults(func=_verify)
