"""SignatureService: GM/T 0029 data and message signatures, certificates."""

from __future__ import annotations

import copy
import datetime as dt
import hashlib
from collections.abc import Iterator
from typing import Any

import grpc

from trustsvc import codegen
from trustsvc.algorithms.encoding import load_public_key
from trustsvc.algorithms.signature_algorithm import SignatureAlgorithm
from trustsvc.algorithms.signer import MessageHasher, Signer, Verifier
from trustsvc.algorithms.sm3 import Sm3Hasher, sm3_hex
from trustsvc.errors import Conflict, InvalidInput, InvalidSignature, TrustsvcError
from trustsvc.pki.certificate import Certificate
from trustsvc.pki.crl import CertificateRevocationList
from trustsvc.server import context as ctx
from trustsvc.server.runtime import Runtime
from trustsvc.server.services.common import first_part, item_error, once, receipt, require, result, ts, when

pb, pb_grpc = codegen.load("signature")


def _with_id(signer: Signer, sm2_id: bytes) -> Signer:
    if not sm2_id or sm2_id == signer.sm2_id:
        return signer
    if signer.algorithm is not SignatureAlgorithm.SM2_SM3:
        raise InvalidInput("sm2_id is only meaningful for SM2 keys", reason="SM2_ID_NOT_APPLICABLE")
    clone = copy.copy(signer)
    clone.sm2_id = sm2_id
    return clone


def _load_cert(data: bytes) -> Certificate:
    return Certificate.load(data)


# ValidateCertRequest.purpose -> (key usage, extended key usage) the leaf must carry
PURPOSES: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "": ((), ()),
    "signing": (("digital_signature",), ()),
    "non_repudiation": (("non_repudiation",), ()),
    "time_stamping": ((), ("time_stamping",)),
    "server_auth": ((), ("server_auth",)),
    "client_auth": ((), ("client_auth",)),
}


_SIGN_MESSAGE_FLAGS = ("hash_given", "signer_certificate_only", "include_crl", "no_signed_attributes")


