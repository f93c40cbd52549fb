"""`trustsvc serve`: run the gRPC signing daemon (embedded default when no config is given)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from cli.common import home


def _serve(args: argparse.Namespace) -> int:
    from trustsvc.server import load_config, serve

    overrides = {"listen": args.listen, "metrics_listen": args.metrics_listen}
    if args.config is None or args.home:
        overrides["home"] = str(home(args))
    config = load_config(args.config, **overrides)

    def started(daemon: object) -> None:
        host, _, _ = config.listen.rpartition(":")
        target = f"{host or '127.0.0.1'}:{daemon.port}"  # type: ignore[attr-defined]
        tls = Path(config.home) / "tls" / "clients"
        info = {
            "listening": target, "mtls": not config.insecure, "metrics": config.metrics_listen or None,
            "services": sorted(daemon.wired),  # type: ignore[attr-defined]
            "server_ca": config.tls_client_ca, "policy": config.policy, "database": config.redacted()["database"],
            "connect": {
                "python": (f"from trustsvc.client import Client; c = Client.from_home({str(config.home)!r}, "
                           f"{target!r}, 'demo-client', server_name='localhost')"),
                "grpcurl": (f"grpcurl -cacert {config.tls_client_ca} -cert {tls / 'demo-client.pem'} "
                            f"-key {tls / 'demo-client-key.pem'} -servername localhost {target} list"),
            },
        }
        print(json.dumps(info, indent=2, ensure_ascii=False), flush=True)

    serve(config, on_started=started)
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = subparsers.add_parser("serve", help="run the gRPC signing daemon (mTLS, policy, audit)",
                              description=__doc__)
    p.add_argument("--config", help="TOML config file (TRUSTSVC_* environment variables override it)")
    p.add_argument("--listen", help="host:port for gRPC (default 127.0.0.1:50051)")
    p.add_argument("--metrics-listen", dest="metrics_listen", help="host:port for Prometheus metrics ('' disables)")
    p.set_defaults(func=_serve)


if __name__ == "__main__":
    sys.exit(_serve(argparse.Namespace(config=None, home=None, listen=None, metrics_listen=None)))
