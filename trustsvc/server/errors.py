"""TrustsvcError -> gRPC status code with a google.rpc.ErrorInfo detail (domain "trustsvc")."""

from __future__ import annotations

import grpc
from google.protobuf import any_pb2
from google.rpc import code_pb2, error_details_pb2, status_pb2

from trustsvc import errors as e

DOMAIN = "trustsvc"

_CODES: list[tuple[type[e.TrustsvcError], grpc.StatusCode]] = [
    (e.InvalidInput, grpc.StatusCode.INVALID_ARGUMENT),
    (e.UnsupportedAlgorithm, grpc.StatusCode.INVALID_ARGUMENT),
    (e.KeyMismatch, grpc.StatusCode.INVALID_ARGUMENT),
    (e.CertificateError, grpc.StatusCode.INVALID_ARGUMENT),
    (e.KeyNotFound, grpc.StatusCode.NOT_FOUND),
    (e.NotFound, grpc.StatusCode.NOT_FOUND),
    (e.KeyDisabled, grpc.StatusCode.FAILED_PRECONDITION),
    (e.PolicyDenied, grpc.StatusCode.PERMISSION_DENIED),
    (e.HsmUnavailable, grpc.StatusCode.UNAVAILABLE),
    (e.StoreError, grpc.StatusCode.UNAVAILABLE),
    (e.HsmError, grpc.StatusCode.INTERNAL),
    (e.KeystoreError, grpc.StatusCode.INTERNAL),
    (e.InvalidSignature, grpc.StatusCode.INVALID_ARGUMENT),
]


def code_for(exc: e.TrustsvcError) -> grpc.StatusCode:
    if isinstance(exc, e.Conflict):
        if exc.reason == "REQUEST_IN_PROGRESS":
            return grpc.StatusCode.ABORTED
        return grpc.StatusCode.ALREADY_EXISTS if exc.reason in ("DUPLICATE", "ALREADY_EXISTS") or \
            exc.reason.endswith("_EXISTS") else grpc.StatusCode.FAILED_PRECONDITION
    for cls, code in _CODES:
        if isinstance(exc, cls):
            return code
    return grpc.StatusCode.INTERNAL


def rpc_status(code: grpc.StatusCode, message: str, reason: str, **metadata: str) -> status_pb2.Status:
    """A google.rpc.Status with one ErrorInfo detail."""
    info = error_details_pb2.ErrorInfo(reason=reason, domain=DOMAIN, metadata=metadata)
    detail = any_pb2.Any()
    detail.Pack(info)
    return status_pb2.Status(code=code.value[0], message=message, details=[detail])


def status_for(exc: e.TrustsvcError) -> status_pb2.Status:
    return rpc_status(code_for(exc), exc.message, exc.reason)


def internal_status(request_id: str) -> status_pb2.Status:
    return rpc_status(grpc.StatusCode.INTERNAL, f"internal error (request {request_id})", "INTERNAL",
                      request_id=request_id)


def code_name(number: int) -> str:
    return code_pb2.Code.Name(number)
