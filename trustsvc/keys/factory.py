"""Open the configured key store: the software keystore ("soft") or a PKCS#11 HSM ("hsm")."""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path

from trustsvc.errors import InvalidInput, KeystoreError
from trustsvc.keys.base import KeyStore

PASSPHRASE_ENV = "TRUSTSVC_KEYSTORE_PASSPHRASE"
MASTER_KEY_FILE = "master.key"


def open_keystore(kind: str, home: Path, *, passphrase: bytes | None = None) -> KeyStore:
    """The key store of ``kind`` under ``home``.

    "soft": ``home/keys``, protected by ``passphrase``, else $TRUSTSVC_KEYSTORE_PASSPHRASE, else a
    generated 32-byte key file ``home/keys/master.key`` (0600; for development only).
    "hsm": ``trustsvc.keys.pkcs11.open_from_env(home)``.
    """
    if kind == "soft":
        from trustsvc.keys.software import SoftwareKeyStore

        directory = Path(home) / "keys"
        directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        if passphrase is None and os.environ.get(PASSPHRASE_ENV):
            passphrase = os.environ[PASSPHRASE_ENV].encode()
        if passphrase is not None:
            return SoftwareKeyStore(directory, passphrase=passphrase)
        return SoftwareKeyStore(directory, master_key=_dev_master_key(directory / MASTER_KEY_FILE))
    if kind == "hsm":
        from trustsvc.keys.pkcs11 import open_from_env

        return open_from_env(home)
    raise InvalidInput(f"unknown key store {kind!r}; use 'soft' or 'hsm'", reason="UNKNOWN_KEYSTORE")


def _dev_master_key(path: Path) -> bytes:
    """Read the 32-byte key file, creating it (0600) when absent; safe when processes race."""
    if not path.exists():
        fd, tmp = tempfile.mkstemp(prefix=".master.", dir=path.parent)
        try:
            os.write(fd, os.urandom(32))
            os.fsync(fd)
            os.close(fd)
            with contextlib.suppress(FileExistsError):
                os.link(tmp, path)  # atomic: the first process to link wins
        finally:
            os.unlink(tmp)
    key = path.read_bytes()
    if len(key) != 32:
        raise KeystoreError(f"{path} must hold exactly 32 bytes", reason="BAD_MASTER_KEY_FILE")
    return key
