"""The embedded default through the CLI: `trustsvc serve` on an empty home, as a subprocess.

The first start creates the database, keystore, dev CAs, demo seal, server and client certificates and the
policy, with private files for the owner only; its banner says how to connect, and a client built from exactly
what the banner prints makes a real call over mTLS. A second start on the same home reuses everything (no file
outside the database changes, same CA, same keys, same seal). SIGTERM stops it with exit 0.
"""

from __future__ import annotations

import hashlib
import json
import os
import queue
import signal
import stat
import subprocess
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import grpc
import pytest

from trustsvc.client import Client, seal_pb2
from trustsvc.server.embedded import DEFAULT_KEYS, DEFAULT_POLICY
from trustsvc.server.policy import Identity, Policy
from trustsvc.server.services.seal import DEMO_SEAL_NAME

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
START_S = 240  # generous: the first start makes keys and CAs on a shared 2-core machine
STOP_S = 60

PRIVATE_KEYS = ["ca/ca-key.pem", "tls/ca/ca-key.pem", "tls/server-key.pem", "tls/clients/admin-key.pem",
                "tls/clients/demo-client-key.pem", "keys/master.key"] + [f"keys/{n}.key.json" for n in DEFAULT_KEYS]
PUBLIC_FILES = ["ca/ca-cert.pem", "tls/ca.pem", "tls/server.pem", "tls/clients/admin.pem",
                "tls/clients/demo-client.pem"]


class Run:
    """One `trustsvc serve` process: its banner, what the test did with it, its exit code and stderr."""

    def __init__(self, home: Path, log: Path) -> None:
        env = {k: v for k, v in os.environ.items() if not k.startswith("TRUSTSVC_")}
        env["PYTHONPATH"] = str(ROOT)
        self.log = log
        with log.open("wb") as stderr:
            self.proc = subprocess.Popen([sys.executable, "-m", "cli.main", "--home", str(home), "serve",
                                          "--listen", "127.0.0.1:0", "--metrics-listen", ""],
                                         cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=stderr)
        self.banner_text = self._read_banner()
        self.info: dict[str, Any] = json.loads(self.banner_text)
        self.returncode: int | None = None

    def _read_banner(self) -> str:
        """The JSON banner (it spans lines), read in a thread so that a hung start fails instead of hanging."""
        lines: queue.Queue[bytes] = queue.Queue()

        def pump() -> None:
            assert self.proc.stdout is not None
            for line in self.proc.stdout:
                lines.put(line)
            lines.put(b"")

        threading.Thread(target=pump, daemon=True).start()
        text = ""
        while True:
            try:
                line = lines.get(timeout=START_S)
            except queue.Empty:
                self.proc.kill()
                pytest.fail(f"no banner within {START_S} s: {self.log.read_text()[-2000:]}")
            assert line, f"serve exited ({self.proc.wait()}) before its banner: {self.log.read_text()[-2000:]}"
            text += line.decode()
            try:
                json.loads(text)
                return text
            except json.JSONDecodeError:
                continue

    def stop(self) -> int:
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.returncode = self.proc.wait(timeout=STOP_S)
        finally:
            if self.proc.poll() is None:
                self.proc.kill()
                self.proc.wait()
        return self.returncode


def _run(home: Path, log: Path, action: Callable[[Run], dict[str, Any]]) -> tuple[Run, dict[str, Any]]:
    run = Run(home, log)
    try:
        found = action(run)
    finally:
        if run.proc.poll() is None:
            run.stop()
    return run, found


def _banner_client(info: dict[str, Any]) -> Client:
    """The client the banner's `connect.python` line makes, run as printed."""
    namespace: dict[str, Any] = {}
    exec(info["connect"]["python"], namespace)  # noqa: S102 - the line the daemon prints for people to paste
    return namespace["c"]


def _use(run: Run) -> dict[str, Any]:
    """What the tests check while the daemon runs: calls through the banner's connection details."""
    info, out = run.info, {}
    with _banner_client(info) as c:
        out["health"] = c.check_health()
        signed = c.sign_data("default", b"hello from the banner")
        cert = c.export_cert("default").certificate
        out["verified"] = c.verify_signed_data(b"hello from the banner", signed.signature, certificate=cert).valid
        out["default_cert"] = cert
        seals = c.call(c.seals.ListSeals, seal_pb2.ListSealsRequest()).seals
        out["seals"] = [(s.seal_id, s.name, s.seal_der) for s in seals]
    cl = info["client"]
    with Client(cl["target"], ca=cl["ca"], cert=cl["admin_cert"], key=cl["admin_key"],
                server_name=cl["server_name"]) as admin:
        out["keys"] = {f"{k.name}@{k.version}": bytes(k.public_key) for k in admin.list_keys()}
    # mTLS is required: the right CA but no client certificate gets no answer
    with Client(cl["target"], ca=cl["ca"], server_name=cl["server_name"], retries=0, timeout=20) as anonymous:
        with pytest.raises(grpc.RpcError) as refused:
            anonymous.sign_data("default", b"x")
        out["anonymous_code"] = refused.value.code()
    return out


