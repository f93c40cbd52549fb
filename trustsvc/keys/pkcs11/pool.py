"""A bounded pool of PKCS#11 sessions on one token, safe for threads and after fork.

One logged-in "anchor" session holds the login (PKCS#11 login state is per application,
shared by all its sessions); worker sessions are opened on demand up to ``max_sessions``.
Dead sessions are replaced; when the token or module goes away the module is re-initialised
with exponential backoff while callers get ``HsmUnavailable`` (retryable).
"""

from __future__ import annotations

import os
import threading
import time
import weakref
from collections.abc import Callable
from typing import Any, TypeVar

import pkcs11
import pkcs11.exceptions as px

from trustsvc.errors import HsmError, HsmUnavailable
from trustsvc.keys.pkcs11 import module
from trustsvc.keys.pkcs11.errors import SESSION_GONE, TOKEN_GONE, translate

T = TypeVar("T")
A = TypeVar("A")


class PooledSession:
    """A python-pkcs11 session plus the key objects found on it (looked up once per session)."""

    __slots__ = ("session", "keys", "epoch")

    def __init__(self, session: Any, epoch: int) -> None:
        self.session = session
        self.keys: dict[tuple[object, ...], Any] = {}
        self.epoch = epoch


class SessionPool:
    """Sessions on the token named by label or serial of the module at ``module_path``."""

    def __init__(self, module_path: str, *, token_label: str | None = None,
                 token_serial: str | None = None, pin: Callable[[], str],
                 max_sessions: int = 8, acquire_timeout: float = 10.0,
                 backoff: tuple[float, float] = (0.05, 5.0)) -> None:
        if not token_label and not token_serial:
            raise HsmError("a token label or serial is required", reason="HSM_CONFIG")
        self.module_path = module_path
        self.token_label = token_label
        self.token_serial = token_serial
        self._pin = pin
        self.configured_max_sessions = max(1, max_sessions)
        self.max_sessions = self.configured_max_sessions
        self.acquire_timeout = acquire_timeout
        self._backoff_min, self._backoff_max = backoff
        self._epoch = 0
        self._reset_state()
        self.lib: Any = None
        self.token: Any = None
        self.token_max_sessions: int | None = None
        # Told of every HsmError a pool call raises to its caller, once per error (the daemon's
        # trustsvc_hsm_errors metric); errors the pool recovers from (a session replaced) are not.
        self.on_error: Callable[[HsmError], None] | None = None
        ref = weakref.ref(self)
        os.register_at_fork(after_in_child=lambda: _reset_if_alive(ref))

    def _reset_state(self) -> None:
        """Fresh state: at construction and in a forked child (the parent's sessions and locks are
        not the child's). The epoch only grows, so sessions from before never come back."""
        self._lock = threading.Lock()
        self._cond = threading.Condition(self._lock)
        self._waiting = 0
        self._idle: list[PooledSession] = []
        self._open = 0
        self._busy = 0
        self._epoch += 1
        self._module_generation = -1
        self._anchor: Any = None
        self._connected = False
        self._delay = self._backoff_min
        self._next_attempt = 0.0
        self._last_error = ""
        self._last_reason = ""  # a lasting failure's reason (a wrong PIN), kept while backing off
        self._reinit_needed = False

    def __repr__(self) -> str:
        return f"SessionPool({self.module_path}, token={self.token_label or self.token_serial})"

    # connection ---------------------------------------------------------------------------
    def _what(self) -> str:
        return f"token {self.token_label or self.token_serial!r} of {os.path.basename(self.module_path)}"

    def _connect_locked(self) -> None:
        """Load the module, find the token and log in; raises HsmError/HsmUnavailable."""
        now = time.monotonic()
        if now < self._next_attempt:
            wait = f"next attempt in {self._next_attempt - now:.2f}s"
            if self._last_reason:  # not the token's absence (e.g. the PIN was rejected): say so again
                raise HsmError(f"{self._last_error}; {wait}", reason=self._last_reason)
            raise HsmUnavailable(f"{self._what()} unavailable ({self._last_error}); {wait}", reason="HSM_UNAVAILABLE")
        try:
            if self._reinit_needed:
                # C_Finalize while another thread is inside C_Sign is undefined: it waits.
                module.reinitialize(self.module_path, timeout=self.acquire_timeout)
                self._reinit_needed = False
            self.lib = module.load(self.module_path)
            kwargs: dict[str, str | bytes] = {"token_label": self.token_label} if self.token_label else {}
            if self.token_serial:
                kwargs["token_serial"] = self.token_serial.encode()
            try:
                try:
                    self.token = self.lib.get_token(**kwargs)
                except px.NoSuchToken:  # modules may scan slots only at C_Initialize
                    module.reinitialize(self.module_path, timeout=self.acquire_timeout)
                    self.token = self.lib.get_token(**kwargs)
            except px.NoSuchToken:
                raise HsmUnavailable(f"{self._what()}: no such token in any slot",
                                     reason="HSM_TOKEN_NOT_FOUND") from None
            except px.MultipleTokensReturned:
                raise HsmError(f"{self._what()}: several tokens match; give the serial",
                               reason="HSM_CONFIG") from None
            try:
                self._anchor = self.token.open(user_pin=self._pin(), rw=True)
            except px.UserAlreadyLoggedIn:
                self._anchor = self.token.open(rw=True)
        except HsmError as exc:
            self._fail_locked(exc.message, reinit=isinstance(exc, HsmUnavailable),
                              reason="" if isinstance(exc, HsmUnavailable) else exc.reason)
            raise
        except pkcs11.PKCS11Error as exc:
            err = translate(exc, f"opening {self._what()}")
            self._fail_locked(err.message, reinit=isinstance(exc, TOKEN_GONE),
                              reason="" if isinstance(err, HsmUnavailable) else err.reason)
            raise err from None
        self._epoch += 1
        self._module_generation = module.generation(self.module_path)
        self._apply_token_limit()
        self._connected = True
        self._delay = self._backoff_min
        self._last_error = ""
        self._last_reason = ""

    def _apply_token_limit(self) -> None:
        """Bound the pool by the token's own read-write session limit (one is the login anchor)."""
        try:
            limit = module.max_rw_sessions(self.module_path, self.token.slot.slot_id)
        except Exception:  # noqa: BLE001 - a module that cannot say has no known limit
            limit = None
        self.token_max_sessions = limit
        self.max_sessions = self.configured_max_sessions if limit is None \
            else max(1, min(self.configured_max_sessions, limit - 1))

    def _fail_locked(self, message: str, *, reinit: bool, reason: str = "") -> None:
        """Back off before the next connection attempt. ``reason``: a failure that is not the token's
        absence (HSM_PIN_INCORRECT ...), raised again with that reason until the next attempt."""
        self._last_error = message
        self._last_reason = reason
        self._next_attempt = time.monotonic() + self._delay
        self._delay = min(self._delay * 2, self._backoff_max)
        self._reinit_needed = self._reinit_needed or reinit

    def _disconnect_locked(self, *, reinit: bool) -> None:
        """Forget every session (handles are dead anyway) and schedule a reconnect."""
        self._idle.clear()
        self._open = 0
        self._anchor = None
        self._connected = False
        self._reinit_needed = self._reinit_needed or reinit
        self._cond.notify_all()

    # sessions -----------------------------------------------------------------------------
    def _acquire(self) -> PooledSession:
        # Fast path, taken on almost every call: an idle session of a live connection.
        with self._lock:
            if self._idle and self._connected and self._module_generation == module.generation(self.module_path):
                self._busy += 1
                module.enter(self.module_path)
                return self._idle.pop()
        return self._acquire_slow()

    def _acquire_slow(self) -> PooledSession:
        deadline = time.monotonic() + self.acquire_timeout
        with self._cond:
            while True:
                if self._connected and self._module_generation != module.generation(self.module_path):
                    self._disconnect_locked(reinit=False)  # another pool re-initialised the module
                if not self._connected:
                    self._connect_locked()
                if self._idle:
                    self._busy += 1
                    module.enter(self.module_path)
                    return self._idle.pop()
                if self._open < self.max_sessions:
                    self._open += 1
                    try:
                        session = self.token.open(rw=True)
                    except pkcs11.PKCS11Error as exc:
                        self._open -= 1
                        err = translate(exc, f"opening a session on {self._what()}")
                        if isinstance(exc, TOKEN_GONE) or isinstance(exc, px.SessionCount):
                            if not isinstance(exc, px.SessionCount):
                                self._disconnect_locked(reinit=True)
                                self._fail_locked(err.message, reinit=True)
                            if isinstance(exc, px.SessionCount):
                                self.max_sessions = max(1, self._open)
                                continue
                        raise err from None
                    self._busy += 1
                    module.enter(self.module_path)
                    return PooledSession(session, self._epoch)
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise HsmUnavailable(f"all {self.max_sessions} sessions of {self._what()} busy",
                                         reason="HSM_POOL_EXHAUSTED")
                self._waiting += 1
                try:
                    self._cond.wait(remaining)
                finally:
                    self._waiting -= 1

    def _release(self, ps: PooledSession, ok: bool) -> None:
        module.leave(self.module_path)
        with self._lock:
            if self._busy > 0:
                self._busy -= 1
            if ps.epoch == self._epoch:  # else: from before a reconnect or a fork, already forgotten
                if ok:
                    self._idle.append(ps)
                else:
                    self._open -= 1
                    _close_quietly(ps.session)
            if self._waiting:
                self._cond.notify()

    def run(self, what: str, fn: Callable[[PooledSession], T]) -> T:
        """``fn(session)``; a dead session is replaced and ``fn`` retried once; a lost token
        triggers one reconnect (module re-initialised) and, if that fails, ``HsmUnavailable``.
        A session whose call raised anything is closed, never reused."""
        return self.run_with(what, _call, fn)

    def run_with(self, what: str, fn: Callable[[PooledSession, A], T], arg: A) -> T:
        """``run`` for ``fn(session, arg)``: no closure per call on the signing path."""
        try:
            return self._run_with(what, fn, arg)
        except HsmError as exc:
            self._report(exc)
            raise

    def _report(self, exc: HsmError) -> None:
        """Tell ``on_error`` of an error leaving the pool (once: pool calls can nest)."""
        if self.on_error is None or getattr(exc, "reported", False):
            return
        exc.reported = True  # type: ignore[attr-defined]
        try:
            self.on_error(exc)
        except Exception:  # noqa: BLE001 - counting must never replace the error
            pass

    def _run_with(self, what: str, fn: Callable[[PooledSession, A], T], arg: A) -> T:
        for attempt in (0, 1):
            ps = self._acquire()
            try:
                result = fn(ps, arg)
            except BaseException as exc:
                self._release(ps, False)
                if not isinstance(exc, pkcs11.PKCS11Error):
                    raise
                if isinstance(exc, TOKEN_GONE):
                    self._invalidate(ps.epoch, reinit=True)
                elif isinstance(exc, px.UserNotLoggedIn):
                    self._invalidate(ps.epoch, reinit=False)
                if attempt or not isinstance(exc, SESSION_GONE + TOKEN_GONE):
                    raise translate(exc, what) from None
            else:
                self._release(ps, True)
                return result
        raise AssertionError("unreachable")

    def _invalidate(self, epoch: int, *, reinit: bool) -> None:
        with self._cond:
            if self._connected and epoch == self._epoch:
                self._disconnect_locked(reinit=reinit)

    def close(self) -> None:
        """Close every session and log out."""
        with self._cond:
            for ps in self._idle:
                _close_quietly(ps.session)
            if self._anchor is not None:
                _close_quietly(self._anchor)
            self._disconnect_locked(reinit=False)

    @property
    def stats(self) -> dict[str, object]:
        return {"open": self._open, "idle": len(self._idle), "max": self.max_sessions,
                "token_max": self.token_max_sessions,
                "connected": self._connected, "epoch": self._epoch, "last_error": self._last_error}


def _call(ps: PooledSession, fn: Callable[[PooledSession], T]) -> T:
    return fn(ps)


def _reset_if_alive(ref: weakref.ref[SessionPool]) -> None:
    pool = ref()
    if pool is not None:
        pool._reset_state()


def _close_quietly(session: Any) -> None:
    try:
        session.close()
    except Exception:  # noqa: BLE001 - a dead session cannot be closed; nothing to do
        pass
