"""Fuzz key and SM2 parsers: whatever the bytes, only TrustsvcError subclasses may escape."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from trustsvc.algorithms import pem, sm2
from trustsvc.algorithms.encoding import load_private_key, load_public_key, private_key_to_pkcs8
from trustsvc.algorithms.keypair import PrivateKey
from trustsvc.algorithms.signature_algorithm import SignatureAlgorithm
from trustsvc.errors import TrustsvcError

KEYS = {spec: PrivateKey.generate(spec) for spec in ("sm2", "ec-p256", "rsa-2048", "ed25519")}
SM2 = KEYS["sm2"]
POINT = SM2.public_key.point or b""
SEEDS = [
    private_key_to_pkcs8(SM2),
    private_key_to_pkcs8(SM2, b"pw"),
    private_key_to_pkcs8(KEYS["ec-p256"]),
    private_key_to_pkcs8(KEYS["ed25519"]),
    SM2.public_key.spki,
    KEYS["rsa-2048"].public_key.spki,
    POINT,
    SM2.sign(SignatureAlgorithm.SM2_SM3, b"m"),
    sm2.encrypt(POINT, b"hello"),
]
FUZZ = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@st.composite
def mutated(draw: st.DrawFn) -> bytes:
    """A seed with random byte flips, truncation, insertion, or pure random bytes."""
    if draw(st.booleans()):
        return draw(st.binary(max_size=300))
    data = bytearray(draw(st.sampled_from(SEEDS)))
    for _ in range(draw(st.integers(1, 4))):
        op = draw(st.sampled_from(("flip", "cut", "insert", "set")))
        if not data:
            break
        i = draw(st.integers(0, len(data) - 1))
        if op == "flip":
            data[i] ^= 1 << draw(st.integers(0, 7))
        elif op == "cut":
            del data[i:]
        elif op == "insert":
            data[i:i] = draw(st.binary(min_size=1, max_size=8))
        else:
            data[i] = draw(st.sampled_from((0x00, 0x30, 0x80, 0x81, 0xFF, 0x04, 0x02)))
    return bytes(data)


def only_trustsvc_errors(fn, *args) -> None:  # type: ignore[no-untyped-def]
    try:
        fn(*args)
    except TrustsvcError:
        pass


@FUZZ
@given(mutated())
def test_load_private_key(data: bytes) -> None:
    only_trustsvc_errors(load_private_key, data, b"pw")
    only_trustsvc_errors(load_private_key, data)
    only_trustsvc_errors(load_private_key, pem.encode("PRIVATE KEY", data))
    only_trustsvc_errors(load_private_key, pem.encode("ENCRYPTED PRIVATE KEY", data), b"pw")


@FUZZ
@given(mutated())
def test_load_public_key(data: bytes) -> None:
    only_trustsvc_errors(load_public_key, data)
    only_trustsvc_errors(load_public_key, pem.encode("PUBLIC KEY", data))


@FUZZ
@given(mutated())
def test_signature_to_rs(data: bytes) -> None:
    only_trustsvc_errors(sm2.signature_to_rs, data)


@FUZZ
@given(mutated())
def test_sm2_decrypt(data: bytes) -> None:
    only_trustsvc_errors(sm2.decrypt, SM2.sm2_scalar(), POINT, data)


@FUZZ
@given(mutated(), st.sampled_from(sorted(KEYS)))
def test_public_key_verify(data: bytes, spec: str) -> None:
    pub = KEYS[spec].public_key
    only_trustsvc_errors(pub.verify, pub.default_algorithm(), b"m", data)
