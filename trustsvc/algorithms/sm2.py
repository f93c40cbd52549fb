"""SM2 signature and encryption schemes (GB/T 32918, GM/T 0009) over a native engine.

Signing always hashes on the host: Z = SM3(ENTL‖ID‖a‖b‖xG‖yG‖xA‖yA), e = SM3(Z‖M), so the
user ID is under our control whatever the engine or HSM does. Signatures leave as DER
SEQUENCE{r, s}; raw r‖s (64 bytes) is accepted on input.
"""

from __future__ import annotations

from asn1crypto.core import Integer, OctetString, Sequence

from trustsvc.algorithms import sm2_curve
from trustsvc.algorithms.sm2_engine import get_engine
from trustsvc.algorithms.sm3 import sm3
from trustsvc.errors import DecodeError, InvalidInput, InvalidSignature

DEFAULT_ID = b"1234567812345678"
_MAX_ID_BITS = 0xFFFF


class _RS(Sequence):
    _fields = [("r", Integer), ("s", Integer)]


class _Gmt0009Ciphertext(Sequence):
    _fields = [("x", Integer), ("y", Integer), ("hash", OctetString), ("ciphertext", OctetString)]


def z_value(point: bytes, user_id: bytes = DEFAULT_ID) -> bytes:
    """Z_A for a 65-byte public point and a user ID."""
    bits = len(user_id) * 8
    if bits > _MAX_ID_BITS:
        raise InvalidInput("SM2 user ID longer than 8191 bytes", reason="SM2_ID_TOO_LONG")
    return sm3(bits.to_bytes(2, "big") + user_id + sm2_curve.CURVE_PREFIX + point[1:])


def e_value(point: bytes, message: bytes, user_id: bytes = DEFAULT_ID) -> bytes:
    """e = SM3(Z_A ‖ M)."""
    return sm3(z_value(point, user_id) + message)


def rs_to_der(rs: bytes) -> bytes:
    """64-byte r‖s to DER SEQUENCE{r, s}."""
    if len(rs) != 64:
        raise InvalidInput("raw SM2 signature must be 64 bytes", reason="BAD_SIGNATURE_LENGTH")
    body = _der_uint(rs[:32]) + _der_uint(rs[32:])
    return b"\x30" + bytes([len(body)]) + body  # at most 70 bytes: short-form length


