"""RFC 3161 time stamps: a local authority signing with SM2 or ECDSA, a client, verification.

    tsa = LocalTsa(signer, cert_chain)                  # cert: critical EKU timeStamping
    token = tsa.timestamp(data, hash_alg="sm3")         # or tsa.respond(request_der)
    token = HttpTsaClient(url).timestamp(data)          # remote, checked
    stamp = timestamper_for(tsa)                        # callable(data) -> token DER
    result = verify_timestamp_token(token, data, trust_anchors=[root])   # .ok, .checks, .gen_time
    server = serve_http(tsa)                            # server.url, server.close()

pyHanko: ``trustsvc.tsa.pyhanko_adapter.LocalTsaTimeStamper(tsa)``.
"""

from trustsvc.tsa.authority import CounterSerial, LocalTsa, check_tsa_certificate, random_serial
from trustsvc.tsa.client import (
    HttpTsaClient,
    TimestampError,
    TimestampRequest,
    TsaUnavailable,
    check_response,
    make_request,
    timestamper_for,
)
from trustsvc.tsa.http import TsaHttpServer, serve_http
from trustsvc.tsa.verify import TimestampVerification, parse_response, verify_timestamp_token

__all__ = [
    "CounterSerial", "HttpTsaClient", "LocalTsa", "TimestampError", "TimestampRequest", "TimestampVerification",
    "TsaHttpServer", "TsaUnavailable", "check_response", "check_tsa_certificate", "make_request", "parse_response",
    "random_serial", "serve_http", "timestamper_for", "verify_timestamp_token",
]
