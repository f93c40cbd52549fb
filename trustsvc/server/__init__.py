"""The gRPC signing daemon: services, interceptors (identity, policy, errors, metrics), audit, config."""

from trustsvc.server.app import Daemon, build_runtime, serve
from trustsvc.server.config import Config, load_config

__all__ = ["Config", "Daemon", "build_runtime", "load_config", "serve"]
