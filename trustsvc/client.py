"""A Python client for the trustsvc daemon: mTLS, deadlines, retries with backoff for idempotent calls.

>>> with Client("127.0.0.1:50051", ca="tls/ca.pem", cert="tls/clients/demo-client.pem",
...             key="tls/clients/demo-client-key.pem") as c:
...     sig = c.sign_data("default", b"hello").signature

Every stub is available as ``c.signature``, ``c.keys``, ``c.tokens``, ``c.seals``, ``c.documents``,
``c.timestamps`` and ``c.health``; ``c.call(stub_method, request)`` adds the deadline and retries.
A call is retried on UNAVAILABLE (and ABORTED from an idempotency key in progress) only when it is
idempotent: verifications and reads always, signing calls (and key creation or rotation) when they
carry an idempotency key. Client-streaming calls (``*_stream``) are never retried: their chunks come
from an iterator that cannot be sent twice; call again with the same idempotency key to get the
stored result instead of a second signature.
"""

from __future__ import annotations

import hashlib
import random
import time
import uuid
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any, BinaryIO

import grpc
from google.rpc import error_details_pb2
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_status import rpc_status

from trustsvc import codegen

signature_pb2, signature_grpc = codegen.load("signature")
key_pb2, key_grpc = codegen.load("key")
token_pb2, token_grpc = codegen.load("token")
seal_pb2, seal_grpc = codegen.load("seal")
document_pb2, document_grpc = codegen.load("document")
timestamp_pb2, timestamp_grpc = codegen.load("timestamp")

RETRYABLE = (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.ABORTED)
CHUNK = 1024 * 1024


def error_reason(err: grpc.RpcError) -> str | None:
    """The ErrorInfo reason the daemon put in the status details, if any."""
    status = rpc_status.from_call(err)  # type: ignore[arg-type]
    if status is None:
        return None
    for detail in status.details:
        if detail.Is(error_details_pb2.ErrorInfo.DESCRIPTOR):
            info = error_details_pb2.ErrorInfo()
            detail.Unpack(info)
            return info.reason
    return None


def _read(p: str | Path | bytes | None) -> bytes | None:
    if p is None or isinstance(p, bytes):
        return p
    return Path(p).read_bytes()


