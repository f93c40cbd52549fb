"""The daemon against a bare gRPC echo service, measured side by side in one run.

Each configuration runs both servers with the same number of processes P (``--processes``, default
"1,N" with N the CPU count): the daemon as ``trustsvc serve`` with its defaults (16 worker threads
per process, SQLite audit store with WAL and synchronous=FULL, group commit) and ``processes = P``;
the echo server as P processes (16 worker threads each) on one port with SO_REUSEPORT, with the same
mTLS credentials and no interceptor, policy, audit or crypto. With ``--pin`` (default: when P > 1)
the daemon runs with ``pin_cpus = true`` and echo process i is pinned to the same CPU as daemon
process i. Clients are threads in this process (not pinned).
With P = 1 they share one channel per target, as before. With P > 1 there are 4 channels per client
thread, each its own HTTP/2 connection (a connection and its calls stay with the process that
accepted it), and calls go round them, for echo and the daemon alike, so the comparison stays fair;
the kernel spreads connections by hash, so the split is uneven (printed for the daemon).

Reports requests/s and p50/p99 latency for: echo, data signing, token issuance, seal signing, and
batch signing (signatures/s) next to the in-process signing rate of the same key, measured in P
processes signing at once (the same CPU the daemon may use).

Also measured on the echo server: ``echo_sign``, the same bare handler returning one SM2 signature
over the request with the daemon's "default" key and engine, and nothing else (no audit, policy,
interceptor or protobuf). It is the floor for any RPC that signs once: ``echo_sign / echo`` is the
highest ratio such an RPC could reach here, and ``token_issue / echo_sign`` is how close the
daemon's token issuance comes to that floor.

Also reported, being less noisy than rates on a shared machine: the servers' CPU time (user +
system, all threads of all their processes, from /proc) per request for each job, and the fdatasync
latency of the disk holding the audit store (every signing/issuing reply waits for at least one).

Targets: token issuance >= 60% of echo; batch signing >= 80% of in-process signing.

    python -m benchmarks.daemon [--seconds 3] [--threads 8] [--batch 200] [--rounds 2] [--processes 1,2]
"""

from __future__ import annotations

import argparse
import dataclasses
import itertools
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

from benchmarks.harness import RESULTS, Check, Rate, report  # noqa: E402

ECHO_METHOD = "/bench.Echo/Echo"
ECHO_SIGN_METHOD = "/bench.Echo/EchoSign"  # echo that returns one SM2 signature over the request: a signing floor


# ------------------------------------------------------------------ echo server (child process)
def echo_server(home: Path, port: int = 0, pin: int = -1) -> None:
    from concurrent import futures

    from trustsvc.server.processes import pin_to_cpu
    from trustsvc.server.tls import ensure_dev_tls, server_credentials

    if pin >= 0:  # as the daemon's process number ``pin`` does with pin_cpus
        pin_to_cpu(pin)
    from trustsvc.keys.factory import open_keystore

    files = ensure_dev_tls(home)
    signer = open_keystore("soft", home).signer("default")  # the daemon's SignData key and engine
    handler = grpc.method_handlers_generic_handler("bench.Echo", {
        "Echo": grpc.unary_unary_rpc_method_handler(lambda req, ctx: req),  # bytes in, bytes out
        "EchoSign": grpc.unary_unary_rpc_method_handler(lambda req, ctx: signer.sign(req))})
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=16),
                         options=[("grpc.so_reuseport", 1 if port else 0)])
    server.add_generic_rpc_handlers((handler,))
    port = server.add_secure_port(f"127.0.0.1:{port}", server_credentials(files.server_cert, files.server_key,
                                                                          files.ca))
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
def run_load(fn: Callable[[int], object], seconds: float, threads: int) -> tuple[float, list[float]]:
    """(requests/s, latencies in seconds) with ``threads`` closed-loop callers; caller i calls ``fn(i)``."""
    fn(0)
    latencies: list[list[float]] = [[] for _ in range(threads)]
    stop = time.perf_counter() + seconds

    def worker(i: int) -> None:
        lat = latencies[i]
        while True:
            t0 = time.perf_counter()
            if t0 >= stop:
                return
            fn(i)
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


