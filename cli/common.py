"""Helpers shared by CLI command modules."""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any


def home(args: argparse.Namespace) -> Path:
    """The data directory: --home, $TRUSTSVC_HOME, or ./.trustsvc-demo."""
    path = Path(args.home or os.environ.get("TRUSTSVC_HOME") or ".trustsvc-demo")
    path.mkdir(parents=True, exist_ok=True, mode=0o700)
    return path


def emit(obj: Any, as_json: bool, text: str | None = None) -> None:
    """Print ``obj`` as JSON, or ``text`` for people."""
    if as_json or text is None:
        print(json.dumps(obj, ensure_ascii=False, indent=2, default=str))
    else:
        print(text)


def read_input(path: str) -> bytes:
    """Bytes of a file, or of stdin for '-'."""
    return sys.stdin.buffer.read() if path == "-" else read_file(path)


def unreadable(path: str, exc: OSError) -> Exception:
    """The bad-input error (exit 2) for a file the user named that could not be opened or read."""
    from trustsvc.errors import InvalidInput

    reason = "INPUT_NOT_FOUND" if isinstance(exc, FileNotFoundError) else "INPUT_UNREADABLE"
    return InvalidInput(f"cannot read {path}: {exc.strerror or exc}", reason=reason)


def read_file(path: str) -> bytes:
    """Bytes of a file the user named; a missing or unreadable path (a directory ...) is bad input (exit 2)."""
    try:
        return Path(path).read_bytes()
    except OSError as exc:
        raise unreadable(path, exc) from None


def read_certificates(path: str) -> list[Any]:
    """Every certificate in a file the user named (PEM bundle or DER); a file holding none (a cut PEM, a key ...)
    is bad input rather than an empty list of trust anchors."""
    from trustsvc.errors import InvalidInput
    from trustsvc.pki.certificate import Certificate

    certs = Certificate.load_all(read_file(path))
    if not certs:
        raise InvalidInput(f"no certificate in {path}", reason="BAD_CERTIFICATE")
    return certs


def add_key_store_args(group: argparse._ArgumentGroup, *, store_default: str | None = "soft") -> None:
    """Where a signing key lives (as `trustsvc key`); passphrase and PIN never on the command line."""
    group.add_argument("--store", choices=("soft", "hsm"), default=store_default,
                       help=f"key store (default {store_default})" if store_default else "key store")
    group.add_argument("--passphrase-file", help="soft store passphrase file (else $TRUSTSVC_KEYSTORE_PASSPHRASE)")
    group.add_argument("--passphrase-env", help="environment variable holding the soft store passphrase")
    group.add_argument("--hsm-module", help="PKCS#11 module (else $TRUSTSVC_PKCS11_MODULE or SoftHSM2)")
    group.add_argument("--hsm-token", help="HSM token label (else $TRUSTSVC_PKCS11_TOKEN)")
    group.add_argument("--pin-file", help="file holding the HSM user PIN")
    group.add_argument("--pin-env", help="environment variable holding the HSM user PIN")


def key_source(args: argparse.Namespace, store: str | None = None) -> Any:
    """The ``trustsvc.keys.source.KeySource`` the key store arguments describe."""
    from trustsvc.keys.source import KeySource

    return KeySource(store or args.store, str(home(args)), args.passphrase_file, args.passphrase_env,
                     args.hsm_module, args.hsm_token, args.pin_file, args.pin_env)