def _der_uint(value: bytes) -> bytes:
    """DER INTEGER for a non-negative big-endian value of at most 32 bytes (hand-rolled: hot path)."""
    n = int.from_bytes(value, "big")
    content = n.to_bytes(n.bit_length() // 8 + 1, "big")
    return b"\x02" + bytes([len(content)]) + content


def is_raw_rs(signature: bytes) -> bool:
    """True for a raw 64-byte r‖s: 64 bytes that are not a DER SEQUENCE{r, s} (a raw value begins with
    0x30, as DER does, once in 256)."""
    if len(signature) != 64:
        return False
    if signature[0] != 0x30:
        return True
    try:
        return not isinstance(_RS.load(signature, strict=True)["s"].native, int)
    except (ValueError, TypeError, KeyError):
        return True


def signature_to_rs(signature: bytes) -> bytes:
    """Accept DER SEQUENCE{r, s} or raw 64-byte r‖s; return r‖s. Raises DecodeError."""
    if is_raw_rs(signature):
        return signature
    try:
        seq = _RS.load(signature, strict=True)
        r, s = int(seq["r"].native), int(seq["s"].native)
    except (ValueError, TypeError, KeyError) as exc:
        raise DecodeError(f"SM2 signature is neither DER SEQUENCE{{r,s}} nor 64-byte r||s: {exc}",
                          reason="BAD_SIGNATURE_ENCODING") from None
    if not (0 < r < sm2_curve.N and 0 < s < sm2_curve.N):
        raise DecodeError("SM2 signature r or s out of range", reason="BAD_SIGNATURE_ENCODING")
    return r.to_bytes(32, "big") + s.to_bytes(32, "big")


def check_point(point: bytes) -> bytes:
    """Return the point as 04‖X‖Y if it is a valid SM2 public point, else raise InvalidInput."""
    if len(point) == 64:
        point = b"\x04" + point
    elif len(point) == 33:
        try:
            point = sm2_curve.decompress(point)
        except ValueError as exc:
            raise InvalidInput(f"bad compressed SM2 point: {exc}", reason="BAD_PUBLIC_KEY") from None
    if not sm2_curve.is_on_curve(point):
        raise InvalidInput("public key is not a point on the SM2 curve", reason="BAD_PUBLIC_KEY")
    return point


def check_scalar(scalar: bytes) -> bytes:
    """Return the 32-byte private scalar if 1 <= d <= n-2, else raise InvalidInput."""
    if len(scalar) > 32:
        scalar = scalar.lstrip(b"\0")
    scalar = scalar.rjust(32, b"\0")
    d = int.from_bytes(scalar, "big")
    if len(scalar) != 32 or not (1 <= d <= sm2_curve.N - 2):
        raise InvalidInput("SM2 private key out of range", reason="BAD_PRIVATE_KEY")
    return scalar


def generate_keypair() -> tuple[bytes, bytes]:
    """A fresh (scalar, point)."""
    return get_engine().generate()


def public_point(scalar: bytes) -> bytes:
    return get_engine().public_point(check_scalar(scalar))


def sign(scalar: bytes, point: bytes, message: bytes, user_id: bytes = DEFAULT_ID) -> bytes:
    """DER signature of ``message`` with Z over ``user_id``."""
    return rs_to_der(get_engine().sign_e(scalar, point, e_value(point, message, user_id)))


def verify(point: bytes, message: bytes, signature: bytes, user_id: bytes = DEFAULT_ID) -> None:
    """Raise InvalidSignature unless ``signature`` is a valid SM2 signature of ``message``.

    On failure, the message names the likely cause: a signature made with another user ID
    (OpenSSL 3 defaults to an empty ID, old GmSSL to ``anonym@gmssl.org``) or over the bare
    SM3(M) with no Z is recognised and reported as such.
    """
    rs = signature_to_rs(signature)
    if get_engine().verify_e(point, e_value(point, message, user_id), rs):
        return
    reason, text = diagnose(point, message, rs, user_id)
    raise InvalidSignature(text, reason=reason)


_OTHER_IDS = (b"", b"anonym@gmssl.org")


def diagnose(point: bytes, message: bytes, rs: bytes, user_id: bytes = DEFAULT_ID) -> tuple[str, str]:
    """(reason, text) saying why an SM2 signature failed: another ID, no Z, or plain invalid."""
    engine = get_engine()
    for other in _OTHER_IDS:
        if other != user_id and engine.verify_e(point, e_value(point, message, other), rs):
            return "SM2_ID_MISMATCH", (
                f"SM2 signature does not verify with user ID {user_id!r} but does with {other!r}: "
                "the SM2 ID may differ (OpenSSL 3 uses an empty ID unless given distid)")
    if engine.verify_e(point, sm3(message), rs):
        return "SM2_NO_Z", "SM2 signature was made over SM3(M) without Z (non-standard, not GM/T 0009)"
    return "INVALID_SIGNATURE", (
        f"SM2 signature does not verify (user ID {user_id!r}): the data changed, the key is wrong, "
        "or the SM2 ID may differ")


def encrypt(point: bytes, plaintext: bytes) -> bytes:
    """SM2 encryption; returns the GM/T 0009 DER SEQUENCE{x, y, hash, ciphertext} (C1C3C2)."""
    if not plaintext:
        raise InvalidInput("SM2 cannot encrypt empty plaintext", reason="EMPTY_PLAINTEXT")
    raw = get_engine().encrypt(point, plaintext)
    return _Gmt0009Ciphertext({
        "x": int.from_bytes(raw[1:33], "big"),
        "y": int.from_bytes(raw[33:65], "big"),
        "hash": raw[65:97],
        "ciphertext": raw[97:],
    }).dump()


def decrypt(scalar: bytes, point: bytes, ciphertext: bytes) -> bytes:
    """Inverse of encrypt; also accepts raw C1‖C3‖C2 (04-prefixed)."""
    if ciphertext[:1] == b"\x04":
        raw = ciphertext
    else:
        try:
            seq = _Gmt0009Ciphertext.load(ciphertext, strict=True)
            x, y = int(seq["x"].native), int(seq["y"].native)
            h, c = bytes(seq["hash"].native), bytes(seq["ciphertext"].native)
        except (ValueError, TypeError) as exc:
            raise DecodeError(f"SM2 ciphertext is not GM/T 0009 DER: {exc}", reason="BAD_CIPHERTEXT") from None
        if len(h) != 32 or x >= sm2_curve.P or y >= sm2_curve.P or x < 0 or y < 0:
            raise DecodeError("SM2 ciphertext fields out of range", reason="BAD_CIPHERTEXT")
        raw = b"\x04" + x.to_bytes(32, "big") + y.to_bytes(32, "big") + h + c
    if len(raw) < 98 or not sm2_curve.is_on_curve(raw[:65]):
        raise DecodeError("SM2 ciphertext too short or C1 not a point on the curve", reason="BAD_CIPHERTEXT")
    try:
        return get_engine().decrypt(scalar, point, raw)
    except (ValueError, RuntimeError) as exc:
        raise InvalidInput(f"SM2 decryption failed: {exc}", reason="DECRYPTION_FAILED") from None
