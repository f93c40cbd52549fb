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
