"""One server interceptor: request id, client identity from the certificate, policy, errors, metrics, logs.

It wraps each handler's behaviour so that everything runs in the worker thread serving the RPC:
identity (subject CN and SAN URIs of the verified client certificate) -> policy on the operation
-> the service -> TrustsvcError mapped to a status with ErrorInfo -> metrics and one JSON log line.

Per-method work (names, metric children, the wrapped handler) is done once per method; per call
the certificate parse is cached by the certificate's bytes, so a call costs dictionary lookups.
"""

from __future__ import annotations

import contextlib
import functools
import itertools
import logging
import os
import time
from collections.abc import Callable, Iterator
from typing import Any, NoReturn

import grpc
from cryptography import x509
from cryptography.x509.oid import NameOID
from grpc_status import rpc_status

from trustsvc.errors import InvalidInput, PolicyDenied, TrustsvcError
from trustsvc.server import context as ctx
from trustsvc.server.errors import internal_status, status_for
from trustsvc.server.logs import access_log, log
from trustsvc.server.metrics import MethodMetrics, Metrics
from trustsvc.server.policy import Identity, Policy

REQUEST_ID_HEADER = "x-request-id"
# RPCs that change nothing: their refusals are not audited (everything else, once refused, is)
_READ_ONLY_PREFIXES = ("Verify", "Get", "List", "Introspect", "Parse", "Export", "Validate")


class _RequestIds:
    """Fresh request ids without a system call: a random per-process prefix and a counter."""

    def __init__(self) -> None:
        self._reset()
        os.register_at_fork(after_in_child=self._reset)

    def _reset(self) -> None:
        self._prefix = os.urandom(8).hex()
        self._counter = itertools.count(1)

    def new(self) -> str:
        return f"{self._prefix}{next(self._counter):016x}"


_REQUEST_IDS = _RequestIds()


class _Undecodable:
    """A request message protobuf could not parse (nesting past its depth limit, a string field that is not
    UTF-8, a broken wire format): grpcio would answer INTERNAL and log a traceback, the caller gets
    INVALID_ARGUMENT BAD_REQUEST_MESSAGE instead."""

    __slots__ = ("error",)

    def __init__(self, error: str) -> None:
        self.error = error


def _lenient(deserializer: Callable[[bytes], Any] | None) -> Callable[[bytes], Any] | None:
    if deserializer is None:
        return None

    def deserialize(data: bytes) -> Any:
        try:
            return deserializer(data)
        except Exception as exc:  # noqa: BLE001 - the message is the caller's fault
            return _Undecodable(str(exc)[:200])
    return deserialize


def _decoded(message: Any) -> Any:
    if isinstance(message, _Undecodable):
        raise InvalidInput(f"the request message cannot be parsed: {message.error}", reason="BAD_REQUEST_MESSAGE")
    return message


def _decoded_stream(messages: Iterator[Any]) -> Iterator[Any]:
    for message in messages:
        yield _decoded(message)


@functools.lru_cache(maxsize=1024)
def identity_from_pem(pem: bytes) -> Identity:
    """CN and SAN URIs of a client certificate (cached by its exact PEM bytes)."""
    cert = x509.load_pem_x509_certificate(pem)
    cns = cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        uris = tuple(san.get_values_for_type(x509.UniformResourceIdentifier))
    except x509.ExtensionNotFound:
        uris = ()
    return Identity(str(cns[0].value) if cns else "", uris)


def identity_of(context: grpc.ServicerContext, insecure: bool) -> Identity:
    pems = context.auth_context().get("x509_pem_cert")
    if pems:
        return identity_from_pem(pems[0])
    if insecure:  # development only: trust a header
        md = dict(context.invocation_metadata())
        return Identity(md.get("x-trustsvc-insecure-identity", "anonymous"))
    raise PolicyDenied("no client certificate", reason="NO_CLIENT_CERTIFICATE")


def request_id_of(context: grpc.ServicerContext) -> str:
    """The caller's x-request-id (at most 64 characters) or a fresh random one."""
    for key, value in context.invocation_metadata() or ():
        if key == REQUEST_ID_HEADER:
            rid = str(value)[:64]
            if rid:
                return rid
            break
    return _REQUEST_IDS.new()


def _ref_of(request: Any, m: _Method) -> str:
    """The key or seal a refused request named, when it is a message that says (else "")."""
    for message in (request, getattr(request, "options", None)):
        if message is None or not hasattr(message, "ListFields"):
            continue
        seal_id, key = getattr(message, "seal_id", ""), getattr(message, "key", "")
        if isinstance(seal_id, str) and seal_id:
            return f"seal:{seal_id}"
        if isinstance(key, str) and key:
            return key
        name = getattr(message, "name", "")
        if m.service == "KeyService" and isinstance(name, str):
            return name
    return ""


class _Method:
    """What the interceptor knows about one RPC method, computed once."""

    __slots__ = ("audited", "full", "method", "metrics", "service")

    def __init__(self, full: str, metrics: Metrics) -> None:
        service_full, _, self.method = full.lstrip("/").rpartition("/")
        self.service = service_full.rsplit(".", 1)[-1] if service_full.startswith("trustsvc.") else service_full
        self.full = full
        self.metrics = MethodMetrics(metrics, full)
        self.audited = service_full.startswith("trustsvc.") and not self.method.startswith(_READ_ONLY_PREFIXES)


