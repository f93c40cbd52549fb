"""Prometheus metrics on a separate HTTP port: requests and latency by RPC and status, signatures, HSM errors."""

from __future__ import annotations

from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, start_http_server

from trustsvc.errors import HsmError, StoreError, TrustsvcError


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter("trustsvc_requests", "gRPC requests by method and status code",
                                ["method", "code"], registry=self.registry)
        self.latency = Histogram("trustsvc_request_seconds", "gRPC request latency by method", ["method"],
                                 registry=self.registry,
                                 buckets=(.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30))
        self.signatures = Counter("trustsvc_signatures", "signatures made, by key", ["key"], registry=self.registry)
        self.hsm_errors = Counter("trustsvc_hsm_errors", "HSM (PKCS#11) errors by reason", ["reason"],
                                  registry=self.registry)
        self.audit_failures = Counter("trustsvc_audit_failures", "audit appends that failed (request refused)",
                                      registry=self.registry)
        self.policy_errors = Counter("trustsvc_policy_errors", "policy file reloads that failed (old policy kept)",
                                     registry=self.registry)
        self.in_flight = Gauge("trustsvc_in_flight", "requests being served", registry=self.registry)
        self._signed: dict[str, Any] = {}

    def signed(self, key_ref: str, n: int = 1) -> None:
        """Count ``n`` signatures made with ``key_ref`` (the labelled child is looked up once per key)."""
        child = self._signed.get(key_ref)
        if child is None:
            child = self._signed[key_ref] = self.signatures.labels(key_ref)
        child.inc(n)

    def hsm_error(self, exc: HsmError) -> None:
        """Count one HSM error by reason, once however many layers see it (the keystore reports
        errors at their source, so batch items and audit checkpoints count too; see
        ``Pkcs11KeyStore.observe_errors``)."""
        if getattr(exc, "counted", False):
            return
        exc.counted = True  # type: ignore[attr-defined]
        self.hsm_errors.labels(exc.reason).inc()

    def count_error(self, exc: TrustsvcError) -> None:
        """HSM errors by reason; store errors are audit failures (the request was refused)."""
        if isinstance(exc, HsmError):
            self.hsm_error(exc)
        if isinstance(exc, StoreError):
            self.audit_failures.inc()

    def serve(self, listen: str) -> object | None:
        """Start the /metrics HTTP server on ``host:port``; returns the server (or None when disabled)."""
        if not listen:
            return None
        host, _, port = listen.rpartition(":")
        server, _thread = start_http_server(int(port), addr=host or "0.0.0.0", registry=self.registry)
        return server


class MethodMetrics:
    """The labelled children of one RPC method, looked up once instead of per request."""

    __slots__ = ("_by_code", "_in_flight", "_latency", "_method", "_requests")

    def __init__(self, metrics: Metrics, method: str) -> None:
        self._method = method
        self._requests = metrics.requests
        self._latency = metrics.latency.labels(method)
        self._in_flight = metrics.in_flight
        self._by_code: dict[str, Any] = {}

    def started(self) -> None:
        self._in_flight.inc()

    def done(self, code: str, seconds: float) -> None:
        child = self._by_code.get(code)
        if child is None:
            child = self._by_code[code] = self._requests.labels(self._method, code)
        child.inc()
        self._latency.observe(seconds)
        self._in_flight.dec()
