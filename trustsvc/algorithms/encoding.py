"""Key encodings: SPKI, PKCS#8 (plain and PBES2-encrypted), SEC1, PEM/DER, raw SM2 values.

Reads what ``openssl genpkey -algorithm SM2`` and BouncyCastle write (id-ecPublicKey with the SM2
curve OID). Writes PKCS#8 with PBES2 (PBKDF2-HMAC-SHA256, AES-256-CBC) when a password is given.
"""

from __future__ import annotations

import os
from collections.abc import Callable

from asn1crypto import algos
from asn1crypto import keys as asn1_keys
from cryptography.hazmat.primitives import hashes, padding, serialization
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.kdf.pbkdf2 import PBKDF2HMAC
from cryptography.hazmat.primitives.kdf.scrypt import Scrypt

from trustsvc.algorithms import pem
from trustsvc.algorithms.keypair import PrivateKey, PublicKey
from trustsvc.algorithms.signature_algorithm import KeyType
from trustsvc.errors import DecodeError, InvalidInput, UnsupportedAlgorithm, WrongPassphrase

PBKDF2_ITERATIONS = 100_000
_KDF_HASHES: dict[str, Callable[[], hashes.HashAlgorithm]] = {
    "sha1": hashes.SHA1, "sha256": hashes.SHA256, "sha384": hashes.SHA384, "sha512": hashes.SHA512, "sm3": hashes.SM3}


# ---------------------------------------------------------------------------------- public
def load_public_key(data: bytes) -> PublicKey:
    """PEM or DER SPKI, or a raw SM2 point (64 or 65 bytes, or 33 compressed)."""
    if pem.is_pem(data):
        return PublicKey.from_spki(pem.der_of(data, "PUBLIC KEY"))
    if len(data) in (33, 64, 65) and data[:1] != b"\x30":
        return PublicKey.from_sm2_point(data)
    return PublicKey.from_spki(data)


# ---------------------------------------------------------------------------------- private
def load_private_key(data: bytes, password: bytes | None = None) -> PrivateKey:
    """PEM or DER PKCS#8 (plain or encrypted), SEC1 EC or PKCS#1 RSA, or a raw 32-byte SM2 scalar."""
    label = None
    if pem.is_pem(data):
        label, data = pem.decode(data)
    elif len(data) == 32:
        return PrivateKey.from_sm2_scalar(data)
    if label == "ENCRYPTED PRIVATE KEY" or (label is None and _looks_encrypted(data)):
        if password is None:
            raise WrongPassphrase("the private key is encrypted and no password was given",
                                  reason="PASSWORD_REQUIRED")
        data = decrypt_pkcs8(data, password)
        label = "PRIVATE KEY"
    if label == "EC PRIVATE KEY":
        return _load_sec1(data)
    if label == "RSA PRIVATE KEY":
        return _load_with_cryptography(data)
    if label not in (None, "PRIVATE KEY"):
        raise DecodeError(f"unexpected PEM block {label} for a private key", reason="BAD_PEM")
    try:
        info = asn1_keys.PrivateKeyInfo.load(data, strict=True)
        algo = info["private_key_algorithm"]["algorithm"].native
        params = info["private_key_algorithm"]["parameters"]
    except (ValueError, TypeError, KeyError):
        if label is None:  # maybe SEC1 DER
            return _load_sec1(data)
        raise DecodeError("not a PKCS#8 PrivateKeyInfo", reason="BAD_PRIVATE_KEY") from None
    if algo == "ec" and params.name == "named" and params.chosen.native == "sm2":
        return _sm2_from_ec_private_key(info["private_key"].parsed)
    return _load_with_cryptography(data)


def _looks_encrypted(der: bytes) -> bool:
    try:
        info = asn1_keys.EncryptedPrivateKeyInfo.load(der, strict=True)
        return info["encryption_algorithm"]["algorithm"].native == "pbes2"
    except (ValueError, TypeError, KeyError):
        return False


def _load_sec1(der: bytes) -> PrivateKey:
    try:
        ec_key = asn1_keys.ECPrivateKey.load(der, strict=True)
        params = ec_key["parameters"]
        is_sm2 = params.native is not None and params.name == "named" and params.chosen.native == "sm2"
    except (ValueError, TypeError, KeyError, AttributeError):
        raise DecodeError("not a private key in any known encoding", reason="BAD_PRIVATE_KEY") from None
    if is_sm2:
        return _sm2_from_ec_private_key(ec_key)
    return _load_with_cryptography(der)


