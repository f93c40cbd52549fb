"""The KeyStore contract, run alike on the software keystore and on a real SoftHSM2 token.

Business code and the daemon see only ``KeyStore``; whichever store backs them, the same call gives
the same answer, or the same error class and reason.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from tests.conftest import require_tool, throwaway_certificate
from tests.integration.hsm_helpers import PIN, SOFTHSM_MODULE, make_softhsm, use_conf
from trustsvc.errors import (
    Conflict,
    DecodeError,
    InvalidInput,
    KeyDisabled,
    KeyMismatch,
    KeyNotFound,
    UnsupportedAlgorithm,
)
from trustsvc.keys.base import KeyState, KeyStore
from trustsvc.keys.pkcs11 import Pkcs11KeyStore, pin_source
from trustsvc.keys.software import SoftwareKeyStore


@pytest.fixture(scope="module", params=["soft", "hsm"])
def store(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[KeyStore]:
    directory = tmp_path_factory.mktemp(f"contract-{request.param}")
    if request.param == "soft":
        yield SoftwareKeyStore(directory, master_key=os.urandom(32))
        return
    require_tool("softhsm2-util")
    use_conf(make_softhsm(directory))
    hsm = Pkcs11KeyStore(SOFTHSM_MODULE, token_label="trustsvc-test", pin=pin_source(pin=PIN))
    yield hsm
    hsm.close()


def _raises(cls: type[Exception], reason: str, call: object) -> None:
    with pytest.raises(cls) as caught:
        call()  # type: ignore[operator]
    assert caught.value.reason == reason  # type: ignore[attr-defined]


def test_names_and_specs(store: KeyStore) -> None:
    store.create("c-name", "ec-p256")
    _raises(Conflict, "KEY_EXISTS", lambda: store.create("c-name", "ec-p256"))
    _raises(UnsupportedAlgorithm, "UNKNOWN_KEY_SPEC", lambda: store.create("c-spec", "rsa-1024"))
    for bad in ("x@y", "a b", "", "k" * 65):
        _raises(InvalidInput, "BAD_KEY_NAME", lambda bad=bad: store.create(bad, "ec-p256"))
    names = {i.name for i in store.list()}
    assert "c-name" in names and "c-spec" not in names


def test_unknown_keys_and_versions(store: KeyStore) -> None:
    store.create("c-known", "ec-p256")
    for call in (lambda: store.info("c-none"), lambda: store.rotate("c-none"), lambda: store.disable("c-none"),
                 lambda: store.signer("c-none"), lambda: store.info("c-known", 9), lambda: store.info("c-known", 0),
                 lambda: store.set_certificate_chain("c-none", 1, ())):
        _raises(KeyNotFound, "KEY_NOT_FOUND", call)


def test_versions_through_rotation_and_disabling(store: KeyStore) -> None:
    store.create("c-life", "ec-p256")
    assert store.rotate("c-life").version == 2
    assert store.info("c-life", 1).state is KeyState.PASSIVE
    _raises(KeyDisabled, "KEY_DISABLED", lambda: store.signer("c-life", 1))  # passive: verifies, does not sign
    assert store.signer("c-life").public_key == store.info("c-life", 2).public_key
    assert store.disable("c-life", 1).state is KeyState.DISABLED
    assert store.disable("c-life", 1).state is KeyState.DISABLED  # again: no error
    assert store.disable("c-life").version == 2
    # no active version left: info and disable name the latest, signing is refused
    latest = store.info("c-life")
    assert (latest.version, latest.state) == (2, KeyState.DISABLED)
    assert store.disable("c-life").version == 2
    _raises(KeyDisabled, "KEY_DISABLED", lambda: store.signer("c-life"))
    assert store.rotate("c-life").version == 3
    assert store.info("c-life").state is KeyState.ACTIVE
    assert [(i.version, i.state) for i in store.list() if i.name == "c-life"] == [
        (1, KeyState.DISABLED), (2, KeyState.DISABLED), (3, KeyState.ACTIVE)]


def test_certificate_chain_is_checked_before_it_is_stored(store: KeyStore) -> None:
    info = store.create("c-cert", "ec-p256")
    for garbage in (b"garbage", b"\x30\x82\x01\x00\x30"):
        _raises(DecodeError, "BAD_CERTIFICATE", lambda g=garbage: store.set_certificate_chain("c-cert", 1, (g,)))
    other = ec.generate_private_key(ec.SECP256R1()).public_key()
    _raises(KeyMismatch, "CERTIFICATE_KEY_MISMATCH",
            lambda: store.set_certificate_chain("c-cert", 1, (throwaway_certificate(other),)))
    assert store.info("c-cert").certificate_chain == ()  # nothing stored by a refusal
    leaf = throwaway_certificate(info.public_key.crypto_key)
    store.set_certificate_chain("c-cert", 1, (leaf, leaf))
    assert store.info("c-cert").certificate_chain == (leaf, leaf)
    _raises(DecodeError, "BAD_CERTIFICATE", lambda: store.set_certificate_chain("c-cert", 1, (leaf, b"\x30\x00")))
    assert store.info("c-cert").certificate_chain == (leaf, leaf)  # the earlier chain stays
    assert store.signer("c-cert").certificate == leaf
    store.set_certificate_chain("c-cert", 1, ())
    assert store.info("c-cert").certificate_chain == ()


def test_signatures_verify_with_the_listed_public_key(store: KeyStore, tmp_path: Path) -> None:
    store.create("c-sign", "ec-p256")
    signer = store.signer("c-sign")
    signature = signer.sign(b"contract")
    store.info("c-sign").public_key.verify(signer.algorithm, b"contract", signature)
