"""`trustsvc demo` end to end: the pki demo, then the daemon over mTLS with one real call of each kind."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]


def test_demo_runs_every_kind_over_the_daemon(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TRUSTSVC_")}
    proc = subprocess.run([sys.executable, "-m", "cli.main", "--home", str(tmp_path), "demo"], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=180)
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
