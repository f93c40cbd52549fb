"""Key encodings: SPKI/PKCS#8 DER/PEM plain and encrypted, raw SM2 values, errors."""

from __future__ import annotations

import pytest
from asn1crypto import keys as asn1_keys
from cryptography.hazmat.primitives import serialization

from trustsvc.algorithms import pem, sm2
from trustsvc.algorithms.encoding import (
    decrypt_pkcs8,
    encrypt_pkcs8,
    load_private_key,
    load_public_key,
    private_key_to_pem,
    private_key_to_pkcs8,
)
from trustsvc.algorithms.keypair import KEY_SPECS, PrivateKey
from trustsvc.algorithms.signature_algorithm import SignatureAlgorithm
from trustsvc.errors import DecodeError, InvalidInput, TrustsvcError, WrongPassphrase

SPECS = [s for s in KEY_SPECS if s != "rsa-4096"]
_KEYS: dict[str, PrivateKey] = {}


def key_for(spec: str) -> PrivateKey:
    if spec not in _KEYS:
        _KEYS[spec] = PrivateKey.generate(spec)
    return _KEYS[spec]


def same_key(a: PrivateKey, b: PrivateKey) -> None:
    assert a.public_key == b.public_key
    alg = a.public_key.default_algorithm()
    b.public_key.verify(alg, b"m", a.sign(alg, b"m"))


@pytest.mark.parametrize("spec", SPECS)
def test_spki_der_and_pem(spec: str) -> None:
    pub = key_for(spec).public_key
    assert load_public_key(pub.spki) == pub
    assert load_public_key(pub.to_pem()) == pub


@pytest.mark.parametrize("spec", SPECS)
def test_pkcs8_plain_der_and_pem(spec: str) -> None:
    key = key_for(spec)
    same_key(key, load_private_key(private_key_to_pkcs8(key)))
    same_key(key, load_private_key(private_key_to_pem(key)))


@pytest.mark.parametrize("spec", SPECS)
def test_pkcs8_encrypted_der_and_pem(spec: str) -> None:
    key = key_for(spec)
    der = private_key_to_pkcs8(key, b"pw")
    same_key(key, load_private_key(der, b"pw"))
    same_key(key, load_private_key(private_key_to_pem(key, b"pw"), b"pw"))
    with pytest.raises(WrongPassphrase):
        load_private_key(der, b"wrong")
    with pytest.raises(WrongPassphrase) as exc:
        load_private_key(der)
    assert exc.value.reason == "PASSWORD_REQUIRED"


def test_sm2_pkcs8_is_id_ecpublickey_with_sm2_curve() -> None:
    info = asn1_keys.PrivateKeyInfo.load(private_key_to_pkcs8(key_for("sm2")))
    assert info["private_key_algorithm"]["algorithm"].dotted == "1.2.840.10045.2.1"
    assert info["private_key_algorithm"]["parameters"].chosen.dotted == "1.2.156.10197.1.301"


def test_sm2_sec1_pem_loads() -> None:
    key = key_for("sm2")
    ec_key = asn1_keys.PrivateKeyInfo.load(private_key_to_pkcs8(key))["private_key"].parsed
    ec_key = asn1_keys.ECPrivateKey({"version": "ecPrivkeyVer1", "private_key": ec_key["private_key"].native,
                                     "parameters": asn1_keys.ECDomainParameters(("named", "sm2")),
                                     "public_key": key.public_key.point})
    same_key(key, load_private_key(pem.encode("EC PRIVATE KEY", ec_key.dump())))
    same_key(key, load_private_key(ec_key.dump()))


def test_ec_sec1_and_rsa_pkcs1_load() -> None:
    for spec, fmt in (("ec-p256", serialization.PrivateFormat.TraditionalOpenSSL),
                      ("rsa-2048", serialization.PrivateFormat.TraditionalOpenSSL)):
        key = key_for(spec)
        data = key.crypto_key.private_bytes(serialization.Encoding.PEM, fmt, serialization.NoEncryption())
        same_key(key, load_private_key(data))


def test_sm2_raw_public_forms() -> None:
    pub = key_for("sm2").public_key
    point = pub.point
    assert point is not None
    compressed = bytes([2 + (point[-1] & 1)]) + point[1:33]
    for raw in (point, point[1:], compressed):
        assert load_public_key(raw) == pub


def test_sm2_raw_scalar() -> None:
    key = key_for("sm2")
    same_key(key, load_private_key(key.sm2_scalar()))
    with pytest.raises(InvalidInput):
        load_private_key(b"\0" * 32)
    with pytest.raises(InvalidInput):
        load_private_key(b"\xff" * 32)  # >= n


