"""DocumentService: sign and verify e-licence PDFs (trustsvc.pdf): unary, streamed, batch, visible seals.

The stream spools the incoming PDF and the signed output to temporary files beyond 8 MiB and returns
the output in 1 MiB chunks, so memory stays bounded whatever the size. Under an idempotency key a
signed PDF up to 8 MiB is kept for replay; a larger one is not (its hash and size are: see
docs/daemon.md). Batch signing uses the prepared-template fast path (one hash + one signature each),
with the seal picture, if any, prepared once per batch.
"""

from __future__ import annotations

import dataclasses
import hashlib
import io
import tempfile
import threading
from collections.abc import Iterator
from typing import Any, BinaryIO, cast

import grpc

from trustsvc import codegen
from trustsvc.algorithms.signer import Signer
from trustsvc.errors import Conflict, InvalidInput, TrustsvcError
from trustsvc.pdf.appearance import SealAppearance
from trustsvc.pdf.fast import FastPdfSigner
from trustsvc.pdf.metadata import LicenceMetadata
from trustsvc.pdf.registered_seal import registered_seal_picture
from trustsvc.pdf.signing import PadesLevel, SignOptions, sign_pdf_to
from trustsvc.pdf.verify import verify_pdf
from trustsvc.seal.model import ParsedSeal
from trustsvc.seal.parse import parse_seal
from trustsvc.seal.registry import SealRegistry
from trustsvc.server import context as ctx
from trustsvc.server.runtime import Runtime
from trustsvc.server.services.common import first_part, item_error, once, receipt, require, result

pb, pb_grpc = codegen.load("document")
OUT_CHUNK = 1024 * 1024
SPOOL_BYTES = 8 * 1024 * 1024
REPLAY_BYTES = 8 * 1024 * 1024  # signed PDFs up to this size are kept for idempotent replay
PARSED_SEALS = 64  # parsed seals kept (each holds its picture, at most 512 KiB)


