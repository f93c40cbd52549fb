"""Exception hierarchy. Every error the library raises derives from TrustsvcError.

Each error carries a machine-readable ``reason`` (UPPER_SNAKE) that the daemon puts into
gRPC error details and the CLI prints, beside a human message naming what was wrong.
"""

from __future__ import annotations


class TrustsvcError(Exception):
    """Root of all trustsvc errors."""

    reason: str = "TRUSTSVC_ERROR"

    def __init__(self, message: str, *, reason: str | None = None) -> None:
        super().__init__(message)
        if reason is not None:
            self.reason = reason

    @property
    def message(self) -> str:
        return str(self.args[0]) if self.args else ""


class InvalidInput(TrustsvcError):
    """Input was malformed (bad DER, bad PEM, wrong length, bad base64 ...)."""

    reason = "INVALID_INPUT"


class DecodeError(InvalidInput):
    """A structure could not be parsed."""

    reason = "DECODE_ERROR"


class UnsupportedAlgorithm(TrustsvcError):
    """An algorithm, curve or key type is not supported here."""

    reason = "UNSUPPORTED_ALGORITHM"


class InvalidSignature(TrustsvcError):
    """A signature did not verify."""

    reason = "INVALID_SIGNATURE"


class KeyMismatch(TrustsvcError):
    """A key does not belong with a certificate or another key."""

    reason = "KEY_MISMATCH"


class KeyNotFound(TrustsvcError):
    """No key of that name or version exists."""

    reason = "KEY_NOT_FOUND"


class KeyDisabled(TrustsvcError):
    """The key exists but may not be used for signing."""

    reason = "KEY_DISABLED"


class KeystoreError(TrustsvcError):
    """The key store failed (locked, corrupted, wrong passphrase ...)."""

    reason = "KEYSTORE_ERROR"


class WrongPassphrase(KeystoreError):
    """A passphrase or master key did not decrypt."""

    reason = "WRONG_PASSPHRASE"


class HsmError(TrustsvcError):
    """A PKCS#11 module or token failed."""

    reason = "HSM_ERROR"


class HsmUnavailable(HsmError):
    """The token is absent or being re-initialised: retry later."""

    reason = "HSM_UNAVAILABLE"
    retryable = True


class CertificateError(TrustsvcError):
    """A certificate could not be built, parsed or validated."""

    reason = "CERTIFICATE_ERROR"


class PathValidationError(CertificateError):
    """A certificate chain did not validate; ``reason`` names the failed check."""

    reason = "PATH_VALIDATION_FAILED"


class NotFound(TrustsvcError):
    """A stored object (seal, token, record) does not exist."""

    reason = "NOT_FOUND"


class Conflict(TrustsvcError):
    """The operation conflicts with current state (already revoked, duplicate id ...)."""

    reason = "CONFLICT"


class PolicyDenied(TrustsvcError):
    """The caller may not perform this operation."""

    reason = "PERMISSION_DENIED"


class StoreError(TrustsvcError):
    """The persistence layer failed."""

    reason = "STORE_ERROR"


class CallAborted(TrustsvcError):
    """The caller's deadline passed (DEADLINE_EXCEEDED) or it cancelled the call (CANCELLED): nothing more is done."""

    reason = "DEADLINE_EXCEEDED"
