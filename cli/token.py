"""``trustsvc token``: issue, verify, revoke, introspect identity tokens and print the JWKS."""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
from pathlib import Path
from typing import Any

from cli.common import emit, existing_database, home, read_input
from trustsvc.errors import InvalidInput, KeyNotFound, TrustsvcError
from trustsvc.keys.base import KeyStore
from trustsvc.keys.factory import open_keystore
from trustsvc.store.database import Database
from trustsvc.token import IssuerConfig, RevocationStore, TokenInvalid, TokenVerifier, TrustedIssuer, introspect
from trustsvc.token.local import DEFAULT_KEY, issuer_from_keystore, keyset_from_keystore
from trustsvc.token.revocation import TABLES as REVOCATION_TABLES

EXIT_VERIFY_FAILED = 1
ALG_SPECS = {"SM2": "sm2", "ES256": "ec-p256", "EdDSA": "ed25519", "RS256": "rsa-2048"}
TRUST_FILE = "token-trust.json"


def register(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    parser = subparsers.add_parser("token", help="identity tokens (JWS/JWT with SM2, ES256, EdDSA, RS256)")
    sub = parser.add_subparsers(dest="token_command", metavar="ACTION", required=True)

    def add(name: str, func: Any, help_text: str) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help_text)
        p.add_argument("--store", choices=("soft", "hsm"), default="soft", help="key store (default soft)")
        p.add_argument("--key", default=DEFAULT_KEY, help=f"issuer key name (default {DEFAULT_KEY})")
        p.add_argument("--iss", default=os.environ.get("TRUSTSVC_TOKEN_ISSUER", "trustsvc"),
                       help="our issuer name (default $TRUSTSVC_TOKEN_ISSUER or 'trustsvc')")
        p.add_argument("--db", default=None, help="database URL (default sqlite under --home)")
        p.set_defaults(func=func)
        return p

    p = add("issue", _issue, "issue a signed token")
    p.add_argument("--sub", required=True, help="subject")
    p.add_argument("--claims", default=None, help="extra claims as a JSON object")
    p.add_argument("--aud", action="append", help="audience (repeatable)")
    p.add_argument("--ttl", type=int, default=900, help="lifetime in seconds (default 900)")
    p.add_argument("--alg", choices=sorted(ALG_SPECS), default=None,
                   help="algorithm of a key created on first use (default SM2)")
    for name, func, text in (("verify", _verify, "verify a token; exit 1 if invalid"),
                             ("introspect", _introspect, "RFC 7662 introspection answer")):
        p = add(name, func, text)
        p.add_argument("token", metavar="TOKEN|-", help="the token, or - for stdin")
        p.add_argument("--aud", default=None, help="required audience")
        p.add_argument("--leeway", type=int, default=60, help="clock skew allowed, seconds")
        p.add_argument("--trust", default=None, help=f"trusted issuers JSON (default HOME/{TRUST_FILE} if present)")
    p = add("revoke", _revoke, "revoke one token (--jti) or every token of a subject (--sub)")
    group = p.add_mutually_exclusive_group(required=True)
    group.add_argument("--jti", help="token id (one that starts with '-', as another issuer's may: --jti=-ID)")
    group.add_argument("--sub", help="subject: revoke tokens issued before --before (default now)")
    p.add_argument("--before", default=None, help="cut-off: seconds since the epoch or ISO 8601")
    p.add_argument("--reason", default="", help="why (kept in the store)")
    add("jwks", _jwks, "print the JWKS (active and passive keys)")


def _keystore(args: argparse.Namespace) -> KeyStore:
    return open_keystore(args.store, home(args))


def _ensure(store: KeyStore, name: str, alg: str | None) -> None:
    try:
        info = store.info(name)
    except KeyNotFound:
        store.create(name, ALG_SPECS[alg or "SM2"])
        return
    if alg is not None and info.spec != ALG_SPECS[alg]:
        raise InvalidInput(f"key {name!r} is {info.spec}, not usable for {alg}", reason="ALG_KEY_MISMATCH")


def _db_url(args: argparse.Namespace) -> str | None:
    """--db or $TRUSTSVC_DB; None for the default (the database under --home)."""
    return args.db or os.environ.get("TRUSTSVC_DB") or None


def _db(args: argparse.Namespace) -> Database:
    return Database(_db_url(args) or f"sqlite:///{home(args) / 'trustsvc.db'}")


