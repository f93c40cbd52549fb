"""Concurrent signing through the pool (threads and processes) and recovery from a lost token."""

from __future__ import annotations

import multiprocessing
import os
import shutil
import threading
import time
import uuid
from pathlib import Path

import pytest

from tests.conftest import require_tool
from tests.integration.hsm_helpers import PIN, SOFTHSM_MODULE, make_softhsm, use_conf
from trustsvc.errors import HsmUnavailable
from trustsvc.keys.pkcs11 import Pkcs11KeyStore, pin_source

SECONDS = 1.5


def _open(label: str = "conc") -> Pkcs11KeyStore:
    return Pkcs11KeyStore(SOFTHSM_MODULE, token_label=label, pin=pin_source(pin=PIN), max_sessions=4)


def _sign_for(store: Pkcs11KeyStore, seconds: float) -> tuple[int, int]:
    signer = store.signer("conc-key")
    verifier = signer.verifier()
    good = bad = 0
    end = time.monotonic() + seconds
    i = 0
    while time.monotonic() < end:
        msg = f"{os.getpid()}-{threading.get_ident()}-{i}".encode()
        i += 1
        try:
            verifier.verify(msg, signer.sign(msg))
            good += 1
        except Exception:  # noqa: BLE001 - counted as a failure
            bad += 1
    return good, bad


def _child(conf: str, label: str, q: multiprocessing.Queue) -> None:  # type: ignore[type-arg]
    os.environ["SOFTHSM2_CONF"] = conf
    store = _open(label)
    q.put(_sign_for(store, SECONDS))
    store.close()


@pytest.fixture
def conc_store(tmp_path: Path):
    require_tool("softhsm2-util")
    label = "conc-" + uuid.uuid4().hex[:8]  # a new label: the module re-reads SOFTHSM2_CONF
    conf = make_softhsm(tmp_path / "hsm", label)
    use_conf(conf)
    store = _open(label)
    store.create("conc-key", "ec-p256")
    yield store, conf
    store.close()


def test_two_threads(conc_store: tuple[Pkcs11KeyStore, Path]) -> None:
    store, _ = conc_store
    results: list[tuple[int, int]] = []
    threads = [threading.Thread(target=lambda: results.append(_sign_for(store, SECONDS))) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert len(results) == 2
    assert all(good > 0 and bad == 0 for good, bad in results), results


@pytest.mark.parametrize("method", ["spawn", "forkserver"])  # fork: see docs/hsm.md
def test_two_processes(conc_store: tuple[Pkcs11KeyStore, Path], method: str) -> None:
    store, conf = conc_store
    store.signer("conc-key").sign(b"parent used the module before forking")
    ctx = multiprocessing.get_context(method)
    q = ctx.Queue()
    label = store.pool.token_label
    procs = [ctx.Process(target=_child, args=(str(conf), label, q)) for _ in range(2)]
    for p in procs:
        p.start()
    results = [q.get(timeout=60) for _ in procs]
    for p in procs:
        p.join(30)
        assert p.exitcode == 0
    assert all(good > 0 and bad == 0 for good, bad in results), results
    # the parent still signs after its children
    signer = store.signer("conc-key")
    signer.verifier().verify(b"x", signer.sign(b"x"))


def test_token_removed_and_restored(conc_store: tuple[Pkcs11KeyStore, Path], tmp_path: Path) -> None:
    store, conf = conc_store
    signer = store.signer("conc-key")
    signer.verifier().verify(b"before", signer.sign(b"before"))
    tokens = conf.parent / "tokens"
    saved = tmp_path / "saved-tokens"
    shutil.copytree(tokens, saved)
    # the token disappears: SoftHSM2 sees an empty token directory after re-initialisation
    shutil.rmtree(tokens)
    tokens.mkdir()
    store.pool._invalidate(store.pool._epoch, reinit=True)  # as a CKR_DEVICE_REMOVED would
    with pytest.raises(HsmUnavailable) as err:
        signer.sign(b"during")
    assert err.value.retryable
    # it comes back (same token files): the pool reconnects after its backoff
    shutil.rmtree(tokens)
    shutil.copytree(saved, tokens)
    deadline = time.monotonic() + 15
    while True:
        try:
            sig = signer.sign(b"after")
            break
        except HsmUnavailable:
            assert time.monotonic() < deadline, "the pool did not recover"
            time.sleep(0.1)
    signer.verifier().verify(b"after", sig)


def test_fresh_softhsm_conf(conc_store: tuple[Pkcs11KeyStore, Path], tmp_path: Path) -> None:
    """Pointing at a fresh SOFTHSM2_CONF: the key is gone (clear error); a new key works."""
    store, _ = conc_store
    use_conf(make_softhsm(tmp_path / "fresh", store.pool.token_label or ""))
    store.pool._invalidate(store.pool._epoch, reinit=True)
    from trustsvc.errors import KeyNotFound
    deadline = time.monotonic() + 15
    while True:
        try:
            store.info("conc-key")
            raise AssertionError("key should be gone")
        except KeyNotFound:
            break
        except HsmUnavailable:
            assert time.monotonic() < deadline
            time.sleep(0.1)
    store.create("conc-key", "ec-p256")
    signer = store.signer("conc-key")
    signer.verifier().verify(b"y", signer.sign(b"y"))