def test_encrypted_sm4_cbc_pkcs8_is_read() -> None:
    # PBES2 (PBKDF2-HMAC-SHA256) with SM4-CBC (1.2.156.10197.1.104.2).
    from asn1crypto import algos, core
    from cryptography.hazmat.primitives import hashes, padding
    from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
    from cryptography.hazmat.primitives.kdf.pbkdf2 import PBKDF2HMAC

    key = key_for("sm2")
    plain = private_key_to_pkcs8(key)
    salt, iv = b"s" * 16, b"i" * 16
    k = PBKDF2HMAC(hashes.SHA256(), 16, salt, 1000).derive(b"pw")
    padder = padding.PKCS7(128).padder()
    enc = Cipher(algorithms.SM4(k), modes.CBC(iv)).encryptor()
    ct = enc.update(padder.update(plain) + padder.finalize()) + enc.finalize()
    alg = algos.EncryptionAlgorithm({"algorithm": "pbes2", "parameters": {
        "key_derivation_func": {"algorithm": "pbkdf2", "parameters": {
            "salt": algos.Pbkdf2Salt(name="specified", value=salt), "iteration_count": 1000,
            "prf": {"algorithm": "sha256"}}},
        "encryption_scheme": {"algorithm": "1.2.156.10197.1.104.2", "parameters": core.OctetString(iv)}}})
    der = asn1_keys.EncryptedPrivateKeyInfo({"encryption_algorithm": alg, "encrypted_data": ct}).dump()
    same_key(key, load_private_key(der, b"pw"))
    with pytest.raises(WrongPassphrase):
        load_private_key(der, b"wrong")


@pytest.mark.parametrize("data", [
    b"", b"\x30", b"\x30\x03\x02\x01\x01", b"not a key at all", b"\x04" + b"\x01" * 64,
    b"-----BEGIN PUBLIC KEY-----\n!!!!\n-----END PUBLIC KEY-----\n",
    b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n",
])
def test_malformed_public_keys(data: bytes) -> None:
    with pytest.raises(InvalidInput):
        load_public_key(data)


@pytest.mark.parametrize("data", [
    b"\x30", b"\x30\x03\x02\x01\x01", b"garbage" * 10,
    b"-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n",
    b"-----BEGIN ENCRYPTED PRIVATE KEY-----\nAAAA\n-----END ENCRYPTED PRIVATE KEY-----\n",
])
def test_malformed_private_keys(data: bytes) -> None:
    with pytest.raises(DecodeError):
        load_private_key(data, b"pw")


def test_truncated_encrypted_key_is_a_clean_error() -> None:
    der = encrypt_pkcs8(private_key_to_pkcs8(key_for("ed25519")), b"pw", iterations=1000)
    for cut in (1, 16, len(der) // 2):
        with pytest.raises(TrustsvcError):
            decrypt_pkcs8(der[:-cut], b"pw")


def test_sign_uses_default_algorithm_per_type() -> None:
    assert key_for("sm2").public_key.default_algorithm() is SignatureAlgorithm.SM2_SM3
    assert key_for("ec-p384").public_key.default_algorithm() is SignatureAlgorithm.ECDSA_P384_SHA384
    assert sm2.DEFAULT_ID == b"1234567812345678"


def test_sm2_spki_with_malformed_bit_string_raises_invalid_input() -> None:
    """Regression (found by fuzzing): a lazily parsed bad BIT STRING must not escape as ValueError."""
    import pytest as _pytest

    from trustsvc.algorithms.keypair import PublicKey as _PublicKey
    from trustsvc.errors import InvalidInput as _InvalidInput

    der = (b"0Y0\x13\x06\x07*\x86H\xce=\x02\x01\x06\x08*\x81\x1c\xcfU\x01\x82-\x02B\x00\x04" + b"\x01" * 64)
    with _pytest.raises(_InvalidInput):
        _PublicKey.from_spki(der)


def test_wrong_password_that_happens_to_unpad_is_still_wrong_passphrase() -> None:
    """About one wrong password in 256 decrypts to valid PKCS#7 padding; it must not surface as a
    DecodeError (this was a flaky failure of the test above)."""
    der = encrypt_pkcs8(private_key_to_pkcs8(key_for("sm2")), b"pw", iterations=1)
    for i in range(3000):  # (255/256)**3000 < 1e-5: some of these unpad
        with pytest.raises(WrongPassphrase):
            load_private_key(der, b"wrong-%d" % i)