def _revocations(args: argparse.Namespace) -> RevocationStore | None:
    """The revocation list to check against, opened read-only. A database named by --db or $TRUSTSVC_DB must exist
    and hold one (a mistyped path must not pass a revoked token); the home's default database may not exist yet,
    or hold no revocation tables, when nothing was ever revoked under that home: then None."""
    url = _db_url(args)
    try:
        db = existing_database(url or f"sqlite:///{home(args) / 'trustsvc.db'}", tables=REVOCATION_TABLES,
                               not_database="NOT_A_TOKEN_DATABASE", missing="NO_REVOCATION_LIST")
    except InvalidInput as exc:
        if url is None and exc.reason in ("INPUT_NOT_FOUND", "NO_REVOCATION_LIST"):
            return None
        raise
    return RevocationStore(db)


def _issue(args: argparse.Namespace) -> int:
    extra: dict[str, Any] = {}
    if args.claims:
        try:
            extra = json.loads(args.claims)
        except ValueError as exc:
            raise InvalidInput(f"--claims is not JSON: {exc}", reason="BAD_CLAIMS") from None
        if not isinstance(extra, dict):
            raise InvalidInput("--claims must be a JSON object", reason="BAD_CLAIMS")
    store = _keystore(args)
    _ensure(store, args.key, args.alg)
    issuer = issuer_from_keystore(store, args.iss, args.key, ttl=args.ttl)
    aud = args.aud[0] if args.aud and len(args.aud) == 1 else args.aud
    print(issuer.issue(args.sub, extra, aud=aud))
    return 0


def _verifier(args: argparse.Namespace, *, any_audience: bool = False) -> TokenVerifier:
    store = _keystore(args)
    issuers = [TrustedIssuer(args.iss, keyset_from_keystore(store, (args.key,)))]
    trust = Path(args.trust) if args.trust else home(args) / TRUST_FILE
    if args.trust or trust.exists():
        try:
            config = json.loads(trust.read_text())
            issuers += [IssuerConfig.from_dict(e).trusted(config.get("sm2_aliases"))
                        for e in config.get("issuers", [])]
        except (OSError, ValueError, AttributeError) as exc:
            raise InvalidInput(f"trust configuration {trust} unusable: {exc}", reason="BAD_TRUST_CONFIG") from None
        except TrustsvcError as exc:
            raise InvalidInput(f"trust configuration {trust} unusable: {exc.message}", reason=exc.reason) from None
    return TokenVerifier(issuers, audience=args.aud, any_audience=any_audience and not args.aud, leeway=args.leeway,
                         revocation=_revocations(args))


def _token(args: argparse.Namespace) -> bytes:
    return (read_input("-") if args.token == "-" else args.token.encode()).strip()


def _verify(args: argparse.Namespace) -> int:
    verifier = _verifier(args)
    try:
        verified = verifier.verify(_token(args))
    except TokenInvalid as exc:
        emit({"valid": False, "reason": exc.reason, "message": exc.message}, True)
        return EXIT_VERIFY_FAILED
    checked = verifier.revocation.db.url if verifier.revocation is not None else None
    emit({"valid": True, "alg": verified.alg, "kid": verified.kid, "claims": verified.claims,
          "revocation_list": checked}, True)
    return 0


def _introspect(args: argparse.Namespace) -> int:
    emit(introspect(_verifier(args, any_audience=True), _token(args)), True)
    return 0


def _when(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        pass
    try:
        when = dt.datetime.fromisoformat(text)
    except ValueError:
        raise InvalidInput(f"--before {text!r} is neither epoch seconds nor ISO 8601", reason="BAD_TIME") from None
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.UTC)
    return int(when.timestamp())


def _revoke(args: argparse.Namespace) -> int:
    store = RevocationStore(_db(args))
    if args.jti:
        store.revoke_jti(args.iss, args.jti, reason=args.reason)
        emit({"revoked": {"iss": args.iss, "jti": args.jti}}, True)
    else:
        cut = store.revoke_subject(args.iss, args.sub, _when(args.before) if args.before else None,
                                   reason=args.reason)
        emit({"revoked": {"iss": args.iss, "sub": args.sub, "issued_before": cut}}, True)
    return 0


def _jwks(args: argparse.Namespace) -> int:
    store = _keystore(args)
    _ensure(store, args.key, None)
    emit(keyset_from_keystore(store, (args.key,)).jwks(), True)
    return 0
