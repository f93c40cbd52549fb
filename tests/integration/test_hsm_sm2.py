"""SM2 through PKCS#11: the vendor profiles against the TEST-ONLY emulator hsm/testtoken.

The emulator (built here with make) implements the Sansec and Luna SM2 mechanisms with their
documented semantics, so the real Pkcs11KeyStore / profile / signer code runs through the C ABI and
python-pkcs11. Every signature is checked with trustsvc.algorithms.sm2.verify and the OpenSSL CLI.
"""

from __future__ import annotations

import subprocess
import threading
from pathlib import Path

import pkcs11
import pkcs11.exceptions as px
import pytest

from tests.conftest import require_tool
from tests.integration.hsm_helpers import (
    ROOT,
    TESTTOKEN_DIR,
    TESTTOKEN_LABEL,
    TESTTOKEN_MODULE,
    TESTTOKEN_PIN,
    openssl_sm2_verify,
)
from trustsvc.algorithms import sm2
from trustsvc.algorithms.sm3 import sm3
from trustsvc.errors import HsmError, InvalidSignature
from trustsvc.keys.base import KeyState
from trustsvc.keys.pkcs11 import Pkcs11KeyStore, module, pin_source
from trustsvc.keys.pkcs11.signer import Pkcs11Signer

SANSEC_SIGN_E, SANSEC_NO_Z, SANSEC_Z = 0x80008104, 0x80008100, 0x80008102
LUNA_SM2DSA, LUNA_SM3_SM2DSA = 0x80000B21, 0x80000B22
TESTTOKEN_ID_PARAM = 0x8000F100
MESSAGES = [b"", b"a", b"hello SM2 over PKCS#11", bytes(range(256)) * 5]


@pytest.fixture(scope="session")
def testtoken() -> str:
    require_tool("make")
    require_tool("gcc")
    out = subprocess.run(["make", "-C", str(TESTTOKEN_DIR)], capture_output=True, text=True)
    if out.returncode != 0 or not TESTTOKEN_MODULE.exists():
        pytest.fail(f"cannot build the SM2 test token (needs libssl-dev, libp11-kit-dev):\n"
                    f"{out.stdout}\n{out.stderr}")
    return str(TESTTOKEN_MODULE)


def open_store(path: str, profile: str | None, mechanism: int | None = None,
               profiles_dir: Path | None = None) -> Pkcs11KeyStore:
    return Pkcs11KeyStore(path, token_label=TESTTOKEN_LABEL, pin=pin_source(pin=TESTTOKEN_PIN),
                          sm2_profile=profile, sm2_mechanism=mechanism, profiles_dir=profiles_dir)


CASES = [
    ("sansec", SANSEC_SIGN_E, "E_PREHASHED"),
    ("sansec", SANSEC_Z, "MSG_Z_INTERNAL"),
    ("sansec", SANSEC_NO_Z, "MSG_NO_Z"),  # sansec.toml declares host_z_prefix: the host passes Z||M
    ("luna", LUNA_SM2DSA, "E_PREHASHED"),
    ("luna", LUNA_SM3_SM2DSA, "MSG_Z_INTERNAL"),
    ("testtoken", TESTTOKEN_ID_PARAM, "MSG_ID_PARAM"),  # test-defined code: the ID is the parameter
]


@pytest.mark.parametrize(("profile", "mech", "mode"), CASES, ids=[f"{c[0]}-{c[1]:08X}" for c in CASES])
def test_profile_sign_verify(testtoken: str, profile: str, mech: int, mode: str, tmp_path: Path) -> None:
    openssl = require_tool("openssl")
    store = open_store(testtoken, profile, mech)
    try:
        report = store.sm2_self_test()
        assert [r["status"] for r in report] == ["ok"], report
        assert store.sm2_profile is not None and store.sm2_profile.name == profile
        assert store.sm2_mode is not None and store.sm2_mode.mechanism == mech
        assert store.sm2_mode.input.value == mode
        name = f"sm2-{profile}-{mech:08x}"
        info = store.create(name, "sm2")
        assert info.spec == "sm2" and info.state is KeyState.ACTIVE and info.store == "hsm"
        signer = store.signer(name)
        point = signer.public_key.point
        assert point is not None and len(point) == 65 and point[0] == 4
        pem = info.public_key.to_pem()
        for i, msg in enumerate(MESSAGES):
            sig = signer.sign(msg)
            sm2.verify(point, msg, sig)
            d = tmp_path / f"m{i}"
            d.mkdir()
            out = openssl_sm2_verify(openssl, d, pem, msg, sig)
            assert out.returncode == 0 and "Success" in out.stdout, out.stdout + out.stderr
        batch = signer.sign_batch(MESSAGES)
        for msg, sig in zip(MESSAGES, batch, strict=True):
            sm2.verify(point, msg, sig)
        # a signature of another message does not verify
        with pytest.raises(InvalidSignature):
            sm2.verify(point, b"other", batch[0])
        # the private key cannot be exported
        with pytest.raises(HsmError):
            store.private_key_value(name)
    finally:
        store.close()