class TrustsvcInterceptor(grpc.ServerInterceptor):
    def __init__(self, policy_source: Callable[[], Policy], metrics: Metrics, *, insecure: bool = False,
                 default_deadline_s: float = 30.0,
                 audit_refusal: Callable[[ctx.Call, TrustsvcError, str], None] | None = None) -> None:
        """``audit_refusal(call, error, ref)`` records a refused signing, issuing, revoking or admin call."""
        self._policy = policy_source
        self._audit_refusal = audit_refusal
        self._metrics = metrics
        self._insecure = insecure
        self._default_deadline_s = default_deadline_s
        self._wrapped: dict[str, tuple[Any, Any]] = {}  # method -> (handler, wrapped handler)

    def intercept_service(self, continuation: Callable[[Any], Any], details: Any) -> Any:
        handler = continuation(details)
        if handler is None:
            return None
        cached = self._wrapped.get(details.method)
        if cached is not None and cached[0] is handler:
            return cached[1]
        wrapped = self._wrap_handler(handler, _Method(details.method, self._metrics))
        self._wrapped[details.method] = (handler, wrapped)
        return wrapped

    def _wrap_handler(self, handler: Any, m: _Method) -> Any:
        handler = handler._replace(request_deserializer=_lenient(handler.request_deserializer))
        if handler.unary_unary:
            return handler._replace(unary_unary=self._unary(handler.unary_unary, m))
        if handler.unary_stream:
            return handler._replace(unary_stream=self._stream(handler.unary_stream, m))
        if handler.stream_unary:
            return handler._replace(stream_unary=self._unary(handler.stream_unary, m))
        return handler._replace(stream_stream=self._stream(handler.stream_stream, m))

    def _begin(self, context: grpc.ServicerContext, m: _Method) -> ctx.Call:
        """The call (request id, identity); the policy on the operation is checked by the caller."""
        request_id = request_id_of(context)
        context.set_trailing_metadata(((REQUEST_ID_HEADER, request_id),))
        identity = identity_of(context, self._insecure)
        return ctx.Call(identity, request_id, m.service, m.method, context, default_deadline_s=self._default_deadline_s)

    @staticmethod
    def _checked(request_or_iterator: Any) -> Any:
        """The request, refused if it did not parse; a client stream's parts are checked as they are read."""
        if hasattr(request_or_iterator, "__next__"):
            return _decoded_stream(request_or_iterator)
        return _decoded(request_or_iterator)

    def _fail(self, context: grpc.ServicerContext, exc: BaseException, call: ctx.Call | None, m: _Method,
              request: Any) -> NoReturn:
        request_id = call.request_id if call else "-"
        if isinstance(exc, TrustsvcError):
            self._metrics.count_error(exc)
            if call is not None and m.audited and self._audit_refusal is not None:
                self._audit_refusal(call, exc, call.ref or _ref_of(request, m))
            context.abort_with_status(rpc_status.to_status(status_for(exc)))
        code = context.code() if hasattr(context, "code") else None
        if code is not None and code != grpc.StatusCode.OK:  # context.abort() already called
            raise exc
        if isinstance(exc, grpc.RpcError):  # the request stream broke off: the client cancelled or gave up
            context.set_code(grpc.StatusCode.CANCELLED)  # what the access log line reports
            raise exc
        log(logging.ERROR, "unexpected error", request_id=request_id, error=type(exc).__name__, exc=str(exc)[:300])
        context.abort_with_status(rpc_status.to_status(internal_status(request_id)))
        raise AssertionError("unreachable")

    def _finish(self, context: grpc.ServicerContext, m: _Method, call: ctx.Call | None, start: float) -> None:
        code = context.code() if hasattr(context, "code") else None
        name = code.name if code is not None else "OK"
        elapsed = time.perf_counter() - start
        m.metrics.done(name, elapsed)
        access_log(m.full, name, elapsed, str(call.identity) if call else None, call.request_id if call else None)

    @contextlib.contextmanager
    def _serving(self, context: grpc.ServicerContext, m: _Method, request_or_iterator: Any) -> Iterator[None]:
        """Around one call: identity, policy, deadline and the current call set; errors mapped to a
        status; metrics and the access log line at the end."""
        start = time.perf_counter()
        m.metrics.started()
        call: ctx.Call | None = None
        token = None
        try:
            call = self._begin(context, m)
            self._policy().check_operation(call.identity, m.service, m.method)
            call.check_deadline()  # a call that waited past its deadline is not started
            token = ctx.set_current(call)
            yield
        except GeneratorExit:  # a response stream closed early: nothing to map
            raise
        except BaseException as exc:  # noqa: BLE001 - mapped to a status
            self._fail(context, exc, call, m, request_or_iterator)
        finally:
            if token is not None:
                with contextlib.suppress(ValueError):  # a stream may be closed from another context
                    ctx.reset(token)
            self._finish(context, m, call, start)

    def _unary(self, behavior: Callable[..., Any], m: _Method) -> Callable[..., Any]:
        def unary(request_or_iterator: Any, context: grpc.ServicerContext) -> Any:
            with self._serving(context, m, request_or_iterator):
                return behavior(self._checked(request_or_iterator), context)
        return unary

    def _stream(self, behavior: Callable[..., Any], m: _Method) -> Callable[..., Iterator[Any]]:
        def stream(request_or_iterator: Any, context: grpc.ServicerContext) -> Iterator[Any]:
            with self._serving(context, m, request_or_iterator):
                yield from behavior(self._checked(request_or_iterator), context)
        return stream
