"""Signer.digest_hasher / sign_digest: a signature over a streamed digest verifies as one over the message."""

from __future__ import annotations

import pytest

from trustsvc.algorithms import sm2
from trustsvc.algorithms.signature_algorithm import SignatureAlgorithm
from trustsvc.algorithms.signer import Signer, SoftwareSigner
from trustsvc.algorithms.sm3 import sm3
from trustsvc.errors import InvalidInput

MESSAGE = bytes(range(256)) * 300 + "电子证照".encode()

CASES = [("sm2", None), ("ec-p256", None), ("ec-p384", None), ("rsa-2048", None),
         ("rsa-2048", SignatureAlgorithm.RSA_PSS_SHA256)]


def _digest(signer: Signer, message: bytes) -> bytes:
    h = signer.digest_hasher()
    for i in range(0, len(message), 7777):
        h.update(message[i:i + 7777])
    return h.digest()


@pytest.mark.parametrize(("spec", "alg"), CASES, ids=[f"{s}-{a.value if a else 'default'}" for s, a in CASES])
def test_sign_digest_verifies_as_message_signature(spec: str, alg: SignatureAlgorithm | None) -> None:
    signer = SoftwareSigner.generate(spec, **({"algorithm": alg} if alg else {}))
    sig = signer.sign_digest(_digest(signer, MESSAGE))
    signer.verifier().verify(MESSAGE, sig)
    signer.verifier().verify(MESSAGE, signer.sign(MESSAGE))
    if signer.algorithm is SignatureAlgorithm.RSA_PKCS1_SHA256:  # deterministic: the very same bytes
        assert sig == signer.sign(MESSAGE)


def test_sm2_digest_is_e_with_z_over_the_signer_id() -> None:
    signer = SoftwareSigner.generate("sm2", sm2_id=b"alice@example.cn")
    point = signer.public_key.point
    assert point is not None
    e = _digest(signer, MESSAGE)
    assert e == sm2.e_value(point, MESSAGE, b"alice@example.cn") != sm3(MESSAGE)
    sm2.verify(point, MESSAGE, signer.sign_digest(e), b"alice@example.cn")


def test_ed25519_and_base_class_refuse_prehash() -> None:
    signer = SoftwareSigner.generate("ed25519")
    for call in (signer.digest_hasher, lambda: signer.sign_digest(b"\0" * 32)):
        with pytest.raises(InvalidInput) as err:
            call()
        assert err.value.reason == "PREHASH_UNSUPPORTED"

    class MessageOnly(Signer):
        def sign(self, message: bytes) -> bytes:
            return b""

    plain = MessageOnly(SoftwareSigner.generate("sm2").public_key)
    with pytest.raises(InvalidInput) as err:
        plain.digest_hasher()
    assert err.value.reason == "PREHASH_UNSUPPORTED"


def test_wrong_digest_length_refused() -> None:
    signer = SoftwareSigner.generate("ec-p384")
    with pytest.raises(InvalidInput) as err:
        signer.sign_digest(b"\0" * 32)
    assert err.value.reason == "BAD_DIGEST_LENGTH"
