"""A daemon on 127.0.0.1 (ephemeral port) with mTLS and the embedded default, for integration tests.

tests/integration/conftest.py gives every module ``running`` (one default daemon per module), ``client``
and ``admin``; a module that needs other settings defines its own ``running``.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

from trustsvc.client import Client
from trustsvc.server import Daemon, build_runtime, load_config
from trustsvc.store.database import Database


class SwitchableDatabase(Database):
    """A real SQLite store that can be made read-only at run time (query_only; root ignores chmod)."""

    writes_refused = False  # not Database.read_only, which refuses before SQLite is asked

    def transaction(self):  # type: ignore[override]
        if self.dialect == "sqlite":
            self._connection().execute(f"PRAGMA query_only={'ON' if self.writes_refused else 'OFF'}")
        return super().transaction()


@dataclasses.dataclass
class Running:
    daemon: Daemon
    home: Path
    target: str
    db: SwitchableDatabase

    def client(self, identity: str = "demo-client", **kwargs: object) -> Client:
        c = Client.from_home(self.home, self.target, identity, server_name="localhost", **kwargs)  # type: ignore[arg-type]
        return c


def start_daemon(home: Path, **overrides: object) -> Running:
    cfg = load_config(None, env={}, home=home, listen="127.0.0.1:0", grace_s=5,
                      **{"audit_checkpoint_every": 10, "metrics_listen": "", **overrides})
    db = SwitchableDatabase(cfg.database)
    rt = build_runtime(cfg, db=db)
    daemon = Daemon(cfg, rt)
    port = daemon.start()
    return Running(daemon, home, f"127.0.0.1:{port}", db)

