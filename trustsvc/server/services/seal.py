"""SealService: GB/T 38540 seals — make, registry lifecycle, sign, verify (trustsvc.seal)."""

from __future__ import annotations

import base64
import datetime as dt
import json
import threading
from typing import Any

import grpc

from trustsvc import codegen
from trustsvc.errors import InvalidInput, NotFound, PolicyDenied
from trustsvc.seal.make import Picture, SealSpec, SealType, make_seal
from trustsvc.seal.picture import check_upload, render_png
from trustsvc.seal.registry import SealRecord, SealRegistry
from trustsvc.seal.sign import SealSigner
from trustsvc.seal.verify import time_stamp_verifier, verify
from trustsvc.server import context as ctx
from trustsvc.server.embedded import demo_seal_wanted, require_sm2_seal_maker
from trustsvc.server.runtime import Runtime
from trustsvc.server.services.common import bounded, once, receipt, require, result, ts

pb, pb_grpc = codegen.load("seal")
UTC = dt.UTC
ES_ID_PREFIX = "TS"
DEMO_SEAL_NAME = "trustsvc 演示单位公章"


def page_token(after: str, state: str | None) -> str:
    """An opaque ListSeals page token: where the next page starts, and the filter it belongs to (AIP-158)."""
    body = json.dumps({"after": after, "state": state or ""}, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(body).decode().rstrip("=")


def read_page_token(token: str, state: str | None) -> str | None:
    """The esID a page token continues after; BAD_PAGE_TOKEN for one ListSeals did not hand out for this filter."""
    if not token:
        return None
    bad = InvalidInput(f"page_token {token[:40]!r} was not returned by ListSeals for this request",
                       reason="BAD_PAGE_TOKEN")
    if len(token) > 1024:
        raise bad
    try:
        fields = json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
    except (ValueError, UnicodeDecodeError):  # binascii.Error and JSONDecodeError are ValueErrors
        raise bad from None
    if not (isinstance(fields, dict) and isinstance(fields.get("after"), str) and fields.get("state") == (state or "")):
        raise bad
    return str(fields["after"])


def seal_message(rec: SealRecord, holder_cert: bytes = b"") -> Any:
    return pb.Seal(seal_id=rec.es_id, name=rec.name, type=rec.seal_type, state=rec.status,
                   valid_start=ts(rec.valid_start), valid_end=ts(rec.valid_end), seal_der=rec.der,
                   maker_key=rec.maker, holder_key=rec.holder, holder_certificate=holder_cert)


class SealService(pb_grpc.SealServiceServicer):  # type: ignore[name-defined]  # generated at run time
    def __init__(self, rt: Runtime) -> None:
        self.rt = rt
        self.registry = SealRegistry(rt.db)
        self._signers: dict[tuple[str, int, int], SealSigner] = {}
        self._lock = threading.Lock()
        if rt.ca is not None and not self.registry.query() and demo_seal_wanted(rt):
            self.make(DEMO_SEAL_NAME, 1, b"", "", 0, 0, 3650, "seal-maker", "default", b"", actor="bootstrap")

    # library calls -----------------------------------------------------------------------
    def make(self, name: str, seal_type: int, picture: bytes, picture_type: str, width: int, height: int,
             valid_days: int, maker_key: str, holder_key: str, holder_cert: bytes, *, actor: str) -> SealRecord:
        """Make and register a seal (unaudited: the bootstrap demo seal; MakeSeal audits its own)."""
        der = self.make_der(name, seal_type, picture, picture_type, width, height, valid_days, maker_key, holder_key,
                            holder_cert)
        return self.registry.register(der, actor=actor, holder=holder_key)

    def make_der(self, name: str, seal_type: int, picture: bytes, picture_type: str, width: int, height: int,
                 valid_days: int, maker_key: str, holder_key: str, holder_cert: bytes) -> bytes:
        """A new seal signed by the maker key, not yet registered (takes the next esID)."""
        maker = self.rt.signer(maker_key, check_policy=False)
        require_sm2_seal_maker(maker, maker_key)  # GB/T 38540: FAILED_PRECONDITION SEAL_NEEDS_SM2 otherwise
        if maker.certificate is None:
            raise InvalidInput(f"maker key {maker_key!r} has no certificate", reason="NO_MAKER_CERT")
        holder = self.rt.signer(holder_key, check_policy=False)
        holder_cert = holder_cert or holder.certificate or b""
        if not holder_cert:
            raise InvalidInput(f"holder key {holder_key!r} has no certificate", reason="NO_HOLDER_CERT")
        if picture:
            # checked also when the caller names its type: a junk "PNG", 5 MB, or an SVG with a script made
            # a seal whose stamp could never be drawn
            kind = check_upload(picture)
            if picture_type and picture_type.upper() != kind:
                raise InvalidInput(f"picture is {kind}, not {picture_type[:16]!r}", reason="PICTURE_TYPE_MISMATCH")
        else:
            picture, kind = render_png(name), "PNG"
        now = dt.datetime.now(UTC).replace(microsecond=0)
        try:
            valid_end = now + dt.timedelta(days=valid_days or 365)
        except OverflowError:
            raise InvalidInput(f"valid_days {valid_days} ends after the year 9999", reason="BAD_VALIDITY") from None
        spec = SealSpec(self.registry.next_es_id(ES_ID_PREFIX), SealType.parse(seal_type or 1), name, [holder_cert],
                        now - dt.timedelta(minutes=5), valid_end, Picture(kind, picture, width or 42, height or 42))
        return make_seal(spec, maker, maker.certificate)

    def _seal_signer(self, rec: SealRecord, with_timestamp: bool = False) -> SealSigner:
        """The seal's signer, kept per seal, holder key and time-stamping key (a rotated key makes a new one)."""
        signer = self.rt.signer(rec.holder, check_policy=False)  # the seal policy grants the holder key
        tsa_signer = self.rt.signer(self.rt.config.tsa_key, check_policy=False) if with_timestamp else None
        key = (rec.es_id, id(signer), id(tsa_signer) if tsa_signer is not None else 0)
        cached = self._signers.get(key)
        if cached is None:
            timestamper = None
            if tsa_signer is not None:  # RFC 3161 token over the signature value (GB/T 38540 timeStamp)
                from trustsvc.tsa import LocalTsa

                timestamper = LocalTsa(tsa_signer).timestamp
            cached = SealSigner(rec.der, signer, status=self.registry.status, timestamper=timestamper)
            with self._lock:
                self._signers = {k: v for k, v in self._signers.items() if k[0] != rec.es_id}
                self._signers[key] = cached
        return cached

    # RPCs ----------------------------------------------------------------------------------
    def MakeSeal(self, request: Any, context: grpc.ServicerContext) -> Any:
        require(request.name, "name")
        call = ctx.current()

        def produce() -> Any:
            call.check_deadline()
            holder_key = request.holder_key or "default"
            # signed by the maker before the transaction (an HSM call holds no audit lock); a seal that is
            # then not registered leaves only its esID number unused
            der = self.make_der(request.name, request.type, request.picture, request.picture_type,
                                request.width_mm, request.height_mm, request.valid_days,
                                request.maker_key or "seal-maker", holder_key, request.holder_certificate)
            with self.rt.changing() as change:  # registered and recorded together, or neither
                rec = self.registry.register(der, actor=call.client, holder=holder_key, tx=change.tx)
                audit = change.record(ref=f"seal:{rec.es_id}", data=rec.der, detail={"name": rec.name})
            return pb.MakeSealResponse(seal=seal_message(rec), audit=receipt(audit))
        return once(self.rt, request.idempotency_key, request, pb.MakeSealResponse, produce)

    def GetSeal(self, request: Any, context: grpc.ServicerContext) -> Any:
        seal_id = require(request.seal_id, "seal_id")
        self.rt.policy().check_seal(ctx.current().identity, seal_id)
        return pb.GetSealResponse(seal=seal_message(self.registry.get(seal_id)))

    def ListSeals(self, request: Any, context: grpc.ServicerContext) -> Any:
        """Seals this caller may use, in esID order; a page ends where the next begins (a keyset token, so
        seals made or changed between pages neither shift nor repeat what follows)."""
        identity = ctx.current().identity
        policy = self.rt.policy()
        state = request.state or None
        size = min(request.page_size or 100, 1000)
        cursor = read_page_token(request.page_token, state)
        page: list[SealRecord] = []
        while len(page) <= size:  # one more than a page: is there a next one?
            chunk = self.registry.query(status=state, after=cursor, limit=size + 1)
            for rec in chunk:
                cursor = rec.es_id
                try:
                    policy.check_seal(identity, rec.es_id)
                except PolicyDenied:  # not listed for this caller
                    continue
                page.append(rec)
                if len(page) > size:
                    break
            if len(chunk) <= size:
                break
        nxt = page_token(page[size - 1].es_id, state) if len(page) > size else ""
        return pb.ListSealsResponse(seals=[seal_message(r) for r in page[:size]], next_page_token=nxt)

    def _change(self, action: str, seal_id: str, reason: str) -> tuple[SealRecord, Any]:
        reason = bounded(reason, "reason")  # kept for good in the registry's history and the audit record
        call = ctx.current()
        self.rt.policy().check_seal(call.identity, seal_id)
        with self.rt.changing() as change:  # the state change and its record commit together, or neither
            rec = getattr(self.registry, action)(seal_id, actor=call.client, reason=reason or action, tx=change.tx)
            audit = change.record(ref=f"seal:{seal_id}", detail={"reason": reason})
        with self._lock:
            self._signers = {k: v for k, v in self._signers.items() if k[0] != seal_id}
        return rec, receipt(audit)

    def SuspendSeal(self, request: Any, context: grpc.ServicerContext) -> Any:
        rec, audit = self._change("suspend", require(request.seal_id, "seal_id"), request.reason)
        return pb.SuspendSealResponse(seal=seal_message(rec), audit=audit)

    def ResumeSeal(self, request: Any, context: grpc.ServicerContext) -> Any:
        rec, audit = self._change("resume", require(request.seal_id, "seal_id"), "")
        return pb.ResumeSealResponse(seal=seal_message(rec), audit=audit)

    def RevokeSeal(self, request: Any, context: grpc.ServicerContext) -> Any:
        rec, audit = self._change("revoke", require(request.seal_id, "seal_id"), request.reason)
        return pb.RevokeSealResponse(seal=seal_message(rec), audit=audit)

    def SignWithSeal(self, request: Any, context: grpc.ServicerContext) -> Any:
        seal_id = require(request.seal_id, "seal_id")
        call = ctx.current()
        self.rt.policy().check_seal(call.identity, seal_id)
        if request.WhichOneof("content") is None:
            raise InvalidInput("give data or sm3_digest", reason="MISSING_FIELD")
        return once(self.rt, request.idempotency_key, request, pb.SignWithSealResponse, lambda: self._sign(request))

    def _sign(self, request: Any) -> Any:
        try:
            rec = self.registry.get(request.seal_id)
        except NotFound:
            raise
        signer = self._seal_signer(rec, request.with_timestamp)
        prop = bounded(request.property_info, "property_info") or "trustsvc"
        if request.WhichOneof("content") == "data":
            from trustsvc.algorithms.sm3 import sm3

            digest = sm3(request.data)
        else:
            digest = request.sm3_digest
        ses = signer.sign_hash(digest, prop)
        audit = self.rt.record(ref=f"seal:{rec.es_id}", document_hash=digest.hex(),
                               detail={"key": signer.signer.key_ref, "property": prop})
        self.rt.metrics.signed(signer.signer.key_ref)
        return pb.SignWithSealResponse(ses_signature=ses, audit=receipt(audit))

    def VerifySealSignature(self, request: Any, context: grpc.ServicerContext) -> Any:
        require(request.ses_signature, "ses_signature")
        which = request.WhichOneof("content")
        crls = self.rt.ca_crls()
        report = verify(request.ses_signature, document=request.data if which == "data" else None,
                        document_hash=request.sm3_digest if which == "sm3_digest" else None,
                        trust=self.rt.trust_anchors, registry=self.registry,
                        timestamp_verifier=time_stamp_verifier(self.rt.trust_anchors, crls=crls), crls=crls)
        if report.kind == "not-ses":  # the message says what it is instead (a CMS, a bare signature ...)
            found = report.check("format")
            raise InvalidInput(f"not a GB/T 38540 seal signature: {found.reason}: {found.detail}", reason="NOT_SES")
        failed = report.failed
        checks = [(c.name, c.status.value != "fail", c.reason, c.detail) for c in report.checks]
        return pb.VerifySealSignatureResponse(
            result=result(report.valid, failed[0].reason if failed else "", report.verdict.value, checks),
            seal_id=report.es_id)
