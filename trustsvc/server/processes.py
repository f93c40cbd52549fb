"""Several daemon processes on one port (``processes = N``): one Python interpreter (and GIL) each.

The supervisor bootstraps the home once (TLS, keys, policy, migrations), fixes the port (a free
one when the config says port 0), then starts N spawned children. Each child builds its own
Runtime and serves that port with ``grpc.so_reuseport``, so the kernel spreads *connections* over
the children; an HTTP/2 connection and all its calls stay with one process, so clients need
several connections to use them all. The children share the store: the audit log stays one hash
chain (appends are serialised by a file lock on SQLite, by the head row lock on PostgreSQL).
Child i serves metrics on the metrics port + i. SIGTERM/SIGINT is passed on and every child drains
and checkpoints; a child that dies is started again.

``pin_cpus``: process i keeps all its threads on the i-th CPU it may use. Only one thread of a
process runs Python at a time (the GIL); on one CPU a GIL handoff is a plain switch, while across
CPUs every handoff wakes a thread on another CPU (an interprocessor interrupt; measured: 26 against
10 context switches per token request, and about a third more CPU time).
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import multiprocessing
import os
import signal
import socket
import threading
import time
from multiprocessing.connection import Connection
from typing import Any

from trustsvc.server.config import Config
from trustsvc.server.logs import log

START_TIMEOUT_S = 120.0


def fixed_port(listen: str) -> tuple[str, int]:
    """``listen``'s host and port; port 0 becomes a free port (chosen once, for every child)."""
    host, _, port_text = listen.rpartition(":")
    port = int(port_text)
    if port:
        return host, port
    bare = host.strip("[]")
    with socket.socket(socket.AF_INET6 if ":" in bare else socket.AF_INET) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        s.bind((bare or "0.0.0.0", 0))
        return host, int(s.getsockname()[1])


def child_config(config: Config, index: int) -> Config:
    """Child ``index``'s config: the shared port; metrics on the metrics port + ``index``."""
    metrics = config.metrics_listen
    if metrics:
        host, _, port = metrics.rpartition(":")
        metrics = f"{host}:{int(port) + index}" if int(port) else metrics
    return dataclasses.replace(config, metrics_listen=metrics)


def pin_to_cpu(index: int) -> int:
    """Keep this process (its threads, and those it starts later) on its ``index``-th usable CPU."""
    cpus = sorted(os.sched_getaffinity(0))
    cpu = cpus[index % len(cpus)]
    for task in os.listdir("/proc/self/task") if os.path.isdir("/proc/self/task") else ["0"]:
        with contextlib.suppress(OSError):  # a thread that ended meanwhile
            os.sched_setaffinity(int(task), {cpu})
    return cpu


def _child(config: Config, index: int, ready: Connection) -> None:
    """One server process: serve until SIGTERM/SIGINT, then drain and checkpoint."""
    from trustsvc.server.app import Daemon

    if config.pin_cpus:
        pin_to_cpu(index)
    stopping = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda _s, _f: stopping.set())
    daemon = Daemon(config)
    port = daemon.start()
    ready.send((port, sorted(daemon.wired)))
    ready.close()
    stopping.wait()
    daemon.stop()


class Supervisor:
    """Starts, watches and stops ``config.processes`` daemon processes on one port."""

    def __init__(self, config: Config) -> None:
        self.config = config
        self.port = 0
        self.wired: dict[str, bool] = {}
        self._ctx = multiprocessing.get_context("spawn")  # no fork of a process that may hold gRPC threads
        self._children: list[Any] = []
        self._stopping = threading.Event()

    def start(self) -> int:
        from trustsvc.server.app import build_runtime

        rt = build_runtime(self.config)  # bootstrap once, before any child; fills in the TLS paths
        rt.db.close()
        host, self.port = fixed_port(self.config.listen)
        self.config = dataclasses.replace(self.config, listen=f"{host}:{self.port}")
        self._children = [None] * max(1, self.config.processes)
        try:
            pipes = [self._launch(i) for i in range(len(self._children))]  # start together, then wait
            for i, pipe in enumerate(pipes):
                self._await(i, pipe)
        except BaseException:
            self.stop()
            raise
        log(logging.INFO, "trustsvc supervisor started", port=self.port, processes=len(self._children))
        return self.port

    def _launch(self, index: int) -> Connection:
        receive, send = self._ctx.Pipe(duplex=False)
        proc = self._ctx.Process(target=_child, args=(child_config(self.config, index), index, send),
                                 name=f"trustsvc-{index}")
        proc.start()
        send.close()
        self._children[index] = proc
        return receive

    def _await(self, index: int, receive: Connection) -> None:
        """Wait for child ``index`` to report that it serves the port."""
        proc = self._children[index]
        if not receive.poll(START_TIMEOUT_S):
            raise RuntimeError(f"daemon process {index} did not start within {START_TIMEOUT_S:.0f} s")
        try:
            port, wired = receive.recv()
        except EOFError:
            raise RuntimeError(f"daemon process {index} exited while starting (code {proc.exitcode})") from None
        if port != self.port:
            raise RuntimeError(f"daemon process {index} listens on {port}, not {self.port}")
        self.wired = dict.fromkeys(wired, True)

    def watch(self) -> None:
        """Until :meth:`request_stop`: start again any child that died."""
        while not self._stopping.wait(1.0):
            for i, proc in enumerate(self._children):
                if proc is not None and not proc.is_alive() and not self._stopping.is_set():
                    log(logging.WARNING, "daemon process died; starting it again", index=i, code=proc.exitcode)
                    self._await(i, self._launch(i))

    def request_stop(self) -> None:
        self._stopping.set()

    def stop(self) -> None:
        """SIGTERM to every child (each drains within ``grace_s`` and checkpoints), then wait."""
        self._stopping.set()
        live = [p for p in self._children if p is not None and p.is_alive()]
        for proc in live:
            proc.terminate()
        deadline = time.monotonic() + self.config.grace_s + 15
        for proc in live:
            proc.join(max(0.1, deadline - time.monotonic()))
            if proc.is_alive():
                proc.kill()
                proc.join(5)
        log(logging.INFO, "trustsvc supervisor stopped")
