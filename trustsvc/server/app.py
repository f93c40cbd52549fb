"""The daemon: builds the runtime, registers services, health and reflection, serves with mTLS.

``Daemon(config).start()`` returns the bound port; ``stop()`` drains in-flight requests (health
goes NOT_SERVING first), then signs an audit checkpoint. ``serve(config)`` runs until SIGTERM/SIGINT.
"""

from __future__ import annotations

import importlib
import logging
import os
import signal
import threading
from collections.abc import Callable
from concurrent import futures
from pathlib import Path
from typing import Any

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from trustsvc import codegen
from trustsvc.audit import AuditLog
from trustsvc.pki.certificate import Certificate
from trustsvc.server import logs
from trustsvc.server.config import Config
from trustsvc.server.housekeeping import Housekeeper
from trustsvc.server.interceptors import TrustsvcInterceptor
from trustsvc.server.logs import log
from trustsvc.server.metrics import Metrics
from trustsvc.server.policy import Policy
from trustsvc.server.runtime import Runtime
from trustsvc.server.tls import server_credentials
from trustsvc.store.database import Database
from trustsvc.token.revocation import RevocationStore

# (proto module, service name, implementation "module:Class", library it needs)
SERVICES: list[tuple[str, str, str, str]] = [
    ("signature", "SignatureService", "trustsvc.server.services.signature:SignatureService", "trustsvc.pki"),
    ("key", "KeyService", "trustsvc.server.services.key:KeyService", "trustsvc.keys"),
    ("token", "TokenService", "trustsvc.server.services.token:TokenService", "trustsvc.token"),
    ("seal", "SealService", "trustsvc.server.services.seal:SealService", "trustsvc.seal"),
    ("document", "DocumentService", "trustsvc.server.services.document:DocumentService", "trustsvc.pdf"),
    ("timestamp", "TimeStampService", "trustsvc.server.services.timestamp:TimeStampService", "trustsvc.tsa"),
]


def _implementation(spec: str, service: str, library: str, rt: Runtime) -> Any:
    """The servicer for ``service``; a missing module stops the daemon from starting (no placeholder RPCs)."""
    module_name, _, cls = spec.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        raise ImportError(f"{service} cannot be served: module {exc.name} is missing ({library} and its "
                          f"dependencies must be installed): {exc}", name=exc.name) from exc
    return getattr(module, cls)(rt)


def build_runtime(config: Config, *, keystore: Any = None, db: Database | None = None,
                  audit_signer: Any = None) -> Runtime:
    """Open the store, keystore, CA, audit log and policy named by ``config`` (bootstrapping the embedded default)."""
    from trustsvc.server.embedded import bootstrap, default_keys, ensure_key, open_sm2_ca, require_key_spec

    bootstrap(config)
    db = db or Database(config.database)
    ca = None
    opened_here = keystore is None
    if keystore is None:
        from trustsvc.keys.factory import open_keystore

        keystore = open_keystore(config.keystore, Path(config.home))
    try:
        if opened_here:
            require_key_spec(keystore, config.default_key_spec)  # a token without the mechanism: refuse to start
            ca = open_sm2_ca(Path(config.home))  # the dev CA's own root stays SM2; it certifies keys of every kind
            for name, (spec, profile) in default_keys(config.default_key_spec).items():
                ensure_key(keystore, ca, name, spec, profile)
        if audit_signer is None:
            audit_signer = keystore.signer(config.audit_key)
        audit = AuditLog(db, audit_signer, checkpoint_every=config.audit_checkpoint_every,
                         shared=config.processes > 1)
        policy_path = Path(config.policy)
        anchors = [ca.certificate] if ca is not None else []
        return Runtime(config, db, keystore, audit, Policy.load(policy_path), Metrics(), trust_anchors=anchors,
                       ca=ca, policy_path=policy_path)
    except BaseException:
        close = getattr(keystore, "close", None)
        if opened_here and close is not None:  # a refused start leaves no token session open
            close()
        raise


