"""One server interceptor: request id, client identity from the certificate, policy, errors, metrics, logs.

It wraps each handler's behaviour so that everything runs in the worker thread serving the RPC:
identity (subject CN and SAN URIs of the verified client certificate) -> policy on the operation
-> the service -> TrustsvcError mapped to a status with ErrorInfo -> metrics and one JSON log line.
"""

from __future__ import annotations

import functools
import logging
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import grpc
from cryptography import x509
from cryptography.x509.oid import NameOID
from grpc_status import rpc_status

from trustsvc.errors import HsmError, PolicyDenied, StoreError, TrustsvcError
from trustsvc.server import context as ctx
from trustsvc.server.errors import internal_status, status_for
from trustsvc.server.logs import log
from trustsvc.server.metrics import Metrics
from trustsvc.server.policy import Identity, Policy


@functools.lru_cache(maxsize=1024)
def identity_from_pem(pem: bytes) -> Identity:
    cert = x509.load_pem_x509_certificate(pem)
    cns = cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        uris = tuple(san.get_values_for_type(x509.UniformResourceIdentifier))
    except x509.ExtensionNotFound:
        uris = ()
    return Identity(str(cns[0].value) if cns else "", uris)


def identity_of(context: grpc.ServicerContext, insecure: bool) -> Identity:
    auth = context.auth_context()
    pems = auth.get("x509_pem_cert")
    if pems:
        return identity_from_pem(pems[0])
    if insecure:  # development only: trust a header
        md = dict(context.invocation_metadata())
        return Identity(md.get("x-trustsvc-insecure-identity", "anonymous"))
    raise PolicyDenied("no client certificate", reason="NO_CLIENT_CERTIFICATE")


class TrustsvcInterceptor(grpc.ServerInterceptor):
    def __init__(self, policy_source: Callable[[], Policy], metrics: Metrics, *, insecure: bool = False,
                 default_deadline_s: float = 30.0) -> None:
        self._policy = policy_source
        self._metrics = metrics
        self._insecure = insecure
        self._default_deadline_s = default_deadline_s

    def intercept_service(self, continuation: Callable[[Any], Any], details: Any) -> Any:
        handler = continuation(details)
        if handler is None:
            return None
        full = details.method  # "/trustsvc.v1.SignatureService/SignData"
        service_full, _, method = full.lstrip("/").rpartition("/")
        service = service_full.rsplit(".", 1)[-1] if service_full.startswith("trustsvc.") else service_full
        if handler.unary_unary:
            return handler._replace(unary_unary=self._wrap(handler.unary_unary, service, method, full, False))
        if handler.unary_stream:
            return handler._replace(unary_stream=self._wrap(handler.unary_stream, service, method, full, True))
        if handler.stream_unary:
            return handler._replace(stream_unary=self._wrap(handler.stream_unary, service, method, full, False))
        return handler._replace(stream_stream=self._wrap(handler.stream_stream, service, method, full, True))

    def _begin(self, context: grpc.ServicerContext, service: str, method: str) -> ctx.Call:
        md = dict(context.invocation_metadata())
        request_id = str(md.get("x-request-id", ""))[:64] or uuid.uuid4().hex
        context.set_trailing_metadata((("x-request-id", request_id),))
        identity = identity_of(context, self._insecure)
        call = ctx.Call(identity, request_id, service, method, context,
                        default_deadline_s=self._default_deadline_s)
        self._policy().check_operation(identity, service, method)
        return call

    def _fail(self, context: grpc.ServicerContext, exc: BaseException, request_id: str) -> str:
        if isinstance(exc, TrustsvcError):
            if isinstance(exc, HsmError):
                self._metrics.hsm_errors.labels(exc.reason).inc()
            if isinstance(exc, StoreError):
                self._metrics.audit_failures.inc()
            status = status_for(exc)
            context.abort_with_status(rpc_status.to_status(status))
        code = context.code() if hasattr(context, "code") else None
        if code is not None and code != grpc.StatusCode.OK:  # context.abort() already called
            raise exc
        log(logging.ERROR, "unexpected error", request_id=request_id, error=type(exc).__name__, exc=str(exc)[:300])
        context.abort_with_status(rpc_status.to_status(internal_status(request_id)))
        raise AssertionError("unreachable")

    def _finish(self, context: grpc.ServicerContext, full: str, call: ctx.Call | None, start: float) -> None:
        code = context.code() if hasattr(context, "code") else None
        name = (code or grpc.StatusCode.OK).name
        elapsed = time.perf_counter() - start
        self._metrics.requests.labels(full, name).inc()
        self._metrics.latency.labels(full).observe(elapsed)
        self._metrics.in_flight.dec()
        log(logging.INFO, "rpc", method=full, code=name, ms=round(elapsed * 1000, 3),
            client=str(call.identity) if call else None, request_id=call.request_id if call else None)

    def _wrap(self, behavior: Callable[..., Any], service: str, method: str, full: str, streaming: bool) -> Any:
        if not streaming:
            def unary(request_or_iterator: Any, context: grpc.ServicerContext) -> Any:
                start = time.perf_counter()
                self._metrics.in_flight.inc()
                call: ctx.Call | None = None
                token = None
                try:
                    call = self._begin(context, service, method)
                    token = ctx.set_current(call)
                    return behavior(request_or_iterator, context)
                except BaseException as exc:  # noqa: BLE001 - mapped to a status
                    return self._fail(context, exc, call.request_id if call else "-")
                finally:
                    if token is not None:
                        ctx.reset(token)
                    self._finish(context, full, call, start)
            return unary

        def stream(request_or_iterator: Any, context: grpc.ServicerContext) -> Iterator[Any]:
            start = time.perf_counter()
            self._metrics.in_flight.inc()
            call: ctx.Call | None = None
            token = None
            try:
                call = self._begin(context, service, method)
                token = ctx.set_current(call)
                yield from behavior(request_or_iterator, context)
            except GeneratorExit:
                raise
            except BaseException as exc:  # noqa: BLE001
                self._fail(context, exc, call.request_id if call else "-")
            finally:
                if token is not None:
                    try:
                        ctx.reset(token)
                    except ValueError:
                        pass
                self._finish(context, full, call, start)
        return stream
