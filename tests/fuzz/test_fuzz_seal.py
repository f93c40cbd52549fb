"""Fuzz the seal parsers and verifier: only trustsvc errors escape, verify never raises."""

from __future__ import annotations

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from tests.unit.test_seal_support import make_setup
from trustsvc.errors import TrustsvcError
from trustsvc.seal.parse import parse
from trustsvc.seal.report import Report
from trustsvc.seal.sign import SealSigner
from trustsvc.seal.verify import verify

_SETUP = make_setup()


def _no_step_errors(report: Report) -> None:
    """Every failed check names what it found: STEP_ERROR is an exception no step expected."""
    errors = [c for c in report.checks if c.reason == "STEP_ERROR"]
    assert not errors, [(c.name, c.detail) for c in errors]
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
        report = verify(candidate, trust=[_SETUP.maker_cert])
        assert report.verdict.value not in _PASSING
        _no_step_errors(report)


_DOC = b"licence document bytes"
_SIGNATURE = SealSigner(_SETUP.seal, _SETUP.holder, _SETUP.holder_cert).sign_document(_DOC, "/Doc_0/Signs/Sign_0")


def test_the_signature_under_test_verifies() -> None:
    assert verify(_SIGNATURE, document=_DOC, trust=[_SETUP.maker_cert]).verdict.value in _PASSING


@settings(max_examples=200, deadline=None)
@given(st.integers(0, len(_SIGNATURE) - 1), st.integers(1, 255))
# a certificate's signature value, authorityKeyIdentifier and a tag that did not parse: STEP_ERROR before
@example(1079, 201)
@example(1619, 2)
@example(1620, 31)
def test_a_changed_seal_signature_never_verifies(pos: int, xor: int) -> None:
    """Soundness: every byte of an SES_Signature is signed (toSign), is the signature, or frames them."""
    data = bytearray(_SIGNATURE)
    data[pos] ^= xor
    report = verify(bytes(data), document=_DOC, trust=[_SETUP.maker_cert], crls=[])
    assert report.verdict.value not in _PASSING, pos
    _no_step_errors(report)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_mutated_real_world_files_as_the_daemon_checks_them(data: st.DataObject) -> None:
    """Other implementations' seals and signatures, changed, verified with trust anchors, CRLs and a time-stamp
    verifier: no step fails on an exception it did not expect (a Name that did not parse was one)."""
    from tests.interop.test_seal_realworld import DIR, EXPECTED, _original
    from trustsvc.seal.verify import time_stamp_verifier

    name = data.draw(st.sampled_from(sorted(n for n, v in EXPECTED.items() if v != "not-ses")))
    raw = bytearray((DIR / name).read_bytes())
    for pos in data.draw(st.lists(st.integers(0, len(raw) - 1), min_size=1, max_size=4)):
        raw[pos] = data.draw(st.integers(0, 255))
    trust = [_SETUP.maker_cert]
    _no_step_errors(verify(bytes(raw), document=_original(name), trust=trust, crls=[],
                           timestamp_verifier=time_stamp_verifier(trust, crls=[])))
