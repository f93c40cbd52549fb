"""`trustsvc demo` end to end: the pki demo, then the daemon over mTLS with one real call of each kind;
the daemon's JSON logs stay out of the terminal and go to a file the demo names. One run serves both."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> tuple[subprocess.CompletedProcess[str], Path]:
    """One `trustsvc demo` run in a fresh home: (the finished process, the home)."""
    home = tmp_path_factory.mktemp("demo")
    env = {k: v for k, v in os.environ.items() if not k.startswith("TRUSTSVC_")}
    proc = subprocess.run([sys.executable, "-m", "cli.main", "--home", str(home), "demo"], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=180)
    return proc, home


def test_demo_runs_every_kind_over_the_daemon(demo: tuple[subprocess.CompletedProcess[str], Path]) -> None:
    proc, tmp_path = demo
    out = proc.stdout
    assert proc.returncode == 0, out + proc.stderr[-4000:]
    assert "demo PASSED" in out and "FAIL" not in out, out
    lines = out.splitlines()
    for kind in ("data signature", "token", "seal", "pdf"):
        step = [i for i, line in enumerate(lines) if line.startswith(f"  [OK ] {kind} ")]
        assert step, f"no verified {kind} step in:\n{out}"
        assert "verified: valid" in lines[step[0] + 1], out
        assert lines[step[0] + 2].strip().startswith("verified by:"), out
    assert "daemon stop" in out and "daemon start" in out
    # the OpenSSL cross-checks ran and passed (a missing openssl is reported as skipped, never as a pass)
    assert "OpenSSL CLI: ok" in out and "SKIPPED" not in out, out
    data_step = next(i for i, line in enumerate(lines) if line.startswith("  [OK ] data signature "))
    assert "ExportCert + OpenSSL CLI ok" in lines[data_step + 2], out
    produced = tmp_path / "demo-output"
    for name in ("licence-signed.pdf", "seal-signature.der", "token.jwt"):
        assert (produced / name).stat().st_size > 0, name
    assert (produced / "licence-signed.pdf").read_bytes().startswith(b"%PDF")
    assert (produced / "token.jwt").read_text().count(".") == 2


def test_demo_writes_daemon_logs_to_a_file(demo: tuple[subprocess.CompletedProcess[str], Path]) -> None:
    proc, tmp_path = demo
    assert proc.returncode == 0, proc.stdout + proc.stderr[-4000:]
    assert '"msg"' not in proc.stderr and '"level"' not in proc.stderr, proc.stderr[-2000:]
    log = tmp_path / "logs" / "demo-daemon.log"
    assert f"daemon log: {log}" in proc.stdout
    records = [json.loads(line) for line in log.read_text().splitlines()]
    messages = [r["msg"] for r in records]
    assert "trustsvc daemon started" in messages and "trustsvc daemon stopped" in messages
    assert any("DocumentService/SignPdf" in json.dumps(r) for r in records), records  # the per-RPC lines


def test_demo_says_when_the_openssl_check_was_skipped(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from cli import demo as demo_module

    monkeypatch.setattr(demo_module.shutil, "which", lambda name: None)
    report = demo_module.run_demo(tmp_path)
    assert report["verify_openssl"] == demo_module.OPENSSL_MISSING
    assert "openssl is missing" in demo_module.summary(report) and "did not run" in demo_module.summary(report)
    daemon = {"ok": True, "seconds": 0, "output": str(tmp_path), "log": "-", "steps": []}
    assert demo_module.full_summary(report, daemon).endswith(f"demo PASSED ({demo_module.OPENSSL_MISSING})")
