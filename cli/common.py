"""Helpers shared by CLI command modules."""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import sqlite3
import sys
from collections.abc import Collection
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from trustsvc.store.database import Database

SQLITE_MAGIC = b"SQLite format 3\x00"


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


def database_url(args: argparse.Namespace) -> str:
    """--db, or the daemon's embedded database under the home directory."""
    return str(args.db or f"sqlite:///{home(args) / 'trustsvc.db'}")


def existing_database(url: str, *, tables: Collection[str], not_database: str, missing: str) -> Database:
    """A database the user named for reading (verify, list, show ...), opened read-only: nothing is created or
    written. A missing path is INPUT_NOT_FOUND, a file that is not SQLite ``not_database`` and one without
    ``tables`` ``missing`` (exit 2); on PostgreSQL the component's own check reports SCHEMA_MISSING."""
    from trustsvc.errors import InvalidInput
    from trustsvc.store.database import Database, connect_sqlite_read_only, sqlite_path

    path = sqlite_path(url)
    if path is not None and path != ":memory:":
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
                               reason=not_database)
        try:
            conn = connect_sqlite_read_only(path)
            try:
                found = {row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
            finally:
                conn.close()
        except sqlite3.Error as exc:
            raise InvalidInput(f"{path} is not a readable SQLite database: {exc}", reason=not_database) from None
        absent = sorted(set(tables) - found)
        if absent:
            raise InvalidInput(f"{path} holds no {', '.join(absent)} table", reason=missing)
    return Database(url, read_only=True)


def check_output(path: str | os.PathLike[str]) -> None:
    """Refuse (OUTPUT_UNWRITABLE) a file that ``write_output`` could not write, before any work that would be lost:
    its directory must exist and be writable, and the path must not be a directory."""
    from trustsvc.errors import InvalidInput

    target = Path(path)
    parent = target.parent
    if not parent.is_dir() or target.is_dir() or not os.access(parent, os.W_OK | os.X_OK):
        why = "is a directory" if target.is_dir() else f"{parent} is not a writable directory"
        raise InvalidInput(f"cannot write {os.fspath(path)}: {why}", reason="OUTPUT_UNWRITABLE")


def write_output(path: str | os.PathLike[str], data: bytes, *, mode: int | None = None) -> None:
    """Write a file the user named, atomically (a temporary name, fsync, rename: never a torn file). ``mode``
    for secrets (0o600): the new file has it from the start, whatever an old file at ``path`` had. A path that
    cannot be written (no such directory, no permission) is bad input: OUTPUT_UNWRITABLE, exit 2."""
    from trustsvc.errors import InvalidInput
    from trustsvc.fileio import write_atomic

    try:
        write_atomic(path, data, mode=mode)
    except OSError as exc:
        raise InvalidInput(f"cannot write {os.fspath(path)}: {exc.strerror or exc}",
                           reason="OUTPUT_UNWRITABLE") from None


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


def parse_time(text: str) -> dt.datetime:
    """ISO 8601 ('2030-01-01', '2030-01-01T12:00:00+08:00', 'Z' allowed); naive times are UTC. BAD_TIME otherwise."""
    from trustsvc.errors import InvalidInput

    try:
        value = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise InvalidInput(f"bad time {text!r}: use ISO 8601, e.g. 2030-01-01T00:00:00Z", reason="BAD_TIME") from None
    return value if value.tzinfo else value.replace(tzinfo=dt.UTC)
