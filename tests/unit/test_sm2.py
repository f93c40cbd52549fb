"""SM2 known answers (GM/T 0003.5-2012 / GB/T 32918.5 example on the recommended curve) and scheme checks."""

from __future__ import annotations

import gmalglib.core as gmalg
import pytest

from trustsvc.algorithms import sm2, sm2_curve
from trustsvc.algorithms.keypair import PrivateKey, PublicKey
from trustsvc.algorithms.signature_algorithm import SignatureAlgorithm
from trustsvc.algorithms.signer import SoftwareSigner, Verifier
from trustsvc.algorithms.sm3 import sm3
from trustsvc.errors import DecodeError, InvalidInput, InvalidSignature

# The signature example on the recommended curve (user ID is the default 1234567812345678).
D = bytes.fromhex("3945208F7B2144B13F36E38AC6D39F95889393692860B51A42FB81EF4DF7C5B8")
PUB = bytes.fromhex("04"
                    "09F9DF311E5421A150DD7D161E4BC5C672179FAD1833FC076BB08FF356F35020"
                    "CCEA490CE26775A52DC6EA718CC1AA600AED05FBF35E084A6632F6072DA9AD13")
MSG = b"message digest"
K = bytes.fromhex("59276E27D506861A16680F3AD9C02DCCEF3CC1FA3CDBE4CE6D54B80DEAC1BC21")
Z = "B2E14C5C79C6DF5B85F4FE7ED8DB7A262B9DA7E07CCB0EA9F4747B8CCDA8A4F3"
E = "F0B43E94BA45ACCAACE692ED534382EB17E6AB5A19CE7B31F4486FDFC0D28640"
R = "F5A03B0648D2C4630EEAC513E1BB81A15944DA3827D5B74143AC7EACEEE720B3"
S = "B1B6AA29DF212FD8763182BC0D421CA1BB9038FD1F7F42D4840B69C485BBC1AA"


def test_public_key_from_private() -> None:
    assert sm2.public_point(D) == PUB


def test_z_and_e() -> None:
    assert sm2.z_value(PUB).hex().upper() == Z
    assert sm2.e_value(PUB, MSG).hex().upper() == E


@pytest.mark.parametrize("uid", [b"1234567812345678", b"ALICE123@YAHOO.COM", b"", b"x" * 100])
def test_z_matches_gmalglib_entity_info(uid: bytes) -> None:
    assert sm2.z_value(PUB, uid) == bytes(gmalg.SM2(pk=PUB, uid=uid).get_entity_info())


def test_fixed_k_reproduces_published_signature() -> None:
    # gmalglib's random callback returns the nonce as a little-endian 256-bit integer.
    engine = gmalg.SM2(sk=D, pk=PUB, rnd_fn=lambda n: K[::-1])
    rs = bytes(engine.sign_digest(bytes.fromhex(E)))
    assert rs.hex().upper() == R + S


def test_published_signature_verifies_with_our_verifier() -> None:
    der = sm2.rs_to_der(bytes.fromhex(R + S))
    sm2.verify(PUB, MSG, der)
    sm2.verify(PUB, MSG, bytes.fromhex(R + S))  # raw r||s accepted on input
    pk = PublicKey.from_sm2_point(PUB)
    Verifier(pk).verify(MSG, der)
    with pytest.raises(InvalidSignature):
        sm2.verify(PUB, MSG + b"!", der)


def test_sign_verify_round_trip_and_der_output() -> None:
    signer = SoftwareSigner.generate("sm2")
    sig = signer.sign(b"hello")
    assert sig[0] == 0x30
    signer.verifier().verify(b"hello", sig)
    with pytest.raises(InvalidSignature) as exc:
        signer.verifier().verify(b"hellp", sig)
    assert exc.value.reason == "INVALID_SIGNATURE"


