"""Software keystore: named, versioned keys in a directory, encrypted at rest.

Layout (directory 0700, files 0600)::

    store.json      KDF (scrypt salt and parameters, or "raw" for a 32-byte key file) and a check value
    <name>.key.json every version of one key: spec, state, public key, certificates, encrypted PKCS#8
    .lock           fcntl.flock target serialising writers across processes

Private keys are PKCS#8 DER sealed with AES-256-GCM under the master key; the AAD binds the store
format, key name and version, so a blob moved to another name or version does not decrypt. Each
write replaces one whole file atomically (temp file, fsync, os.replace, fsync of the directory):
a crash leaves either the old or the new file, never a torn one.
"""

from __future__ import annotations

import base64
import contextlib
import datetime as dt
import fcntl
import hashlib
import json
import os
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from trustsvc.algorithms.encoding import load_private_key, private_key_to_pkcs8, scrypt_key
from trustsvc.algorithms.keypair import KEY_SPECS, PrivateKey, PublicKey
from trustsvc.algorithms.signer import Signer, SoftwareSigner
from trustsvc.errors import (
    Conflict,
    InvalidInput,
    KeyDisabled,
    KeyNotFound,
    KeystoreError,
    UnsupportedAlgorithm,
    WrongPassphrase,
)
from trustsvc.fileio import write_atomic
from trustsvc.keys.base import KeyInfo, KeyState, KeyStore, check_certificate_chain, check_key_name

FORMAT = 1
META_FILE = "store.json"
LOCK_FILE = ".lock"
KEY_SUFFIX = ".key.json"
_CHECK_PLAINTEXT = b"trustsvc software keystore"
_CHECK_AAD = b"trustsvc-keystore-check-v1"
DEFAULT_SCRYPT = {"n": 2**15, "r": 8, "p": 1}


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def _unb64(text: str) -> bytes:
    return base64.b64decode(text.encode(), validate=True)


def _aad(name: str, version: int) -> bytes:
    return f"trustsvc-soft-key-v{FORMAT}\0{name}\0{version}".encode()


