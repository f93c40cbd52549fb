"""SoftwareKeyStore: lifecycle, encryption at rest, atomic writes, concurrency, crash safety."""

from __future__ import annotations

import json
import multiprocessing
import os
import signal
import stat
import time
from pathlib import Path

import pytest

from trustsvc.errors import Conflict, InvalidInput, KeyDisabled, KeyNotFound, KeystoreError, WrongPassphrase
from trustsvc.keys.base import KeyState
from trustsvc.keys.factory import open_keystore
from trustsvc.keys.software import SoftwareKeyStore

FAST = {"n": 2**12, "r": 8, "p": 1}  # scrypt cost for tests only
PW = b"correct horse"


def store(path: Path, passphrase: bytes = PW) -> SoftwareKeyStore:
    return SoftwareKeyStore(path, passphrase=passphrase, scrypt_params=FAST)


def test_create_sign_rotate_disable(tmp_path: Path) -> None:
    ks = store(tmp_path / "ks")
    info = ks.create("seal-signer", "sm2")
    assert (info.version, info.state, info.spec, info.store) == (1, KeyState.ACTIVE, "sm2", "soft")
    signer = ks.signer("seal-signer")
    sig = signer.sign(b"data")
    signer.verifier().verify(b"data", sig)
    assert signer.key_ref == "soft:seal-signer@1"

    v2 = ks.rotate("seal-signer")
    assert v2.version == 2
    assert ks.info("seal-signer", 1).state is KeyState.PASSIVE
    assert ks.info("seal-signer").version == 2
    with pytest.raises(KeyDisabled):
        ks.signer("seal-signer", 1)
    ks.public_key("seal-signer", 1)  # passive keys still verify
    assert ks.signer("seal-signer").public_key == v2.public_key

    ks.disable("seal-signer")
    with pytest.raises(KeyDisabled):
        ks.signer("seal-signer")
    assert [(k.version, k.state) for k in ks.list()] == [(1, KeyState.PASSIVE), (2, KeyState.DISABLED)]
    with pytest.raises(Conflict):
        ks.create("seal-signer", "sm2")
    with pytest.raises(KeyNotFound):
        ks.info("nope")
    with pytest.raises(KeyNotFound):
        ks.info("seal-signer", 9)
    with pytest.raises(InvalidInput):
        ks.create("../evil", "sm2")


@pytest.mark.parametrize("spec", ["sm2", "ec-p256", "ec-p384", "rsa-2048", "ed25519"])
def test_every_spec_survives_reopen(tmp_path: Path, spec: str) -> None:
    ks = store(tmp_path)
    ks.create("k", spec)
    ks2 = store(tmp_path)
    sig = ks2.signer("k").sign(b"m")
    ks.signer("k").verifier().verify(b"m", sig)
    assert b"BEGIN PUBLIC KEY" in ks2.export_public("k")


def test_certificate_chain_is_kept(tmp_path: Path) -> None:
    from tests.conftest import throwaway_certificate

    ks = store(tmp_path)
    info = ks.create("k", "ec-p256")
    key = info.public_key.crypto_key
    leaf, ca = throwaway_certificate(key, "leaf"), throwaway_certificate(key, "ca")
    ks.set_certificate_chain("k", 1, (leaf, ca))
    assert store(tmp_path).signer("k").certificate_chain == (leaf, ca)


def test_encrypted_at_rest_and_permissions(tmp_path: Path) -> None:
    d = tmp_path / "ks"
    ks = store(d)
    ks.create("k", "sm2")
    assert stat.S_IMODE(d.stat().st_mode) == 0o700
    for f in d.iterdir():
        assert stat.S_IMODE(f.stat().st_mode) == 0o600, f
    raw = (d / "k.key.json").read_bytes()
    from trustsvc.algorithms.encoding import private_key_to_pkcs8

    scalar = ks.signer("k")._key.sm2_scalar()  # type: ignore[attr-defined]
    assert scalar not in raw and scalar.hex().encode() not in raw
    assert private_key_to_pkcs8(ks.signer("k")._key) not in raw  # type: ignore[attr-defined]


def test_wrong_passphrase_leaves_no_state(tmp_path: Path) -> None:
    d = tmp_path / "ks"
    store(d).create("k", "sm2")
    before = {p.name: p.read_bytes() for p in d.iterdir()}
    with pytest.raises(WrongPassphrase):
        store(d, b"wrong")
    with pytest.raises(WrongPassphrase):
        SoftwareKeyStore(d, master_key=os.urandom(32))
    assert {p.name: p.read_bytes() for p in d.iterdir()} == before


def test_blobs_cannot_be_swapped(tmp_path: Path) -> None:
    ks = store(tmp_path)
    ks.create("a", "sm2")
    ks.create("b", "sm2")
    a = json.loads((tmp_path / "a.key.json").read_text())
    b = json.loads((tmp_path / "b.key.json").read_text())
    b["versions"][0]["private_key"] = a["versions"][0]["private_key"]
    (tmp_path / "b.key.json").write_text(json.dumps(b))
    with pytest.raises(KeystoreError) as exc:
        store(tmp_path).signer("b")
    assert exc.value.reason == "KEY_BLOB_INVALID"


