"""TokenService: issue, verify, revoke, introspect identity tokens and publish the JWKS.

A thin gRPC layer over :class:`trustsvc.token.service.TokenService` (the same façade the CLI
uses); keys come through the runtime, so the caller's key policy applies to the signing key.
"""

from __future__ import annotations

import json
from typing import Any

import grpc
from google.protobuf import json_format, struct_pb2, timestamp_pb2

from trustsvc import codegen
from trustsvc.algorithms.sm3 import sm3_hex
from trustsvc.errors import InvalidInput
from trustsvc.server.runtime import Runtime
from trustsvc.server.services.common import bounded, once, receipt, require, result
from trustsvc.token import TokenInvalid
from trustsvc.token.codec import parse_compact
from trustsvc.token.service import TokenConfig
from trustsvc.token.service import TokenService as Tokens

pb, pb_grpc = codegen.load("token")
KEYSET_TTL_S = 5.0  # a retired (disabled) key stops verifying within this time


def _struct(claims: dict[str, Any]) -> struct_pb2.Struct:
    out = struct_pb2.Struct()
    out.update(json.loads(json.dumps(claims, default=str)))
    return out


def tokens_for(rt: Runtime) -> Tokens:
    """The token façade over the runtime's key store, database and signer lookup."""
    cfg = rt.config
    extra = tuple(k.strip() for k in cfg.token_extra_keys.split(",") if k.strip())
    config = TokenConfig(issuer=cfg.token_issuer, key=cfg.token_key, extra_keys=extra, ttl=cfg.token_ttl_s,
                         keys_ttl=KEYSET_TTL_S)
    return Tokens(rt.keystore, rt.db, config, signers=rt.signer, create_key=False)


class TokenService(pb_grpc.TokenServiceServicer):  # type: ignore[name-defined]  # generated at run time
    def __init__(self, rt: Runtime) -> None:
        self.rt = rt
        self.tokens = tokens_for(rt)

    def IssueToken(self, request: Any, context: grpc.ServicerContext) -> Any:
        require(request.subject, "subject")
        return once(self.rt, request.idempotency_key, request, pb.IssueTokenResponse, lambda: self._issue(request))

    def _issue(self, request: Any) -> Any:
        try:
            extra = json_format.MessageToDict(request.claims) if request.HasField("claims") else {}
        except ValueError as exc:  # NaN or Infinity: not JSON
            raise InvalidInput(f"claims are not JSON: {exc}", reason="BAD_CLAIMS") from None
        if request.scopes:
            extra["scope"] = " ".join(request.scopes)
        aud = list(request.audience) if request.audience else None
        # a malformed claim (TokenInvalid) or subject (TokenConfigError) is INVALID_ARGUMENT: server.errors
        issued = self.tokens.mint(request.subject, extra, aud=aud if aud is None or len(aud) > 1 else aud[0],
                                  ttl=request.ttl_seconds or None, key=request.key or None)
        claims = issued.claims
        rec = self.rt.record(ref=issued.key_ref, document_hash=sm3_hex(issued.token.encode()),
                             detail={"jti": claims["jti"], "exp": claims["exp"]})
        self.rt.metrics.signed(issued.key_ref)
        return pb.IssueTokenResponse(token=issued.token, token_id=claims["jti"],
                                     expires_at=timestamp_pb2.Timestamp(seconds=int(claims["exp"])),
                                     audit=receipt(rec))

    def VerifyToken(self, request: Any, context: grpc.ServicerContext) -> Any:
        require(request.token, "token")
        try:
            verified = self.tokens.verify(request.token, audience=request.audience or None)
        except TokenInvalid as exc:
            return pb.VerifyTokenResponse(result=result(False, exc.reason, exc.message))
        return pb.VerifyTokenResponse(result=result(True), claims=_struct(verified.claims))

    def RevokeToken(self, request: Any, context: grpc.ServicerContext) -> Any:
        which = request.WhichOneof("target")
        if which == "token":
            try:
                claims = self.tokens.verify(request.token, any_audience=True).claims
            except TokenInvalid as exc:
                if exc.reason in ("EXPIRED", "REVOKED"):
                    claims = parse_compact(request.token).payload
                else:
                    raise InvalidInput(f"the token cannot be revoked: {exc.message}", reason=exc.reason) from None
            jti, exp = claims.get("jti"), claims.get("exp")
        elif which == "token_id":
            jti, exp = bounded(request.token_id, "token_id", 256), None
        else:
            raise InvalidInput("give token or token_id", reason="MISSING_FIELD")
        if not isinstance(jti, str) or not jti:
            raise InvalidInput("the token has no jti", reason="MISSING_CLAIM")
        bounded(request.reason, "reason")
        with self.rt.changing() as change:  # the revocation and its record commit together, or neither
            self.tokens.revoke_jti(jti, expires_at=exp if isinstance(exp, int) else None, reason=request.reason,
                                   tx=change.tx)
            rec = change.record(ref=f"token:{jti}", detail={"reason": request.reason})
        return pb.RevokeTokenResponse(token_id=jti, audit=receipt(rec))

    def IntrospectToken(self, request: Any, context: grpc.ServicerContext) -> Any:
        require(request.token, "token")
        answer = self.tokens.introspect(request.token)
        active = bool(answer.pop("active", False))
        return pb.IntrospectTokenResponse(active=active, claims=_struct(answer) if active else None)

    def GetJwks(self, request: Any, context: grpc.ServicerContext) -> Any:
        return pb.GetJwksResponse(jwks_json=json.dumps(self.tokens.jwks(), sort_keys=True))
