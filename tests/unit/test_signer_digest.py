"""Signer.digest_hasher / sign_digest: a signature over a streamed digest verifies as one over the message."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from trustsvc.algorithms import sm2
from trustsvc.algorithms.signature_algorithm import SignatureAlgorithm
from trustsvc.algorithms.signer import Signer, SoftwareSigner
from trustsvc.algorithms.sm3 import sm3
from trustsvc.errors import InvalidInput, InvalidSignature

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


@pytest.mark.parametrize(("spec", "alg"), CASES, ids=[f"{s}-{a.value if a else 'default'}" for s, a in CASES])
def test_verify_digest_accepts_message_signatures_and_rejects_other_data(spec: str,
                                                                        alg: SignatureAlgorithm | None) -> None:
    signer = SoftwareSigner.generate(spec, **({"algorithm": alg} if alg else {}), sm2_id=b"bob@example.cn")
    verifier = signer.verifier()
    signature = signer.sign(MESSAGE)
    verifier.verify_digest(_digest(signer, MESSAGE), signature)
    h = verifier.digest_hasher()
    h.update(MESSAGE)
    assert h.digest() == _digest(signer, MESSAGE)
    with pytest.raises(InvalidSignature):
        verifier.verify_digest(_digest(signer, MESSAGE + b"!"), signature)
    with pytest.raises(InvalidInput) as err:
        verifier.verify_digest(b"\0" * 5, signature)
    assert err.value.reason == "BAD_DIGEST_LENGTH"


def test_ed25519_verifier_has_no_digest() -> None:
    verifier = SoftwareSigner.generate("ed25519").verifier()
    for call in (verifier.digest_hasher, lambda: verifier.verify_digest(b"\0" * 32, b"\0" * 64)):
        with pytest.raises(InvalidInput) as err:
            call()
        assert err.value.reason == "PREHASH_UNSUPPORTED"


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


# --- PKCS#11: SoftHSM2 (ECDSA, RSA, Ed25519) and the TEST-ONLY SM2 token (hsm/testtoken) -----------------
@pytest.fixture(scope="module")
def softhsm(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    from tests.conftest import require_tool
    from tests.integration.hsm_helpers import PIN, SOFTHSM_MODULE, make_softhsm, use_conf
    from trustsvc.keys.pkcs11 import Pkcs11KeyStore, pin_source

    require_tool("softhsm2-util")
    use_conf(make_softhsm(tmp_path_factory.mktemp("softhsm")))
    store = Pkcs11KeyStore(SOFTHSM_MODULE, token_label="trustsvc-test", pin=pin_source(pin=PIN))
    yield store
    store.close()


@pytest.mark.parametrize(("spec", "alg"), CASES[1:], ids=[f"{s}-{a.value if a else 'default'}" for s, a in CASES[1:]])
def test_pkcs11_sign_digest(softhsm: Any, spec: str, alg: SignatureAlgorithm | None) -> None:
    name = f"d-{spec}-{alg.name if alg else 'default'}".lower()
    softhsm.create(name, spec)
    signer = softhsm.signer_with(name, alg) if alg else softhsm.signer(name)
    sig = signer.sign_digest(_digest(signer, MESSAGE))
    signer.verifier().verify(MESSAGE, sig)
    if signer.algorithm is SignatureAlgorithm.RSA_PKCS1_SHA256:
        assert sig == signer.sign(MESSAGE)


def test_pkcs11_ed25519_refuses_prehash(softhsm: Any) -> None:
    softhsm.create("d-ed25519", "ed25519")
    with pytest.raises(InvalidInput) as err:
        softhsm.signer("d-ed25519").digest_hasher()
    assert err.value.reason == "PREHASH_UNSUPPORTED"


@pytest.mark.parametrize(("mech", "prehash"), [(0x80008104, True), (0x80008102, False)],
                         ids=["sansec-E_PREHASHED", "sansec-MSG_Z_INTERNAL"])
def test_pkcs11_sm2_sign_digest(mech: int, prehash: bool) -> None:
    from tests.integration.hsm_helpers import TESTTOKEN_LABEL, TESTTOKEN_PIN, build_testtoken
    from trustsvc.keys.pkcs11 import Pkcs11KeyStore, pin_source

    store = Pkcs11KeyStore(str(build_testtoken()), token_label=TESTTOKEN_LABEL, pin=pin_source(pin=TESTTOKEN_PIN),
                           sm2_profile="sansec", sm2_mechanism=mech)
    try:
        store.sm2_self_test()
        name = f"sm2-digest-{mech:08x}"
        store.create(name, "sm2")
        signer = store.signer(name)
        point = signer.public_key.point
        assert point is not None
        if not prehash:  # the token computes Z itself: SignDataStream gathers the message instead
            with pytest.raises(InvalidInput) as err:
                signer.digest_hasher()
            assert err.value.reason == "PREHASH_UNSUPPORTED"
            return
        e = _digest(signer, MESSAGE)
        assert e == sm2.e_value(point, MESSAGE)
        sm2.verify(point, MESSAGE, signer.sign_digest(e))
    finally:
        store.close()
