"""Known-answer tests: SM3 (GB/T 32905-2016 appendix A) and SM4 (GB/T 32907-2016 appendix A)."""

from __future__ import annotations

import os

import pytest

from trustsvc.algorithms import sm3, sm4
from trustsvc.errors import InvalidInput


def test_sm3_abc() -> None:
    assert sm3.sm3(b"abc").hex() == "66c7f0f462eeedd9d1f2d46bdc10e4e24167c4875cf2f7a2297da02b8f4ba8e0"


def test_sm3_abcd_x16() -> None:
    assert sm3.sm3(b"abcd" * 16).hex() == "debe9ff92275b8a138604889c18e5a4d6fdb70e5387e5765293dcba39c0c5732"


@pytest.mark.parametrize("size", [0, 1, 55, 56, 63, 64, 65, 1000, 70_000])
def test_sm3_fast_path_matches_cryptography(size: int) -> None:
    data = os.urandom(size)
    assert sm3.sm3(data) == sm3.sm3_cryptography(data)
    assert sm3.sm3(data) == sm3.sm3(data)  # the shared empty hash is copied, never updated


def test_sm3_incremental_matches_one_shot() -> None:
    h = sm3.Sm3Hasher()
    for part in (b"ab", b"c"):
        h.update(part)
    assert h.digest() == sm3.sm3(b"abc")


def test_sm3_hmac_differs_by_key() -> None:
    assert sm3.sm3_hmac(b"k1", b"m") != sm3.sm3_hmac(b"k2", b"m")
    assert len(sm3.sm3_hmac(b"k1", b"m")) == 32


KEY = bytes.fromhex("0123456789abcdeffedcba9876543210")


def test_sm4_single_block() -> None:
    assert sm4.ecb_encrypt_block(KEY, KEY).hex() == "681edf34d206965e86b3e94f536e4246"


def test_sm4_million_iterations() -> None:
    # GB/T 32907 A.2: encrypt 1,000,000 times with the same key.
    from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

    enc = Cipher(algorithms.SM4(KEY), modes.ECB()).encryptor()
    block = KEY
    for _ in range(1_000_000):
        block = enc.update(block)
    assert block.hex() == "595298c7c6fd271f0402f804c33d3f66"


def test_sm4_gcm_round_trip_and_tamper() -> None:
    key = os.urandom(16)
    blob = sm4.gcm_encrypt(key, b"secret", aad=b"ad")
    assert sm4.gcm_decrypt(key, blob, aad=b"ad") == b"secret"
    with pytest.raises(InvalidInput) as exc:
        sm4.gcm_decrypt(key, blob, aad=b"other")
    assert exc.value.reason == "AUTHENTICATION_FAILED"


def test_sm4_cbc_round_trip_and_bad_padding() -> None:
    key, iv = os.urandom(16), os.urandom(16)
    ct = sm4.cbc_encrypt(key, iv, b"x" * 20)
    assert sm4.cbc_decrypt(key, iv, ct) == b"x" * 20
    with pytest.raises(InvalidInput):
        sm4.cbc_decrypt(key, iv, ct[:-1])
    with pytest.raises(InvalidInput):
        sm4.ecb_encrypt_block(b"short", KEY)