def test_wrong_id_is_diagnosed() -> None:
    key = PrivateKey.generate("sm2")
    sig = key.sign(SignatureAlgorithm.SM2_SM3, b"m", sm2_id=b"")
    with pytest.raises(InvalidSignature) as exc:
        key.public_key.verify(SignatureAlgorithm.SM2_SM3, b"m", sig)
    assert exc.value.reason == "SM2_ID_MISMATCH"
    assert "SM2 ID may differ" in exc.value.message
    key.public_key.verify(SignatureAlgorithm.SM2_SM3, b"m", sig, sm2_id=b"")


def test_custom_id_round_trip() -> None:
    signer = SoftwareSigner.generate("sm2", sm2_id=b"alice@example.cn")
    sig = signer.sign(b"m")
    signer.verifier().verify(b"m", sig)
    with pytest.raises(InvalidSignature):
        Verifier(signer.public_key).verify(b"m", sig)


def test_no_z_signature_is_diagnosed() -> None:
    scalar, point = sm2.generate_keypair()
    rs = bytes(gmalg.SM2(sk=scalar, pk=point).sign_digest(sm3(b"m")))
    with pytest.raises(InvalidSignature) as exc:
        sm2.verify(point, b"m", rs)
    assert exc.value.reason == "SM2_NO_Z"


def test_signature_encodings() -> None:
    rs = bytes.fromhex(R + S)
    assert sm2.signature_to_rs(sm2.rs_to_der(rs)) == rs
    with pytest.raises(DecodeError):
        sm2.signature_to_rs(b"\x30\x03\x02\x01\x01")
    with pytest.raises(DecodeError):
        sm2.signature_to_rs(sm2.rs_to_der(b"\0" * 64))  # r = s = 0
    with pytest.raises(InvalidInput):
        sm2.rs_to_der(b"\1" * 63)


def test_encrypt_decrypt_der_and_raw() -> None:
    scalar, point = sm2.generate_keypair()
    ct = sm2.encrypt(point, b"plain text")
    assert ct[0] == 0x30
    assert sm2.decrypt(scalar, point, ct) == b"plain text"
    with pytest.raises(InvalidInput):
        sm2.encrypt(point, b"")
    other, other_pt = sm2.generate_keypair()
    with pytest.raises(InvalidInput):
        sm2.decrypt(other, other_pt, ct)


def test_point_checks() -> None:
    assert sm2.check_point(PUB[1:]) == PUB
    compressed = bytes([2 + (PUB[-1] & 1)]) + PUB[1:33]
    assert sm2.check_point(compressed) == PUB
    assert sm2_curve.decompress(compressed) == PUB
    with pytest.raises(InvalidInput):
        sm2.check_point(PUB[:-1] + bytes([PUB[-1] ^ 1]))
    with pytest.raises(InvalidInput):
        sm2.check_scalar(sm2_curve.N.to_bytes(32, "big"))
    with pytest.raises(InvalidInput):
        sm2.check_scalar(b"\0" * 32)


@pytest.mark.parametrize("r,s", [(1, 1), (0x7F, 0x80), (0xFF, 0x100), (sm2_curve.N - 1, 2**255), (2**248 - 1, 12345)])
def test_rs_to_der_matches_asn1crypto(r: int, s: int) -> None:
    from asn1crypto.core import Integer, Sequence

    class RS(Sequence):
        _fields = [("r", Integer), ("s", Integer)]

    rs = r.to_bytes(32, "big") + s.to_bytes(32, "big")
    assert sm2.rs_to_der(rs) == RS({"r": r, "s": s}).dump()
    assert sm2.signature_to_rs(sm2.rs_to_der(rs)) == rs


def test_raw_rs_starting_with_0x30_is_not_taken_for_der() -> None:
    raw = bytes([0x30]) + bytes(range(1, 64))
    assert sm2.is_raw_rs(raw) and sm2.signature_to_rs(raw) == raw
    der64 = sm2.rs_to_der(bytes(3) + b"\x11" * 29 + bytes(3) + b"\x22" * 29)  # 29-byte INTEGERs: 64 bytes of DER
    assert len(der64) == 64 and not sm2.is_raw_rs(der64)
    assert sm2.signature_to_rs(der64) == bytes(3) + b"\x11" * 29 + bytes(3) + b"\x22" * 29