def test_default_profile_for_the_test_token(testtoken: str) -> None:
    store = open_store(testtoken, None)
    try:
        store.sm2_self_test()
        assert store.sm2_profile is not None and store.sm2_profile.name == "testtoken"
        assert store.sm2_mode is not None and store.sm2_mode.mechanism == SANSEC_SIGN_E
        store.create("sm2-default", "sm2")
        signer = store.signer("sm2-default")
        sm2.verify(signer.public_key.point or b"", b"m", signer.sign(b"m"))
    finally:
        store.close()


def _profiles(tmp_path: Path, sign_block: str) -> Path:
    d = tmp_path / "profiles"
    d.mkdir()
    (d / "bad.toml").write_text(f"""
name = "bad"
[match]
module = ["libtrustsvc-testtoken"]
[key]
key_type = 0x80000004
keygen = 0x80008001
point = "EC_POINT_DER"
[[sign]]
{sign_block}
""")
    return d


def test_no_z_without_host_prefix_refused(testtoken: str, tmp_path: Path) -> None:
    d = _profiles(tmp_path, 'name = "SM3_SM2 bare"\nmechanism = 0x80008100\n'
                            'input = "MSG_NO_Z"\noutput = "RAW_RS"\n')
    store = open_store(testtoken, "bad", profiles_dir=d)
    try:
        report = store.sm2_self_test()
        assert report[0]["status"] == "refused", report
        assert "HSM_SM2_NO_Z" in report[0]["detail"] and "without Z" in report[0]["detail"]
        assert store.sm2_mode is None
        with pytest.raises(HsmError) as err:
            store.create("sm2-bare", "sm2")
        assert err.value.reason == "HSM_NO_SM2" and "without Z" in err.value.message
    finally:
        store.close()


def test_no_z_misdeclared_is_diagnosed(testtoken: str, tmp_path: Path) -> None:
    """A profile claiming the no-Z mechanism computes Z inside fails the self-test: SM2_NO_Z."""
    d = _profiles(tmp_path, 'name = "SM3_SM2 lies"\nmechanism = 0x80008100\n'
                            'input = "MSG_Z_INTERNAL"\noutput = "RAW_RS"\n')
    store = open_store(testtoken, "bad", profiles_dir=d)
    try:
        report = store.sm2_self_test()
        assert report[0]["status"] == "refused", report
        assert report[0]["detail"].startswith("SM2_NO_Z:"), report
        assert "without Z" in report[0]["detail"] and "0x80008100" in report[0]["detail"]
        with pytest.raises(HsmError) as err:
            store.create("sm2-lies", "sm2")
        assert err.value.reason == "HSM_NO_SM2" and "SM2_NO_Z" in err.value.message
    finally:
        store.close()


def test_raw_mechanism_semantics(testtoken: str) -> None:
    """Straight through python-pkcs11: what each emulated mechanism computes."""
    lib = module.load(testtoken)
    token = lib.get_token(token_label=TESTTOKEN_LABEL)
    caps = pkcs11.MechanismFlag.SIGN | pkcs11.MechanismFlag.VERIFY
    try:
        session = token.open(user_pin=TESTTOKEN_PIN, rw=True)
    except px.UserAlreadyLoggedIn:
        session = token.open(rw=True)
    with session as s:
        for kt, keygen in ((0x80000004, 0x80008001), (0x80000016, 0x80000B20)):
            pub, priv = s.generate_keypair(module.key_type(kt), None, label="raw", id=b"raw",
                                           capabilities=caps, mechanism=module.mechanism(keygen))
            ec_point = bytes(pub[pkcs11.Attribute.EC_POINT])
            point = ec_point[2:] if kt == 0x80000004 else ec_point
            assert (kt == 0x80000004) == (ec_point[:2] == b"\x04\x41") and len(point) == 65
            msg = b"semantics"
            z = sm2.z_value(point)
            e = sm3(z + msg)
            if kt == 0x80000004:
                def sign(data: bytes, m: int, priv: object = priv) -> bytes:
                    return priv.sign(data, mechanism=module.mechanism(m))  # type: ignore[attr-defined]
                for rs in (sign(e, SANSEC_SIGN_E), sign(msg, SANSEC_Z), sign(z + msg, SANSEC_NO_Z)):
                    assert len(rs) == 64
                    sm2.verify(point, msg, rs)
                bare = sign(msg, SANSEC_NO_Z)
                assert sm2.diagnose(point, msg, bare)[0] == "SM2_NO_Z"
                with pytest.raises(px.DataLenRange):
                    sign(msg, SANSEC_SIGN_E)
                with pytest.raises(px.KeyTypeInconsistent):
                    sign(e, LUNA_SM2DSA)
            else:
                for der in (priv.sign(e, mechanism=module.mechanism(LUNA_SM2DSA)),
                            priv.sign(msg, mechanism=module.mechanism(LUNA_SM3_SM2DSA))):
                    assert der[0] == 0x30
                    sm2.verify(point, msg, der)
            for attr in (pkcs11.Attribute.SENSITIVE, pkcs11.Attribute.NEVER_EXTRACTABLE,
                         pkcs11.Attribute.ALWAYS_SENSITIVE, pkcs11.Attribute.LOCAL):
                assert priv[attr] is True
            assert priv[pkcs11.Attribute.EXTRACTABLE] is False
            with pytest.raises(px.AttributeSensitive):
                priv[pkcs11.Attribute.VALUE]
            priv.destroy()
            pub.destroy()


