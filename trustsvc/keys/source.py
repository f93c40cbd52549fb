"""Signing keys for commands: a key (with its certificate chain) from the software keystore or a PKCS#11 HSM.

A ``KeySource`` says where keys live and where to read the passphrase or PIN (a file or an environment
variable); it never holds the secret itself, so it can be passed to batch worker processes. Mistakes a
user can fix (unknown key, disabled key, wrong passphrase or PIN, no certificate) raise InvalidInput
with the store's reason.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
from collections.abc import Iterator
from pathlib import Path

from trustsvc.algorithms.signer import Signer
from trustsvc.errors import HsmError, InvalidInput, KeyDisabled, KeyNotFound, WrongPassphrase
from trustsvc.keys.base import KeyStore, parse_key_ref
from trustsvc.keys.factory import open_keystore

_HSM_USER_ERRORS = ("HSM_PIN_MISSING", "HSM_PIN_INCORRECT", "HSM_PIN_LOCKED", "HSM_CONFIG", "HSM_TOKEN_NOT_FOUND")


@dataclasses.dataclass(frozen=True)
class KeySource:
    """Where keys come from. Soft: ``home``/keys; HSM: explicit module/token/PIN source, else the environment
    (``trustsvc.keys.pkcs11.open_from_env``)."""

    store: str = "soft"
    home: str = ".trustsvc-demo"
    passphrase_file: str | None = None
    passphrase_env: str | None = None
    hsm_module: str | None = None
    hsm_token: str | None = None
    pin_file: str | None = None
    pin_env: str | None = None

    def open(self) -> KeyStore:
        """The key store; wrong or missing secrets raise InvalidInput."""
        with _user_errors():
            if self.store == "hsm" and (self.hsm_module or self.hsm_token or self.pin_file or self.pin_env):
                return self._open_hsm()
            return open_keystore(self.store, Path(self.home), passphrase=self._passphrase())

    def _passphrase(self) -> bytes | None:
        if self.passphrase_file:
            try:
                return Path(self.passphrase_file).read_bytes().rstrip(b"\r\n")
            except OSError as exc:
                raise InvalidInput(f"cannot read the passphrase file {self.passphrase_file}: {exc.strerror}",
                                   reason="PASSPHRASE_MISSING") from None
        if self.passphrase_env:
            value = os.environ.get(self.passphrase_env)
            if not value:
                raise InvalidInput(f"environment variable {self.passphrase_env} holding the passphrase is not set",
                                   reason="PASSPHRASE_MISSING")
            return value.encode()
        return None

    def _open_hsm(self) -> KeyStore:
        from trustsvc.keys.pkcs11 import Pkcs11KeyStore, pin_source
        from trustsvc.keys.pkcs11.module import DEFAULT_MODULE

        token = self.hsm_token or os.environ.get("TRUSTSVC_PKCS11_TOKEN")
        if not token:
            raise InvalidInput("give --hsm-token (the token label)", reason="HSM_CONFIG")
        if not (self.pin_file or self.pin_env):
            raise InvalidInput("give --pin-file or --pin-env for the HSM user PIN", reason="HSM_PIN_MISSING")
        module = self.hsm_module or os.environ.get("TRUSTSVC_PKCS11_MODULE", DEFAULT_MODULE)
        return Pkcs11KeyStore(module, token_label=token, pin=pin_source(pin_file=self.pin_file, pin_env=self.pin_env))

    def signer(self, store: KeyStore, ref: str, *, require_certificate: bool = True) -> Signer:
        """The signer of key ``ref`` (NAME or NAME@VERSION), which must carry a certificate chain unless
        ``require_certificate`` is False (a CA's own key: its certificate is kept by the CA)."""
        name, version = parse_key_ref(ref)
        with _user_errors():
            signer = store.signer(name, version)
        if require_certificate and not signer.certificate_chain:
            raise InvalidInput(f"key {ref!r} has no certificate chain in the {self.store} store: issue a certificate "
                               "and store it beside the key", reason="NO_CERTIFICATE")
        return signer


@contextlib.contextmanager
def _user_errors() -> Iterator[None]:
    """Turn store errors a user can fix into InvalidInput (exit code 2), keeping the reason."""
    try:
        yield
    except (KeyNotFound, KeyDisabled, WrongPassphrase) as exc:
        raise InvalidInput(exc.message, reason=exc.reason) from None
    except HsmError as exc:
        if exc.reason in _HSM_USER_ERRORS:
            raise InvalidInput(exc.message, reason=exc.reason) from None
        raise


def load_signer(source: KeySource, ref: str) -> Signer:
    """Open the store and return the signer of ``ref`` (a picklable factory for batch workers)."""
    return source.signer(source.open(), ref)