def _sm2_from_ec_private_key(ec_key: asn1_keys.ECPrivateKey) -> PrivateKey:
    try:
        scalar = ec_key["private_key"].contents
        pub = ec_key["public_key"]
        point = bytes(pub) if pub.native is not None else None
    except (ValueError, TypeError, KeyError) as exc:
        raise DecodeError(f"bad SM2 ECPrivateKey: {exc}", reason="BAD_PRIVATE_KEY") from None
    return PrivateKey.from_sm2_scalar(scalar, point)


def _load_with_cryptography(der: bytes) -> PrivateKey:
    try:
        key = serialization.load_der_private_key(der, password=None)
    except (ValueError, TypeError) as exc:
        raise DecodeError(f"private key could not be read: {exc}", reason="BAD_PRIVATE_KEY") from None
    except Exception as exc:  # UnsupportedAlgorithm from cryptography
        raise UnsupportedAlgorithm(f"private key type not supported: {exc}", reason="UNSUPPORTED_KEY_TYPE") from None
    return PrivateKey.from_cryptography(key)


def private_key_to_pkcs8(key: PrivateKey, password: bytes | None = None) -> bytes:
    """DER PKCS#8, PBES2-encrypted when ``password`` is given."""
    if key.key_type is KeyType.SM2:
        ec_key = asn1_keys.ECPrivateKey({
            "version": "ecPrivkeyVer1",
            "private_key": int.from_bytes(key.sm2_scalar(), "big"),
            "public_key": key.public_key.point,
        })
        der = asn1_keys.PrivateKeyInfo({
            "version": 0,
            "private_key_algorithm": {"algorithm": "ec",
                                      "parameters": asn1_keys.ECDomainParameters(("named", "sm2"))},
            "private_key": ec_key,
        }).dump()
    else:
        der = key.crypto_key.private_bytes(serialization.Encoding.DER, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption())
    return encrypt_pkcs8(der, password) if password is not None else der


def private_key_to_pem(key: PrivateKey, password: bytes | None = None) -> bytes:
    der = private_key_to_pkcs8(key, password)
    return pem.encode("ENCRYPTED PRIVATE KEY" if password is not None else "PRIVATE KEY", der)


# ---------------------------------------------------------------------------------- PBES2
def encrypt_pkcs8(pkcs8_der: bytes, password: bytes, iterations: int = PBKDF2_ITERATIONS) -> bytes:
    """Wrap PKCS#8 DER in EncryptedPrivateKeyInfo (PBES2, PBKDF2-HMAC-SHA256, AES-256-CBC)."""
    salt, iv = os.urandom(16), os.urandom(16)
    key = PBKDF2HMAC(hashes.SHA256(), 32, salt, iterations).derive(password)
    padder = padding.PKCS7(128).padder()
    enc = Cipher(algorithms.AES(key), modes.CBC(iv)).encryptor()
    ct = enc.update(padder.update(pkcs8_der) + padder.finalize()) + enc.finalize()
    alg = algos.EncryptionAlgorithm({
        "algorithm": "pbes2",
        "parameters": {
            "key_derivation_func": {"algorithm": "pbkdf2", "parameters": {
                "salt": algos.Pbkdf2Salt(name="specified", value=salt), "iteration_count": iterations,
                "prf": {"algorithm": "sha256"}}},
            "encryption_scheme": {"algorithm": "aes256_cbc", "parameters": iv},
        },
    })
    return asn1_keys.EncryptedPrivateKeyInfo({"encryption_algorithm": alg, "encrypted_data": ct}).dump()


def decrypt_pkcs8(der: bytes, password: bytes) -> bytes:
    """Unwrap PBES2 EncryptedPrivateKeyInfo (PBKDF2; AES-CBC or SM4-CBC)."""
    try:
        return _decrypt_pkcs8(der, password)
    except (ValueError, TypeError, KeyError, AttributeError, OverflowError) as exc:
        # asn1crypto parses lazily: malformed nested parameters surface here, not at load()
        raise DecodeError(f"bad EncryptedPrivateKeyInfo: {exc}", reason="BAD_PRIVATE_KEY") from None


