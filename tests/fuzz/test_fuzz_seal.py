"""Fuzz the seal parsers and verifier: only trustsvc errors escape, verify never raises."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.unit.test_seal_support import make_setup
from trustsvc.errors import TrustsvcError
from trustsvc.seal.parse import parse
from trustsvc.seal.verify import verify

_SETUP = make_setup()
_SEAL = _SETUP.seal


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
        assert not verify(candidate, trust=[_SETUP.maker_cert]).verdict.value == "valid"
