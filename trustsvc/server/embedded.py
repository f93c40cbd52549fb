"""The embedded default: a data directory with SQLite, a software keystore, dev CAs, keys and a policy.

``bootstrap(config)`` is idempotent: the first start creates, later starts reuse.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from trustsvc.errors import Conflict, KeyNotFound, TrustsvcError
from trustsvc.fileio import write_atomic
from trustsvc.keys.base import KeyInfo, KeyStore
from trustsvc.server.config import Config
from trustsvc.server.tls import ensure_dev_tls

DEFAULT_POLICY = """\
# trustsvc daemon policy: client certificate identity -> what it may do.
[clients."cn=admin"]
admin = true

[clients."cn=demo-client"]
operations = ["SignatureService/*", "TokenService/*", "SealService/GetSeal", "SealService/ListSeals",
              "SealService/SignWithSeal", "SealService/VerifySealSignature", "DocumentService/*",
              "TimeStampService/*"]
keys = ["default", "demo-*", "token", "tsa"]
seals = ["*"]
"""

# name -> (spec, CA profile)
DEFAULT_KEYS = {"default": ("sm2", "seal-holder"), "audit": ("sm2", "seal-holder"),
                "token": ("sm2", "token-issuer"), "tsa": ("sm2", "tsa"), "seal-maker": ("sm2", "seal-maker")}


def open_sm2_ca(home: Path) -> Any:
    from trustsvc.pki.ca import DevelopmentCA

    return DevelopmentCA.open_or_init(home / "ca", key_type="sm2")


def certify(keystore: KeyStore, ca: Any, info: KeyInfo, profile: str = "seal-holder") -> KeyInfo:
    """Issue a dev-CA certificate for a key that has none (SM2/EC); returns the updated info."""
    if ca is None or info.certificate_chain:
        return info
    try:
        issued = ca.issue(profile, f"trustsvc key {info.name}", public_key=info.public_key)
    except TrustsvcError:
        return info  # e.g. a key type the dev CA does not certify: signs data, not CMS
    keystore.set_certificate_chain(info.name, info.version, (issued.certificate.der, ca.certificate.der))
    return keystore.info(info.name, info.version)


def certify_key(rt: Any, info: KeyInfo) -> KeyInfo:
    profile = DEFAULT_KEYS.get(info.name, ("", "seal-holder"))[1]
    return certify(rt.keystore, rt.ca, info, profile)


def ensure_key(keystore: KeyStore, ca: Any, name: str, spec: str, profile: str) -> KeyInfo:
    try:
        info = keystore.info(name)
    except KeyNotFound:  # only a missing key is made; a locked token or wrong PIN is reported as it is
        try:
            info = keystore.create(name, spec)
        except Conflict:
            info = keystore.info(name)
    return certify(keystore, ca, info, profile)


def _private(path: Path, mode: int = 0o700) -> None:
    """Take group and other permissions away from a file or directory the embedded default made."""
    if path.exists() and path.stat().st_mode & 0o077:
        path.chmod(mode)


def _sqlite_file(url: str, home: Path) -> Path | None:
    """The SQLite file of a database URL when it lives under ``home`` (else None: not ours to create)."""
    if url.startswith(("postgresql://", "postgres://")):
        return None
    path = Path(url.removeprefix("sqlite:///").removeprefix("sqlite://"))
    if str(path) in ("", ":memory:"):
        return None
    try:
        path.resolve().relative_to(home.resolve())
    except ValueError:
        return None
    return path


def bootstrap(config: Config) -> dict[str, Any]:
    """Create what the embedded default needs under ``config.home``; returns paths for the operator.

    Private material is for the owner only: the home, ``tls/`` and the SQLite file (which holds the audit log
    and retained results) are created 0700/0600 (``tls/`` and the home are tightened if a first start finds
    them open); private keys are written 0600 by the keystore and the dev CAs."""
    home = Path(config.home)
    first_start = not home.exists() or not any(home.iterdir())
    home.mkdir(parents=True, exist_ok=True, mode=0o700)
    if first_start:
        _private(home)
    out: dict[str, Any] = {"home": str(home)}
    if not config.insecure and not (config.tls_cert and config.tls_key and config.tls_client_ca):
        files = ensure_dev_tls(home)
        _private(home / "tls")
        config.tls_cert, config.tls_key, config.tls_client_ca = map(str, (files.server_cert, files.server_key,
                                                                        files.ca))
        out["client_certs"] = {n: list(map(str, files.client(n))) for n in ("admin", "demo-client")}
    db_file = _sqlite_file(config.database, home)
    if db_file is not None and not db_file.exists():
        db_file.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        try:  # an empty file is an empty SQLite database; its -wal and -shm files take its mode
            os.close(os.open(db_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
        except FileExistsError:
            pass
    policy = Path(config.policy)
    if not policy.exists():
        policy.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        write_atomic(policy, DEFAULT_POLICY.encode(), mode=0o600)
    out.update(tls_ca=config.tls_client_ca, server_cert=config.tls_cert, policy=str(policy),
               database=config.database)
    return out
