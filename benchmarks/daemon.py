"""The daemon against a bare gRPC echo service, measured side by side in one run.

Both servers run as one process each (the daemon as ``trustsvc serve`` with its defaults: 16 worker
threads, SQLite audit store with WAL and synchronous=FULL, group commit) with the same mTLS
credentials; the echo server (16 worker threads too) has no interceptor, policy, audit or crypto.
Clients are threads in this process sharing one channel per target. Reports requests/s and p50/p99
latency for: echo, data signing, token issuance, seal signing, and batch signing (signatures/s)
next to the in-process signing rate of the same key.

Also reported, being less noisy than rates on a shared machine: the server's CPU time (user +
system, all threads, from /proc) per request for each job, and the fdatasync latency of the disk
holding the audit store (every signing/issuing reply waits for at least one).

Targets: token issuance >= 60% of echo; batch signing >= 80% of in-process signing.

    python -m benchmarks.daemon [--seconds 3] [--threads 8] [--batch 200] [--rounds 2]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import grpc

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.harness import Check, Rate, report  # noqa: E402

ECHO_METHOD = "/bench.Echo/Echo"


# ------------------------------------------------------------------ echo server (child process)
def echo_server(home: Path) -> None:
    from concurrent import futures

    from trustsvc.server.tls import ensure_dev_tls, server_credentials

    files = ensure_dev_tls(home)
    handler = grpc.method_handlers_generic_handler("bench.Echo", {
        "Echo": grpc.unary_unary_rpc_method_handler(lambda req, ctx: req)})  # bytes in, bytes out
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=16))
    server.add_generic_rpc_handlers((handler,))
    port = server.add_secure_port("127.0.0.1:0", server_credentials(files.server_cert, files.server_key, files.ca))
    server.start()
    print(json.dumps({"port": port}), flush=True)
    server.wait_for_termination()


def _spawn(args: list[str], env: dict[str, str]) -> tuple[subprocess.Popen[str], dict[str, Any]]:
    proc = subprocess.Popen([sys.executable, *args], cwd=ROOT, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.DEVNULL, text=True)
    assert proc.stdout is not None
    buf = ""
    while True:
        line = proc.stdout.readline()
        if not line:
            raise RuntimeError(f"{args} exited before reporting its port")
        buf += line
        try:
            return proc, json.loads(buf)
        except json.JSONDecodeError:
            continue


# ------------------------------------------------------------------ load generation
def run_load(fn: Callable[[], object], seconds: float, threads: int) -> tuple[float, list[float]]:
    """(requests/s, latencies in seconds) with ``threads`` closed-loop callers."""
    fn()
    latencies: list[list[float]] = [[] for _ in range(threads)]
    stop = time.perf_counter() + seconds

    def worker(i: int) -> None:
        lat = latencies[i]
        while True:
            t0 = time.perf_counter()
            if t0 >= stop:
                return
            fn()
            lat.append(time.perf_counter() - t0)

    start = time.perf_counter()
    ts = [threading.Thread(target=worker, args=(i,)) for i in range(threads)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    elapsed = time.perf_counter() - start
    flat = [x for lat in latencies for x in lat]
    return len(flat) / elapsed, flat


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of process ``pid`` (all its threads), from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def fdatasync_ms(directory: Path, n: int = 30) -> float:
    """Median time of one 4 KiB write + fdatasync in ``directory`` (what an audit commit waits for)."""
    path = directory / "fsync-probe"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o600)
    times = []
    try:
        for i in range(n):
            t0 = time.perf_counter()
            os.pwrite(fd, b"x" * 4096, (i % 8) * 4096)
            os.fdatasync(fd)
            times.append(time.perf_counter() - t0)
    finally:
        os.close(fd)
        path.unlink()
    return statistics.median(times) * 1000


def pct(values: list[float], p: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(p / 100 * (len(ordered) - 1))))] * 1000


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=3.0)
    ap.add_argument("--threads", type=int, default=8)
    ap.add_argument("--batch", type=int, default=200)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--echo-server", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.echo_server:
        echo_server(Path(args.echo_server))
        return 0

    from trustsvc.client import Client, seal_pb2, signature_pb2, token_pb2

    home = Path(tempfile.mkdtemp(prefix="trustsvc-bench-"))
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    daemon, info = _spawn(["-m", "cli.main", "--home", str(home), "serve", "--listen", "127.0.0.1:0",
                           "--metrics-listen", ""], env)
    # the JSON banner spans lines: _spawn accumulates until it parses
    echo, echo_info = _spawn([str(Path(__file__).resolve()), "--echo-server", str(home)], env)
    try:
        target = info["listening"]
        client = Client.from_home(home, target, "demo-client", server_name="localhost", timeout=60)
        client.wait_ready()
        tls = home / "tls"
        creds = grpc.ssl_channel_credentials((tls / "ca.pem").read_bytes(),
                                             (tls / "clients" / "demo-client-key.pem").read_bytes(),
                                             (tls / "clients" / "demo-client.pem").read_bytes())
        echo_channel = grpc.secure_channel(f"127.0.0.1:{echo_info['port']}", creds,
                                           options=[("grpc.ssl_target_name_override", "localhost")])
        echo_call = echo_channel.unary_unary(ECHO_METHOD)
        payload = b"x" * 64
        seal_id = client.call(client.seals.ListSeals, seal_pb2.ListSealsRequest()).seals[0].seal_id

        from trustsvc.keys.factory import open_keystore
        signer = open_keystore("soft", home).signer("default")
        batch_items = [signature_pb2.BatchSignDataRequest.Item(id=str(i), data=payload + str(i).encode())
                       for i in range(args.batch)]
        batch_req = signature_pb2.BatchSignDataRequest(key="default", items=batch_items)
        messages = [i.data for i in batch_items]

        jobs: dict[str, Callable[[], object]] = {
            "echo": lambda: echo_call(payload, timeout=30),
            "sign_data": lambda: client.signature.SignData(
                signature_pb2.SignDataRequest(key="default", data=payload), timeout=30),
            "token_issue": lambda: client.tokens.IssueToken(
                token_pb2.IssueTokenRequest(subject="110101199001011234", audience=["portal"]), timeout=30),
            "seal_sign": lambda: client.seals.SignWithSeal(
                seal_pb2.SignWithSealRequest(seal_id=seal_id, data=payload), timeout=30),
        }
        samples: dict[str, list[float]] = {k: [] for k in jobs}
        lats: dict[str, list[float]] = {k: [] for k in jobs}
        cpu: dict[str, list[float]] = {k: [0.0, 0.0] for k in jobs}  # server CPU seconds, requests
        server_pid = {k: daemon.pid for k in jobs} | {"echo": echo.pid}
        batch_rates, inproc_rates, batch_lat = [], [], []
        for _ in range(args.rounds):  # interleaved rounds: machine noise hits every job alike
            for name, fn in jobs.items():
                c0 = cpu_seconds(server_pid[name])
                rate, lat = run_load(fn, args.seconds, args.threads)
                cpu[name][0] += cpu_seconds(server_pid[name]) - c0
                cpu[name][1] += len(lat) + 1  # + the warm-up call
                samples[name].append(rate)
                lats[name].extend(lat)
            rate, lat = run_load(lambda: client.signature.BatchSignData(batch_req, timeout=60), args.seconds, 2)
            batch_rates.append(rate * args.batch)
            batch_lat.extend(lat)
            n, t0 = 0, time.perf_counter()
            while time.perf_counter() - t0 < args.seconds:
                signer.sign_batch(messages)
                n += len(messages)
            inproc_rates.append(n / (time.perf_counter() - t0))

        rates = {k: Rate(k, statistics.median(v), v) for k, v in samples.items()}
        rates["batch_sign (sigs/s)"] = Rate("batch_sign (sigs/s)", statistics.median(batch_rates), batch_rates)
        rates["in-process sign_batch (sigs/s)"] = Rate("in-process sign_batch (sigs/s)",
                                                       statistics.median(inproc_rates), inproc_rates)
        latency = {k: {"p50_ms": round(pct(v, 50), 3), "p99_ms": round(pct(v, 99), 3)} for k, v in lats.items()}
        latency["batch_sign (per request)"] = {"p50_ms": round(pct(batch_lat, 50), 3),
                                               "p99_ms": round(pct(batch_lat, 99), 3)}
        for k, v in latency.items():
            print(f"  latency {k:<28} p50 {v['p50_ms']:>8.2f} ms   p99 {v['p99_ms']:>8.2f} ms")
        server_cpu_us = {k: round(c / n * 1e6, 1) for k, (c, n) in cpu.items()}
        for k, us in server_cpu_us.items():
            print(f"  server CPU {k:<25} {us:>8.1f} us/request")
        sync_ms = fdatasync_ms(home)
        print(f"  fdatasync (audit store disk)         {sync_ms:>8.2f} ms")
        echo_rate = rates["echo"].ops_per_s
        checks = [
            Check("token issuance / echo", rates["token_issue"].ops_per_s / echo_rate, ">=", 0.60),
            Check("batch signing / in-process signing", rates["batch_sign (sigs/s)"].ops_per_s
                  / rates["in-process sign_batch (sigs/s)"].ops_per_s, ">=", 0.80),
        ]
        ok = report("daemon", rates, checks, {
            "latency": latency, "server_cpu_us_per_request": server_cpu_us, "fdatasync_ms": sync_ms,
            "threads": args.threads, "batch": args.batch, "seconds": args.seconds,
            "cpus": os.cpu_count(), "sign_data_vs_echo": rates["sign_data"].ops_per_s / echo_rate,
            "seal_sign_vs_echo": rates["seal_sign"].ops_per_s / echo_rate})
        client.close()
        echo_channel.close()
        return 0 if ok else 1
    finally:
        for proc in (daemon, echo):
            proc.terminate()
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                proc.kill()


if __name__ == "__main__":
    sys.exit(main())