class Daemon:
    def __init__(self, config: Config, runtime: Runtime | None = None) -> None:
        logs.setup(config.log_level)
        self.config = config
        self.rt = runtime or build_runtime(config)
        self.health = health.HealthServicer(experimental_non_blocking=True)
        self.server: grpc.Server | None = None
        self.port = 0
        self.metrics_server: Any = None
        self.wired: dict[str, bool] = {}  # service -> registered (every service is, or the daemon does not start)
        self.housekeeper = Housekeeper(self.rt.idempotency, RevocationStore(self.rt.db),
                                       interval_s=config.housekeeping_interval_s)

    def _build(self) -> grpc.Server:
        cfg = self.config
        interceptor = TrustsvcInterceptor(self.rt.policy, self.rt.metrics, insecure=cfg.insecure,
                                          default_deadline_s=cfg.default_deadline_s,
                                          audit_refusal=self.rt.record_refusal)
        server = grpc.server(
            futures.ThreadPoolExecutor(max_workers=cfg.workers, thread_name_prefix="trustsvc-rpc"),
            interceptors=[interceptor], maximum_concurrent_rpcs=cfg.max_concurrency,
            options=[("grpc.max_receive_message_length", cfg.max_message_bytes),
                     ("grpc.max_send_message_length", cfg.max_message_bytes),
                     ("grpc.so_reuseport", 1 if cfg.processes > 1 else 0)])
        names = [health_pb2.DESCRIPTOR.services_by_name["Health"].full_name, reflection.SERVICE_NAME]
        for proto, service, impl, library in SERVICES:
            pb, pb_grpc = codegen.load(proto)
            servicer = _implementation(impl, service, library, self.rt)
            getattr(pb_grpc, f"add_{service}Servicer_to_server")(servicer, server)
            self.wired[service] = True
            full = pb.DESCRIPTOR.services_by_name[service].full_name
            names.append(full)
            self.health.set(full, health_pb2.HealthCheckResponse.SERVING)
        self.health.set("", health_pb2.HealthCheckResponse.SERVING)
        health_pb2_grpc.add_HealthServicer_to_server(self.health, server)
        reflection.enable_server_reflection(names, server)
        return server

    def start(self) -> int:
        self.server = self._build()
        cfg = self.config
        if cfg.insecure:
            self.port = self.server.add_insecure_port(cfg.listen)
        else:
            creds = server_credentials(Path(cfg.tls_cert), Path(cfg.tls_key), Path(cfg.tls_client_ca))
            self.port = self.server.add_secure_port(cfg.listen, creds)
        if not self.port:
            raise OSError(f"cannot listen on {cfg.listen}")
        self.server.start()
        self.metrics_server = self.rt.metrics.serve(cfg.metrics_listen)
        self.housekeeper.start()
        log(logging.INFO, "trustsvc daemon started", listen=cfg.listen, port=self.port, mtls=not cfg.insecure,
            pid=os.getpid(), processes=cfg.processes,
            services=sorted(self.wired),
            metrics=cfg.metrics_listen or None)
        return self.port

    def stop(self, grace: float | None = None) -> None:
        """Refuse new calls, finish in-flight ones within ``grace`` seconds, checkpoint the audit log."""
        if self.server is None:
            return
        self.health.enter_graceful_shutdown()
        self.server.stop(self.config.grace_s if grace is None else grace).wait()
        self.server = None
        self.housekeeper.stop()
        if self.metrics_server is not None:
            self.metrics_server.shutdown()
            self.metrics_server = None
        try:
            self.rt.audit.checkpoint()
        except Exception as exc:  # noqa: BLE001 - shutdown must finish
            log(logging.WARNING, "final audit checkpoint failed", error=str(exc)[:200])
        close = getattr(self.rt.keystore, "close", None)
        if close is not None:  # an HSM keystore logs out and closes its token sessions
            try:
                close()
            except Exception as exc:  # noqa: BLE001
                log(logging.WARNING, "closing the keystore failed", error=str(exc)[:200])
        log(logging.INFO, "trustsvc daemon stopped")

    def wait(self) -> None:
        if self.server is not None:
            self.server.wait_for_termination()


def serve(config: Config, *, on_started: Callable[[Any], None] | None = None) -> None:
    """Run until SIGTERM or SIGINT, then drain gracefully (``config.processes`` > 1: a Supervisor)."""
    if config.processes > 1:
        _supervise(config, on_started)
        return
    if config.pin_cpus:  # before any thread starts: they all inherit it
        from trustsvc.server.processes import pin_to_cpu

        pin_to_cpu(0)
    stopping = threading.Event()

    def handle(signum: int, _frame: object) -> None:
        log(logging.INFO, "signal received; draining", signal=signum)
        stopping.set()

    # before the banner: a SIGTERM the moment it appears must drain, not kill
    signal.signal(signal.SIGTERM, handle)
    signal.signal(signal.SIGINT, handle)
    daemon = Daemon(config)
    daemon.start()
    if on_started is not None:
        on_started(daemon)
    stopping.wait()
    daemon.stop()


def _supervise(config: Config, on_started: Callable[[Any], None] | None) -> None:
    from trustsvc.server.processes import Supervisor

    logs.setup(config.log_level)
    supervisor = Supervisor(config)
    supervisor.start()

    def handle(signum: int, _frame: object) -> None:
        log(logging.INFO, "signal received; stopping the daemon processes", signal=signum)
        supervisor.request_stop()

    signal.signal(signal.SIGTERM, handle)
    signal.signal(signal.SIGINT, handle)
    if on_started is not None:
        on_started(supervisor)
    try:
        supervisor.watch()
    finally:
        supervisor.stop()


def trust_anchor_paths(paths: list[str]) -> list[Certificate]:
    return [c for p in paths for c in Certificate.load_all(Path(p).read_bytes())]
