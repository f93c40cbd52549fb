"""Loading a PKCS#11 module through python-pkcs11 so that it is safe for threads and after fork.

python-pkcs11 0.10 calls ``C_Initialize(NULL)``, which tells a module that it will never be
called from two threads at once (SoftHSM2 then disables its locks and crashes under
concurrent C_Sign). ``lib.initialize`` is a Cython ``cpdef`` method, so a subclass overrides
it and initialises with ``CKF_OS_LOCKING_OK`` through ctypes on the same loaded library.
After ``fork`` a child must call C_Initialize again; ``load`` notices a new process id and
does that.
"""

from __future__ import annotations

import ctypes
import os
import threading
from typing import Any

import pkcs11
from pkcs11 import _pkcs11

from trustsvc.errors import HsmError, HsmUnavailable

CKF_OS_LOCKING_OK = 0x2
CKR_OK = 0x0
CKR_CRYPTOKI_ALREADY_INITIALIZED = 0x191
CKR_CRYPTOKI_NOT_INITIALIZED = 0x190
DEFAULT_MODULE = "/usr/lib/softhsm/libsofthsm2.so"


class _InitArgs(ctypes.Structure):
    _fields_ = [("CreateMutex", ctypes.c_void_p), ("DestroyMutex", ctypes.c_void_p),
                ("LockMutex", ctypes.c_void_p), ("UnlockMutex", ctypes.c_void_p),
                ("flags", ctypes.c_ulong), ("pReserved", ctypes.c_void_p)]


class _Raw:
    """C_Initialize / C_Finalize of a module, called directly (same dlopen handle as python-pkcs11)."""

    def __init__(self, path: str) -> None:
        try:
            self.dll = ctypes.CDLL(path)
        except OSError as exc:
            raise HsmError(f"cannot load PKCS#11 module {path}: {exc}", reason="HSM_MODULE_LOAD") from None
        funcs = ctypes.POINTER(ctypes.c_void_p)()
        rv = self.dll.C_GetFunctionList(ctypes.byref(funcs))
        if rv != CKR_OK:
            raise HsmError(f"C_GetFunctionList of {path} failed: 0x{rv:x}", reason="HSM_MODULE_LOAD")
        # CK_FUNCTION_LIST: CK_VERSION (padded to a pointer) then C_Initialize, C_Finalize, ...
        proto = ctypes.CFUNCTYPE(ctypes.c_ulong, ctypes.c_void_p)
        self._initialize = proto(funcs[1])
        self._finalize = proto(funcs[2])

    def initialize(self) -> int:
        args = _InitArgs(None, None, None, None, CKF_OS_LOCKING_OK, None)
        return int(self._initialize(ctypes.addressof(args)))

    def finalize(self) -> int:
        return int(self._finalize(None))


class _Lib(_pkcs11.lib):  # type: ignore[misc]
    """python-pkcs11's ``lib`` with C_Initialize(CKF_OS_LOCKING_OK)."""

    def initialize(self) -> None:  # called by lib.__init__
        rv = _RAWS[self.so].initialize()
        if rv not in (CKR_OK, CKR_CRYPTOKI_ALREADY_INITIALIZED):
            raise HsmError(f"C_Initialize failed: 0x{rv:x}", reason="HSM_INIT_FAILED")


_LOCK = threading.Lock()
_RAWS: dict[str, _Raw] = {}
_LIBS: dict[str, tuple[int, Any]] = {}


def load(path: str) -> Any:
    """The initialised python-pkcs11 ``lib`` for ``path`` in this process (re-initialised after fork)."""
    path = os.path.realpath(path)
    with _LOCK:
        entry = _LIBS.get(path)
        if entry is not None and entry[0] == os.getpid():
            return entry[1]
        if not os.path.exists(path):
            raise HsmError(f"PKCS#11 module {path} does not exist", reason="HSM_MODULE_LOAD")
        raw = _RAWS.get(path) or _Raw(path)
        _RAWS[path] = raw
        if entry is not None:  # forked child: the parent's initialisation does not carry over
            raw.finalize()
            raw.initialize()
            _LIBS[path] = (os.getpid(), entry[1])
            return entry[1]
        try:
            lib = _Lib(path)
        except pkcs11.PKCS11Error as exc:
            raise HsmError(f"cannot initialise PKCS#11 module {path}: {type(exc).__name__}",
                           reason="HSM_INIT_FAILED") from None
        _LIBS[path] = (os.getpid(), lib)
        return lib


_USE = threading.Condition()
_INFLIGHT: dict[str, int] = {}
_GENERATION: dict[str, int] = {}


def generation(path: str) -> int:
    """How often ``path`` was re-initialised in this process (sessions from before are dead)."""
    return _GENERATION.get(path, 0)


def enter(path: str) -> None:
    """A session of ``path`` is in use (C_Finalize must wait)."""
    with _USE:
        _INFLIGHT[path] = _INFLIGHT.get(path, 0) + 1


def leave(path: str) -> None:
    with _USE:
        _INFLIGHT[path] = _INFLIGHT.get(path, 1) - 1
        _USE.notify_all()


def reinitialize(path: str, timeout: float = 10.0) -> None:
    """C_Finalize then C_Initialize once no session of the module is in use in this process.

    Every session and object handle of this process becomes invalid; other pools on the same
    module notice (CKR_SESSION_HANDLE_INVALID / CKR_USER_NOT_LOGGED_IN) and reconnect.
    """
    with _USE:
        if not _USE.wait_for(lambda: _INFLIGHT.get(path, 0) <= 0, timeout=timeout):
            raise HsmUnavailable(f"{os.path.basename(path)}: operations still in flight, "
                                 "module not re-initialised", reason="HSM_UNAVAILABLE")
        real = os.path.realpath(path)
        with _LOCK:
            raw = _RAWS.get(real)
            if raw is None:
                return
            raw.finalize()
            rv = raw.initialize()
            _GENERATION[path] = _GENERATION.get(path, 0) + 1
        if rv not in (CKR_OK, CKR_CRYPTOKI_ALREADY_INITIALIZED):
            raise HsmError(f"C_Initialize failed: 0x{rv:x}", reason="HSM_INIT_FAILED")


_VENDOR_LOCK = threading.Lock()


def _extend(enum_cls: Any, code: int, prefix: str) -> Any:
    """The member of a python-pkcs11 IntEnum for ``code``, adding a vendor member if needed.

    python-pkcs11 refuses mechanisms that are not ``Mechanism`` members; vendor codes
    (>= CKM_VENDOR_DEFINED 0x80000000) are added as pseudo-members once.
    """
    with _VENDOR_LOCK:
        try:
            return enum_cls(code)
        except ValueError:
            pass
        member = int.__new__(enum_cls, code)
        name = f"{prefix}_{code:08X}"
        member._name_ = name
        member._value_ = code
        enum_cls._value2member_map_[code] = member
        enum_cls._member_map_[name] = member
        return member


def mechanism(code: int) -> pkcs11.Mechanism:
    """A ``pkcs11.Mechanism`` for any code, vendor-defined included."""
    return _extend(pkcs11.Mechanism, code, "VENDOR")


def key_type(code: int) -> pkcs11.KeyType:
    """A ``pkcs11.KeyType`` for any code, vendor-defined included."""
    return _extend(pkcs11.KeyType, code, "VENDOR")