class SignatureService(pb_grpc.SignatureServiceServicer):  # type: ignore[name-defined]  # generated at run time
    def __init__(self, rt: Runtime) -> None:
        self.rt = rt

    # helpers ------------------------------------------------------------------------
    def _idem(self, request: Any, response_type: type, produce: Any, *extra: bytes) -> Any:
        return once(self.rt, request.idempotency_key, request, response_type, produce, *extra)

    def _sign_data(self, key: str, sm2_id: bytes, data: bytes) -> Any:
        signer = _with_id(self.rt.signer(key), sm2_id)
        return self._respond(signer, signer.sign(data), sm3_hex(data), {})

    def _respond(self, signer: Signer, signature: bytes, doc_hash: str, detail: dict[str, Any]) -> Any:
        """Audit the signature (document hash = SM3 of the data), count it, build the reply."""
        rec = self.rt.record(ref=signer.key_ref, document_hash=doc_hash,
                             detail={"algorithm": signer.algorithm.value, **detail})
        self.rt.metrics.signatures.labels(signer.key_ref).inc()
        return pb.SignDataResponse(signature=signature, algorithm=signer.algorithm.value, key_ref=signer.key_ref,
                                   certificate=signer.certificate or b"", audit=receipt(rec))

    # RPCs -----------------------------------------------------------------------------
    def SignData(self, request: Any, context: grpc.ServicerContext) -> Any:
        require(request.key, "key")
        return self._idem(request, pb.SignDataResponse,
                          lambda: self._sign_data(request.key, request.sm2_id, request.data))

    def _verifier(self, request: Any) -> Verifier:
        """The Verifier a VerifySignedDataRequest names (certificate, public key or daemon key)."""
        require(request.signature, "signature")
        which = request.WhichOneof("signer")
        if which == "certificate":
            public_key = _load_cert(request.certificate).public_key
        elif which == "public_key":
            public_key = load_public_key(request.public_key)
        elif which == "key":
            self.rt.policy().check_key(ctx.current().identity, request.key)
            from trustsvc.keys.base import parse_key_ref

            name, version = parse_key_ref(request.key)
            public_key = self.rt.keystore.public_key(name, version)
        else:
            raise InvalidInput("give a certificate, public_key or key", reason="MISSING_FIELD")
        algorithm = SignatureAlgorithm.parse(request.algorithm) if request.algorithm else None
        kwargs = {"sm2_id": request.sm2_id} if request.sm2_id else {}
        return Verifier(public_key, algorithm, **kwargs)

    def _certificate_checks(self, request: Any) -> list[tuple[str, bool, str, str]]:
        """GM/T 0029 verifyLevel for a signer given by certificate: 0 validity now, 1 + path, 2 + revocation."""
        if request.verify_level > 2:
            raise InvalidInput(f"verify_level {request.verify_level}: use 0 (validity), 1 (+ path) or 2 "
                               "(+ revocation)", reason="BAD_VERIFY_LEVEL")
        if request.WhichOneof("signer") != "certificate":
            return []
        cert = _load_cert(request.certificate)
        if request.verify_level == 0:
            now = dt.datetime.now(dt.UTC)
            reason = "OK" if cert.valid_at(now) else "NOT_YET_VALID" if now < cert.not_before else "EXPIRED"
            return [("validity", reason == "OK", reason, f"{cert.not_before} .. {cert.not_after}")]
        from trustsvc.pki.validation import validate

        if not self.rt.trust_anchors:
            raise InvalidInput("verify_level 1 and 2 need trust anchors; none are configured", reason="NO_TRUST_ANCHOR")
        crls = [*(CertificateRevocationList.load(c) for c in request.crls), *self.rt.ca_crls()] \
            if request.verify_level == 2 else []
        res = validate(cert, trust_anchors=self.rt.trust_anchors,
                       intermediates=[_load_cert(c) for c in request.intermediates], crls=crls,
                       require_revocation=request.verify_level == 2)
        return [(f"{c.name}[{c.depth}]", c.status.value != "fail", c.reason, c.message) for c in res.checks]

    @staticmethod
    def _verified(check: Any, certificate_checks: list[tuple[str, bool, str, str]]) -> Any:
        """A VerifySignedDataResponse from running ``check()`` and the certificate checks: an invalid signature
        or certificate is a result, not an error; the first failure gives the reason."""
        try:
            check()
            checks = [("signature", True, "OK", ""), *certificate_checks]
        except InvalidSignature as exc:
            checks = [("signature", False, exc.reason, exc.message), *certificate_checks]
        failed = next((c for c in checks if not c[1]), None)
        if failed is None:
            return pb.VerifySignedDataResponse(result=result(True, checks=checks))
        return pb.VerifySignedDataResponse(result=result(False, failed[2], f"{failed[0]}: {failed[3]}", checks))

    def VerifySignedData(self, request: Any, context: grpc.ServicerContext) -> Any:
        verifier = self._verifier(request)
        cert_checks = self._certificate_checks(request)
        return self._verified(lambda: verifier.verify(request.data, request.signature), cert_checks)

    def VerifySignedDataStream(self, request_iterator: Iterator[Any], context: grpc.ServicerContext) -> Any:
        # A running digest (e = SM3(Z || M) for SM2); Ed25519, which has none, gathers up to max_stream_bytes.
        init = first_part(request_iterator, "init")
        if init.data:
            raise InvalidInput("init.data must be empty: send the data as chunks", reason="STREAM_DATA_IN_INIT")
        verifier = self._verifier(init)
        cert_checks = self._certificate_checks(init)
        message = _StreamedMessage(verifier, self.rt.config.max_stream_bytes, "verifies")
        for chunk in _chunks(request_iterator):
            message.update(chunk)
        signature, hasher = init.signature, message.hasher
        if hasher is not None:
            return self._verified(lambda: verifier.verify_digest(hasher.digest(), signature), cert_checks)
        return self._verified(lambda: verifier.verify(message.whole(), signature), cert_checks)

    def _sign_message(self, key: str, data: bytes | None, digest: bytes | None, detached: bool,
                      request: Any = None) -> Any:
        """A CMS over ``data`` or its ``digest``; ``request`` (a SignMessageRequest) brings the GM/T 0029 flags."""
        from trustsvc.pki.cms import sign_cms

        signer = self.rt.signer(key)
        if signer.certificate is None:
            raise InvalidInput(f"key {key!r} has no certificate; CMS needs one", reason="KEY_HAS_NO_CERTIFICATE")
        flags = {name: bool(getattr(request, name, False)) for name in _SIGN_MESSAGE_FLAGS}
        crls: list[bytes] = []
        if flags["include_crl"]:
            if self.rt.ca is None:
                raise Conflict("include_crl: the daemon has no CA whose CRL it could carry", reason="NO_CA")
            crls = [c.der for c in self.rt.ca_crls()]
        cms_der = sign_cms(signer, data, digest=digest, detached=detached,
                           include_chain=not flags["signer_certificate_only"], include_crls=crls,
                           signed_attributes=not flags["no_signed_attributes"])
        rec = self.rt.record(ref=signer.key_ref, data=data, document_hash=digest.hex() if digest else "",
                             detail={"detached": detached, **{k: True for k, v in flags.items() if v}})
        self.rt.metrics.signatures.labels(signer.key_ref).inc()
        return pb.SignMessageResponse(cms=cms_der, key_ref=signer.key_ref, audit=receipt(rec))

    def SignMessage(self, request: Any, context: grpc.ServicerContext) -> Any:
        require(request.key, "key")
        if request.hash_given:
            require(request.data, "data")
            return self._idem(request, pb.SignMessageResponse,
                              lambda: self._sign_message(request.key, None, request.data, True, request))
        return self._idem(request, pb.SignMessageResponse,
                          lambda: self._sign_message(request.key, request.data, None, request.detached, request))

    def _cms_result(self, cms_der: bytes, data: bytes | None, digests: dict[str, bytes] | None = None) -> Any:
        from trustsvc.pki.cms_verify import verify_cms

        res = verify_cms(cms_der, data, digest=digests, trust_anchors=self.rt.trust_anchors or None,
                         crls=self.rt.ca_crls())
        checks = [(c.name, c.ok is not False, c.reason, c.detail)
                  for c in res.checks + [c for s in res.signers for c in s.checks]]
        if res.checks and res.checks[0].name == "format" and res.checks[0].ok is False:
            raise InvalidInput(f"not a CMS SignedData: {res.checks[0].detail}", reason=res.checks[0].reason)
        cert = res.signers[0].certificate if res.signers and res.signers[0].certificate else None
        return pb.VerifySignedMessageResponse(result=result(res.ok, res.reason, "", checks),
                                              content=res.content or b"", signer_certificate=cert.der if cert else b"")

    def VerifySignedMessage(self, request: Any, context: grpc.ServicerContext) -> Any:
        require(request.cms, "cms")
        return self._cms_result(request.cms, request.data or None)

    def VerifySignedMessageStream(self, request_iterator: Iterator[Any], context: grpc.ServicerContext) -> Any:
        from trustsvc.pki.cms_verify import detached_digest_algorithms

        cms = require(first_part(request_iterator, "cms"), "cms")
        hashers = {n: _content_hasher(n) for n in detached_digest_algorithms(cms)}
        for chunk in _chunks(request_iterator):
            for h in hashers.values():
                h.update(chunk)
        return self._cms_result(cms, None, {n: h.digest() for n, h in hashers.items()})

    def _open_stream(self, request_iterator: Iterator[Any]) -> tuple[Any, Iterator[bytes]]:
        """The `init` message, and the chunks that follow it (deadline checked per chunk)."""
        init = first_part(request_iterator, "init")
        ctx.current().ref = require(init.key, "init.key")
        return init, _chunks(request_iterator)

    def SignDataStream(self, request_iterator: Iterator[Any], context: grpc.ServicerContext) -> Any:
        # Only running digests are kept (e = SM3(Z || M) for SM2, the hash for ECDSA/RSA); a signer that
        # cannot sign a digest (Ed25519, a token that hashes the message itself) gathers up to max_stream_bytes.
        init, chunks = self._open_stream(request_iterator)
        signer = _with_id(self.rt.signer(init.key), init.sm2_id)
        document, message = Sm3Hasher(), _StreamedMessage(signer, self.rt.config.max_stream_bytes, "signs")
        for chunk in chunks:
            document.update(chunk)
            message.update(chunk)
        doc_hash, hasher = document.digest(), message.hasher

        def produce() -> Any:
            signature = signer.sign_digest(hasher.digest()) if hasher is not None else signer.sign(message.whole())
            return self._respond(signer, signature, doc_hash.hex(),
                                 {"bytes": message.total, "prehashed": hasher is not None})
        return self._idem(init, pb.SignDataResponse, produce, doc_hash)

    def SignMessageStream(self, request_iterator: Iterator[Any], context: grpc.ServicerContext) -> Any:
        # Detached CMS: only the digest is kept, memory stays bounded whatever the size.
        from trustsvc.pki.cms import digest_algorithm_for

        init, chunks = self._open_stream(request_iterator)
        signer = self.rt.signer(init.key)
        name = digest_algorithm_for(signer)
        hasher = _content_hasher(name)
        for chunk in chunks:
            hasher.update(chunk)
        digest = hasher.digest()
        return self._idem(init, pb.SignMessageResponse, lambda: self._sign_message(init.key, None, digest, True),
                          digest)

    def ExportCert(self, request: Any, context: grpc.ServicerContext) -> Any:
        signer = self.rt.signer(require(request.key, "key"))
        chain = list(signer.certificate_chain)
        if not chain:
            raise InvalidInput(f"key {request.key!r} has no certificate", reason="KEY_HAS_NO_CERTIFICATE")
        return pb.ExportCertResponse(certificate=chain[0], chain=chain)

    def ParseCert(self, request: Any, context: grpc.ServicerContext) -> Any:
        cert = _load_cert(require(request.certificate, "certificate"))
        return pb.ParseCertResponse(
            subject=cert.subject, issuer=cert.issuer, serial_number=f"{cert.serial_number:x}",
            not_before=ts(cert.not_before), not_after=ts(cert.not_after),
            signature_algorithm_oid=cert.signature_algorithm_oid, public_key=cert.public_key.spki,
            key_usage=sorted(cert.key_usage), extended_key_usage=sorted(cert.extended_key_usage), is_ca=cert.is_ca,
            fingerprint_sha256=cert.fingerprint_sha256, common_name=cert.common_name)

    def ValidateCert(self, request: Any, context: grpc.ServicerContext) -> Any:
        from trustsvc.pki.validation import validate

        leaf = _load_cert(require(request.certificate, "certificate"))
        anchors = [_load_cert(c) for c in request.trust_anchors] or self.rt.trust_anchors
        if not anchors:
            raise InvalidInput("no trust anchors given and none configured", reason="NO_TRUST_ANCHOR")
        at = when(request.at, "at") if request.HasField("at") else None
        if request.purpose not in PURPOSES:
            raise InvalidInput(f"unknown purpose {request.purpose!r}; known: {', '.join(sorted(PURPOSES)[1:])}",
                               reason="UNKNOWN_PURPOSE")
        key_usage, extended_key_usage = PURPOSES[request.purpose]
        crls = [*(CertificateRevocationList.load(c) for c in request.crls), *self.rt.ca_crls()]
        res = validate(leaf, trust_anchors=anchors, intermediates=[_load_cert(c) for c in request.intermediates],
                       at=at, key_usage=key_usage, extended_key_usage=extended_key_usage, crls=crls,
                       require_revocation=request.require_revocation)
        checks = [(f"{c.name}[{c.depth}]", c.status.value != "fail", c.reason, c.message) for c in res.checks]
        return pb.ValidateCertResponse(result=result(res.valid, res.reason or "", res.summary(), checks))

    def BatchSignData(self, request: Any, context: grpc.ServicerContext) -> Any:
        require(request.key, "key")
        if not request.items:
            raise InvalidInput("items is empty", reason="MISSING_FIELD")
        return self._idem(request, pb.BatchSignDataResponse, lambda: self._batch(request))

    def _batch(self, request: Any) -> Any:
        """Sign every item with data; one audit record lists every item (id, SM3 of the data, outcome)."""
        call = ctx.current()
        signer = _with_id(self.rt.signer(request.key), request.sm2_id)
        items = request.items
        todo = [i for i, item in enumerate(items) if item.data]
        call.check_deadline()
        messages = [items[i].data for i in todo]
        try:
            signatures: list[bytes | TrustsvcError] = list(signer.sign_batch(messages))
        except TrustsvcError:
            signatures = []
            for m in messages:
                call.check_deadline()
                try:
                    signatures.append(signer.sign(m))
                except TrustsvcError as exc:
                    signatures.append(exc)
        call.check_deadline()
        outcome: list[bytes | TrustsvcError] = [_EMPTY_DATA] * len(items)
        for i, sig in zip(todo, signatures, strict=True):
            outcome[i] = sig
        Result = pb.BatchSignDataResponse.Result
        results, listed, signed = [], [], 0
        for item, sig in zip(items, outcome, strict=True):
            if isinstance(sig, bytes):
                results.append(Result(id=item.id, signature=sig))
                listed.append((item.id, sm3_hex(item.data), "ok"))
                signed += 1
            else:
                results.append(Result(id=item.id, error=item_error(sig)))
                listed.append((item.id, sm3_hex(item.data) if item.data else "", sig.reason))
        detail = {"algorithm": signer.algorithm.value, "hash": "sm3"}
        rec = self.rt.record_batch(signer.key_ref, listed, detail) if signed else None
        self.rt.metrics.signed(signer.key_ref, signed)
        return pb.BatchSignDataResponse(results=results, algorithm=signer.algorithm.value, key_ref=signer.key_ref,
                                        audit=receipt(rec) if rec else None)