def test_signer_cache_parses_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    ks = store(tmp_path)
    ks.create("k", "sm2")
    ks2 = store(tmp_path)
    calls = []
    import trustsvc.keys.software as software

    real = software.load_private_key
    monkeypatch.setattr(software, "load_private_key", lambda der: calls.append(1) or real(der))
    for _ in range(5):
        ks2.signer("k").sign(b"m")
    assert len(calls) == 1


def test_exception_between_temp_write_and_rename(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    ks = store(tmp_path)
    ks.create("k", "sm2")
    before = (tmp_path / "k.key.json").read_bytes()

    def boom(src: object, dst: object) -> None:
        raise OSError("simulated crash before rename")

    monkeypatch.setattr(os, "replace", boom)
    with pytest.raises(OSError):
        ks.rotate("k")
    monkeypatch.undo()
    assert (tmp_path / "k.key.json").read_bytes() == before
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]
    ks2 = store(tmp_path)
    assert [k.version for k in ks2.list()] == [1]
    ks2.signer("k").sign(b"m")


def _rotate_forever(directory: str) -> None:
    ks = SoftwareKeyStore(directory, passphrase=PW, scrypt_params=FAST)
    while True:
        ks.rotate("k")


def test_killed_writer_never_tears_a_key(tmp_path: Path) -> None:
    ks = store(tmp_path)
    ks.create("k", "ec-p256")
    ctx = multiprocessing.get_context("spawn")
    for _ in range(3):
        proc = ctx.Process(target=_rotate_forever, args=(str(tmp_path),))
        proc.start()
        deadline = time.monotonic() + 30
        start = len(store(tmp_path).list())
        while len(store(tmp_path).list()) < start + 5 and time.monotonic() < deadline:
            time.sleep(0.05)
        os.kill(proc.pid, signal.SIGKILL)
        proc.join()
    ks2 = store(tmp_path)
    infos = ks2.list()
    assert [i.version for i in infos] == list(range(1, len(infos) + 1))
    assert len(infos) > 10
    assert [i.state for i in infos].count(KeyState.ACTIVE) == 1
    ks2.signer("k").sign(b"still works")
    for i in infos:  # every version still decrypts
        ks2._private_key("k", i.version, ks2._entry("k", ks2._load("k"), i.version)["private_key"])


def _create_many(directory: str, prefix: str) -> None:
    ks = SoftwareKeyStore(directory, passphrase=PW, scrypt_params=FAST)
    for i in range(10):
        ks.create(f"{prefix}{i}", "ed25519")
        ks.rotate("shared")


def test_concurrent_writers_across_processes(tmp_path: Path) -> None:
    store(tmp_path).create("shared", "ed25519")
    ctx = multiprocessing.get_context("spawn")
    procs = [ctx.Process(target=_create_many, args=(str(tmp_path), p)) for p in ("a", "b", "c")]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
        assert p.exitcode == 0
    ks = store(tmp_path)
    names = {i.name for i in ks.list()}
    assert len(names) == 31
    shared = [i.version for i in ks.list() if i.name == "shared"]
    assert shared == list(range(1, 32))


def test_factory_soft_with_dev_key_file_and_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("TRUSTSVC_KEYSTORE_PASSPHRASE", raising=False)
    ks = open_keystore("soft", tmp_path / "home")
    ks.create("k", "sm2")
    key_file = tmp_path / "home" / "keys" / "master.key"
    assert len(key_file.read_bytes()) == 32 and stat.S_IMODE(key_file.stat().st_mode) == 0o600
    open_keystore("soft", tmp_path / "home").signer("k").sign(b"m")

    monkeypatch.setenv("TRUSTSVC_KEYSTORE_PASSPHRASE", "from-env")
    open_keystore("soft", tmp_path / "other").create("k", "ed25519")
    with pytest.raises(WrongPassphrase):
        open_keystore("soft", tmp_path / "other", passphrase=b"nope")
    with pytest.raises(InvalidInput):
        open_keystore("cloud", tmp_path)


def test_cli_key_commands(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    from cli.main import main

    monkeypatch.delenv("TRUSTSVC_KEYSTORE_PASSPHRASE", raising=False)
    h = ["--home", str(tmp_path)]
    assert main([*h, "key", "create", "tok", "--type", "ec-p256", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["ref"] == "soft:tok@1"
    assert main([*h, "key", "rotate", "tok"]) == 0
    assert main([*h, "key", "disable", "tok@1", "--json"]) == 0
    assert json.loads(capsys.readouterr().out.split("\n", 1)[1])["state"] == "disabled"
    assert main([*h, "key", "list", "--json"]) == 0
    assert [k["state"] for k in json.loads(capsys.readouterr().out)] == ["disabled", "active"]
    assert main([*h, "key", "show", "tok", "--json"]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown["version"] == 2 and shown["public_key_pem"].startswith("-----BEGIN PUBLIC KEY-----")
    assert main([*h, "key", "export-public", "tok@2"]) == 0
    assert capsys.readouterr().out.strip() == shown["public_key_pem"].strip()
    assert main([*h, "key", "show", "missing"]) == 3
    assert "KEY_NOT_FOUND" in capsys.readouterr().err