class DocumentService(pb_grpc.DocumentServiceServicer):  # type: ignore[name-defined]  # generated at run time
    def __init__(self, rt: Runtime) -> None:
        self.rt = rt
        self.seals = SealRegistry(rt.db)
        self._fast: dict[int, FastPdfSigner] = {}
        self._parsed: dict[bytes, ParsedSeal] = {}  # seal DER -> parsed seal
        self._lock = threading.Lock()

    # options ------------------------------------------------------------------------------
    def _options(self, options: Any) -> tuple[Signer, SignOptions]:
        _placement_needs_seal(options)
        signer = self.rt.signer(options.key or "default")
        appearance = self._appearance(options, signer) if options.seal_id else None
        opts = SignOptions(field_name=options.field_name or None, reason=options.reason or None,
                           location=options.location or None, appearance=appearance, metadata=_licence(options))
        level = _level(options)
        if level is not PadesLevel.B_B:  # time stamps from the daemon's TSA; B-LT/B-LTA validation data from its CA
            from trustsvc.tsa import LocalTsa
            from trustsvc.tsa.pyhanko_adapter import LocalTsaTimeStamper

            tsa = LocalTsa(self.rt.signer(self.rt.config.tsa_key, check_policy=False))
            opts = dataclasses.replace(
                opts, level=level, timestamper=LocalTsaTimeStamper(tsa),
                trust_roots=tuple(c.der for c in self.rt.trust_anchors),
                crls=tuple(c.der for c in self.rt.ca_crls()))
        return signer, opts

    def _appearance(self, options: Any, signer: Signer) -> SealAppearance:
        """The stamp of a registered seal the caller may use, placed by rect, anchor_text or field_name."""
        seal_id = options.seal_id
        self.rt.policy().check_seal(ctx.current().identity, seal_id)
        stamp = registered_seal_picture(self.seals, seal_id, signer.certificate or b"", parse=self._parse)
        picture, size, page, seal = stamp.picture, stamp.size, int(options.page), stamp.der
        if options.rect:
            if len(options.rect) != 4:
                raise InvalidInput("rect must be 4 numbers: x1, y1, x2, y2", reason="BAD_SEAL_PLACEMENT")
            x1, y1, x2, y2 = options.rect
            if options.anchor_text:
                raise InvalidInput("give rect or anchor_text, not both", reason="BAD_SEAL_PLACEMENT")
            return SealAppearance(picture, page=page, box=(x1, y1, x2 - x1, y2 - y1), seal=seal)
        if options.anchor_text:
            return SealAppearance(picture, page=page, anchor=options.anchor_text, size=size, seal=seal)
        if options.field_name:
            return SealAppearance(picture, page=page, field=options.field_name, seal=seal)
        raise InvalidInput("a visible seal needs rect (with page), anchor_text (with page) or an existing empty "
                           "signature field in field_name", reason="BAD_SEAL_PLACEMENT")

    def _parse(self, der: bytes) -> ParsedSeal:
        """parse_seal with a small cache keyed by the seal's DER (a re-registered seal is re-parsed)."""
        seal = self._parsed.get(der)
        if seal is None:
            seal = parse_seal(der)
            with self._lock:
                if len(self._parsed) >= PARSED_SEALS:
                    self._parsed.clear()
                self._parsed[der] = seal
        return seal

    # signing ------------------------------------------------------------------------------
    def _sign(self, options: Any, pdf: Any, digest: str, out: BinaryIO) -> Any:
        """Sign ``pdf`` into ``out``; audit; the summary (hash and size of the signed PDF, no bytes)."""
        signer, opts = self._options(options)
        sign_pdf_to(pdf, out, signer, opts)
        size, signed_sha = _hash_file(out)
        detail: dict[str, Any] = {"bytes_out": size, "signed_sha256": signed_sha}
        if options.seal_id:
            detail["seal"] = options.seal_id
        if opts.metadata is not None:  # the number only: holder_id may be a person's ID number
            detail["licence"] = opts.metadata.licence_number
        rec = self.rt.record(ref=signer.key_ref, document_hash=digest, detail=detail)
        self.rt.metrics.signatures.labels(signer.key_ref).inc()
        return pb.SignPdfResponse(document_sha256=digest, audit=receipt(rec), signed_sha256=signed_sha,
                                  signed_size=size)

    def SignPdf(self, request: Any, context: grpc.ServicerContext) -> Any:
        require(request.pdf, "pdf")

        def produce() -> Any:
            out = io.BytesIO()
            resp = self._sign(request.options, request.pdf, hashlib.sha256(request.pdf).hexdigest(), out)
            resp.pdf = out.getvalue()
            return resp
        return once(self.rt, request.options.idempotency_key, request, pb.SignPdfResponse, produce)

    def SignPdfStream(self, request_iterator: Iterator[Any], context: grpc.ServicerContext) -> Iterator[Any]:
        call = ctx.current()
        options = first_part(request_iterator, "options")
        call.ref = f"seal:{options.seal_id}" if options.seal_id else options.key
        limit = self.rt.config.max_stream_bytes
        sha = hashlib.sha256()
        with tempfile.SpooledTemporaryFile(max_size=SPOOL_BYTES) as spool, \
                tempfile.SpooledTemporaryFile(max_size=SPOOL_BYTES) as out:
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
            signed_here = False

            def produce() -> Any:
                nonlocal signed_here
                resp = self._sign(options, spool, digest, cast(BinaryIO, out))
                signed_here = True
                if options.idempotency_key and resp.signed_size <= REPLAY_BYTES:
                    out.seek(0)
                    resp.pdf = out.read()  # kept for replay
                return resp
            resp = once(self.rt, options.idempotency_key, options, pb.SignPdfResponse, produce, bytes.fromhex(digest))
            if signed_here:
                out.seek(0)
                while chunk := out.read(OUT_CHUNK):
                    call.check_deadline()
                    yield pb.SignPdfStreamResponse(chunk=chunk)
            elif resp.pdf or not resp.signed_size:
                signed = resp.pdf
                for i in range(0, len(signed), OUT_CHUNK):
                    yield pb.SignPdfStreamResponse(chunk=signed[i:i + OUT_CHUNK])
            else:
                raise Conflict(f"this request was signed before (audit seq {resp.audit.seq}, signed PDF "
                               f"{resp.signed_size} bytes, SHA-256 {resp.signed_sha256}); signed PDFs over "
                               f"{REPLAY_BYTES} bytes are not kept for replay: send it again under a new "
                               "idempotency key", reason="RESULT_NOT_RETAINED")
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
        o = request.options
        if _level(o) is not PadesLevel.B_B:
            raise InvalidInput("batch signing (prepared template) makes B-B signatures: use SignPdf for "
                               f"{_level(o).value}", reason="BATCH_OPTION_UNSUPPORTED")
        _placement_needs_seal(o)
        return once(self.rt, request.options.idempotency_key, request, pb.BatchSignPdfResponse,
                    lambda: self._batch(request))

    def _batch(self, request: Any) -> Any:
        call = ctx.current()
        o = request.options
        if o.seal_id or o.reason or o.location:  # prepared once for the whole batch (seal picture, /Reason ...)
            signer = self.rt.signer(o.key or "default")
            fast = FastPdfSigner(signer, appearance=self._appearance(o, signer) if o.seal_id else None,
                                 reason=o.reason or None, location=o.location or None)
            field_name = None if o.seal_id and (o.rect or o.anchor_text) else o.field_name or None
        else:
            fast, field_name = self._fast_signer(o.key or "default"), o.field_name or None
        shared_licence = _licence(o)
        results, listed, signed_count = [], [], 0
        for item in request.items:
            call.check_deadline()
            doc_hash = hashlib.sha256(item.pdf).hexdigest() if item.pdf else ""
            try:
                if not item.pdf:
                    raise InvalidInput("pdf is empty", reason="EMPTY_DATA")
                signed = fast.sign(item.pdf, field_name=field_name, metadata=_licence(item) or shared_licence)
            except TrustsvcError as exc:
                results.append(pb.BatchSignPdfResponse.Result(id=item.id, error=item_error(exc)))
                listed.append((item.id, doc_hash, exc.reason))
                continue
            results.append(pb.BatchSignPdfResponse.Result(id=item.id, pdf=signed))
            listed.append((item.id, doc_hash, "ok"))
            signed_count += 1
        detail = {"hash": "sha256", **({"seal": o.seal_id} if o.seal_id else {})}
        rec = self.rt.record_batch(fast.signer.key_ref, listed, detail) if signed_count else None
        self.rt.metrics.signed(fast.signer.key_ref, signed_count)
        return pb.BatchSignPdfResponse(results=results, audit=receipt(rec) if rec else None)

    def VerifyPdf(self, request: Any, context: grpc.ServicerContext) -> Any:
        import json

        require(request.pdf, "pdf")
        try:
            report = verify_pdf(request.pdf, trust_roots=[c.der for c in self.rt.trust_anchors],
                                crls=[c.der for c in self.rt.ca_crls()],
                                allow_form_filling=request.allow_form_filling, seal_registry=self.seals)
        except TrustsvcError:
            raise
        except Exception as exc:  # noqa: BLE001 - pyHanko's parse errors: the input was not a PDF
            raise InvalidInput(f"not a readable PDF: {type(exc).__name__}", reason="BAD_PDF") from None
        sigs = []
        for s in report.signatures:
            failed = [c for c in s.checks if c.ok is False]
            sigs.append(pb.VerifyPdfResponse.Signature(field_name=s.field_name, signer=s.signer,
                                                       seal_id=s.seal_id or "", result=result(
                s.valid, failed[0].name.upper() if failed else "", failed[0].detail if failed else "",
                [(c.name, c.ok is not False, "" if c.ok is not False else "FAILED", str(c.detail)) for c in s.checks])))
        reason = report.error or ("" if report.signatures else "NO_SIGNATURES")
        if not reason and not report.valid:
            reason = next(sig.result.reason for sig in sigs if not sig.result.valid)
        return pb.VerifyPdfResponse(result=result(report.valid, reason), signatures=sigs,
                                    report_json=json.dumps(report.to_dict(), ensure_ascii=False, default=str),
                                    licence=pb.LicenceMetadata(**report.metadata) if report.metadata else None)


