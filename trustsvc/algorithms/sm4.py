"""SM4 (GB/T 32907-2016) in GCM and CBC (PKCS#7 padding) modes, via ``cryptography``."""

from __future__ import annotations

import os

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import padding
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from trustsvc.errors import InvalidInput

KEY_SIZE = 16
BLOCK_SIZE = 16
GCM_NONCE_SIZE = 12
GCM_TAG_SIZE = 16


def _check_key(key: bytes) -> None:
    if len(key) != KEY_SIZE:
        raise InvalidInput(f"SM4 key must be 16 bytes, got {len(key)}", reason="BAD_KEY_LENGTH")


def gcm_encrypt(key: bytes, plaintext: bytes, aad: bytes = b"", nonce: bytes | None = None) -> bytes:
    """Encrypt; returns nonce(12) ‖ ciphertext ‖ tag(16)."""
    _check_key(key)
    nonce = nonce if nonce is not None else os.urandom(GCM_NONCE_SIZE)
    if len(nonce) != GCM_NONCE_SIZE:
        raise InvalidInput("SM4-GCM nonce must be 12 bytes", reason="BAD_NONCE_LENGTH")
    enc = Cipher(algorithms.SM4(key), modes.GCM(nonce)).encryptor()
    enc.authenticate_additional_data(aad)
    ct = enc.update(plaintext) + enc.finalize()
    return nonce + ct + enc.tag


def gcm_decrypt(key: bytes, blob: bytes, aad: bytes = b"") -> bytes:
    """Decrypt nonce ‖ ciphertext ‖ tag; raises InvalidInput when the tag does not match."""
    _check_key(key)
    if len(blob) < GCM_NONCE_SIZE + GCM_TAG_SIZE:
        raise InvalidInput("SM4-GCM ciphertext too short", reason="CIPHERTEXT_TOO_SHORT")
    nonce, ct, tag = blob[:GCM_NONCE_SIZE], blob[GCM_NONCE_SIZE:-GCM_TAG_SIZE], blob[-GCM_TAG_SIZE:]
    dec = Cipher(algorithms.SM4(key), modes.GCM(nonce, tag)).decryptor()
    dec.authenticate_additional_data(aad)
    try:
        return dec.update(ct) + dec.finalize()
    except InvalidTag:
        raise InvalidInput("SM4-GCM authentication failed", reason="AUTHENTICATION_FAILED") from None


def cbc_encrypt(key: bytes, iv: bytes, plaintext: bytes) -> bytes:
    """SM4-CBC with PKCS#7 padding."""
    _check_key(key)
    if len(iv) != BLOCK_SIZE:
        raise InvalidInput("SM4-CBC IV must be 16 bytes", reason="BAD_IV_LENGTH")
    padder = padding.PKCS7(128).padder()
    data = padder.update(plaintext) + padder.finalize()
    enc = Cipher(algorithms.SM4(key), modes.CBC(iv)).encryptor()
    return enc.update(data) + enc.finalize()


def cbc_decrypt(key: bytes, iv: bytes, ciphertext: bytes) -> bytes:
    """Inverse of cbc_encrypt; raises InvalidInput on bad length or padding."""
    _check_key(key)
    if len(iv) != BLOCK_SIZE or not ciphertext or len(ciphertext) % BLOCK_SIZE:
        raise InvalidInput("SM4-CBC input is not a whole number of blocks", reason="BAD_CIPHERTEXT_LENGTH")
    dec = Cipher(algorithms.SM4(key), modes.CBC(iv)).decryptor()
    data = dec.update(ciphertext) + dec.finalize()
    unpadder = padding.PKCS7(128).unpadder()
    try:
        return unpadder.update(data) + unpadder.finalize()
    except ValueError:
        raise InvalidInput("SM4-CBC padding is invalid", reason="BAD_PADDING") from None


def ecb_encrypt_block(key: bytes, block: bytes) -> bytes:
    """One raw SM4 block (for known-answer tests)."""
    _check_key(key)
    enc = Cipher(algorithms.SM4(key), modes.ECB()).encryptor()
    return enc.update(block) + enc.finalize()