def tree_cpu_seconds(pids: list[int]) -> float:
    """CPU time of ``pids`` and all their descendants (a supervisor's daemon processes)."""
    parents: dict[int, int] = {}
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            try:
                parents[int(d.name)] = int((d / "stat").read_text().rpartition(")")[2].split()[1])
            except (OSError, IndexError, ValueError):
                continue
    tree, todo = set(pids), list(pids)
    while todo:
        parent = todo.pop()
        for child, ppid in parents.items():
            if ppid == parent and child not in tree:
                tree.add(child)
                todo.append(child)
    total = 0.0
    for pid in tree:
        try:
            total += cpu_seconds(pid)
        except OSError:
            pass
    return total


def _sign_for(home: str, seconds: float, messages: list[bytes]) -> int:
    """In-process baseline worker: signatures made with key "default" in ``seconds``."""
    from trustsvc.keys.factory import open_keystore

    signer = open_keystore("soft", Path(home)).signer("default")
    n, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        signer.sign_batch(messages)
        n += len(messages)
    return n


def inprocess_rate(home: Path, seconds: float, messages: list[bytes], processes: int) -> float:
    """Signatures/s of ``processes`` processes signing at once (one process: this one)."""
    if processes == 1:
        return _sign_for(str(home), seconds, messages) / seconds
    import multiprocessing

    with multiprocessing.get_context("spawn").Pool(processes) as pool:
        pool.apply(_sign_for, (str(home), 0.1, messages[:2]))  # import and key load outside the timing
        pending = [pool.apply_async(_sign_for, (str(home), seconds, messages)) for _ in range(processes)]
        return sum(p.get() for p in pending) / seconds


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
    ap.add_argument("--processes", default=f"1,{os.cpu_count() or 1}",
                    help="comma-separated server process counts to measure (default 1,<CPUs>)")
    ap.add_argument("--echo-server", help=argparse.SUPPRESS)
    ap.add_argument("--pin", choices=("auto", "on", "off"), default="auto",
                    help="pin_cpus for the daemon and the same pinning for echo (auto: when processes > 1)")
    ap.add_argument("--echo-port", type=int, default=0, help=argparse.SUPPRESS)
    ap.add_argument("--echo-pin", type=int, default=-1, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.echo_server:
        echo_server(Path(args.echo_server), args.echo_port, args.echo_pin)
        return 0
    counts = sorted({max(1, int(x)) for x in args.processes.split(",") if x.strip()})
    results = {p: run_configuration(args, p) for p in counts}
    ok = True
    for p, (rates, checks, extra) in results.items():
        ok = report(f"daemon-{p}proc", rates, checks, extra) and ok
    combined = {"benchmark": "daemon", "configurations": {
        str(p): {"rates": {k: dataclasses.asdict(v) for k, v in rates.items()},
                 "checks": [dict(dataclasses.asdict(c), passed=c.passed) for c in checks], **extra}
        for p, (rates, checks, extra) in results.items()}}
    (RESULTS / "daemon.json").write_text(json.dumps(combined, indent=2))
    return 0 if ok else 1


def run_configuration(args: argparse.Namespace, processes: int) -> tuple[dict[str, Rate], list[Check], dict[str, Any]]:
    """Both servers with ``processes`` processes each; the jobs interleaved over ``args.rounds``."""
    from trustsvc import codegen
    from trustsvc.client import Client, seal_pb2, signature_pb2, token_pb2
    from trustsvc.server.processes import fixed_port

    pin = args.pin == "on" or (args.pin == "auto" and processes > 1)
    print(f"\n-- {processes} server process(es) each, {'one CPU per process' if pin else 'not pinned'}", flush=True)
    home = Path(tempfile.mkdtemp(prefix="trustsvc-bench-"))
    env = dict(os.environ, PYTHONPATH=str(ROOT), TRUSTSVC_PROCESSES=str(processes), TRUSTSVC_PIN_CPUS=str(pin))
    daemon, info = _spawn(["-m", "cli.main", "--home", str(home), "serve", "--listen", "127.0.0.1:0",
                           "--metrics-listen", ""], env)
    # the JSON banner spans lines: _spawn accumulates until it parses
    echo_port = fixed_port("127.0.0.1:0")[1] if processes > 1 else 0
    echoes = []
    for i in range(processes):
        proc, echo_info = _spawn([str(Path(__file__).resolve()), "--echo-server", str(home),
                                  "--echo-port", str(echo_port), "--echo-pin", str(i if pin else -1)], env)
        echoes.append(proc)
    try:
        target = info["listening"]
        client = Client.from_home(home, target, "demo-client", server_name="localhost", timeout=60)
        client.wait_ready()
        tls = home / "tls"
        creds = grpc.ssl_channel_credentials((tls / "ca.pem").read_bytes(),
                                             (tls / "clients" / "demo-client-key.pem").read_bytes(),
                                             (tls / "clients" / "demo-client.pem").read_bytes())
        n_channels = 1 if processes == 1 else 4 * args.threads
        options = [("grpc.ssl_target_name_override", "localhost"), ("grpc.use_local_subchannel_pool", 1),
                   ("grpc.max_receive_message_length", 64 << 20)]
        echo_channels = [grpc.secure_channel(f"127.0.0.1:{echo_info['port']}", creds, options=options)
                         for _ in range(n_channels)]
        channels = [grpc.secure_channel(target, creds, options=options) for _ in range(n_channels)]
        _, token_grpc = codegen.load("token")
        _, signature_grpc = codegen.load("signature")
        _, seal_grpc = codegen.load("seal")
        echo_calls = [c.unary_unary(ECHO_METHOD) for c in echo_channels]
        echo_sign_calls = [c.unary_unary(ECHO_SIGN_METHOD) for c in echo_channels]
        tokens = [token_grpc.TokenServiceStub(c) for c in channels]
        signatures = [signature_grpc.SignatureServiceStub(c) for c in channels]
        seals = [seal_grpc.SealServiceStub(c) for c in channels]
        payload = b"x" * 64
        seal_id = client.call(client.seals.ListSeals, seal_pb2.ListSealsRequest()).seals[0].seal_id
        spread = _spread(tokens)

        batch_items = [signature_pb2.BatchSignDataRequest.Item(id=str(i), data=payload + str(i).encode())
                       for i in range(args.batch)]
        batch_req = signature_pb2.BatchSignDataRequest(key="default", items=batch_items)
        messages = [i.data for i in batch_items]
        sign_req = signature_pb2.SignDataRequest(key="default", data=payload)
        token_req = token_pb2.IssueTokenRequest(subject="110101199001011234", audience=["portal"])
        seal_req = seal_pb2.SignWithSealRequest(seal_id=seal_id, data=payload)

        turn = itertools.count()  # calls go round the channels: load follows the connections

        def pick(stubs: list[Any]) -> Any:
            return stubs[next(turn) % n_channels]

        jobs: dict[str, Callable[[int], object]] = {
            "echo": lambda i: pick(echo_calls)(payload, timeout=30),
            "echo_sign": lambda i: pick(echo_sign_calls)(payload, timeout=30),
            "sign_data": lambda i: pick(signatures).SignData(sign_req, timeout=30),
            "token_issue": lambda i: pick(tokens).IssueToken(token_req, timeout=30),
            "seal_sign": lambda i: pick(seals).SignWithSeal(seal_req, timeout=30),
        }
        samples: dict[str, list[float]] = {k: [] for k in jobs}
        lats: dict[str, list[float]] = {k: [] for k in jobs}
        cpu: dict[str, list[float]] = {k: [0.0, 0.0] for k in jobs}  # server CPU seconds, requests
        client_cpu: dict[str, float] = dict.fromkeys(jobs, 0.0)  # this process's CPU seconds
        server_pids = {k: [daemon.pid] for k in jobs} | dict.fromkeys(("echo", "echo_sign"), [e.pid for e in echoes])
        batch_threads = 2 if processes == 1 else 2 * processes
        batch_rates, inproc_rates, batch_lat, batch_cpu = [], [], [], [0.0, 0.0]
        for _ in range(args.rounds):  # interleaved rounds: machine noise hits every job alike
            for name, fn in jobs.items():
                c0, own0 = tree_cpu_seconds(server_pids[name]), time.process_time()
                rate, lat = run_load(fn, args.seconds, args.threads)
                cpu[name][0] += tree_cpu_seconds(server_pids[name]) - c0
                client_cpu[name] += time.process_time() - own0
                cpu[name][1] += len(lat) + 1  # + the warm-up call
                samples[name].append(rate)
                lats[name].extend(lat)
            c0 = tree_cpu_seconds([daemon.pid])
            rate, lat = run_load(lambda i: pick(signatures).BatchSignData(batch_req, timeout=60),
                                 args.seconds, batch_threads)
            batch_cpu[0] += tree_cpu_seconds([daemon.pid]) - c0
            batch_cpu[1] += (len(lat) + 1) * args.batch
            batch_rates.append(rate * args.batch)
            batch_lat.extend(lat)
            inproc_rates.append(inprocess_rate(home, args.seconds, messages, processes))

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
        server_cpu_us["batch_sign (per signature)"] = round(batch_cpu[0] / batch_cpu[1] * 1e6, 1)
        client_cpu_us = {k: round(c / cpu[k][1] * 1e6, 1) for k, c in client_cpu.items()}
        for k, us in server_cpu_us.items():
            own = f"   (client {client_cpu_us[k]:.0f})" if k in client_cpu_us else ""
            print(f"  server CPU {k:<25} {us:>8.1f} us/request{own}")
        if processes > 1:
            print(f"  daemon connections per process        {sorted(spread.values(), reverse=True)}")
        sync_ms = fdatasync_ms(home)
        print(f"  fdatasync (audit store disk)         {sync_ms:>8.2f} ms")
        echo_rate = rates["echo"].ops_per_s
        floor = rates["echo_sign"].ops_per_s / echo_rate
        token_vs_floor = rates["token_issue"].ops_per_s / rates["echo_sign"].ops_per_s
        print(f"  echo + one SM2 signature / echo      {floor:>8.2f}   (no RPC that signs can beat this)")
        print(f"  token issuance / (echo + signature)  {token_vs_floor:>8.2f}")
        checks = [
            Check("token issuance / echo", rates["token_issue"].ops_per_s / echo_rate, ">=", 0.60),
            Check("batch signing / in-process signing", rates["batch_sign (sigs/s)"].ops_per_s
                  / rates["in-process sign_batch (sigs/s)"].ops_per_s, ">=", 0.80),
        ]
        extra = {
            "processes": processes, "pin_cpus": pin, "channels": n_channels,
            "daemon_connections_per_process": sorted(spread.values()),
            "latency": latency, "server_cpu_us_per_request": server_cpu_us,
            "client_cpu_us_per_request": client_cpu_us, "fdatasync_ms": sync_ms,
            "threads": args.threads, "batch": args.batch, "batch_threads": batch_threads, "seconds": args.seconds,
            "cpus": os.cpu_count(), "sign_data_vs_echo": rates["sign_data"].ops_per_s / echo_rate,
            "echo_sign_vs_echo": floor,
            "token_issue_vs_echo_sign": token_vs_floor,
            "seal_sign_vs_echo": rates["seal_sign"].ops_per_s / echo_rate}
        client.close()
        for ch in echo_channels + channels:
            ch.close()
        return rates, checks, extra
    finally:
        for proc in (daemon, *echoes):
            proc.terminate()
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()


def _spread(token_stubs: list[Any]) -> dict[str, int]:
    """Connections per daemon process, told apart by the per-process prefix of generated request ids."""
    from trustsvc.client import token_pb2

    counts: dict[str, int] = {}
    for stub in token_stubs:
        _, call = stub.GetJwks.with_call(token_pb2.GetJwksRequest(), timeout=30)
        prefix = dict(call.trailing_metadata()).get("x-request-id", "")[:16]
        counts[prefix] = counts.get(prefix, 0) + 1
    return counts


if __name__ == "__main__":
    sys.exit(main())
