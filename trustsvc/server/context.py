"""The current call: who is calling, which RPC, its request id and deadline (set by the interceptor)."""

from __future__ import annotations

import contextvars
import dataclasses
import time

import grpc

from trustsvc.errors import CallAborted
from trustsvc.server.policy import Identity

_CURRENT: contextvars.ContextVar[Call] = contextvars.ContextVar("trustsvc_call")
# grpcio reports a call without a deadline as about 9.2e18 s remaining (never None): anything beyond this is none
NO_DEADLINE_S = 1e9


@dataclasses.dataclass
class Call:
    identity: Identity
    request_id: str
    service: str
    method: str
    context: grpc.ServicerContext
    started: float = dataclasses.field(default_factory=time.monotonic)
    default_deadline_s: float = 30.0
    ref: str = ""  # the key or seal the call names, once a streaming call has read it (for refusal records)
    changing: bool = False  # set by Runtime.before_change: from then on the call runs to its audit record

    @property
    def operation(self) -> str:
        return f"{self.service}/{self.method}"

    @property
    def client(self) -> str:
        return str(self.identity)

    def time_remaining(self) -> float:
        """Seconds left: the client's deadline when it set one, else ``default_deadline_s`` from the start."""
        remaining = self.context.time_remaining()
        if remaining is not None and remaining < NO_DEADLINE_S:
            return remaining
        return self.default_deadline_s - (time.monotonic() - self.started)

    def check_deadline(self) -> None:
        """Raise CallAborted (DEADLINE_EXCEEDED, or CANCELLED when the client went away) once the client's
        (or the default) deadline has passed: called before work that signs, changes state or commits."""
        if self.time_remaining() <= 0:
            raise CallAborted("deadline exceeded while serving the request: nothing was signed or changed")
        if not self.context.is_active():
            raise CallAborted("the client cancelled the call: nothing was signed or changed", reason="CANCELLED")


def current() -> Call:
    return _CURRENT.get()


def set_current(call: Call) -> contextvars.Token[Call]:
    return _CURRENT.set(call)


def reset(token: contextvars.Token[Call]) -> None:
    _CURRENT.reset(token)
