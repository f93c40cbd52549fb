"""``trustsvc key``: create, list, show, rotate, disable and export keys in the soft or HSM store."""

from __future__ import annotations

import argparse
from typing import Any

from cli.common import emit, home
from trustsvc.keys.base import KeyInfo, KeyStore, parse_key_ref
from trustsvc.keys.factory import open_keystore

TYPES = ("sm2", "ec-p256", "ec-p384", "rsa-2048", "rsa-3072", "ed25519")


def register(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    parser = subparsers.add_parser("key", help="manage signing keys")
    sub = parser.add_subparsers(dest="key_command", metavar="ACTION", required=True)

    def add(name: str, func: Any, help_text: str, ref: str | None = None) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help_text)
        if ref:
            p.add_argument("ref", metavar=ref)
        p.add_argument("--store", choices=("soft", "hsm"), default="soft", help="key store (default soft)")
        p.add_argument("--json", action="store_true", help="print JSON")
        p.set_defaults(func=func)
        return p

    p = add("create", _create, "create a new key", "NAME")
    p.add_argument("--type", choices=TYPES, default="sm2", help="key type (default sm2)")
    add("list", _list, "list every version of every key")
    add("show", _show, "show one key version: public key PEM and fingerprint", "NAME[@V]")
    add("rotate", _rotate, "create the next version; the old one becomes passive", "NAME")
    add("disable", _disable, "disable a version (default the current one)", "NAME[@V]")
    add("export-public", _export, "print the public key PEM", "NAME[@V]")


def _store(args: argparse.Namespace) -> KeyStore:
    return open_keystore(args.store, home(args))


def _summary(info: KeyInfo, *, with_pem: bool = False) -> dict[str, Any]:
    out: dict[str, Any] = {
        "ref": info.ref, "name": info.name, "version": info.version, "type": info.spec,
        "state": info.state.value, "created": info.created.isoformat(),
        "fingerprint": info.public_key.fingerprint, "certificates": len(info.certificate_chain),
    }
    if with_pem:
        out["public_key_pem"] = info.public_key.to_pem().decode()
    return out


def _line(info: KeyInfo) -> str:
    return f"{info.ref:<32} {info.spec:<9} {info.state.value:<8} {info.public_key.fingerprint[:16]}"


def _create(args: argparse.Namespace) -> int:
    info = _store(args).create(args.ref, args.type)
    emit(_summary(info), args.json, f"created {_line(info)}")
    return 0


def _list(args: argparse.Namespace) -> int:
    infos = _store(args).list()
    emit([_summary(i) for i in infos], args.json, "\n".join(_line(i) for i in infos) or "(no keys)")
    return 0


def _show(args: argparse.Namespace) -> int:
    name, version = parse_key_ref(args.ref)
    info = _store(args).info(name, version)
    text = f"{_line(info)}\nSHA-256 fingerprint: {info.public_key.fingerprint}\n{info.public_key.to_pem().decode()}"
    emit(_summary(info, with_pem=True), args.json, text.rstrip())
    return 0


def _rotate(args: argparse.Namespace) -> int:
    info = _store(args).rotate(args.ref)
    emit(_summary(info), args.json, f"rotated to {_line(info)}")
    return 0


def _disable(args: argparse.Namespace) -> int:
    name, version = parse_key_ref(args.ref)
    info = _store(args).disable(name, version)
    emit(_summary(info), args.json, f"disabled {_line(info)}")
    return 0


def _export(args: argparse.Namespace) -> int:
    name, version = parse_key_ref(args.ref)
    info = _store(args).info(name, version)
    pem = info.public_key.to_pem().decode()
    emit({"ref": info.ref, "public_key_pem": pem}, args.json, pem.rstrip())
    return 0
