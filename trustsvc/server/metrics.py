"""Prometheus metrics on a separate HTTP port: requests and latency by RPC and status, signatures, HSM errors."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, start_http_server


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
        self.in_flight = Gauge("trustsvc_in_flight", "requests being served", registry=self.registry)

    def serve(self, listen: str) -> object | None:
        """Start the /metrics HTTP server on ``host:port``; returns the server (or None when disabled)."""
        if not listen:
            return None
        host, _, port = listen.rpartition(":")
        server, _thread = start_http_server(int(port), addr=host or "0.0.0.0", registry=self.registry)
        return server
