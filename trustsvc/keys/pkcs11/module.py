"""Loading a PKCS#11 module through python-pkcs11 so that it is safe for threads and after fork.

python-pkcs11 0.10 calls ``C_Initialize(NULL)``, which tells a module that it will never be
called from two threads at once (SoftHSM2 then disables its locks and crashes under
concurrent C_Sign). ``lib.initialize`` is a Cython ``cpdef`` method, so a subclass overrides
it and initialises with ``CKF_OS_LOCKING_OK`` through ctypes on the same loaded library.
After ``fork`` a child must call C_Initialize again; ``load`` notices a new process id and
does that. A fork waits (bounded) until no signature is running, so the child never inherits a
module mutex that another thread held.
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


class _TokenInfo(ctypes.Structure):
    """CK_TOKEN_INFO (PKCS#11 2.40 section 3.2, natural alignment as on Linux)."""

    _fields_ = [("label", ctypes.c_char * 32), ("manufacturerID", ctypes.c_char * 32),
                ("model", ctypes.c_char * 16), ("serialNumber", ctypes.c_char * 16),
                ("flags", ctypes.c_ulong), ("ulMaxSessionCount", ctypes.c_ulong),
                ("ulSessionCount", ctypes.c_ulong), ("ulMaxRwSessionCount", ctypes.c_ulong),
                ("ulRwSessionCount", ctypes.c_ulong), ("ulMaxPinLen", ctypes.c_ulong),
                ("ulMinPinLen", ctypes.c_ulong), ("ulTotalPublicMemory", ctypes.c_ulong),
                ("ulFreePublicMemory", ctypes.c_ulong), ("ulTotalPrivateMemory", ctypes.c_ulong),
                ("ulFreePrivateMemory", ctypes.c_ulong), ("hardwareVersion", ctypes.c_ubyte * 2),
                ("firmwareVersion", ctypes.c_ubyte * 2), ("utcTime", ctypes.c_char * 16)]


CK_EFFECTIVELY_INFINITE = 0
CK_UNAVAILABLE_INFORMATION = ctypes.c_ulong(-1).value


class _Raw:
    """C_Initialize / C_Finalize / C_GetTokenInfo of a module, called directly (same dlopen handle
    as python-pkcs11; python-pkcs11 0.10 does not expose the token's session limits)."""

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
        self._get_token_info = ctypes.CFUNCTYPE(ctypes.c_ulong, ctypes.c_ulong, ctypes.c_void_p)(funcs[7])

    def initialize(self) -> int:
        args = _InitArgs(None, None, None, None, CKF_OS_LOCKING_OK, None)
        return int(self._initialize(ctypes.addressof(args)))

    def finalize(self) -> int:
        return int(self._finalize(None))

    def max_rw_sessions(self, slot_id: int) -> int | None:
        """The token's limit on read-write sessions, or None when unlimited or not reported."""
        info = _TokenInfo()
        if self._get_token_info(slot_id, ctypes.addressof(info)) != CKR_OK:
            return None
        limits = [n for n in (info.ulMaxSessionCount, info.ulMaxRwSessionCount)
                  if n not in (CK_EFFECTIVELY_INFINITE, CK_UNAVAILABLE_INFORMATION)]
        return min(limits) if limits else None


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


def max_rw_sessions(path: str, slot_id: int) -> int | None:
    """The read-write session limit the token in ``slot_id`` reports (None: no limit given)."""
    raw = _RAWS.get(os.path.realpath(path))
    return raw.max_rw_sessions(slot_id) if raw is not None else None


# Sessions in use per module, so that C_Finalize waits for them. enter/leave are on every
# signature: a plain lock and a counter; the condition is notified only while someone waits.
# Before a fork no PKCS#11 call may be running: a module mutex held by another thread at fork
# time stays locked forever in the child, whose C_Finalize/C_Initialize would then hang.
_USE_LOCK = threading.Lock()  # enter/leave take it directly (a Condition's __enter__ is Python code)
_USE = threading.Condition(_USE_LOCK)
_INFLIGHT: dict[str, int] = {}
_GENERATION: dict[str, int] = {}
_reinit_waiting = 0
_fork_pending = False
FORK_QUIESCE_TIMEOUT = 5.0


def _before_fork() -> None:
    """Stop new calls and wait (bounded) for running ones; the lock is held across the fork."""
    global _fork_pending
    _USE.acquire()
    _fork_pending = True
    _USE.wait_for(lambda: not any(_INFLIGHT.values()), timeout=FORK_QUIESCE_TIMEOUT)


def _after_fork_in_parent() -> None:
    global _fork_pending
    _fork_pending = False
    _USE.notify_all()
    _USE.release()


def _after_fork_in_child() -> None:
    global _USE, _USE_LOCK, _reinit_waiting, _fork_pending
    _USE_LOCK = threading.Lock()
    _USE = threading.Condition(_USE_LOCK)
    _INFLIGHT.clear()
    _reinit_waiting = 0
    _fork_pending = False


os.register_at_fork(before=_before_fork, after_in_parent=_after_fork_in_parent,
                    after_in_child=_after_fork_in_child)


def generation(path: str) -> int:
    """How often ``path`` was re-initialised in this process (sessions from before are dead)."""
    return _GENERATION.get(path, 0)


def enter(path: str) -> None:
    """A session of ``path`` is in use (C_Finalize must wait)."""
    with _USE_LOCK:
        while _fork_pending:
            _USE.wait()
        _INFLIGHT[path] = _INFLIGHT.get(path, 0) + 1


def leave(path: str) -> None:
    with _USE_LOCK:
        n = _INFLIGHT.get(path, 1) - 1
        _INFLIGHT[path] = n if n > 0 else 0
        if _reinit_waiting or _fork_pending:
            _USE.notify_all()


def reinitialize(path: str, timeout: float = 10.0) -> None:
    """C_Finalize then C_Initialize once no session of the module is in use in this process.

    Every session and object handle of this process becomes invalid; other pools on the same
    module notice (CKR_SESSION_HANDLE_INVALID / CKR_USER_NOT_LOGGED_IN) and reconnect.
    """
    global _reinit_waiting
    with _USE:
        _reinit_waiting += 1
        try:
            idle = _USE.wait_for(lambda: _INFLIGHT.get(path, 0) <= 0, timeout=timeout)
        finally:
            _reinit_waiting -= 1
        if not idle:
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