def _decrypt_pkcs8(der: bytes, password: bytes) -> bytes:
    try:
        info = asn1_keys.EncryptedPrivateKeyInfo.load(der, strict=True)
        alg = info["encryption_algorithm"]
        if alg["algorithm"].native != "pbes2":
            raise UnsupportedAlgorithm(f"key encryption {alg['algorithm'].native} not supported (PBES2 only)",
                                       reason="UNSUPPORTED_KEY_ENCRYPTION")
        params = alg["parameters"]
        kdf = params["key_derivation_func"]
        scheme = params["encryption_scheme"]
        scheme_oid = scheme["algorithm"].dotted
        iv = bytes(scheme["parameters"].native)
        ciphertext = bytes(info["encrypted_data"].native)
    except (ValueError, TypeError, KeyError) as exc:
        raise DecodeError(f"bad EncryptedPrivateKeyInfo: {exc}", reason="BAD_PRIVATE_KEY") from None
    cipher_key_len = {"2.16.840.1.101.3.4.1.2": 16, "2.16.840.1.101.3.4.1.22": 24, "2.16.840.1.101.3.4.1.42": 32,
                      "1.2.156.10197.1.104.2": 16}.get(scheme_oid)
    if cipher_key_len is None:
        raise UnsupportedAlgorithm(f"PBES2 cipher {scheme_oid} not supported", reason="UNSUPPORTED_KEY_ENCRYPTION")
    kdf_name = kdf["algorithm"].native
    kp = kdf["parameters"]
    if kdf_name == "pbkdf2":
        prf = kp["prf"]["algorithm"].native.replace("hmac_with_", "") if kp["prf"] else "sha1"
        if prf not in _KDF_HASHES:
            raise UnsupportedAlgorithm(f"PBKDF2 PRF {prf} not supported", reason="UNSUPPORTED_KEY_ENCRYPTION")
        iterations = int(kp["iteration_count"].native)
        if iterations > 10_000_000:
            raise InvalidInput("PBKDF2 iteration count is unreasonably large", reason="BAD_PRIVATE_KEY")
        key = PBKDF2HMAC(_KDF_HASHES[prf](), cipher_key_len, bytes(kp["salt"].native), iterations).derive(password)
    elif kdf_name == "scrypt" or kdf["algorithm"].dotted == "1.3.6.1.4.1.11591.4.11":
        raise UnsupportedAlgorithm("scrypt-protected PKCS#8 is not supported", reason="UNSUPPORTED_KEY_ENCRYPTION")
    else:
        raise UnsupportedAlgorithm(f"PBES2 KDF {kdf_name} not supported", reason="UNSUPPORTED_KEY_ENCRYPTION")
    if len(iv) != 16 or not ciphertext or len(ciphertext) % 16:
        raise DecodeError("encrypted key has a bad IV or length", reason="BAD_PRIVATE_KEY")
    algo = algorithms.SM4(key) if scheme_oid.startswith("1.2.156") else algorithms.AES(key)
    dec = Cipher(algo, modes.CBC(iv)).decryptor()
    data = dec.update(ciphertext) + dec.finalize()
    try:
        unpadder = padding.PKCS7(128).unpadder()
        plain = unpadder.update(data) + unpadder.finalize()
        # a wrong password still unpads about once in 256 tries: the plaintext must also be a PrivateKeyInfo
        if not asn1_keys.PrivateKeyInfo.load(plain, strict=True)["private_key_algorithm"]["algorithm"].dotted:
            raise ValueError("no key algorithm")
    except (ValueError, TypeError, KeyError):
        raise WrongPassphrase("wrong password for the encrypted private key (or the key is corrupt)",
                              reason="WRONG_PASSPHRASE") from None
    return plain


def scrypt_key(passphrase: bytes, salt: bytes, n: int = 2**15, r: int = 8, p: int = 1) -> bytes:
    """A 32-byte key from a passphrase with scrypt (used for the keystore master key)."""
    return Scrypt(salt=salt, length=32, n=n, r=r, p=p).derive(passphrase)