def _snapshot(home: Path) -> dict[str, tuple[str, int, int]]:
    """Every file outside the SQLite database: (sha256, mtime_ns, mode)."""
    snap = {}
    for path in sorted(home.rglob("*")):
        if path.is_file() and not path.name.startswith("trustsvc.db"):
            st = path.stat()
            snap[str(path.relative_to(home))] = (hashlib.sha256(path.read_bytes()).hexdigest(), st.st_mtime_ns,
                                                 stat.S_IMODE(st.st_mode))
    return snap


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    base = tmp_path_factory.mktemp("embedded")
    home = base / "home"  # does not exist yet: `serve` makes it
    first, first_found = _run(home, base / "first.log", _use)
    files_after_first = _snapshot(home)
    second, second_found = _run(home, base / "second.log", _use)
    return {"home": home, "first": first, "first_found": first_found, "files_after_first": files_after_first,
            "second": second, "second_found": second_found, "files_after_second": _snapshot(home)}


def test_first_start_creates_the_embedded_default(runs: dict[str, Any]) -> None:
    home: Path = runs["home"]
    for rel in PRIVATE_KEYS + PUBLIC_FILES + ["trustsvc.db", "policy.toml", "ca/ca.json", "tls/ca/ca.json"]:
        assert (home / rel).is_file(), rel
    assert (home / "policy.toml").read_text() == DEFAULT_POLICY
    policy = Policy.load(home / "policy.toml")
    assert policy.check_operation(Identity("admin"), "KeyService", "CreateKey").admin
    policy.check_key(Identity("demo-client"), "default")
    found = runs["first_found"]
    assert {f"{n}@1" for n in DEFAULT_KEYS} <= set(found["keys"])
    ((seal_id, name, der),) = found["seals"]  # the demo seal, made once
    assert name == DEMO_SEAL_NAME and seal_id and der


def test_private_files_are_for_the_owner_only(runs: dict[str, Any]) -> None:
    home: Path = runs["home"]
    assert stat.S_IMODE(home.stat().st_mode) & 0o077 == 0
    for path in [home, *home.rglob("*")]:
        mode = stat.S_IMODE(path.stat().st_mode)
        assert mode & 0o002 == 0, f"{path} is world-writable ({mode:o})"
        if path.is_dir():
            assert mode & 0o077 == 0, f"directory {path} is open to others ({mode:o})"
        elif b"PRIVATE KEY" in path.read_bytes() or path.name.startswith("trustsvc.db"):
            assert mode & 0o077 == 0, f"{path} is readable by others ({mode:o})"
    for rel in PRIVATE_KEYS:
        assert stat.S_IMODE((home / rel).stat().st_mode) == 0o600, rel


def test_banner_says_how_to_connect(runs: dict[str, Any]) -> None:
    home: Path = runs["home"].absolute()
    info = runs["first"].info
    tls = home / "tls"
    host, _, port = info["listening"].rpartition(":")
    assert host == "127.0.0.1" and int(port) > 0
    assert info["mtls"] is True and info["home"] == str(home)
    cl = info["client"]
    assert cl["target"] == info["listening"] and cl["server_name"] == "localhost"
    assert cl["ca"] == info["server_ca"] == str(tls / "ca.pem")
    assert (cl["cert"], cl["key"]) == (str(tls / "clients" / "demo-client.pem"),
                                       str(tls / "clients" / "demo-client-key.pem"))
    assert (cl["admin_cert"], cl["admin_key"]) == (str(tls / "clients" / "admin.pem"),
                                                   str(tls / "clients" / "admin-key.pem"))
    for path in (cl["ca"], cl["cert"], cl["key"]):
        assert Path(path).is_absolute() and Path(path).is_file()
        assert path in info["connect"]["python"] and path in info["connect"]["grpcurl"]
    assert info["listening"] in info["connect"]["grpcurl"] and "-servername localhost" in info["connect"]["grpcurl"]
    assert info["policy"] == str(home / "policy.toml")


def test_a_client_made_from_the_banner_calls_over_mtls(runs: dict[str, Any]) -> None:
    for found in (runs["first_found"], runs["second_found"]):
        assert found["health"] == "SERVING"
        assert found["verified"] is True
        assert found["anonymous_code"] == grpc.StatusCode.UNAVAILABLE  # the TLS handshake wants a certificate


def test_second_start_reuses_everything(runs: dict[str, Any]) -> None:
    before, after = runs["files_after_first"], runs["files_after_second"]
    assert set(after) == set(before), set(after) ^ set(before)
    changed = [rel for rel in before if before[rel] != after[rel]]
    assert changed == [], f"regenerated or rewritten on the second start: {changed}"
    first, second = runs["first_found"], runs["second_found"]
    assert second["keys"] == first["keys"]  # same key names, same public keys
    assert second["default_cert"] == first["default_cert"]  # same SM2 dev CA certificate for the key
    assert second["seals"] == first["seals"]  # the demo seal is not made again
    b1, b2 = runs["first"].info, runs["second"].info
    assert {k: v for k, v in b1["client"].items() if k != "target"} == \
        {k: v for k, v in b2["client"].items() if k != "target"}


def test_sigterm_stops_with_exit_0(runs: dict[str, Any]) -> None:
    for run in (runs["first"], runs["second"]):
        assert run.returncode == 0, run.log.read_text()[-2000:]
        log = run.log.read_text()
        assert "signal received; draining" in log and "trustsvc daemon stopped" in log
