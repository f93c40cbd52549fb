"""`trustsvc hsm init-dev`: a SoftHSM2 development token whose PIN file is owner-only from the moment it exists."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from cli.main import main
from tests.conftest import require_tool
from trustsvc.keys.pkcs11.store import open_from_env

pytestmark = pytest.mark.integration


def test_init_dev_makes_a_usable_token_with_a_private_pin(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    require_tool("softhsm2-util")
    old_umask = os.umask(0o022)  # a PIN file written then chmod-ed would be 0644 for a moment under this umask
    try:
        assert main(["hsm", "init-dev", str(tmp_path / "dev")]) == 0
    finally:
        os.umask(old_umask)
    env = json.loads(capsys.readouterr().out)
    pin_file = Path(env["TRUSTSVC_PKCS11_PIN_FILE"])
    pin = pin_file.read_text()
    assert pin_file.stat().st_mode & 0o777 == 0o600 and len(pin.strip()) == 16
    assert main(["hsm", "init-dev", str(tmp_path / "dev")]) == 0  # again: the PIN is kept
    assert pin_file.read_text() == pin

    for name, value in env.items():
        monkeypatch.setenv(name, value)
    store = open_from_env(tmp_path)
    try:
        store.create("t", "ec-p256")
        assert store.signer("t").sign(b"data")
    finally:
        store.close()
