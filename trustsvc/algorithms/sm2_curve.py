"""SM2 recommended curve parameters (GB/T 32918.5-2017) and point checks."""

from __future__ import annotations

P = 0xFFFFFFFEFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF00000000FFFFFFFFFFFFFFFF
A = 0xFFFFFFFEFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF00000000FFFFFFFFFFFFFFFC
B = 0x28E9FA9E9D9F5E344D5A9E4BCF6509A7F39789F515AB8F92DDBCBD414D940E93
N = 0xFFFFFFFEFFFFFFFFFFFFFFFFFFFFFFFF7203DF6B21C6052B53BBF40939D54123
GX = 0x32C4AE2C1F1981195F9904466A39C9948FE30BBFF2660BE1715A4589334C74C7
GY = 0xBC3736A2F4F6779C59BDCEE36B692153D0A9877CC62A474002DF32E52139F0A0

CURVE_PREFIX = b"".join(v.to_bytes(32, "big") for v in (A, B, GX, GY))


def is_on_curve(point: bytes) -> bool:
    """True when ``point`` is an uncompressed 04‖X‖Y point on the SM2 curve (not infinity)."""
    if len(point) != 65 or point[0] != 4:
        return False
    x = int.from_bytes(point[1:33], "big")
    y = int.from_bytes(point[33:], "big")
    if not (0 <= x < P and 0 <= y < P):
        return False
    return (y * y - (x * x * x + A * x + B)) % P == 0


def decompress(point: bytes) -> bytes:
    """Turn a 33-byte compressed point (02/03‖X) into 04‖X‖Y; raises ValueError if not on the curve."""
    if len(point) != 33 or point[0] not in (2, 3):
        raise ValueError("not a compressed point")
    x = int.from_bytes(point[1:], "big")
    if x >= P:
        raise ValueError("x out of range")
    rhs = (x * x * x + A * x + B) % P
    y = pow(rhs, (P + 1) // 4, P)  # P ≡ 3 (mod 4)
    if (y * y) % P != rhs:
        raise ValueError("point not on the SM2 curve")
    if (y & 1) != (point[0] & 1):
        y = P - y
    return b"\x04" + x.to_bytes(32, "big") + y.to_bytes(32, "big")