class Client:
    def __init__(self, target: str, *, ca: str | Path | bytes | None = None, cert: str | Path | bytes | None = None,
                 key: str | Path | bytes | None = None, insecure: bool = False, timeout: float = 30.0,
                 retries: int = 4, backoff: float = 0.1, max_message_bytes: int = 64 * 1024 * 1024,
                 server_name: str | None = None) -> None:
        options: list[tuple[str, int | str]] = [("grpc.max_receive_message_length", max_message_bytes),
                   ("grpc.max_send_message_length", max_message_bytes)]
        if server_name:
            options.append(("grpc.ssl_target_name_override", server_name))
        if insecure:
            self.channel = grpc.insecure_channel(target, options=options)
        else:
            creds = grpc.ssl_channel_credentials(_read(ca), _read(key), _read(cert))
            self.channel = grpc.secure_channel(target, creds, options=options)
        self.timeout, self.retries, self.backoff = timeout, retries, backoff
        self.signature = signature_grpc.SignatureServiceStub(self.channel)
        self.keys = key_grpc.KeyServiceStub(self.channel)
        self.tokens = token_grpc.TokenServiceStub(self.channel)
        self.seals = seal_grpc.SealServiceStub(self.channel)
        self.documents = document_grpc.DocumentServiceStub(self.channel)
        self.timestamps = timestamp_grpc.TimeStampServiceStub(self.channel)
        self.health = health_pb2_grpc.HealthStub(self.channel)

    @classmethod
    def from_home(cls, home: str | Path, target: str, identity: str = "demo-client", **kwargs: Any) -> Client:
        """Connect with the embedded default's certificates under ``home/tls``."""
        tls = Path(home) / "tls"
        return cls(target, ca=tls / "ca.pem", cert=tls / "clients" / f"{identity}.pem",
                   key=tls / "clients" / f"{identity}-key.pem", **kwargs)

    # plumbing ---------------------------------------------------------------------
    def call(self, method: Any, request: Any, *, idempotent: bool = False, timeout: float | None = None,
             request_id: str | None = None) -> Any:
        """Call with a deadline; retry on UNAVAILABLE/ABORTED with jittered exponential backoff when idempotent."""
        timeout = self.timeout if timeout is None else timeout
        deadline = time.monotonic() + timeout
        metadata = (("x-request-id", request_id or uuid.uuid4().hex),)
        attempt = 0
        while True:
            remaining = deadline - time.monotonic()
            try:
                return method(request, timeout=max(remaining, 0.001), metadata=metadata)
            except grpc.RpcError as err:
                attempt += 1
                if not idempotent or err.code() not in RETRYABLE or attempt > self.retries:
                    raise
                pause = self.backoff * (2 ** (attempt - 1)) * (0.5 + random.random())
                if time.monotonic() + pause >= deadline:
                    raise
                time.sleep(pause)

    def close(self) -> None:
        self.channel.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def wait_ready(self, timeout: float = 10.0) -> None:
        grpc.channel_ready_future(self.channel).result(timeout=timeout)

    def check_health(self, service: str = "") -> str:
        resp = self.call(self.health.Check, health_pb2.HealthCheckRequest(service=service), idempotent=True)
        return health_pb2.HealthCheckResponse.ServingStatus.Name(resp.status)

    # SignatureService -------------------------------------------------------------
    def sign_data(self, key: str, data: bytes, *, idempotency_key: str = "", **kw: Any) -> Any:
        req = signature_pb2.SignDataRequest(key=key, data=data, idempotency_key=idempotency_key)
        return self.call(self.signature.SignData, req, idempotent=bool(idempotency_key), **kw)

    def verify_signed_data(self, data: bytes, signature: bytes, *, certificate: bytes | None = None,
                           public_key: bytes | None = None, key: str | None = None, **kw: Any) -> Any:
        req = signature_pb2.VerifySignedDataRequest(data=data, signature=signature, certificate=certificate,
                                                    public_key=public_key, key=key)
        return self.call(self.signature.VerifySignedData, req, idempotent=True, **kw).result

    def sign_message(self, key: str, data: bytes, *, detached: bool = False, idempotency_key: str = "",
                     **kw: Any) -> Any:
        req = signature_pb2.SignMessageRequest(key=key, data=data, detached=detached, idempotency_key=idempotency_key)
        return self.call(self.signature.SignMessage, req, idempotent=bool(idempotency_key), **kw)

    def verify_signed_message(self, cms: bytes, data: bytes = b"", **kw: Any) -> Any:
        req = signature_pb2.VerifySignedMessageRequest(cms=cms, data=data)
        return self.call(self.signature.VerifySignedMessage, req, idempotent=True, **kw)

    def batch_sign_data(self, key: str, items: Iterable[tuple[str, bytes]], *, idempotency_key: str = "",
                        **kw: Any) -> Any:
        req = signature_pb2.BatchSignDataRequest(
            key=key, items=[signature_pb2.BatchSignDataRequest.Item(id=i, data=d) for i, d in items],
            idempotency_key=idempotency_key)
        return self.call(self.signature.BatchSignData, req, idempotent=bool(idempotency_key), **kw)

    def sign_data_stream(self, key: str, chunks: Iterable[bytes], *, idempotency_key: str = "",
                         timeout: float | None = None) -> Any:
        init = signature_pb2.SignStreamInit(key=key, idempotency_key=idempotency_key)
        return self.signature.SignDataStream(_then_chunks(signature_pb2.SignDataStreamRequest, {"init": init}, chunks),
                                             timeout=timeout or self.timeout)

    def sign_message_stream(self, key: str, chunks: Iterable[bytes], *, idempotency_key: str = "",
                            timeout: float | None = None) -> Any:
        init = signature_pb2.SignStreamInit(key=key, idempotency_key=idempotency_key)
        return self.signature.SignMessageStream(_then_chunks(signature_pb2.SignMessageStreamRequest, {"init": init},
                                                             chunks), timeout=timeout or self.timeout)

    def sign_pdf_stream(self, options: Any, chunks: Iterable[bytes], out: BinaryIO, *,
                        timeout: float | None = None) -> Any:
        """Stream a PDF in, write the signed PDF to ``out`` as its chunks arrive; returns the summary.

        The output's SHA-256 is checked against the summary's ``signed_sha256`` (DecodeError if they differ).
        """
        sha, summary = hashlib.sha256(), None
        requests = _then_chunks(document_pb2.SignPdfStreamRequest, {"options": options}, chunks)
        for part in self.documents.SignPdfStream(requests, timeout=timeout or self.timeout):
            if part.WhichOneof("part") == "chunk":
                sha.update(part.chunk)
                out.write(part.chunk)
            else:
                summary = part.summary
        if summary is None or (summary.signed_sha256 and summary.signed_sha256 != sha.hexdigest()):
            from trustsvc.errors import DecodeError

            raise DecodeError("the signed PDF received does not match the summary's SHA-256",
                              reason="STREAM_CORRUPTED")
        return summary

    def export_cert(self, key: str, **kw: Any) -> Any:
        return self.call(self.signature.ExportCert, signature_pb2.ExportCertRequest(key=key), idempotent=True, **kw)

    def parse_cert(self, certificate: bytes, **kw: Any) -> Any:
        return self.call(self.signature.ParseCert, signature_pb2.ParseCertRequest(certificate=certificate),
                         idempotent=True, **kw)

    def validate_cert(self, certificate: bytes, **kw: Any) -> Any:
        return self.call(self.signature.ValidateCert, signature_pb2.ValidateCertRequest(certificate=certificate),
                         idempotent=True, **kw).result

    # KeyService -------------------------------------------------------------------
    def list_keys(self, name: str = "", **kw: Any) -> list[Any]:
        return list(self.call(self.keys.ListKeys, key_pb2.ListKeysRequest(name=name), idempotent=True, **kw).keys)

    def create_key(self, name: str, spec: str = "sm2", *, idempotency_key: str = "", **kw: Any) -> Any:
        req = key_pb2.CreateKeyRequest(name=name, spec=spec, idempotency_key=idempotency_key)
        return self.call(self.keys.CreateKey, req, idempotent=bool(idempotency_key), **kw).key

    def rotate_key(self, name: str, *, idempotency_key: str = "", **kw: Any) -> Any:
        """With ``idempotency_key`` a retry returns the same new version instead of rotating again."""
        req = key_pb2.RotateKeyRequest(name=name, idempotency_key=idempotency_key)
        return self.call(self.keys.RotateKey, req, idempotent=bool(idempotency_key), **kw).key

    def disable_key(self, name: str, version: int = 0, **kw: Any) -> Any:
        return self.call(self.keys.DisableKey, key_pb2.DisableKeyRequest(name=name, version=version), **kw).key


def _then_chunks(request_type: Any, first: dict[str, Any], chunks: Iterable[bytes]) -> Iterator[Any]:
    """A client stream: ``request_type(**first)`` (its init or options), then one ``request_type(chunk=...)``
    per chunk."""
    yield request_type(**first)
    for c in chunks:
        yield request_type(chunk=c)
