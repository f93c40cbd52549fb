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
    token_extra_keys = "" (comma-separated: other keys that may issue tokens; all are in the JWKS)
    idempotency_retention_s = 86400 (how long an idempotency key is remembered; at least 300)
    housekeeping_interval_s = 600 (how often expired idempotency keys and token revocations are deleted; 0: never)
    default_key_spec = "sm2" (the key type the embedded default creates for default, audit, token, tsa and
        seal-maker: sm2 | ec-p256 | rsa-2048 | rsa-3072 | rsa-4096; a token without SM2, such as
        SoftHSM2, needs a non-SM2 one; GB/T 38540 seals need an SM2 seal-maker, so there are no seals then)
"""

from __future__ import annotations

import dataclasses
import os
import tomllib
from pathlib import Path
from typing import Any

from trustsvc.errors import InvalidInput
from trustsvc.server.idempotency import STALE_S as IDEMPOTENCY_STALE_S

ENV_PREFIX = "TRUSTSVC_"
# key types the embedded default can make its keys of: each signs data, CMS, tokens, PDFs and time stamps
# (not ec-p384: tokens are ES256 only; not ed25519: its CMS, PDFs and time stamps are not checked by outside verifiers)
DEFAULT_KEY_SPECS = ("sm2", "ec-p256", "rsa-2048", "rsa-3072", "rsa-4096")


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
    token_extra_keys: str = ""
    token_issuer: str = "https://trustsvc.local"
    token_ttl_s: int = 900
    tsa_key: str = "tsa"
    grace_s: float = 10.0
    log_level: str = "INFO"
    default_key_spec: str = "sm2"
    idempotency_retention_s: float = 86_400.0
    housekeeping_interval_s: float = 600.0

    def __post_init__(self) -> None:
        self.home = Path(self.home)
        spec = str(self.default_key_spec).strip().lower()
        if spec not in DEFAULT_KEY_SPECS:
            raise InvalidInput(f"config default_key_spec: {self.default_key_spec!r} is not one of "
                               f"{', '.join(DEFAULT_KEY_SPECS)}", reason="BAD_CONFIG")
        self.default_key_spec = spec
        if not self.idempotency_retention_s >= IDEMPOTENCY_STALE_S:  # a key must outlive a request in progress
            raise InvalidInput(f"config idempotency_retention_s: {self.idempotency_retention_s} is less than "
                               f"{IDEMPOTENCY_STALE_S:g}", reason="BAD_CONFIG")
        if not self.housekeeping_interval_s >= 0:
            raise InvalidInput(f"config housekeeping_interval_s: {self.housekeeping_interval_s} is negative",
                               reason="BAD_CONFIG")
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


_TRUE, _FALSE = ("1", "true", "yes", "on"), ("0", "false", "no", "off")


def _coerce(field: dataclasses.Field[Any], value: Any) -> Any:
    kind = field.type if isinstance(field.type, str) else getattr(field.type, "__name__", "")
    bad = InvalidInput(f"config {field.name}: {value!r} is not a {kind}", reason="BAD_CONFIG")
    if isinstance(value, (dict, list, tuple)):  # a TOML table or array is never a setting here
        raise bad
    try:
        if "bool" in kind:
            if isinstance(value, bool):
                return value
            text = str(value).strip().lower()
            if text not in _TRUE + _FALSE:
                raise bad  # a typo ("ture") must not silently mean false
            return text in _TRUE
        if isinstance(value, bool):  # TOML true where a number is expected (int(True) would be 1)
            raise bad
        if "int" in kind:
            if isinstance(value, float) and not value.is_integer():
                raise bad  # int(3.7) would silently be 3
            return int(value)
        if "float" in kind:
            return float(value)
        if "Path" in kind:
            return Path(value)
    except (TypeError, ValueError):
        raise bad from None
    return str(value)


def load_config(path: str | Path | None = None, env: dict[str, str] | None = None,
                **overrides: Any) -> Config:
    """TOML file (its ``[server]`` table or top level), then environment, then keyword overrides."""
    env = dict(os.environ if env is None else env)
    values: dict[str, Any] = {}
    if path:
        try:
            data = tomllib.loads(Path(path).read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
            raise InvalidInput(f"cannot read config {path}: {exc}", reason="BAD_CONFIG") from None
        if "server" in data:
            if not isinstance(data["server"], dict):
                raise InvalidInput(f"config {path}: server must be a [server] table", reason="BAD_CONFIG")
            outside = sorted(k for k in data if k != "server")
            if outside:  # they would be ignored without a word
                raise InvalidInput(f"config {path}: keys outside the [server] table: {', '.join(outside)}",
                                   reason="BAD_CONFIG")
            values.update(data["server"])
        else:
            values.update(data)
    fields = {f.name: f for f in dataclasses.fields(Config)}
    overrides = {k: v for k, v in overrides.items() if v is not None}
    unknown = (set(values) | set(overrides)) - set(fields)
    if unknown:
        raise InvalidInput(f"unknown config keys: {', '.join(sorted(unknown))}", reason="BAD_CONFIG")
    for name in fields:
        if ENV_PREFIX + name.upper() in env:
            values[name] = env[ENV_PREFIX + name.upper()]
    values.update(overrides)
    return Config(**{k: _coerce(fields[k], v) for k, v in values.items()})
