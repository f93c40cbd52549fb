"""Periodic clean-up of state that is only kept for a while: idempotency keys past their retention
and jti revocations of tokens long expired. The audit log is never touched.

Every daemon process runs one ``Housekeeper`` thread; on a shared PostgreSQL database several do the
same deletes, which is harmless (each row goes once). A failed round is logged and tried again next time.
"""

from __future__ import annotations

import logging
import threading

from trustsvc.server.idempotency import IdempotencyStore
from trustsvc.server.logs import log
from trustsvc.token.revocation import RevocationStore


class Housekeeper:
    def __init__(self, idempotency: IdempotencyStore, revocations: RevocationStore, *, interval_s: float) -> None:
        self.idempotency = idempotency
        self.revocations = revocations
        self.interval_s = interval_s
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def run_once(self) -> dict[str, int]:
        """One round; returns rows deleted per kind."""
        return {"idempotency_keys": self.idempotency.prune(), "token_revocations": self.revocations.purge_expired()}

    def start(self) -> None:
        """Run a round now and then every ``interval_s`` seconds (never when ``interval_s`` is 0)."""
        if self.interval_s <= 0 or self._thread is not None:
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self._loop, name="trustsvc-housekeeping", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=30)
            self._thread = None

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                deleted = self.run_once()
            except Exception as exc:  # noqa: BLE001 - the database is away: the thread lives on, tries again
                log(logging.WARNING, "housekeeping failed; retried next round", error=type(exc).__name__,
                    reason=getattr(exc, "reason", ""))
            else:
                if any(deleted.values()):
                    log(logging.INFO, "housekeeping", **deleted)
            self._stop.wait(self.interval_s)
