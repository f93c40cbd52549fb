"""`trustsvc serve`: run the gRPC signing daemon (embedded default when no config is given)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from cli.common import home


def _serve(args: argparse.Namespace) -> int:
    from trustsvc.server import load_config, serve

    overrides = {"listen": args.listen, "metrics_listen": args.metrics_listen}
    if args.config is None or args.home:
        overrides["home"] = str(home(args))
    config = load_config(args.config, **overrides)

    def started(daemon: object) -> None:
        print(json.dumps(banner(config, daemon.port,  # type: ignore[attr-defined]
                                sorted(daemon.wired)),  # type: ignore[attr-defined]
                         indent=2, ensure_ascii=False), flush=True)

    serve(config, on_started=started)
    return 0


def connect_host(listen: str) -> str:
    """Where a client on this host reaches a daemon listening on ``listen`` (a wildcard becomes 127.0.0.1)."""
    host = listen.rpartition(":")[0]
    return "127.0.0.1" if host in ("", "0.0.0.0", "[::]", "::", "*") else host


def banner(config: Any, port: int, services: list[str]) -> dict[str, Any]:
    """What `serve` prints once it listens: the target, and exactly what a client needs to connect to it.

    With the embedded default's development TLS (``<home>/tls``), ``client`` names the CA, the demo client's
    certificate and key and the TLS server name, as absolute paths; ``connect`` shows them in use."""
    target = f"{connect_host(config.listen)}:{port}"
    home_dir = Path(config.home).absolute()
    tls = home_dir / "tls"
    ca = Path(config.tls_client_ca).absolute() if config.tls_client_ca else None
    info: dict[str, Any] = {
        "listening": target, "mtls": not config.insecure, "metrics": config.metrics_listen or None,
        "services": services, "home": str(home_dir), "server_ca": str(ca) if ca else None,
        "policy": str(Path(config.policy).absolute()), "database": config.redacted()["database"],
    }
    if config.insecure:
        info["connect"] = {"python": f"from trustsvc.client import Client; c = Client({target!r}, insecure=True)"}
        return info
    cert, key = tls / "clients" / "demo-client.pem", tls / "clients" / "demo-client-key.pem"
    if ca == tls / "ca.pem" and cert.exists() and key.exists():  # the development TLS of the embedded default
        admin = tls / "clients" / "admin.pem", tls / "clients" / "admin-key.pem"
        info["client"] = {"target": target, "server_name": "localhost", "ca": str(ca), "identity": "demo-client",
                          "cert": str(cert), "key": str(key), "admin_cert": str(admin[0]), "admin_key": str(admin[1])}
        info["connect"] = {
            "python": (f"from trustsvc.client import Client; c = Client({target!r}, ca={str(ca)!r}, "
                       f"cert={str(cert)!r}, key={str(key)!r}, server_name='localhost')"),
            "python_home": (f"from trustsvc.client import Client; c = Client.from_home({str(home_dir)!r}, "
                            f"{target!r}, 'demo-client', server_name='localhost')"),
            "grpcurl": f"grpcurl -cacert {ca} -cert {cert} -key {key} -servername localhost {target} list",
        }
    else:
        info["connect"] = {"note": "TLS is configured (tls_cert, tls_key, tls_client_ca): connect with a client "
                                   "certificate issued by tls_client_ca and a CA that trusts tls_cert"}
    return info


def register(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = subparsers.add_parser("serve", help="run the gRPC signing daemon (mTLS, policy, audit)",
                              description=__doc__)
    p.add_argument("--config", help="TOML config file (TRUSTSVC_* environment variables override it)")
    p.add_argument("--listen", help="host:port for gRPC (default 127.0.0.1:50051)")
    p.add_argument("--metrics-listen", dest="metrics_listen", help="host:port for Prometheus metrics ('' disables)")
    p.set_defaults(func=_serve)


if __name__ == "__main__":
    sys.exit(_serve(argparse.Namespace(config=None, home=None, listen=None, metrics_listen=None)))
