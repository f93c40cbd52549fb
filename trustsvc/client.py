"""A Python client for the trustsvc daemon: mTLS, deadlines, retries with backoff for idempotent calls.

>>> with Client("127.0.0.1:50051", ca="tls/ca.pem", cert="tls/clients/demo-client.pem",
...             key="tls/clients/demo-client-key.pem") as c:
...     sig = c.sign_data("default", b"hello").signature

Every RPC has a method named after it (``issue_token``, ``sign_with_seal``, ``sign_pdf``, ``verify_pdf``,
``create_time_stamp`` ...) whose keyword arguments are the request's fields and which knows whether the
call may be retried. The stubs are there too, as ``c.signature``, ``c.keys``, ``c.tokens``, ``c.seals``,
``c.documents``, ``c.timestamps`` and ``c.health``; ``c.call(stub_method, request, idempotent=...)`` adds the
deadline and retries.
A call is retried on UNAVAILABLE (and ABORTED from an idempotency key in progress) only when it is
idempotent: verifications and reads always, signing calls (and key creation or rotation) when they
carry an idempotency key. The streaming calls (``sign_data_stream``, ``sign_message_stream``,
``sign_pdf_stream``) follow the same rules (codes, ``retries``, backoff, one deadline for all attempts)
when they carry an idempotency key (``sign_pdf_stream``: ``options.idempotency_key``) and their chunks
can be sent again: a re-iterable (``iter(x) is not x``: a list or tuple of byte strings) or a
zero-argument callable returning a fresh iterable of chunks, called once per attempt. Each retry
re-sends every chunk. A one-shot iterator or generator is sent once, never retried; call again with
the same idempotency key to get the stored result instead of a second signature. ``sign_pdf_stream``
rewinds and truncates a seekable ``out`` to where it started before a retry; with an ``out`` that
cannot seek it retries only while no output byte has been written.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import random
import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any, BinaryIO, TypeAlias, TypeVar

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

# The chunks of a streaming call: an iterable, or a zero-argument callable returning a fresh one.
Chunks: TypeAlias = Iterable[bytes] | Callable[[], Iterable[bytes]]
Metadata: TypeAlias = tuple[tuple[str, str], ...]
T = TypeVar("T")


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
        return self._attempts(lambda remaining, metadata: method(request, timeout=remaining, metadata=metadata),
                              idempotent=idempotent, timeout=timeout, request_id=request_id)

    def _attempts(self, attempt: Callable[[float, Metadata], T], *, idempotent: bool, timeout: float | None,
                  request_id: str | None = None, before_retry: Callable[[], bool] | None = None) -> T:
        """Run ``attempt(remaining_seconds, metadata)`` under one deadline and one x-request-id.

        A failure is retried when ``idempotent``, its code is in RETRYABLE, fewer than ``self.retries``
        retries were made, the backoff pause ends before the deadline and ``before_retry()`` (if given)
        returns True.
        """
        timeout = self.timeout if timeout is None else timeout
        deadline = time.monotonic() + timeout
        metadata: Metadata = (("x-request-id", request_id or uuid.uuid4().hex),)
        failures = 0
        while True:
            remaining = deadline - time.monotonic()
            try:
                return attempt(max(remaining, 0.001), metadata)
            except grpc.RpcError as err:
                failures += 1
                if not idempotent or err.code() not in RETRYABLE or failures > self.retries:
                    raise
                pause = self.backoff * (2 ** (failures - 1)) * (0.5 + random.random())
                if time.monotonic() + pause >= deadline:
                    raise
                if before_retry is not None and not before_retry():
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
    def sign_data(self, key: str, data: bytes, *, sm2_id: bytes = b"", idempotency_key: str = "", **kw: Any) -> Any:
        req = signature_pb2.SignDataRequest(key=key, data=data, sm2_id=sm2_id, idempotency_key=idempotency_key)
        return self.call(self.signature.SignData, req, idempotent=bool(idempotency_key), **kw)

    def verify_signed_data(self, data: bytes, signature: bytes, *, certificate: bytes | None = None,
                           public_key: bytes | None = None, key: str | None = None, algorithm: str = "",
                           sm2_id: bytes = b"", verify_level: int = 0, intermediates: Sequence[bytes] = (),
                           crls: Sequence[bytes] = (), **kw: Any) -> Any:
        """The signature checked with a certificate, public key or daemon key; with a certificate also the
        certificate at GM/T 0029 ``verify_level`` (0 validity, 1 + path, 2 + revocation)."""
        req = signature_pb2.VerifySignedDataRequest(data=data, signature=signature, certificate=certificate,
                                                    public_key=public_key, key=key, algorithm=algorithm,
                                                    sm2_id=sm2_id, verify_level=verify_level,
                                                    intermediates=intermediates, crls=crls)
        return self.call(self.signature.VerifySignedData, req, idempotent=True, **kw).result

    def sign_message(self, key: str, data: bytes, *, detached: bool = False, idempotency_key: str = "",
                     hash_given: bool = False, signer_certificate_only: bool = False, include_crl: bool = False,
                     no_signed_attributes: bool = False, **kw: Any) -> Any:
        """A CMS SignedData; the flags are GM/T 0029's (``hash_given``: ``data`` is the content's digest)."""
        req = signature_pb2.SignMessageRequest(key=key, data=data, detached=detached, idempotency_key=idempotency_key,
                                               hash_given=hash_given, signer_certificate_only=signer_certificate_only,
                                               include_crl=include_crl, no_signed_attributes=no_signed_attributes)
        return self.call(self.signature.SignMessage, req, idempotent=bool(idempotency_key), **kw)

    def verify_signed_message(self, cms: bytes, data: bytes = b"", **kw: Any) -> Any:
        req = signature_pb2.VerifySignedMessageRequest(cms=cms, data=data)
        return self.call(self.signature.VerifySignedMessage, req, idempotent=True, **kw)

    def batch_sign_data(self, key: str, items: Iterable[tuple[str, bytes]], *, sm2_id: bytes = b"",
                        idempotency_key: str = "", **kw: Any) -> Any:
        req = signature_pb2.BatchSignDataRequest(
            key=key, items=[signature_pb2.BatchSignDataRequest.Item(id=i, data=d) for i, d in items],
            sm2_id=sm2_id, idempotency_key=idempotency_key)
        return self.call(self.signature.BatchSignData, req, idempotent=bool(idempotency_key), **kw)

    def sign_data_stream(self, key: str, chunks: Chunks, *, sm2_id: bytes = b"", idempotency_key: str = "",
                         timeout: float | None = None) -> Any:
        """Sign a message sent in chunks. Retried (as ``call``) only with ``idempotency_key`` and chunks that
        can be sent again (a re-iterable or a callable returning fresh chunks); a one-shot iterator is not."""
        return self._sign_stream(self.signature.SignDataStream, signature_pb2.SignDataStreamRequest, key, chunks,
                                 idempotency_key, timeout, sm2_id)

    def sign_message_stream(self, key: str, chunks: Chunks, *, sm2_id: bytes = b"", idempotency_key: str = "",
                            timeout: float | None = None) -> Any:
        """Detached CMS over a message sent in chunks; retried exactly as ``sign_data_stream``."""
        return self._sign_stream(self.signature.SignMessageStream, signature_pb2.SignMessageStreamRequest, key,
                                 chunks, idempotency_key, timeout, sm2_id)

    def _sign_stream(self, method: Any, request_type: Any, key: str, chunks: Chunks, idempotency_key: str,
                     timeout: float | None, sm2_id: bytes) -> Any:
        """A client-streaming signing call: the init message, then the chunks; retried as described above."""
        init = signature_pb2.SignStreamInit(key=key, sm2_id=sm2_id, idempotency_key=idempotency_key)
        return self._client_stream(method, request_type, {"init": init}, chunks, bool(idempotency_key), timeout)

    def _client_stream(self, method: Any, request_type: Any, first: dict[str, Any], chunks: Chunks,
                       idempotent: bool, timeout: float | None) -> Any:
        """``first`` as the first message, then the chunks; retried when ``idempotent`` and the chunks repeat."""
        source = _chunk_source(chunks)
        return self._attempts(
            lambda remaining, metadata: method(_then_chunks(request_type, first, source.next()),
                                               timeout=remaining, metadata=metadata),
            idempotent=idempotent and source.repeatable, timeout=timeout or self.timeout)

    def verify_signed_data_stream(self, chunks: Chunks, signature: bytes, *, certificate: bytes | None = None,
                                  public_key: bytes | None = None, key: str | None = None, algorithm: str = "",
                                  sm2_id: bytes = b"", verify_level: int = 0, intermediates: Sequence[bytes] = (),
                                  crls: Sequence[bytes] = (), timeout: float | None = None) -> Any:
        """``verify_signed_data`` over data sent in chunks (only a running digest is kept on the daemon)."""
        init = signature_pb2.VerifySignedDataRequest(signature=signature, certificate=certificate,
                                                     public_key=public_key, key=key, algorithm=algorithm,
                                                     sm2_id=sm2_id, verify_level=verify_level,
                                                     intermediates=intermediates, crls=crls)
        return self._client_stream(self.signature.VerifySignedDataStream,
                                   signature_pb2.VerifySignedDataStreamRequest, {"init": init}, chunks, True,
                                   timeout).result

    def verify_signed_message_stream(self, cms: bytes, chunks: Chunks, *, timeout: float | None = None) -> Any:
        """``verify_signed_message`` for a detached CMS whose content is sent in chunks."""
        return self._client_stream(self.signature.VerifySignedMessageStream,
                                   signature_pb2.VerifySignedMessageStreamRequest, {"cms": cms}, chunks, True,
                                   timeout)

    def sign_pdf_stream(self, options: Any, chunks: Chunks, out: BinaryIO, *, timeout: float | None = None) -> Any:
        """Stream a PDF in, write the signed PDF to ``out`` as its chunks arrive; returns the summary.

        The output's SHA-256 is checked against the summary's ``signed_sha256`` (DecodeError if they differ).
        Retried (as ``call``) only with ``options.idempotency_key`` and chunks that can be sent again (a
        re-iterable or a callable returning fresh chunks). Before a retry a seekable ``out`` is rewound to
        its position at the start and truncated there; an ``out`` that cannot seek is retried only while
        no output byte has been written.
        """
        source = _chunk_source(chunks)
        retry = bool(options.idempotency_key) and source.repeatable
        start = _position(out) if retry else None
        written = 0

        def attempt(remaining: float, metadata: Metadata) -> Any:
            nonlocal written
            sha, summary = hashlib.sha256(), None
            requests = _then_chunks(document_pb2.SignPdfStreamRequest, {"options": options}, source.next())
            for part in self.documents.SignPdfStream(requests, timeout=remaining, metadata=metadata):
                if part.WhichOneof("part") == "chunk":
                    sha.update(part.chunk)
                    out.write(part.chunk)
                    written += len(part.chunk)
                else:
                    summary = part.summary
            if summary is None or (summary.signed_sha256 and summary.signed_sha256 != sha.hexdigest()):
                from trustsvc.errors import DecodeError

                raise DecodeError("the signed PDF received does not match the summary's SHA-256",
                                  reason="STREAM_CORRUPTED")
            return summary

        def before_retry() -> bool:
            nonlocal written
            if start is not None:
                out.seek(start)
                out.truncate()
                written = 0
            return written == 0

        return self._attempts(attempt, idempotent=retry, timeout=timeout or self.timeout, before_retry=before_retry)

    def export_cert(self, key: str, **kw: Any) -> Any:
        return self.call(self.signature.ExportCert, signature_pb2.ExportCertRequest(key=key), idempotent=True, **kw)

    def parse_cert(self, certificate: bytes, **kw: Any) -> Any:
        return self.call(self.signature.ParseCert, signature_pb2.ParseCertRequest(certificate=certificate),
                         idempotent=True, **kw)

    def validate_cert(self, certificate: bytes, *, intermediates: Sequence[bytes] = (),
                      trust_anchors: Sequence[bytes] = (), at: dt.datetime | None = None, purpose: str = "",
                      crls: Sequence[bytes] = (), require_revocation: bool = False, **kw: Any) -> Any:
        """The daemon's path validation of ``certificate`` (a VerificationResult naming each check)."""
        req = signature_pb2.ValidateCertRequest(certificate=certificate, intermediates=intermediates,
                                                trust_anchors=trust_anchors, purpose=purpose, crls=crls,
                                                require_revocation=require_revocation)
        if at is not None:
            req.at.FromDatetime(at)
        return self.call(self.signature.ValidateCert, req, idempotent=True, **kw).result

    # TokenService -----------------------------------------------------------------
    def issue_token(self, subject: str, *, audience: Sequence[str] = (), scopes: Sequence[str] = (),
                    ttl_seconds: int = 0, claims: dict[str, Any] | None = None, key: str = "",
                    idempotency_key: str = "", **kw: Any) -> Any:
        """A signed token for ``subject`` (``claims``: extra claims, e.g. the GB/T 39046 identity)."""
        req = token_pb2.IssueTokenRequest(subject=subject, audience=audience, scopes=scopes, ttl_seconds=ttl_seconds,
                                          key=key, idempotency_key=idempotency_key)
        if claims:
            req.claims.update(claims)
        return self.call(self.tokens.IssueToken, req, idempotent=bool(idempotency_key), **kw)

    def verify_token(self, token: str, *, audience: str = "", **kw: Any) -> Any:
        """``.result`` (valid, reason, checks) and, when valid, ``.claims``."""
        req = token_pb2.VerifyTokenRequest(token=token, audience=audience)
        return self.call(self.tokens.VerifyToken, req, idempotent=True, **kw)

    def revoke_token(self, *, token: str = "", token_id: str = "", reason: str = "", **kw: Any) -> Any:
        """Revoke by the token itself or by its ``jti`` (``token_id``); never retried."""
        target = {"token": token} if token else {"token_id": token_id} if token_id else {}
        req = token_pb2.RevokeTokenRequest(reason=reason, **target)
        return self.call(self.tokens.RevokeToken, req, **kw)

    def introspect_token(self, token: str, **kw: Any) -> Any:
        return self.call(self.tokens.IntrospectToken, token_pb2.IntrospectTokenRequest(token=token), idempotent=True,
                         **kw)

    def get_jwks(self, **kw: Any) -> Any:
        """The issuer's published keys (``.jwks_json``: the JWK Set as JSON text)."""
        return self.call(self.tokens.GetJwks, token_pb2.GetJwksRequest(), idempotent=True, **kw)

    # SealService ------------------------------------------------------------------
    def make_seal(self, name: str, *, picture: bytes, picture_type: str = "PNG", type: int = 0, width_mm: int = 0,
                  height_mm: int = 0, valid_days: int = 0, maker_key: str = "", holder_key: str = "",
                  holder_certificate: bytes = b"", idempotency_key: str = "", **kw: Any) -> Any:
        """Register a new GB/T 38540 seal (admin). Zero or empty fields take the daemon's defaults."""
        req = seal_pb2.MakeSealRequest(name=name, type=type, picture=picture, picture_type=picture_type,
                                       width_mm=width_mm, height_mm=height_mm, valid_days=valid_days,
                                       maker_key=maker_key, holder_key=holder_key,
                                       holder_certificate=holder_certificate, idempotency_key=idempotency_key)
        return self.call(self.seals.MakeSeal, req, idempotent=bool(idempotency_key), **kw)

    def get_seal(self, seal_id: str, **kw: Any) -> Any:
        return self.call(self.seals.GetSeal, seal_pb2.GetSealRequest(seal_id=seal_id), idempotent=True, **kw)

    def list_seals(self, *, state: str = "", page_size: int = 0, page_token: str = "", **kw: Any) -> Any:
        """One page: ``.seals`` and ``.next_page_token`` (empty on the last page)."""
        req = seal_pb2.ListSealsRequest(state=state, page_size=page_size, page_token=page_token)
        return self.call(self.seals.ListSeals, req, idempotent=True, **kw)

    def suspend_seal(self, seal_id: str, reason: str, **kw: Any) -> Any:
        return self.call(self.seals.SuspendSeal, seal_pb2.SuspendSealRequest(seal_id=seal_id, reason=reason), **kw)

    def resume_seal(self, seal_id: str, **kw: Any) -> Any:
        return self.call(self.seals.ResumeSeal, seal_pb2.ResumeSealRequest(seal_id=seal_id), **kw)

    def revoke_seal(self, seal_id: str, reason: str, **kw: Any) -> Any:
        return self.call(self.seals.RevokeSeal, seal_pb2.RevokeSealRequest(seal_id=seal_id, reason=reason), **kw)

    def sign_with_seal(self, seal_id: str, data: bytes | None = None, *, sm3_digest: bytes | None = None,
                       property_info: str = "", with_timestamp: bool = False, idempotency_key: str = "",
                       **kw: Any) -> Any:
        """A GB/T 38540 SES_Signature over ``data`` or its ``sm3_digest`` (give one)."""
        content = {"data": data} if data is not None else {"sm3_digest": sm3_digest} if sm3_digest is not None else {}
        req = seal_pb2.SignWithSealRequest(seal_id=seal_id, property_info=property_info, with_timestamp=with_timestamp,
                                           idempotency_key=idempotency_key, **content)
        return self.call(self.seals.SignWithSeal, req, idempotent=bool(idempotency_key), **kw)

    def verify_seal_signature(self, ses_signature: bytes, data: bytes | None = None, *,
                              sm3_digest: bytes | None = None, **kw: Any) -> Any:
        """The seal signature's GB/T 38540 checks; with ``data`` or ``sm3_digest`` also the signed content."""
        content = {"data": data} if data is not None else {"sm3_digest": sm3_digest} if sm3_digest is not None else {}
        req = seal_pb2.VerifySealSignatureRequest(ses_signature=ses_signature, **content)
        return self.call(self.seals.VerifySealSignature, req, idempotent=True, **kw)

    # DocumentService --------------------------------------------------------------
    def sign_pdf(self, pdf: bytes, options: Any, **kw: Any) -> Any:
        """``options``: a ``document_pb2.PdfSignOptions``; retried only with ``options.idempotency_key``."""
        req = document_pb2.SignPdfRequest(options=options, pdf=pdf)
        return self.call(self.documents.SignPdf, req, idempotent=bool(options.idempotency_key), **kw)

    def batch_sign_pdf(self, items: Iterable[tuple[str, bytes]], options: Any, **kw: Any) -> Any:
        """``.results``: one signed PDF or error per ``(id, pdf)`` item, in order."""
        req = document_pb2.BatchSignPdfRequest(
            options=options, items=[document_pb2.BatchSignPdfRequest.Item(id=i, pdf=p) for i, p in items])
        return self.call(self.documents.BatchSignPdf, req, idempotent=bool(options.idempotency_key), **kw)

    def verify_pdf(self, pdf: bytes, *, allow_form_filling: bool = False, **kw: Any) -> Any:
        req = document_pb2.VerifyPdfRequest(pdf=pdf, allow_form_filling=allow_form_filling)
        return self.call(self.documents.VerifyPdf, req, idempotent=True, **kw)

    # TimeStampService -------------------------------------------------------------
    def create_time_stamp(self, *, data: bytes | None = None, digest: bytes | None = None,
                          timestamp_request: bytes | None = None, hash_algorithm: str = "", cert_req: bool = False,
                          idempotency_key: str = "", **kw: Any) -> Any:
        """An RFC 3161 time stamp over ``data``, a ``digest`` or a DER ``timestamp_request`` (give one)."""
        given = {name: value for name, value in
                 (("data", data), ("digest", digest), ("timestamp_request", timestamp_request)) if value is not None}
        req = timestamp_pb2.CreateTimeStampRequest(hash_algorithm=hash_algorithm, cert_req=cert_req,
                                                   idempotency_key=idempotency_key, **given)
        return self.call(self.timestamps.CreateTimeStamp, req, idempotent=bool(idempotency_key), **kw)

    def verify_time_stamp(self, timestamp_token: bytes, *, data: bytes | None = None, digest: bytes | None = None,
                          **kw: Any) -> Any:
        given = {name: value for name, value in (("data", data), ("digest", digest)) if value is not None}
        req = timestamp_pb2.VerifyTimeStampRequest(timestamp_token=timestamp_token, **given)
        return self.call(self.timestamps.VerifyTimeStamp, req, idempotent=True, **kw)

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


