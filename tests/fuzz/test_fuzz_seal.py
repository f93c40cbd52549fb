"""Fuzz the seal parsers and verifier: only trustsvc errors escape, verify never raises."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.unit.test_seal_support import make_setup
from trustsvc.errors import TrustsvcError
from trustsvc.seal.parse import parse
from trustsvc.seal.sign import SealSigner
from trustsvc.seal.verify import verify

_SETUP = make_setup()
_SEAL = _SETUP.seal
_PASSING = ("valid", "valid-with-warnings")


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=512))
def test_random_bytes(data: bytes) -> None:
    try:
        parse(data)
    except TrustsvcError:
        pass
    verify(data)


@settings(max_examples=200, deadline=None)
@given(st.integers(0, len(_SEAL) - 1), st.integers(1, 255), st.integers(0, len(_SEAL)))
def test_mutated_seal(pos: int, xor: int, cut: int) -> None:
    data = bytearray(_SEAL)
    data[pos] ^= xor
    for candidate in (bytes(data), bytes(data[:cut])):
        try:
            parse(candidate)
        except TrustsvcError:
            pass
        assert verify(candidate, trust=[_SETUP.maker_cert]).verdict.value not in _PASSING


_DOC = b"licence document bytes"
_SIGNATURE = SealSigner(_SETUP.seal, _SETUP.holder, _SETUP.holder_cert).sign_document(_DOC, "/Doc_0/Signs/Sign_0")


def test_the_signature_under_test_verifies() -> None:
    assert verify(_SIGNATURE, document=_DOC, trust=[_SETUP.maker_cert]).verdict.value in _PASSING


@settings(max_examples=200, deadline=None)
@given(st.integers(0, len(_SIGNATURE) - 1), st.integers(1, 255))
def test_a_changed_seal_signature_never_verifies(pos: int, xor: int) -> None:
    """Soundness: every byte of an SES_Signature is signed (toSign), is the signature, or frames them."""
    data = bytearray(_SIGNATURE)
    data[pos] ^= xor
    verdict = verify(bytes(data), document=_DOC, trust=[_SETUP.maker_cert]).verdict.value
    assert verdict not in _PASSING, pos
