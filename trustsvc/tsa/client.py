"""RFC 3161 client side: requests, an HTTP client, and a plain ``timestamper`` callable.

- ``make_request(data=... | digest=..., hash_alg='sm3', nonce=True, cert_req=True) -> TimestampRequest``
  (``.der`` to send; ``.nonce``, ``.digest``, ``.hash_alg`` to check the answer).
- ``check_response(request, response_der, trust_anchors=None) -> token DER``: status granted,
  nonce and imprint match, token signature valid; raises ``TimestampError`` with a reason.
- ``HttpTsaClient(url, timeout=10, auth=None).timestamp(data=... | digest=..., hash_alg='sm3')``
  posts application/timestamp-query with urllib and returns the checked token DER.
- ``timestamper_for(tsa_or_client, hash_alg='sm3') -> callable(data) -> token DER``: the token's
  messageImprint is the hash of exactly the bytes given (GB/T 38540 v4: the signature value).
"""

from __future__ import annotations

import base64
import dataclasses
import os
import urllib.error
import urllib.request
from collections.abc import Callable, Sequence
from typing import Protocol

from asn1crypto import tsp

from trustsvc.errors import InvalidInput, TrustsvcError
from trustsvc.pki.certificate import Certificate
from trustsvc.pki.cms import DIGEST_SIZES, hash_data
from trustsvc.tsa.verify import parse_response, verify_timestamp_token


class TimestampError(TrustsvcError):
    """A time stamp could not be obtained or did not check out."""

    reason = "TIMESTAMP_FAILED"


class TsaUnavailable(TimestampError):
    """The TSA could not be reached."""

    reason = "TSA_UNAVAILABLE"
    retryable = True


@dataclasses.dataclass(frozen=True)
class TimestampRequest:
    der: bytes
    hash_alg: str
    digest: bytes
    nonce: int | None
    cert_req: bool


def make_request(data: bytes | None = None, *, digest: bytes | None = None, hash_alg: str = "sm3",
                 nonce: bool | int = True, cert_req: bool = True, policy_oid: str | None = None) -> TimestampRequest:
    """A TimeStampReq for ``data`` (hashed here with ``hash_alg``) or a precomputed ``digest``."""
    if (data is None) == (digest is None):
        raise InvalidInput("give exactly one of data or digest", reason="BAD_ARGUMENTS")
    if hash_alg not in DIGEST_SIZES:
        raise InvalidInput(f"unknown hash algorithm {hash_alg}", reason="UNSUPPORTED_DIGEST")
    value = digest if digest is not None else hash_data(hash_alg, data or b"")
    if len(value) != DIGEST_SIZES[hash_alg]:
        raise InvalidInput(f"a {hash_alg} digest is {DIGEST_SIZES[hash_alg]} bytes", reason="BAD_DIGEST_LENGTH")
    nonce_value = (int.from_bytes(os.urandom(8), "big") >> 1 if nonce is True else None) if isinstance(
        nonce, bool) else int(nonce)
    req: dict[str, object] = {"version": "v1", "message_imprint": {"hash_algorithm": {"algorithm": hash_alg},
                                                                   "hashed_message": value},
                              "cert_req": cert_req}
    if nonce_value is not None:
        req["nonce"] = nonce_value
    if policy_oid:
        req["req_policy"] = policy_oid
    return TimestampRequest(tsp.TimeStampReq(req).dump(), hash_alg, value, nonce_value, cert_req)


def check_response(request: TimestampRequest, response_der: bytes,
                   trust_anchors: Sequence[Certificate | bytes] | None = None) -> bytes:
    """The token DER from a TimeStampResp after checking it answers ``request``."""
    status, token, text = parse_response(response_der)
    if status not in ("granted", "granted_with_mods"):
        raise TimestampError(f"TSA refused the request: {status} {text}", reason="TSA_REJECTED")
    if token is None:
        raise TimestampError("TSA granted but sent no token", reason="BAD_TSA_RESPONSE")
    result = verify_timestamp_token(token, digest=request.digest, trust_anchors=trust_anchors)
    if result.hash_algorithm != request.hash_alg:
        raise TimestampError("TSA answered with another hash algorithm", reason="IMPRINT_MISMATCH")
    if result.nonce != request.nonce:
        raise TimestampError("TSA nonce does not match the request", reason="NONCE_MISMATCH")
    if not result.ok:
        raise TimestampError(f"time-stamp token does not verify: {result.reason}", reason=result.reason)
    return token


class HttpTsaClient:
    """An RFC 3161 HTTP client (application/timestamp-query over urllib)."""

    def __init__(self, url: str, timeout: float = 10.0, auth: tuple[str, str] | None = None,
                 trust_anchors: Sequence[Certificate | bytes] | None = None, policy_oid: str | None = None) -> None:
        self.url = url
        self.timeout = timeout
        self.auth = auth
        self.trust_anchors = trust_anchors
        self.policy_oid = policy_oid

    def post(self, request_der: bytes) -> bytes:
        """Send a TimeStampReq DER; return the TimeStampResp DER."""
        headers = {"Content-Type": "application/timestamp-query", "Accept": "application/timestamp-reply"}
        if self.auth:
            headers["Authorization"] = "Basic " + base64.b64encode(f"{self.auth[0]}:{self.auth[1]}".encode()).decode()
        req = urllib.request.Request(self.url, data=request_der, headers=headers, method="POST")
        try:
            with urllib.request.urlopen(req, timeout=self.timeout) as resp:  # noqa: S310 (URL from config)
                ctype = resp.headers.get("Content-Type", "")
                body = resp.read(1 << 20)
        except urllib.error.HTTPError as exc:
            raise TimestampError(f"TSA answered HTTP {exc.code}", reason="TSA_HTTP_ERROR") from None
        except (urllib.error.URLError, OSError) as exc:
            raise TsaUnavailable(f"TSA {self.url} unreachable: {exc}") from None
        if not ctype.startswith("application/timestamp-re"):
            raise TimestampError(f"TSA answered with content type {ctype!r}", reason="BAD_TSA_RESPONSE")
        return body

    def timestamp(self, data: bytes | None = None, *, digest: bytes | None = None, hash_alg: str = "sm3") -> bytes:
        """A checked TimeStampToken DER for ``data`` or ``digest``."""
        request = make_request(data, digest=digest, hash_alg=hash_alg, policy_oid=self.policy_oid)
        return check_response(request, self.post(request.der), self.trust_anchors)


class _Stamps(Protocol):
    def timestamp(self, data: bytes | None = None, *, digest: bytes | None = None,
                  hash_alg: str = "sm3") -> bytes: ...


def timestamper_for(tsa_or_client: _Stamps, hash_alg: str = "sm3") -> Callable[[bytes], bytes]:
    """``callable(data) -> TimeStampToken DER`` whose imprint is ``hash_alg(data)``."""

    def stamp(data: bytes) -> bytes:
        return tsa_or_client.timestamp(data, hash_alg=hash_alg)

    return stamp