def test_two_threads_sign(testtoken: str) -> None:
    store = open_store(testtoken, "sansec", SANSEC_SIGN_E)
    try:
        store.create("sm2-threads", "sm2")
        signer = store.signer("sm2-threads")
        point = signer.public_key.point or b""
        errors: list[BaseException] = []

        def work(n: int) -> None:
            try:
                for i in range(100):
                    msg = f"{n}:{i}".encode()
                    sm2.verify(point, msg, signer.sign(msg))
            except BaseException as exc:  # noqa: BLE001
                errors.append(exc)
        threads = [threading.Thread(target=work, args=(n,)) for n in range(2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert not errors, errors
    finally:
        store.close()


def test_build_is_test_only() -> None:
    """The emulator says what it is, loudly, in its source and README."""
    assert "TESTS ONLY" in (ROOT / "hsm" / "testtoken" / "testtoken.c").read_text()[:400]
    assert "TEST ONLY" in (ROOT / "hsm" / "testtoken" / "README.md").read_text()[:200]


def test_pool_bounded_by_the_tokens_session_limit(testtoken: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """The token reports 4 sessions: the pool keeps one for the login and uses at most 3."""
    monkeypatch.setenv("TESTTOKEN_MAX_SESSIONS", "4")
    store = Pkcs11KeyStore(testtoken, token_label=TESTTOKEN_LABEL, pin=pin_source(pin=TESTTOKEN_PIN),
                           max_sessions=16)
    try:
        store.sm2_self_test()
        assert store.pool.stats["token_max"] == 4
        assert store.pool.max_sessions == 3
        store.create("sm2-limited", "sm2")
        signer = store.signer("sm2-limited")
        point = signer.public_key.point or b""
        errors: list[str] = []

        def work(n: int) -> None:
            for i in range(20):
                msg = f"{n}-{i}".encode()
                try:
                    sm2.verify(point, msg, signer.sign(msg))
                except Exception as exc:  # noqa: BLE001 - collected and reported below
                    errors.append(repr(exc))

        threads = [threading.Thread(target=work, args=(n,)) for n in range(6)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert not errors, errors[:3]
        assert store.pool.stats["open"] in (0, 1, 2, 3)
    finally:
        store.close()


def test_id_param_mode_signs_with_another_id(testtoken: str, tmp_path: Path) -> None:
    """MSG_ID_PARAM: the token computes Z over the ID the host passes, so any ID works."""
    openssl = require_tool("openssl")
    store = open_store(testtoken, "testtoken", TESTTOKEN_ID_PARAM)
    try:
        store.sm2_self_test()
        assert store.sm2_mode is not None and store.sm2_mode.input.value == "MSG_ID_PARAM"
        info = store.create("sm2-id-param", "sm2")
        base = store.signer("sm2-id-param")
        alice = Pkcs11Signer(store.pool, base.label, base.key_id, base.public_key, sm2_mode=base.sm2_mode,
                             sm2_id=b"alice@example.cn")
        sig = alice.sign(b"hello")
        sm2.verify(base.public_key.point or b"", b"hello", sig, b"alice@example.cn")
        with pytest.raises(InvalidSignature):
            sm2.verify(base.public_key.point or b"", b"hello", sig)  # the default ID
        out = openssl_sm2_verify(openssl, tmp_path, info.public_key.to_pem(), b"hello", sig, "alice@example.cn")
        assert out.returncode == 0 and "Success" in out.stdout, out.stdout + out.stderr
    finally:
        store.close()


def test_id_param_declared_for_a_mechanism_without_parameter_refused(testtoken: str, tmp_path: Path) -> None:
    d = _profiles(tmp_path, 'name = "Z inside, no parameter"\nmechanism = 0x80008102\n'
                            'input = "MSG_ID_PARAM"\noutput = "RAW_RS"\n')
    store = open_store(testtoken, "bad", profiles_dir=d)
    try:
        report = store.sm2_self_test()
        assert report[0]["status"] == "refused", report
        assert store.sm2_mode is None
    finally:
        store.close()
