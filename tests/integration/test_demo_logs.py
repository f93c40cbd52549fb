"""`trustsvc demo` keeps the daemon's JSON logs out of the terminal: they go to a file it names."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]


def test_demo_writes_daemon_logs_to_a_file(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TRUSTSVC_")}
    proc = subprocess.run([sys.executable, "-m", "cli.main", "--home", str(tmp_path), "demo"], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=180)
    assert proc.returncode == 0, proc.stdout + proc.stderr[-4000:]
    assert '"msg"' not in proc.stderr and '"level"' not in proc.stderr, proc.stderr[-2000:]
    log = tmp_path / "logs" / "demo-daemon.log"
    assert f"daemon log: {log}" in proc.stdout
    records = [json.loads(line) for line in log.read_text().splitlines()]
    messages = [r["msg"] for r in records]
    assert "trustsvc daemon started" in messages and "trustsvc daemon stopped" in messages
    assert any("DocumentService/SignPdf" in json.dumps(r) for r in records), records  # the per-RPC lines
