"""The embedded default: a data directory with SQLite, a software keystore, dev CAs, keys and a policy.

``bootstrap(config)`` is idempotent: the first start creates, later starts reuse.

The default keys are of ``config.default_key_spec`` (``default_keys``): SM2 unless the operator picks another
kind, e.g. ``ec-p256`` on a token without SM2 (SoftHSM2). GB/T 38540 seals need an SM2 seal maker: with another
kind the demo seal is not made (``demo_seal_wanted``) and MakeSeal refuses with SEAL_NEEDS_SM2
(``require_sm2_seal_maker``); every other format signs with whatever kind the key is.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

from trustsvc.algorithms.signature_algorithm import SignatureAlgorithm
from trustsvc.errors import Conflict, HsmError, KeyNotFound, TrustsvcError
from trustsvc.fileio import write_atomic
from trustsvc.keys.base import KeyInfo, KeyStore
from trustsvc.server.config import Config
from trustsvc.server.logs import log
from trustsvc.server.tls import ensure_dev_tls
from trustsvc.store.database import sqlite_path

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

# name -> (spec, CA profile) with the default key_spec "sm2"; default_keys(spec) for another kind
DEFAULT_KEYS = {"default": ("sm2", "seal-holder"), "audit": ("sm2", "seal-holder"),
                "token": ("sm2", "token-issuer"), "tsa": ("sm2", "tsa"), "seal-maker": ("sm2", "seal-maker")}
SEAL_MAKER_KEY = "seal-maker"


def default_keys(spec: str = "sm2") -> dict[str, tuple[str, str]]:
    """The embedded default's keys, all of ``spec`` (config ``default_key_spec``): name -> (spec, CA profile)."""
    return {name: (spec, profile) for name, (_, profile) in DEFAULT_KEYS.items()}


def require_key_spec(keystore: KeyStore, spec: str) -> None:
    """Refuse to start when the keystore cannot make and use keys of ``spec`` (a token without the mechanism:
    HSM_NO_SM2 or HSM_NO_MECHANISM, the message naming the setting); a software keystore can do every kind."""
    require = getattr(keystore, "require_spec", None)
    if require is None:
        return
    try:
        require(spec)
    except HsmError as exc:
        if exc.reason not in ("HSM_NO_SM2", "HSM_NO_MECHANISM"):
            raise  # a wrong PIN or a missing token is reported as it is
        hint = ('; a token without SM2 needs default_key_spec = "ec-p256" (or rsa-2048)'
                if spec == "sm2" else "")
        raise HsmError(f"default_key_spec = {spec!r}: {exc.message}{hint}", reason=exc.reason) from None


def require_sm2_seal_maker(maker: Any, maker_key: str) -> None:
    """GB/T 38540 seals are signed with SM2-with-SM3: refuse another maker key with FAILED_PRECONDITION
    SEAL_NEEDS_SM2 (``maker`` is its Signer)."""
    if maker.algorithm is not SignatureAlgorithm.SM2_SM3:
        raise Conflict(f"GB/T 38540 seals need an SM2 seal maker; key {maker_key!r} is {maker.public_key.spec} "
                       f"(default_key_spec makes the embedded default's keys of that kind)", reason="SEAL_NEEDS_SM2")


def demo_seal_wanted(rt: Any) -> bool:
    """Whether the embedded default's demo seal can be made: only with an SM2 seal-maker key; otherwise one log
    line says why there is none."""
    maker = rt.signer(SEAL_MAKER_KEY, check_policy=False)
    if maker.algorithm is SignatureAlgorithm.SM2_SM3:
        return True
    log(logging.WARNING, "no demo seal: GB/T 38540 seals need an SM2 seal-maker key; MakeSeal refuses with "
        "SEAL_NEEDS_SM2", key=SEAL_MAKER_KEY, spec=maker.public_key.spec)
    return False


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
    name = sqlite_path(url)
    if name in (None, "", ":memory:"):
        return None
    path = Path(name)
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
