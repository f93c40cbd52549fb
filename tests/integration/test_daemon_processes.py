"""``processes = 2``: two daemon processes on one port (SO_REUSEPORT), each pinned to its own CPU, issue
tokens concurrently over many connections; both serve, and the shared audit log is one chain that
`trustsvc audit verify` accepts."""

from __future__ import annotations

import os
import threading
from pathlib import Path

import grpc
import pytest

from trustsvc import codegen
from trustsvc.audit import verify_log
from trustsvc.server.config import load_config
from trustsvc.server.processes import Supervisor
from trustsvc.store.database import Database

pytestmark = pytest.mark.integration
token_pb2, token_grpc = codegen.load("token")
CONNECTIONS, CALLS = 16, 6


def _channel(home: Path, port: int) -> grpc.Channel:
    tls = home / "tls"
    creds = grpc.ssl_channel_credentials((tls / "ca.pem").read_bytes(),
                                         (tls / "clients" / "demo-client-key.pem").read_bytes(),
                                         (tls / "clients" / "demo-client.pem").read_bytes())
    return grpc.secure_channel(f"127.0.0.1:{port}", creds, options=[
        ("grpc.ssl_target_name_override", "localhost"), ("grpc.use_local_subchannel_pool", 1)])  # own connection


def test_two_processes_share_one_port_and_one_audit_chain(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from cli.main import main

    home = tmp_path / "home"
    config = load_config(None, env={}, home=home, listen="127.0.0.1:0", metrics_listen="", grace_s=5,
                         processes=2, audit_checkpoint_every=7, pin_cpus=True)
    supervisor = Supervisor(config)
    port = supervisor.start()
    cpus = sorted(os.sched_getaffinity(0))
    assert [os.sched_getaffinity(p.pid) for p in supervisor._children] == [{cpus[0]}, {cpus[1 % len(cpus)]}]
    prefixes: set[str] = set()
    errors: list[BaseException] = []

    def issue(k: int) -> None:
        with _channel(home, port) as channel:
            stub = token_grpc.TokenServiceStub(channel)
            try:
                for i in range(CALLS):
                    _, call = stub.IssueToken.with_call(token_pb2.IssueTokenRequest(subject=f"s{k}-{i}"), timeout=60)
                    rid = dict(call.trailing_metadata())["x-request-id"]
                    prefixes.add(rid[:16])  # a generated request id starts with its process's random prefix
            except BaseException as exc:  # noqa: BLE001 - reported below
                errors.append(exc)

    try:
        threads = [threading.Thread(target=issue, args=(k,)) for k in range(CONNECTIONS)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    finally:
        supervisor.stop()
    assert not errors, errors[:3]
    assert len(prefixes) == 2, prefixes  # both processes served (16 connections spread by the kernel)
    db = Database(config.database)
    report = verify_log(db)
    assert report.ok and report.records == CONNECTIONS * CALLS and report.checkpoints >= 1, report.problems
    assert main(["audit", "verify", "--db", config.database]) == 0
    assert "ok" in capsys.readouterr().out.lower()
