"""DocumentService: sign and verify e-licence PDFs (trustsvc.pdf): unary, streamed, batch.

The stream spools the incoming PDF to a temporary file beyond 8 MiB and returns the signed PDF in
1 MiB chunks; pyHanko writes the incremental update into memory, so peak memory is about one copy
of the output. Batch signing uses the prepared-template fast path (one hash + one signature each).
"""

from __future__ import annotations

import hashlib
import tempfile
import threading
from collections.abc import Iterator
from typing import Any

import grpc

from trustsvc import codegen
from trustsvc.errors import InvalidInput, TrustsvcError
from trustsvc.pdf.fast import FastPdfSigner
from trustsvc.pdf.signing import SignOptions, sign_pdf
from trustsvc.pdf.verify import verify_pdf
from trustsvc.server import context as ctx
from trustsvc.server.idempotency import request_hash
from trustsvc.server.runtime import Runtime
from trustsvc.server.services.common import item_error, receipt, require, result

pb, pb_grpc = codegen.load("document")
OUT_CHUNK = 1024 * 1024
SPOOL_BYTES = 8 * 1024 * 1024


class DocumentService(pb_grpc.DocumentServiceServicer):
    def __init__(self, rt: Runtime) -> None:
        self.rt = rt
        self._fast: dict[int, FastPdfSigner] = {}
        self._lock = threading.Lock()

    def _options(self, options: Any) -> tuple[Any, SignOptions]:
        if options.seal_id:
            raise InvalidInput("visible seal stamps are not offered over the API yet; omit seal_id",
                               reason="VISIBLE_SEAL_NOT_SUPPORTED")
        signer = self.rt.signer(options.key or "default")
        opts = SignOptions(field_name=options.field_name or None, reason=options.reason or None,
                           location=options.location or None)
        if options.with_timestamp:
            from trustsvc.tsa import LocalTsa
            from trustsvc.tsa.pyhanko_adapter import LocalTsaTimeStamper

            tsa = LocalTsa(self.rt.signer(self.rt.config.tsa_key, check_policy=False))
            opts = SignOptions(**{**opts.__dict__, "level": "B-T", "timestamper": LocalTsaTimeStamper(tsa)})
        return signer, opts

    def _sign(self, options: Any, pdf: Any, digest: str) -> tuple[bytes, Any]:
        signer, opts = self._options(options)
        signed = sign_pdf(pdf, signer, opts)
        rec = self.rt.record(ref=signer.key_ref, document_hash=digest, detail={"bytes_out": len(signed)})
        self.rt.metrics.signatures.labels(signer.key_ref).inc()
        return signed, receipt(rec)

    def SignPdf(self, request: Any, context: grpc.ServicerContext) -> Any:
        require(request.pdf, "pdf")
        call = ctx.current()
        req_hash = request_hash(call.operation, request.SerializeToString(deterministic=True))

        def produce() -> Any:
            signed, audit = self._sign(request.options, request.pdf, hashlib.sha256(request.pdf).hexdigest())
            return pb.SignPdfResponse(pdf=signed, document_sha256=hashlib.sha256(request.pdf).hexdigest(),
                                      audit=audit)
        return self.rt.idempotency.run(call.client, request.options.idempotency_key, call.operation, req_hash,
                                       pb.SignPdfResponse, produce)

    def SignPdfStream(self, request_iterator: Iterator[Any], context: grpc.ServicerContext) -> Iterator[Any]:
        call = ctx.current()
        first = next(request_iterator, None)
        if first is None or first.WhichOneof("part") != "options":
            raise InvalidInput("the first stream message must be `options`", reason="STREAM_INIT_MISSING")
        options = first.options
        limit = self.rt.config.max_stream_bytes
        sha = hashlib.sha256()
        with tempfile.SpooledTemporaryFile(max_size=SPOOL_BYTES) as spool:
            total = 0
            for msg in request_iterator:
                call.check_deadline()
                if msg.WhichOneof("part") != "chunk":
                    raise InvalidInput("only `chunk` may follow `options`", reason="STREAM_OUT_OF_ORDER")
                total += len(msg.chunk)
                if total > limit:
                    raise InvalidInput(f"PDF exceeds {limit} bytes", reason="STREAM_TOO_LARGE")
                sha.update(msg.chunk)
                spool.write(msg.chunk)
            if total == 0:
                raise InvalidInput("no PDF bytes were sent", reason="MISSING_FIELD")
            spool.seek(0)
            digest = sha.hexdigest()
            req_hash = request_hash(call.operation, options.SerializeToString(deterministic=True),
                                    bytes.fromhex(digest))

            def produce() -> Any:
                signed, audit = self._sign(options, spool, digest)
                return pb.SignPdfResponse(pdf=signed, document_sha256=digest, audit=audit)
            resp = self.rt.idempotency.run(call.client, options.idempotency_key, call.operation, req_hash,
                                           pb.SignPdfResponse, produce)
        signed = resp.pdf
        for i in range(0, len(signed), OUT_CHUNK):
            yield pb.SignPdfStreamResponse(chunk=signed[i:i + OUT_CHUNK])
        resp.ClearField("pdf")
        yield pb.SignPdfStreamResponse(summary=resp)

    def _fast_signer(self, key: str) -> FastPdfSigner:
        signer = self.rt.signer(key)
        fast = self._fast.get(id(signer))
        if fast is None or fast.signer is not signer:
            fast = FastPdfSigner(signer)
            with self._lock:
                self._fast = {id(signer): fast}
        return fast

    def BatchSignPdf(self, request: Any, context: grpc.ServicerContext) -> Any:
        if not request.items:
            raise InvalidInput("items is empty", reason="MISSING_FIELD")
        if request.options.seal_id or request.options.with_timestamp:
            raise InvalidInput("batch signing takes no seal_id or with_timestamp", reason="BATCH_OPTION_UNSUPPORTED")
        call = ctx.current()
        req_hash = request_hash(call.operation, request.SerializeToString(deterministic=True))
        return self.rt.idempotency.run(call.client, request.options.idempotency_key, call.operation, req_hash,
                                       pb.BatchSignPdfResponse, lambda: self._batch(request))

    def _batch(self, request: Any) -> Any:
        call = ctx.current()
        fast = self._fast_signer(request.options.key or "default")
        results, audited = [], []
        for item in request.items:
            call.check_deadline()
            try:
                if not item.pdf:
                    raise InvalidInput("pdf is empty", reason="EMPTY_DATA")
                signed = fast.sign(item.pdf, field_name=request.options.field_name or None)
            except TrustsvcError as exc:
                results.append(pb.BatchSignPdfResponse.Result(id=item.id, error=item_error(exc)))
                continue
            results.append(pb.BatchSignPdfResponse.Result(id=item.id, pdf=signed))
            audited.append((fast.signer.key_ref, None, hashlib.sha256(item.pdf).hexdigest(), {"item": item.id}))
        recs = self.rt.record_many(audited) if audited else []
        self.rt.metrics.signatures.labels(fast.signer.key_ref).inc(len(audited))
        return pb.BatchSignPdfResponse(results=results, audit=receipt(recs[-1]) if recs else None)

    def VerifyPdf(self, request: Any, context: grpc.ServicerContext) -> Any:
        import json

        require(request.pdf, "pdf")
        try:
            report = verify_pdf(request.pdf, trust_roots=[c.der for c in self.rt.trust_anchors])
        except TrustsvcError:
            raise
        except Exception as exc:  # noqa: BLE001 - pyHanko's parse errors: the input was not a PDF
            raise InvalidInput(f"not a readable PDF: {type(exc).__name__}", reason="BAD_PDF") from None
        sigs = []
        for s in report.signatures:
            failed = [c for c in s.checks if c.ok is False]
            sigs.append(pb.VerifyPdfResponse.Signature(field_name=s.field_name, signer=s.signer, result=result(
                s.valid, failed[0].name.upper() if failed else "", failed[0].detail if failed else "",
                [(c.name, c.ok is not False, "" if c.ok is not False else "FAILED", str(c.detail)) for c in s.checks])))
        reason = report.error or ("" if report.signatures else "NO_SIGNATURES")
        if not reason and not report.valid:
            reason = next(sig.result.reason for sig in sigs if not sig.result.valid)
        return pb.VerifyPdfResponse(result=result(report.valid, reason), signatures=sigs,
                                    report_json=json.dumps(report.to_dict(), ensure_ascii=False, default=str))
