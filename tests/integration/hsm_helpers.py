"""Helpers for the HSM integration tests: fresh SoftHSM2 tokens and the SM2 test token."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SOFTHSM_MODULE = "/usr/lib/softhsm/libsofthsm2.so"
TESTTOKEN_DIR = ROOT / "hsm" / "testtoken"
TESTTOKEN_MODULE = TESTTOKEN_DIR / "build" / "libtrustsvc-testtoken.so"
PIN = "246810"
SO_PIN = "13579135"


def make_softhsm(directory: Path, label: str = "trustsvc-test") -> Path:
    """A fresh SoftHSM2 token under ``directory``; returns its softhsm2.conf."""
    subprocess.run([str(ROOT / "hsm" / "setup-softhsm.sh"), str(directory), label, SO_PIN, PIN],
                   check=True, capture_output=True, text=True)
    return directory / "softhsm2.conf"


def use_conf(conf: Path) -> None:
    os.environ["SOFTHSM2_CONF"] = str(conf)


def build_testtoken() -> Path:
    """Build the SM2 test emulator with make (no-op when up to date)."""
    subprocess.run(["make", "-s", "-C", str(TESTTOKEN_DIR)], check=True, capture_output=True, text=True)
    return TESTTOKEN_MODULE


# The SM2 test emulator (hsm/testtoken, TEST ONLY): its token label and user PIN.
TESTTOKEN_LABEL = "trustsvc-test"
TESTTOKEN_PIN = "1234"
SM2_DEFAULT_ID = "1234567812345678"


def openssl_sm2_verify(openssl: str, directory: Path, public_pem: bytes, message: bytes,
                       signature_der: bytes, sm2_id: str = SM2_DEFAULT_ID) -> subprocess.CompletedProcess[str]:
    """``openssl pkeyutl -verify`` of an SM2 signature with SM3 and the SM2 ID (distid, default 1234567812345678)."""
    (directory / "pub.pem").write_bytes(public_pem)
    (directory / "msg").write_bytes(message)
    (directory / "sig").write_bytes(signature_der)
    return subprocess.run([openssl, "pkeyutl", "-verify", "-pubin", "-inkey", str(directory / "pub.pem"),
                           "-rawin", "-digest", "sm3", "-pkeyopt", f"distid:{sm2_id}",
                           "-in", str(directory / "msg"), "-sigfile", str(directory / "sig")],
                          capture_output=True, text=True)
