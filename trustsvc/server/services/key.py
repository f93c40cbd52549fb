"""KeyService: list, create, rotate, disable keys (admin identities only; enforced by the policy)."""

from __future__ import annotations

from typing import Any

import grpc

from trustsvc import codegen
from trustsvc.keys.base import KeyInfo
from trustsvc.server.runtime import Runtime
from trustsvc.server.services.common import once, receipt, require, ts

pb, pb_grpc = codegen.load("key")


def key_message(info: KeyInfo) -> Any:
    return pb.Key(name=info.name, version=info.version, spec=info.spec, state=info.state.value,
                  created=ts(info.created), public_key=info.public_key.spki, store=info.store, ref=info.ref,
                  certificate_chain=list(info.certificate_chain))


class KeyService(pb_grpc.KeyServiceServicer):  # type: ignore[name-defined]  # generated at run time
    def __init__(self, rt: Runtime) -> None:
        self.rt = rt

    def ListKeys(self, request: Any, context: grpc.ServicerContext) -> Any:
        infos = [i for i in self.rt.keystore.list() if not request.name or i.name == request.name]
        return pb.ListKeysResponse(keys=[key_message(i) for i in infos])

    def _certify(self, info: KeyInfo) -> KeyInfo:
        """Give a new SM2/EC key a certificate from the dev CA (embedded default), so it can sign CMS."""
        from trustsvc.server.embedded import certify_key

        return certify_key(self.rt, info)

    def CreateKey(self, request: Any, context: grpc.ServicerContext) -> Any:
        name, spec = require(request.name, "name"), request.spec or "sm2"

        def produce() -> Any:
            self.rt.before_change()  # key stores cannot undo: refuse before changing anything
            info = self._certify(self.rt.keystore.create(name, spec))
            rec = self.rt.record(ref=info.ref, detail={"spec": spec})
            return pb.CreateKeyResponse(key=key_message(info), audit=receipt(rec))
        return once(self.rt, request.idempotency_key, request, pb.CreateKeyResponse, produce)

    def RotateKey(self, request: Any, context: grpc.ServicerContext) -> Any:
        """With an idempotency key a retried rotation returns the first rotation's version, never rotates twice."""
        name = require(request.name, "name")

        def produce() -> Any:
            self.rt.before_change()
            info = self._certify(self.rt.keystore.rotate(name))
            self.rt.forget_signers()
            rec = self.rt.record(ref=info.ref)
            return pb.RotateKeyResponse(key=key_message(info), audit=receipt(rec))
        return once(self.rt, request.idempotency_key, request, pb.RotateKeyResponse, produce)

    def DisableKey(self, request: Any, context: grpc.ServicerContext) -> Any:
        self.rt.before_change()
        info = self.rt.keystore.disable(require(request.name, "name"), request.version or None)
        self.rt.forget_signers()
        rec = self.rt.record(ref=info.ref)
        return pb.DisableKeyResponse(key=key_message(info), audit=receipt(rec))
