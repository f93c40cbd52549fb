"""TokenService: issue, verify, revoke, introspect identity tokens and publish the JWKS (trustsvc.token)."""

from __future__ import annotations

import json
import threading
import time
from typing import Any

import grpc
from google.protobuf import json_format, struct_pb2

from trustsvc import codegen
from trustsvc.algorithms.sm3 import sm3
from trustsvc.errors import InvalidInput
from trustsvc.server import context as ctx
from trustsvc.server.idempotency import request_hash
from trustsvc.server.runtime import Runtime
from trustsvc.server.services.common import receipt, require, result, ts
from trustsvc.token import KeySet, RevocationStore, TokenInvalid, TokenIssuer, TokenVerifier, TrustedIssuer
from trustsvc.token import introspect as _introspect
from trustsvc.token.codec import parse_compact
from trustsvc.token.keyset import kid_for

pb, pb_grpc = codegen.load("token")
KEYSET_TTL_S = 5.0


def _struct(claims: dict[str, Any]) -> struct_pb2.Struct:
    out = struct_pb2.Struct()
    out.update(json.loads(json.dumps(claims, default=str)))
    return out


class TokenService(pb_grpc.TokenServiceServicer):
    def __init__(self, rt: Runtime) -> None:
        self.rt = rt
        self.issuer_name = rt.config.token_issuer
        self.revocations = RevocationStore(rt.db)
        self._issuers: dict[int, TokenIssuer] = {}
        self._keyset: tuple[float, KeySet] | None = None
        self._lock = threading.Lock()

    def _issuer(self, key: str) -> TokenIssuer:
        signer = self.rt.signer(key)
        issuer = self._issuers.get(id(signer))
        if issuer is None or issuer.signer is not signer:
            name, _, version = signer.key_ref.partition(":")[2].partition("@")
            kid = kid_for(signer.public_key, name, int(version) if version else None)
            issuer = TokenIssuer(signer, self.issuer_name, kid=kid, ttl=self.rt.config.token_ttl_s)
            with self._lock:
                self._issuers = {id(signer): issuer}  # only the current signer's issuer is kept
        return issuer

    def _keys(self) -> KeySet:
        now = time.monotonic()
        if self._keyset is None or now - self._keyset[0] > KEYSET_TTL_S:
            self._keyset = (now, KeySet.from_keystore(self.rt.keystore, [self.rt.config.token_key]))
        return self._keyset[1]

    def _verifier(self, audience: str = "") -> TokenVerifier:
        return TokenVerifier([TrustedIssuer(self.issuer_name, self._keys())], audience=audience or None,
                             revocation=self.revocations)

    def IssueToken(self, request: Any, context: grpc.ServicerContext) -> Any:
        require(request.subject, "subject")
        call = ctx.current()
        req_hash = request_hash(call.operation, request.SerializeToString(deterministic=True))
        return self.rt.idempotency.run(call.client, request.idempotency_key, call.operation, req_hash,
                                       pb.IssueTokenResponse, lambda: self._issue(request))

    def _issue(self, request: Any) -> Any:
        issuer = self._issuer(request.key or self.rt.config.token_key)
        extra = json_format.MessageToDict(request.claims) if request.HasField("claims") else {}
        if request.scopes:
            extra["scope"] = " ".join(request.scopes)
        aud = list(request.audience) if request.audience else None
        claims = issuer.claims(request.subject, extra, aud=aud if aud is None or len(aud) > 1 else aud[0],
                               ttl=request.ttl_seconds or None)
        token = issuer.sign_claims(claims)
        rec = self.rt.record(ref=issuer.signer.key_ref, document_hash=sm3(token.encode()).hex(),
                             detail={"jti": claims["jti"], "exp": claims["exp"]})
        self.rt.metrics.signatures.labels(issuer.signer.key_ref).inc()
        import datetime as dt

        return pb.IssueTokenResponse(token=token, token_id=claims["jti"],
                                     expires_at=ts(dt.datetime.fromtimestamp(claims["exp"], dt.UTC)),
                                     audit=receipt(rec))

    def VerifyToken(self, request: Any, context: grpc.ServicerContext) -> Any:
        require(request.token, "token")
        try:
            verified = self._verifier(request.audience).verify(request.token)
        except TokenInvalid as exc:
            return pb.VerifyTokenResponse(result=result(False, exc.reason, exc.message))
        return pb.VerifyTokenResponse(result=result(True), claims=_struct(verified.claims))

    def RevokeToken(self, request: Any, context: grpc.ServicerContext) -> Any:
        which = request.WhichOneof("target")
        if which == "token":
            try:
                claims = self._verifier().verify(request.token).claims
            except TokenInvalid as exc:
                if exc.reason in ("EXPIRED", "REVOKED"):
                    claims = parse_compact(request.token).payload
                else:
                    raise InvalidInput(f"the token cannot be revoked: {exc.message}", reason=exc.reason) from None
            jti, exp = claims.get("jti"), claims.get("exp")
        elif which == "token_id":
            jti, exp = request.token_id, None
        else:
            raise InvalidInput("give token or token_id", reason="MISSING_FIELD")
        if not isinstance(jti, str) or not jti:
            raise InvalidInput("the token has no jti", reason="MISSING_CLAIM")
        self.revocations.revoke_jti(self.issuer_name, jti, expires_at=exp if isinstance(exp, int) else None,
                                    reason=request.reason)
        rec = self.rt.record(ref=f"token:{jti}", detail={"reason": request.reason})
        return pb.RevokeTokenResponse(token_id=jti, audit=receipt(rec))

    def IntrospectToken(self, request: Any, context: grpc.ServicerContext) -> Any:
        require(request.token, "token")
        answer = _introspect(self._verifier(), request.token)
        active = bool(answer.pop("active", False))
        return pb.IntrospectTokenResponse(active=active, claims=_struct(answer) if active else None)

    def GetJwks(self, request: Any, context: grpc.ServicerContext) -> Any:
        return pb.GetJwksResponse(jwks_json=json.dumps(self._keys().jwks(), sort_keys=True))