def _level(options: Any) -> PadesLevel:
    """PdfSignOptions.level, or B-T with with_timestamp, else B-B; BAD_PADES_LEVEL for anything else."""
    if options.level:
        return PadesLevel.parse(options.level)
    return PadesLevel.B_T if options.with_timestamp else PadesLevel.B_B


def _placement_needs_seal(options: Any) -> None:
    """rect and anchor_text place a seal: without seal_id they are a mistake, refused with SEAL_ID_REQUIRED."""
    if not options.seal_id and (options.rect or options.anchor_text):
        raise InvalidInput("rect and anchor_text place a visible seal: give seal_id too", reason="SEAL_ID_REQUIRED")


def _licence(message: Any) -> LicenceMetadata | None:
    """The checked ``licence`` of PdfSignOptions or a batch item; None when it is not set."""
    if not message.HasField("licence"):
        return None
    return LicenceMetadata.parse({field.name: value for field, value in message.licence.ListFields()},
                                 source="licence")


def _hash_file(f: BinaryIO) -> tuple[int, str]:
    """(size, SHA-256 hex) of a file, read in chunks from its start."""
    f.seek(0)
    sha, size = hashlib.sha256(), 0
    while chunk := f.read(OUT_CHUNK):
        sha.update(chunk)
        size += len(chunk)
    return size, sha.hexdigest()
