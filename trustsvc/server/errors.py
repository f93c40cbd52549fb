"""TrustsvcError -> gRPC status code with a google.rpc.ErrorInfo detail (domain "trustsvc")."""

from __future__ import annotations

import grpc
from google.protobuf import any_pb2
from google.rpc import code_pb2, error_details_pb2, status_pb2

from trustsvc import errors as e
from trustsvc.token.errors import TokenConfigError, TokenInvalid
from trustsvc.tsa.client import TsaUnavailable

DOMAIN = "trustsvc"
MAX_MESSAGE_BYTES = 512

# (error class, reasons or None for any, code): the first row that matches decides. Conflict
# reasons ending in _EXISTS also map to ALREADY_EXISTS.
_TABLE: list[tuple[type[e.TrustsvcError], frozenset[str] | None, grpc.StatusCode]] = [
    (e.Conflict, frozenset({"REQUEST_IN_PROGRESS"}), grpc.StatusCode.ABORTED),
    (e.Conflict, frozenset({"DUPLICATE", "ALREADY_EXISTS"}), grpc.StatusCode.ALREADY_EXISTS),
    (e.Conflict, None, grpc.StatusCode.FAILED_PRECONDITION),
    (e.InvalidInput, frozenset({"STREAM_TOO_LARGE", "PDF_CONTENT_TOO_LARGE"}),
     grpc.StatusCode.RESOURCE_EXHAUSTED),  # as gRPC's own limit
    (e.CallAborted, frozenset({"CANCELLED"}), grpc.StatusCode.CANCELLED),
    (e.CallAborted, None, grpc.StatusCode.DEADLINE_EXCEEDED),
    (e.InvalidInput, None, grpc.StatusCode.INVALID_ARGUMENT),
    (e.UnsupportedAlgorithm, None, grpc.StatusCode.INVALID_ARGUMENT),
    (e.KeyMismatch, None, grpc.StatusCode.INVALID_ARGUMENT),
    (e.CertificateError, None, grpc.StatusCode.INVALID_ARGUMENT),
    (e.InvalidSignature, None, grpc.StatusCode.INVALID_ARGUMENT),
    (TokenInvalid, None, grpc.StatusCode.INVALID_ARGUMENT),  # a token the caller gave
    # the IssueToken request's subject, claims or key, not the daemon's token configuration
    (TokenConfigError, frozenset({"BAD_SUBJECT", "RESERVED_CLAIM", "BAD_CLAIMS", "ALG_NOT_SUPPORTED"}),
     grpc.StatusCode.INVALID_ARGUMENT),
    (e.KeyNotFound, None, grpc.StatusCode.NOT_FOUND),
    (e.NotFound, None, grpc.StatusCode.NOT_FOUND),
    (e.KeyDisabled, None, grpc.StatusCode.FAILED_PRECONDITION),
    (e.PolicyDenied, None, grpc.StatusCode.PERMISSION_DENIED),
    (e.HsmUnavailable, None, grpc.StatusCode.UNAVAILABLE),
    (TsaUnavailable, None, grpc.StatusCode.UNAVAILABLE),
    (e.StoreError, None, grpc.StatusCode.UNAVAILABLE),
    (e.HsmError, None, grpc.StatusCode.INTERNAL),
    (e.KeystoreError, None, grpc.StatusCode.INTERNAL),
]


def code_for(exc: e.TrustsvcError) -> grpc.StatusCode:
    reason = exc.reason
    if isinstance(exc, e.Conflict) and reason.endswith("_EXISTS"):
        return grpc.StatusCode.ALREADY_EXISTS
    for cls, reasons, code in _TABLE:
        if isinstance(exc, cls) and (reasons is None or reason in reasons):
            return code
    return grpc.StatusCode.INTERNAL


def short_message(message: str) -> str:
    """``message`` cut to MAX_MESSAGE_BYTES of UTF-8: it travels twice in the trailers (grpc-message,
    percent-encoded, and the Status detail, base64), whose size the client limits (8 KiB by default);
    a message quoting a 10 kB key name made the client see RESOURCE_EXHAUSTED instead of the status."""
    raw = message.encode("utf-8", "replace")
    if len(raw) <= MAX_MESSAGE_BYTES:
        return message
    return raw[:MAX_MESSAGE_BYTES].decode("utf-8", "ignore") + "..."


def rpc_status(code: grpc.StatusCode, message: str, reason: str, **metadata: str) -> status_pb2.Status:
    """A google.rpc.Status with one ErrorInfo detail (the message cut short, see ``short_message``)."""
    message = short_message(message)
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