class SoftwareKeyStore(KeyStore):
    """Keys in ``directory`` under a master key from ``passphrase`` (scrypt) or a raw 32-byte ``master_key``."""

    kind = "soft"

    def __init__(self, directory: Path | str, *, passphrase: bytes | None = None,
                 master_key: bytes | None = None, scrypt_params: dict[str, int] | None = None) -> None:
        if (passphrase is None) == (master_key is None):
            raise InvalidInput("give exactly one of passphrase or master_key", reason="KEYSTORE_SECRET_REQUIRED")
        if master_key is not None and len(master_key) != 32:
            raise InvalidInput("a keystore master key must be 32 bytes", reason="BAD_KEY_LENGTH")
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        os.chmod(self.directory, 0o700)
        self._cache: dict[tuple[str, int], tuple[bytes, PrivateKey]] = {}
        self._cache_lock = threading.Lock()
        with self._locked():
            meta = self._read_json(self.directory / META_FILE)
            if meta is None:
                key, meta = self._new_meta(passphrase, master_key, scrypt_params or DEFAULT_SCRYPT)
                write_atomic(self.directory / META_FILE, json.dumps(meta, indent=2).encode(), mode=0o600)
            else:
                key = self._derive(meta, passphrase, master_key)
        self._aead = AESGCM(key)

    # master key --------------------------------------------------------------------
    @staticmethod
    def _new_meta(passphrase: bytes | None, master_key: bytes | None,
                  params: dict[str, int]) -> tuple[bytes, dict[str, Any]]:
        if passphrase is not None:
            salt = os.urandom(16)
            key = scrypt_key(passphrase, salt, n=params["n"], r=params["r"], p=params["p"])
            kdf: dict[str, Any] = {"name": "scrypt", "salt": _b64(salt), **params}
        else:
            assert master_key is not None
            key, kdf = master_key, {"name": "raw"}
        nonce = os.urandom(12)
        check = nonce + AESGCM(key).encrypt(nonce, _CHECK_PLAINTEXT, _CHECK_AAD)
        return key, {"format": FORMAT, "cipher": "aes-256-gcm", "kdf": kdf, "check": _b64(check)}

    @staticmethod
    def _derive(meta: dict[str, Any], passphrase: bytes | None, master_key: bytes | None) -> bytes:
        try:
            kdf = meta["kdf"]
            check = _unb64(meta["check"])
            if kdf["name"] == "scrypt":
                if passphrase is None:
                    raise WrongPassphrase("this keystore is protected by a passphrase, not a key file",
                                          reason="WRONG_PASSPHRASE")
                key = scrypt_key(passphrase, _unb64(kdf["salt"]), n=int(kdf["n"]), r=int(kdf["r"]),
                                 p=int(kdf["p"]))
            elif kdf["name"] == "raw":
                if master_key is None:
                    raise WrongPassphrase("this keystore is protected by a key file, not a passphrase",
                                          reason="WRONG_PASSPHRASE")
                key = master_key
            else:
                raise KeystoreError(f"unknown keystore KDF {kdf['name']!r}", reason="KEYSTORE_CORRUPT")
        except (KeyError, TypeError, ValueError) as exc:
            raise KeystoreError(f"keystore metadata {META_FILE} is malformed: {exc}",
                                reason="KEYSTORE_CORRUPT") from None
        try:
            AESGCM(key).decrypt(check[:12], check[12:], _CHECK_AAD)
        except InvalidTag:
            raise WrongPassphrase("wrong keystore passphrase or master key", reason="WRONG_PASSPHRASE") from None
        return key

    # files and locking ------------------------------------------------------------------
    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        fd = os.open(self.directory / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)  # closing releases the lock

    @staticmethod
    def _read_json(path: Path) -> dict[str, Any] | None:
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            return None
        try:
            obj = json.loads(data)
        except ValueError as exc:
            raise KeystoreError(f"{path.name} is not valid JSON: {exc}", reason="KEYSTORE_CORRUPT") from None
        if not isinstance(obj, dict):
            raise KeystoreError(f"{path.name} is not a JSON object", reason="KEYSTORE_CORRUPT")
        return obj

    def _path(self, name: str) -> Path:
        return self.directory / (check_key_name(name) + KEY_SUFFIX)

    def _load(self, name: str) -> dict[str, Any]:
        record = self._read_json(self._path(name))
        if record is None:
            raise KeyNotFound(f"no key named {name!r} in the software keystore", reason="KEY_NOT_FOUND")
        return record

    def _save(self, name: str, record: dict[str, Any]) -> None:
        write_atomic(self._path(name), json.dumps(record, indent=2).encode(), mode=0o600)

    # conversions ---------------------------------------------------------------------
    def _seal(self, name: str, version: int, key: PrivateKey) -> str:
        nonce = os.urandom(12)
        return _b64(nonce + self._aead.encrypt(nonce, private_key_to_pkcs8(key), _aad(name, version)))

    def _new_version(self, name: str, version: int, spec: str) -> dict[str, Any]:
        key = PrivateKey.generate(spec)
        entry = {
            "version": version,
            "spec": spec,
            "state": KeyState.ACTIVE.value,
            "created": dt.datetime.now(dt.UTC).isoformat(),
            "public_key": _b64(key.public_key.spki),
            "certificate_chain": [],
            "private_key": self._seal(name, version, key),
        }
        with self._cache_lock:
            self._cache[(name, version)] = (hashlib.sha256(str(entry["private_key"]).encode()).digest(), key)
        return entry

    def _info(self, name: str, entry: dict[str, Any]) -> KeyInfo:
        try:
            return KeyInfo(
                name=name,
                version=int(entry["version"]),
                spec=str(entry["spec"]),
                state=KeyState(entry["state"]),
                created=dt.datetime.fromisoformat(entry["created"]),
                public_key=PublicKey.from_spki(_unb64(entry["public_key"])),
                store=self.kind,
                certificate_chain=tuple(_unb64(c) for c in entry.get("certificate_chain", [])),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise KeystoreError(f"key {name!r} record is malformed: {exc}", reason="KEYSTORE_CORRUPT") from None

    @staticmethod
    def _entry(name: str, record: dict[str, Any], version: int | None) -> dict[str, Any]:
        versions = record.get("versions", [])
        if version is None:
            active = [v for v in versions if v["state"] == KeyState.ACTIVE.value]
            pool = active or versions
            if not pool:
                raise KeyNotFound(f"key {name!r} has no versions", reason="KEY_NOT_FOUND")
            return max(pool, key=lambda v: int(v["version"]))
        for v in versions:
            if int(v["version"]) == version:
                return v
        raise KeyNotFound(f"key {name!r} has no version {version}", reason="KEY_NOT_FOUND")

    # KeyStore -------------------------------------------------------------------------
    def create(self, name: str, spec: str) -> KeyInfo:
        if spec not in KEY_SPECS:
            raise UnsupportedAlgorithm(f"unknown key spec {spec!r}; known: {', '.join(KEY_SPECS)}",
                                       reason="UNKNOWN_KEY_SPEC")
        path = self._path(name)
        with self._locked():
            if path.exists():
                raise Conflict(f"a key named {name!r} already exists", reason="KEY_EXISTS")
            entry = self._new_version(name, 1, spec)
            self._save(name, {"name": name, "versions": [entry]})
        return self._info(name, entry)

    def rotate(self, name: str) -> KeyInfo:
        with self._locked():
            record = self._load(name)
            versions = record["versions"]
            latest = max(versions, key=lambda v: int(v["version"]))
            for v in versions:
                if v["state"] == KeyState.ACTIVE.value:
                    v["state"] = KeyState.PASSIVE.value
            entry = self._new_version(name, int(latest["version"]) + 1, latest["spec"])
            versions.append(entry)
            self._save(name, record)
        return self._info(name, entry)

    def disable(self, name: str, version: int | None = None) -> KeyInfo:
        with self._locked():
            record = self._load(name)
            if version is None:
                entry = max(record["versions"], key=lambda v: int(v["version"]))
            else:
                entry = self._entry(name, record, version)
            entry["state"] = KeyState.DISABLED.value
            self._save(name, record)
        with self._cache_lock:
            self._cache.pop((name, int(entry["version"])), None)
        return self._info(name, entry)

    def list(self) -> list[KeyInfo]:
        out: list[KeyInfo] = []
        for path in sorted(self.directory.glob("*" + KEY_SUFFIX)):
            name = path.name[: -len(KEY_SUFFIX)]
            record = self._read_json(path)
            if record is None:  # removed meanwhile
                continue
            out.extend(self._info(name, v) for v in sorted(record["versions"], key=lambda v: int(v["version"])))
        return out

    def info(self, name: str, version: int | None = None) -> KeyInfo:
        return self._info(name, self._entry(name, self._load(name), version))

    def signer(self, name: str, version: int | None = None) -> Signer:
        entry = self._entry(name, self._load(name), version)
        info = self._info(name, entry)
        if info.state is not KeyState.ACTIVE:
            raise KeyDisabled(f"key {info.ref} is {info.state.value} and may not sign", reason="KEY_DISABLED")
        key = self._private_key(name, info.version, entry["private_key"])
        return SoftwareSigner(key, certificate_chain=info.certificate_chain, key_ref=info.ref)

    def set_certificate_chain(self, name: str, version: int, chain: tuple[bytes, ...]) -> None:
        with self._locked():
            record = self._load(name)
            entry = self._entry(name, record, version)
            chain = check_certificate_chain(self._info(name, entry).public_key, chain)
            entry["certificate_chain"] = [_b64(c) for c in chain]
            self._save(name, record)

    def export_public(self, name: str, version: int | None = None) -> bytes:
        """The public key as PEM SubjectPublicKeyInfo."""
        return self.public_key(name, version).to_pem()

    # private keys ----------------------------------------------------------------------
    def _private_key(self, name: str, version: int, sealed: str) -> PrivateKey:
        tag = hashlib.sha256(sealed.encode()).digest()
        with self._cache_lock:
            hit = self._cache.get((name, version))
        if hit is not None and hit[0] == tag:
            return hit[1]
        try:
            blob = _unb64(sealed)
            der = self._aead.decrypt(blob[:12], blob[12:], _aad(name, version))
        except (InvalidTag, ValueError):
            raise KeystoreError(f"private key of {name}@{version} does not decrypt under this master key "
                                "(corrupted, or moved from another name or version)",
                                reason="KEY_BLOB_INVALID") from None
        key = load_private_key(der)
        with self._cache_lock:
            self._cache[(name, version)] = (tag, key)
        return key
