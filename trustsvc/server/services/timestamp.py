"""TimeStampService: RFC 3161 time stamps from the local authority (trustsvc.tsa)."""

from __future__ import annotations

from typing import Any

import grpc
from asn1crypto import tsp

from trustsvc import codegen
from trustsvc.errors import InvalidInput
from trustsvc.pki.cms import tlv
from trustsvc.server import context as ctx
from trustsvc.server.idempotency import request_hash
from trustsvc.server.runtime import Runtime
from trustsvc.server.services.common import receipt, result, ts
from trustsvc.tsa import LocalTsa, parse_response, verify_timestamp_token

pb, pb_grpc = codegen.load("timestamp")


class TimeStampService(pb_grpc.TimeStampServiceServicer):  # type: ignore[name-defined]  # generated at run time
    def __init__(self, rt: Runtime) -> None:
        self.rt = rt
        self._tsa: LocalTsa | None = None

    def _authority(self) -> LocalTsa:
        signer = self.rt.signer(self.rt.config.tsa_key, check_policy=False)  # the operation policy decides
        tsa = self._tsa
        if tsa is None or tsa.signer.public_key != signer.public_key:
            tsa = self._tsa = LocalTsa(signer)
        return tsa

    def CreateTimeStamp(self, request: Any, context: grpc.ServicerContext) -> Any:
        if request.WhichOneof("input") is None:
            raise InvalidInput("give timestamp_request, data or digest", reason="MISSING_FIELD")
        call = ctx.current()
        req_hash = request_hash(call.operation, request.SerializeToString(deterministic=True))
        return self.rt.idempotency.run(call.client, request.idempotency_key, call.operation, req_hash,
                                       pb.CreateTimeStampResponse, lambda: self._create(request))

    def _create(self, request: Any) -> Any:
        tsa = self._authority()
        which = request.WhichOneof("input")
        if which == "timestamp_request":
            response = tsa.respond(request.timestamp_request)
            status, token, text = parse_response(response)
            if token is None:  # a rejection is an answer, not an error; nothing was signed
                raise InvalidInput(f"time-stamp request rejected: {text}", reason="TSA_REJECTED")
        else:
            hash_alg = request.hash_algorithm or "sm3"
            token = tsa.timestamp(request.data if which == "data" else None,
                                  digest=request.digest if which == "digest" else None, hash_alg=hash_alg,
                                  cert_req=request.cert_req or which != "timestamp_request")
            response = tlv(0x30, tsp.PKIStatusInfo({"status": "granted"}).dump() + token)
        info = verify_timestamp_token(token, extra_certificates=tsa.signer.certificate_chain)
        rec = self.rt.record(ref=tsa.signer.key_ref, document_hash=(info.hashed_message or b"").hex(),
                             detail={"serial": f"{info.serial_number:x}" if info.serial_number else ""})
        self.rt.metrics.signatures.labels(tsa.signer.key_ref).inc()
        return pb.CreateTimeStampResponse(timestamp_response=response, timestamp_token=token,
                                          gen_time=ts(info.gen_time),
                                          serial_number=f"{info.serial_number:x}" if info.serial_number else "",
                                          audit=receipt(rec))

    def VerifyTimeStamp(self, request: Any, context: grpc.ServicerContext) -> Any:
        if not request.timestamp_token:
            raise InvalidInput("timestamp_token is required", reason="MISSING_FIELD")
        which = request.WhichOneof("content")
        res = verify_timestamp_token(request.timestamp_token, request.data if which == "data" else None,
                                     digest=request.digest if which == "digest" else None,
                                     trust_anchors=self.rt.trust_anchors or None,
                                     crls=self.rt.ca_crls())
        fmt = res.cms.check("format")
        if fmt is not None and fmt.ok is False:
            raise InvalidInput(f"not a time-stamp token: {fmt.detail}", reason=fmt.reason)
        checks = [(c.name, c.ok is not False, c.reason, c.detail) for c in res.all_checks]
        return pb.VerifyTimeStampResponse(result=result(res.ok, res.reason, "", checks), gen_time=ts(res.gen_time),
                                          serial_number=f"{res.serial_number:x}" if res.serial_number else "")
