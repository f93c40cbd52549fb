"""``trustsvc tsa`` stamp / verify / serve."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from cli.main import main
from tests.unit.test_cms_pki import make_pki
from trustsvc.algorithms.encoding import private_key_to_pem


@pytest.fixture
def files(tmp_path: Path) -> dict[str, Path]:
    pki = make_pki("sm2", tsa=True)
    paths = {"key": tmp_path / "tsa.key", "cert": tmp_path / "tsa.pem", "root": tmp_path / "root.pem",
             "data": tmp_path / "doc.txt"}
    paths["key"].write_bytes(private_key_to_pem(pki.signer._key))
    paths["cert"].write_bytes(pki.leaf.to_pem())
    paths["root"].write_bytes(pki.root.to_pem())
    paths["data"].write_bytes(b"licence 91350100M000100Y43")
    return paths


def test_stamp_local_and_verify(files: dict[str, Path], capsys: pytest.CaptureFixture[str]) -> None:
    out = files["data"].parent / "doc.tst"
    assert main(["tsa", "stamp", str(files["data"]), "--key", str(files["key"]), "--cert", str(files["cert"]),
                 "--chain", str(files["root"]), "--out", str(out)]) == 0
    capsys.readouterr()
    assert main(["tsa", "verify", str(out), "--file", str(files["data"]), "--ca", str(files["root"]), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["ok"] and report["hash_algorithm"] == "sm3"
    files["data"].write_bytes(b"changed")
    assert main(["tsa", "verify", str(out), "--file", str(files["data"])]) == 1
    assert "IMPRINT_MISMATCH" in capsys.readouterr().out


def test_stamp_needs_a_source(files: dict[str, Path]) -> None:
    assert main(["tsa", "stamp", str(files["data"])]) == 2


def test_serve_and_stamp_by_url(files: dict[str, Path], capsys: pytest.CaptureFixture[str]) -> None:
    proc = subprocess.Popen([sys.executable, "-m", "cli.main", "tsa", "serve", "--port", "0", "--key",
                             str(files["key"]), "--cert", str(files["cert"])],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            cwd=Path(__file__).resolve().parents[2])
    try:
        line = proc.stdout.readline() if proc.stdout else ""
        assert "http://" in line, proc.stderr.read() if proc.stderr else ""
        url = line.split(" at ")[1].split()[0]
        out = files["data"].parent / "remote.tst"
        assert main(["tsa", "stamp", str(files["data"]), "--url", url, "--hash", "sha256", "--out", str(out)]) == 0
        assert main(["tsa", "verify", str(out), "--file", str(files["data"])]) == 0
    finally:
        proc.terminate()
        proc.wait(timeout=10)
