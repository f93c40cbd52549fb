"""Daemon configuration: one TOML file, overridden by TRUSTSVC_* environment variables.

Keys (TOML ``[server]`` table, env ``TRUSTSVC_<KEY>`` upper-case)::

    listen = "127.0.0.1:50051"     metrics_listen = "127.0.0.1:9464" ("" disables)
    home = "/var/lib/trustsvc"     database = "sqlite:///<home>/trustsvc.db" or postgresql://...
    keystore = "soft" | "hsm"      policy = "<home>/policy.toml"
    tls_cert, tls_key, tls_client_ca   (PEM paths; mTLS is required unless insecure = true)
    max_message_bytes = 67108864   max_concurrency = 64   workers = 16 (threads per process)
    processes = 1 (server processes on the one port, SO_REUSEPORT; see trustsvc/server/processes.py)
    pin_cpus = false (each server process keeps all its threads on one CPU: process i on the i-th)
    default_deadline_s = 30        audit_checkpoint_every = 100   audit_key = "audit"
    token_key = "token"            tsa_key = "tsa"        grace_s = 10
"""

from __future__ import annotations

import dataclasses
import os
import tomllib
from pathlib import Path
from typing import Any

from trustsvc.errors import InvalidInput

ENV_PREFIX = "TRUSTSVC_"


@dataclasses.dataclass
class Config:
    home: Path = Path(".trustsvc-demo")
    listen: str = "127.0.0.1:50051"
    metrics_listen: str = "127.0.0.1:9464"
    database: str = ""
    keystore: str = "soft"
    policy: str = ""
    tls_cert: str = ""
    tls_key: str = ""
    tls_client_ca: str = ""
    insecure: bool = False
    max_message_bytes: int = 64 * 1024 * 1024
    max_stream_bytes: int = 256 * 1024 * 1024
    max_concurrency: int = 64
    workers: int = 16
    processes: int = 1
    pin_cpus: bool = False
    default_deadline_s: float = 30.0
    audit_checkpoint_every: int = 100
    audit_key: str = "audit"
    token_key: str = "token"
    token_issuer: str = "https://trustsvc.local"
    token_ttl_s: int = 900
    tsa_key: str = "tsa"
    grace_s: float = 10.0
    log_level: str = "INFO"

    def __post_init__(self) -> None:
        self.home = Path(self.home)
        if not self.database:
            self.database = f"sqlite:///{self.home / 'trustsvc.db'}"
        if not self.policy:
            self.policy = str(self.home / "policy.toml")

    def redacted(self) -> dict[str, Any]:
        """For logs: paths and numbers only (no secrets live here; the database URL loses its password)."""
        out = {k: str(v) if isinstance(v, Path) else v for k, v in dataclasses.asdict(self).items()}
        if "@" in out["database"]:
            scheme, _, rest = out["database"].partition("://")
            out["database"] = f"{scheme}://***@{rest.rpartition('@')[2]}"
        return out


def _coerce(field: dataclasses.Field[Any], value: Any) -> Any:
    kind = field.type if isinstance(field.type, str) else getattr(field.type, "__name__", "")
    try:
        if "bool" in kind:
            return value if isinstance(value, bool) else str(value).lower() in ("1", "true", "yes", "on")
        if "int" in kind:
            return int(value)
        if "float" in kind:
            return float(value)
        if "Path" in kind:
            return Path(value)
    except ValueError:
        raise InvalidInput(f"config {field.name}: {value!r} is not a {kind}", reason="BAD_CONFIG") from None
    return str(value)


def load_config(path: str | Path | None = None, env: dict[str, str] | None = None,
                **overrides: Any) -> Config:
    """TOML file (its ``[server]`` table or top level), then environment, then keyword overrides."""
    env = dict(os.environ if env is None else env)
    values: dict[str, Any] = {}
    if path:
        try:
            data = tomllib.loads(Path(path).read_text())
        except (OSError, tomllib.TOMLDecodeError) as exc:
            raise InvalidInput(f"cannot read config {path}: {exc}", reason="BAD_CONFIG") from None
        values.update(data.get("server", data))
    fields = {f.name: f for f in dataclasses.fields(Config)}
    unknown = set(values) - set(fields)
    if unknown:
        raise InvalidInput(f"unknown config keys: {', '.join(sorted(unknown))}", reason="BAD_CONFIG")
    for name in fields:
        if ENV_PREFIX + name.upper() in env:
            values[name] = env[ENV_PREFIX + name.upper()]
    values.update({k: v for k, v in overrides.items() if v is not None})
    return Config(**{k: _coerce(fields[k], v) for k, v in values.items()})