_EMPTY_DATA = InvalidInput("data is empty", reason="EMPTY_DATA")


def _content_hasher(name: str) -> Any:
    """A running hash of a CMS content by digest algorithm name (SM3 through trustsvc.algorithms.sm3)."""
    return Sm3Hasher() if name == "sm3" else hashlib.new(name)


class _StreamedMessage:
    """A message arriving in chunks, kept as the running digest its key signs or verifies (``hasher``), or,
    for a key with no such digest (Ed25519, tokens that hash the message), whole up to ``limit`` bytes."""

    def __init__(self, owner: Signer | Verifier, limit: int, verb: str) -> None:
        try:
            self.hasher: MessageHasher | None = owner.digest_hasher()
        except InvalidInput as exc:
            if exc.reason != "PREHASH_UNSUPPORTED":
                raise
            self.hasher = None
        self.total, self._parts, self._limit = 0, list[bytes](), limit
        self._why = f"{owner.algorithm.value} {verb} the whole message"

    def update(self, chunk: bytes) -> None:
        self.total += len(chunk)
        if self.hasher is not None:
            self.hasher.update(chunk)
        elif self.total > self._limit:
            raise InvalidInput(f"stream exceeds {self._limit} bytes ({self._why})", reason="STREAM_TOO_LARGE")
        else:
            self._parts.append(chunk)

    def whole(self) -> bytes:
        return b"".join(self._parts)


def _chunks(request_iterator: Iterator[Any]) -> Iterator[bytes]:
    call = ctx.current()
    for msg in request_iterator:
        call.check_deadline()
        if msg.WhichOneof("part") != "chunk":
            raise InvalidInput("only `chunk` may follow the first message", reason="STREAM_OUT_OF_ORDER")
        yield msg.chunk
