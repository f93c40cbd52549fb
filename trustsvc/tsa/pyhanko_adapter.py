"""pyHanko TimeStamper backed by a LocalTsa (SM2/SM3 or ECDSA), for PAdES B-T / B-LTA.

    from trustsvc.tsa.pyhanko_adapter import LocalTsaTimeStamper
    signer = PdfSigner(meta, cms_signer, timestamper=LocalTsaTimeStamper(tsa))

The request pyHanko builds goes through ``LocalTsa.respond`` unchanged, so the token is what any
client of the authority would get. pyHanko validates the TSA certificate itself; SM2 tokens need
the SM2 signature validator that the PDF layer registers.
"""

from __future__ import annotations

from asn1crypto import tsp
from pyhanko.sign.timestamps.api import TimeStamper
from pyhanko.sign.timestamps.common_utils import TimestampRequestError

from trustsvc.tsa.authority import LocalTsa
from trustsvc.tsa.verify import parse_response


class LocalTsaTimeStamper(TimeStamper):
    """Delegates pyHanko's RFC 3161 requests to a LocalTsa in this process."""

    def __init__(self, tsa: LocalTsa, include_nonce: bool = True) -> None:
        super().__init__(include_nonce=include_nonce)
        self.tsa = tsa

    async def async_request_tsa_response(self, req: tsp.TimeStampReq) -> tsp.TimeStampResp:
        resp = self.tsa.respond(req.dump())
        status, token, text = parse_response(resp)
        if token is None:
            raise TimestampRequestError(f"local TSA refused the request: {status} {text}")
        return tsp.TimeStampResp.load(resp)
