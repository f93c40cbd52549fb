"""Mutations of seals and signatures we make are rejected by the step that should catch them."""

from __future__ import annotations

import random

import pytest

from trustsvc.errors import DecodeError
from trustsvc.seal.parse import parse, parse_signature
from trustsvc.seal.report import Status, Verdict
from trustsvc.seal.sign import SealSigner, tlv
from trustsvc.seal.verify import verify

from .test_seal_support import make_setup

DOC = b"<Signature/>"


def _signed():  # type: ignore[no-untyped-def]
    s = make_setup()
    return s, SealSigner(s.seal, s.holder, s.holder_cert).sign_document(DOC, "/Doc_0/Signs/Sign_0/Signature.xml")


def test_byte_flips_rejected() -> None:
    s, sig = _signed()
    parsed = parse_signature(sig)
    value_at = sig.rindex(parsed.signature)
    rng = random.Random(1234)
    positions = set(rng.sample(range(len(sig)), 150)) | set(range(value_at, value_at + len(parsed.signature)))
    for pos in sorted(positions):
        mutated = bytearray(sig)
        mutated[pos] ^= 0x01
        report = verify(bytes(mutated), document=DOC, trust=[s.maker_cert])
        assert report.verdict is not Verdict.VALID, f"flip at {pos} accepted"
    for pos in range(value_at, value_at + len(parsed.signature)):
        mutated = bytearray(sig)
        mutated[pos] ^= 0x80
        report = verify(bytes(mutated), document=DOC)
        check = report.check("signature.signer_signature") if report.kind == "signature" else report.check("format")
        assert check.status is Status.FAIL


def test_seal_flips_rejected() -> None:
    s = make_setup()
    rng = random.Random(99)
    for pos in rng.sample(range(len(s.seal)), 120):
        mutated = bytearray(s.seal)
        mutated[pos] ^= 0x04
        assert verify(bytes(mutated), trust=[s.maker_cert]).verdict is not Verdict.VALID, pos


def test_truncations_rejected() -> None:
    s, sig = _signed()
    for cut in list(range(0, len(sig), max(1, len(sig) // 60))) + [len(sig) - 1]:
        report = verify(sig[:cut], document=DOC)
        assert report.verdict is not Verdict.VALID and report.check("format").status is Status.FAIL


def test_tampered_picture_caught_by_maker_signature() -> None:
    s = make_setup()
    pos = s.seal.index(b"IDAT") + 6
    mutated = bytearray(s.seal)
    mutated[pos] ^= 0xFF
    report = verify(bytes(mutated), trust=[s.maker_cert])
    assert report.check("seal.maker_signature").status is Status.FAIL


def _content(der: bytes) -> bytes:
    """The contents octets of a definite-length TLV."""
    first = der[1]
    return der[2 + (first & 0x7F if first & 0x80 else 0):]


def test_seal_swapped_from_another_signature() -> None:
    s, sig = _signed()
    other = make_setup()
    other_sig = SealSigner(other.seal, other.holder, other.holder_cert).sign_document(DOC, "p")
    # swap the embedded seal and re-wrap the lengths (the two seals' lengths usually differ by a few bytes)
    tbs = parse_signature(sig).tbs_bytes
    body = sig[sig.index(tbs):]
    swapped = tlv(0x30, tlv(0x30, _content(tbs).replace(s.seal, other.seal)) + body[len(tbs):])
    assert swapped != sig and other.seal in swapped
    report = verify(swapped, document=DOC)
    assert report.check("signature.signer_signature").status is Status.FAIL
    assert report.check("signature.cert_in_list").status is Status.FAIL
    assert verify(other_sig, document=DOC).check("signature.signer_signature").status is Status.PASS


def test_expired_seal_signature() -> None:
    s = make_setup(start_days=-30, valid_days=10)
    signer = SealSigner(s.seal, s.holder, s.holder_cert)
    signed_at = s.now.replace(microsecond=0) - __import__("datetime").timedelta(days=25)
    sig = signer.sign_hash(b"\x11" * 32, "p", at=signed_at)
    late = verify(sig)
    assert late.check("signature.validity_now").reason == "EXPIRED_SINCE_SIGNING"
    assert verify(s.seal).check("seal.validity").reason == "SEAL_EXPIRED"


def test_unused_bits_octet_of_a_bit_string_is_rejected() -> None:
    """The octet before a signature's value (its BIT STRING's unused-bits count) is part of what must not change."""
    s, sig = _signed()
    for blob, value in ((sig, parse_signature(sig).signature), (s.seal, parse(s.seal).signature)):
        unused_at = blob.rindex(value) - 1
        assert blob[unused_at] == 0
        for count in (1, 7):
            mutated = bytearray(blob)
            mutated[unused_at] = count
            with pytest.raises(DecodeError) as err:
                (parse_signature if blob is sig else parse)(bytes(mutated))
            assert err.value.reason == "BAD_SEAL_STRUCTURE"
            report = verify(bytes(mutated), document=DOC if blob is sig else None, trust=[s.maker_cert])
            assert report.verdict is not Verdict.VALID
