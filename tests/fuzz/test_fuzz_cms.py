"""Fuzz the CMS and RFC 3161 parsers: mutated SignedData, TimeStampResp and TimeStampReq DER.

Whatever the input, only trustsvc errors may escape; verifiers return failed checks instead.
"""

from __future__ import annotations

from asn1crypto import cms
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.unit.test_cms_pki import make_pki
from trustsvc.errors import TrustsvcError
from trustsvc.pki.cms import add_unsigned_attribute, sign_cms, verify_cms
from trustsvc.tsa import LocalTsa, make_request, parse_response, verify_timestamp_token

_PKI = make_pki("sm2", tsa=True)
_TSA = LocalTsa(_PKI.signer)
_DATA = b"fuzz me"
_CMS = sign_cms(_PKI.signer, _DATA, detached=False)
_REQ = make_request(_DATA, hash_alg="sm3")
_RESP = _TSA.respond(_REQ.der)
_TOKEN = _TSA.timestamp(_DATA)
_SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@st.composite
def mutants(draw: st.DrawFn, sample: bytes) -> bytes:
    data = bytearray(sample)
    for _ in range(draw(st.integers(1, 4))):
        kind = draw(st.sampled_from(["flip", "set", "cut", "insert", "delete"]))
        pos = draw(st.integers(0, max(len(data) - 1, 0)))
        if kind == "flip" and data:
            data[pos] ^= 1 << draw(st.integers(0, 7))
        elif kind == "set" and data:
            data[pos] = draw(st.sampled_from([0x00, 0x80, 0x81, 0x82, 0xFF, 0x30, 0x31, 0xA0, 0x05]))
        elif kind == "cut":
            data = data[:pos]
        elif kind == "insert":
            data[pos:pos] = draw(st.binary(min_size=1, max_size=4))
        elif kind == "delete" and data:
            del data[pos]
    return bytes(data)


def _only_trustsvc(fn, *args, **kwargs) -> None:  # type: ignore[no-untyped-def]
    try:
        fn(*args, **kwargs)
    except TrustsvcError:
        pass


@_SETTINGS
@given(mutants(_CMS))
def test_cms_mutants(data: bytes) -> None:
    result = verify_cms(data, trust_anchors=[_PKI.root])
    result.to_dict()
    _ = result.ok, result.reason
    _only_trustsvc(add_unsigned_attribute, data, "signature_time_stamp_token", _TOKEN)


@_SETTINGS
@given(mutants(_RESP))
def test_timestamp_response_mutants(data: bytes) -> None:
    try:
        status, token, _ = parse_response(data)
    except TrustsvcError:
        return
    if token is not None:
        verify_timestamp_token(token, _DATA, trust_anchors=[_PKI.root]).to_dict()


@_SETTINGS
@given(mutants(_TOKEN))
def test_timestamp_token_mutants(data: bytes) -> None:
    result = verify_timestamp_token(data, _DATA, trust_anchors=[_PKI.root])
    result.to_dict()


@_SETTINGS
@given(mutants(_REQ.der))
def test_timestamp_request_mutants(data: bytes) -> None:
    status, token, _ = parse_response(_TSA.respond(data))
    assert status in ("granted", "rejection")
    assert (token is None) == (status == "rejection")


@_SETTINGS
@given(st.binary(max_size=300))
def test_random_bytes(data: bytes) -> None:
    verify_cms(data).to_dict()
    verify_timestamp_token(data).to_dict()
    parse_response(_TSA.respond(data))
    _only_trustsvc(parse_response, data)


def extensions_tag_as(der: bytes, tag: int) -> bytes:
    """``der`` with the [3] tag of its first certificate's extensions replaced by ``tag``."""
    i = next(i for i in range(len(der) - 10) if der[i] == 0xA3 and der[i + 2] == der[i + 4] == 0x30
             and der[i + 6:i + 10] == b"\x06\x03U\x1d")
    return der[:i] + bytes([tag]) + der[i + 1:]


def test_certificate_with_unparsable_extensions_is_bad_cms() -> None:
    # regression (the daemon's fuzzer: VerifySignedMessage answered INTERNAL): the embedded certificate's
    # extensions tagged ObjectDescriptor or REAL made asn1crypto raise AttributeError while reading them
    for tag in (0x07, 0x09):
        res = verify_cms(extensions_tag_as(_CMS, tag))
        assert not res.ok and res.reason == "BAD_CMS", res.to_dict()


def _signed_regions() -> dict[str, tuple[int, int]]:
    """(start, end) in _CMS of what the signature protects: the encapsulated content, the signed attributes'
    contents (after their [0] header, which verification replaces by a SET tag) and the signature value."""
    si = cms.ContentInfo.load(_CMS)["content"]["signer_infos"][0]
    attrs, contents = si["signed_attrs"].dump(), si["signed_attrs"].contents
    at, sig = _CMS.find(attrs), si["signature"].contents
    return {"content": (_CMS.find(_DATA), _CMS.find(_DATA) + len(_DATA)),
            "signed_attrs": (at + len(attrs) - len(contents), at + len(attrs)),
            "signature": (_CMS.find(sig), _CMS.find(sig) + len(sig))}


@_SETTINGS
@given(st.sampled_from(["content", "signed_attrs", "signature"]), st.floats(0, 1, allow_nan=False, exclude_max=True),
       st.integers(1, 255))
def test_a_byte_changed_where_the_signature_covers_never_verifies(region: str, where: float, xor: int) -> None:
    """Soundness where CMS has it (SignedData.version, the digest algorithm set and unsigned attributes are not
    signed): any change to the content, a signed attribute's bytes or the signature value fails verification.
    Verifying over re-encoded attributes instead of the bytes received would let some changes through."""
    start, end = _signed_regions()[region]
    data = bytearray(_CMS)
    data[start + int(where * (end - start))] ^= xor
    result = verify_cms(bytes(data), trust_anchors=[_PKI.root])
    assert not result.ok, result.to_dict()