class _ChunkSource:
    """Hands out the chunks for each attempt; ``repeatable`` when they can be produced again."""

    def __init__(self, make: Callable[[], Iterable[bytes]], repeatable: bool) -> None:
        self.make, self.repeatable = make, repeatable

    def next(self) -> Iterable[bytes]:
        return self.make()


def _chunk_source(chunks: Chunks) -> _ChunkSource:
    """A callable is called once per attempt; a re-iterable (``iter(x) is not x``) is iterated once per
    attempt; a one-shot iterator is used once (not repeatable)."""
    if callable(chunks) and not isinstance(chunks, Iterable):
        return _ChunkSource(chunks, True)
    iterable: Iterable[bytes] = chunks  # type: ignore[assignment]
    if iter(iterable) is not iterable:
        return _ChunkSource(lambda: iterable, True)
    used = False

    def once() -> Iterable[bytes]:
        nonlocal used
        if used:
            raise RuntimeError("a one-shot chunk iterator cannot be sent twice")
        used = True
        return iterable
    return _ChunkSource(once, False)


def _position(out: BinaryIO) -> int | None:
    """``out.tell()`` when ``out`` can seek back there, else None."""
    try:
        return out.tell() if out.seekable() else None
    except (AttributeError, OSError, ValueError):
        return None
