"""python-pkcs11 exceptions mapped onto trustsvc errors (never with a PIN in the message)."""

from __future__ import annotations

import pkcs11.exceptions as px

from trustsvc.errors import HsmError, HsmUnavailable

# The token or the module went away: re-initialise the module, then reconnect.
TOKEN_GONE: tuple[type[Exception], ...] = (
    px.DeviceRemoved, px.TokenNotPresent, px.DeviceError, px.TokenNotRecognised,
    px.SlotIDInvalid, px.NoSuchToken, px.GeneralError,
)
# One session is dead: replace it.
SESSION_GONE: tuple[type[Exception], ...] = (
    px.SessionHandleInvalid, px.SessionClosed, px.ObjectHandleInvalid, px.KeyHandleInvalid,
    px.UserNotLoggedIn,
)


def translate(exc: BaseException, what: str) -> HsmError:
    """A trustsvc error for a PKCS#11 failure during ``what``."""
    name = type(exc).__name__
    if isinstance(exc, px.PinIncorrect):
        return HsmError(f"{what}: the token rejected the user PIN (CKR_PIN_INCORRECT)",
                        reason="HSM_PIN_INCORRECT")
    if isinstance(exc, px.PinLocked):
        return HsmError(f"{what}: the user PIN is locked (CKR_PIN_LOCKED)", reason="HSM_PIN_LOCKED")
    if isinstance(exc, TOKEN_GONE):
        return HsmUnavailable(f"{what}: token not available ({name}); retry later",
                              reason="HSM_UNAVAILABLE")
    if isinstance(exc, SESSION_GONE):
        return HsmUnavailable(f"{what}: session lost ({name}); retry later", reason="HSM_SESSION_LOST")
    if isinstance(exc, px.MechanismInvalid):
        return HsmError(f"{what}: the token does not support the mechanism (CKR_MECHANISM_INVALID)",
                        reason="HSM_MECHANISM_INVALID")
    return HsmError(f"{what}: PKCS#11 error {name}", reason="HSM_ERROR")
