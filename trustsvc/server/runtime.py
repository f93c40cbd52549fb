"""Everything a service needs: config, store, keystore, audit log, policy, metrics, idempotency, trust anchors."""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
import threading
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from trustsvc.algorithms.signer import Signer
from trustsvc.algorithms.sm3 import sm3_hex
from trustsvc.audit import AuditEvent, AuditLog, AuditRecord, AuditTransaction
from trustsvc.audit.canonical import canonical_json
from trustsvc.errors import Conflict, InvalidInput, StoreError, TrustsvcError
from trustsvc.keys.base import KeyStore, parse_key_ref
from trustsvc.pki.certificate import Certificate, certificate_in_force
from trustsvc.pki.crl import CertificateRevocationList
from trustsvc.server import context as ctx
from trustsvc.server.config import Config
from trustsvc.server.idempotency import IdempotencyStore
from trustsvc.server.logs import log
from trustsvc.server.metrics import Metrics
from trustsvc.server.policy import Policy
from trustsvc.store.database import Database, Transaction

SIGNER_TTL_S = 5.0  # a rotation or disable on another daemon is seen within this time
POLICY_CHECK_S = 1.0  # the policy file's mtime is looked at no more often than this


class Runtime:
    def __init__(self, config: Config, db: Database, keystore: KeyStore, audit: AuditLog, policy: Policy,
                 metrics: Metrics | None = None, *, trust_anchors: Sequence[Certificate] = (),
                 ca: Any = None, policy_path: Path | None = None) -> None:
        self.config = config
        self.db = db
        self.keystore = keystore
        self.audit = audit
        self._policy = policy
        self._policy_path = policy_path
        self._policy_mtime = policy_path.stat().st_mtime if policy_path and policy_path.exists() else 0.0
        self._policy_checked = time.monotonic()
        self.metrics = metrics or Metrics()
        observe = getattr(keystore, "observe_errors", None)  # an HSM keystore: count its errors at the source
        if observe is not None:
            observe(self.metrics.hsm_error)
        self.idempotency = IdempotencyStore(db, retention_s=config.idempotency_retention_s)
        self.trust_anchors = list(trust_anchors)
        self.ca = ca
        self._signers: dict[tuple[str, int | None], tuple[float, Signer]] = {}
        self._lock = threading.Lock()
        self.extras: dict[str, Any] = {}  # per-library state (token issuer, seal registry ...)

    # policy -----------------------------------------------------------------------
    def policy(self) -> Policy:
        """The policy, reloaded when its file changed (seen within ``POLICY_CHECK_S``)."""
        path = self._policy_path
        now = time.monotonic()
        if path is not None and now - self._policy_checked >= POLICY_CHECK_S:
            self._policy_checked = now
            try:
                mtime = path.stat().st_mtime
            except OSError:
                return self._policy
            if mtime != self._policy_mtime:
                self._policy_mtime = mtime
                try:
                    self._policy = Policy.load(path)
                except TrustsvcError as exc:  # a half-edited or broken file: keep serving the last good policy
                    self.metrics.policy_errors.inc()
                    log(logging.ERROR, "the policy file does not load; the previous policy stays in force",
                        path=str(path), reason=exc.reason, error=exc.message[:300])
                else:
                    log(logging.INFO, "policy reloaded", path=str(path))
        return self._policy

    # keys -------------------------------------------------------------------------
    def signer(self, key: str, *, check_policy: bool = True) -> Signer:
        """A Signer for a key the current caller may use (cached briefly; never looked up per signature)."""
        if not key:
            raise InvalidInput("the request names no key", reason="MISSING_KEY")
        if check_policy:
            call = ctx.current()
            self.policy().check_key(call.identity, key)
        name, version = parse_key_ref(key)
        now = time.monotonic()
        cached = self._signers.get((name, version))
        if cached and now - cached[0] < SIGNER_TTL_S:
            return cached[1]
        signer = self.keystore.signer(name, version)
        self._check_certificate(key, signer)
        with self._lock:
            self._signers[(name, version)] = (now, signer)
        return signer

    def ca_crls(self) -> list[CertificateRevocationList]:
        """The daemon CA's current CRL (published anew when near its nextUpdate), or none without a CA."""
        return [self.ca.fresh_crl()] if self.ca is not None else []

    def _check_certificate(self, key: str, signer: Signer) -> None:
        """Refuse (FAILED_PRECONDITION) a key whose certificate is outside its validity or revoked by the daemon's
        own CA: what it signed would not verify. Checked when the signer is (re)loaded, so within SIGNER_TTL_S."""
        if signer.certificate is None:
            return
        now = dt.datetime.now(dt.UTC)
        cert = certificate_in_force(signer.certificate, key, now)
        if self.ca is None or cert.issuer_name != self.ca.certificate.subject_name:
            return
        try:
            revoked = self.ca.current_crl().is_revoked(cert.serial_number, now)
        except (OSError, TrustsvcError) as exc:  # no readable CRL: nothing is known to be revoked
            log(logging.WARNING, "the CA's CRL could not be read", error=type(exc).__name__)
            return
        if revoked:
            raise Conflict(f"key {key!r}: the daemon's CA revoked its certificate (serial {cert.serial_number:x})",
                           reason="KEY_CERTIFICATE_REVOKED")

    def forget_signers(self) -> None:
        with self._lock:
            self._signers.clear()

    # audit ------------------------------------------------------------------------
    def record(self, *, ref: str = "", data: bytes | None = None, document_hash: str = "",
               result: str = "ok", detail: dict[str, Any] | None = None, operation: str = "") -> AuditRecord:
        """Commit an audit record for the current call; raises StoreError (-> UNAVAILABLE) when it cannot."""
        return self.record_many([(ref, data, document_hash, detail or {})], result=result, operation=operation)[-1]

    def record_batch(self, ref: str, items: Sequence[tuple[str, str, str]], detail: dict[str, Any] | None = None,
                     ) -> AuditRecord:
        """Commit ONE record for a batch RPC listing every item as ``[id, document hash, outcome]``.

        ``outcome`` is "ok" (signed) or the refusal's reason. The record's ``document_hash`` is SM3
        of the canonical JSON of that list, its result "ok" when every item was signed, else "partial".
        """
        listed = [list(item) for item in items]
        result = "ok" if all(item[2] == "ok" for item in items) else "partial"
        return self.record(ref=ref, document_hash=sm3_hex(canonical_json(listed)), result=result,
                           detail={**(detail or {}), "items": listed})

    def record_refusal(self, call: ctx.Call, exc: TrustsvcError, ref: str) -> None:
        """Record a refused signing, issuing, revoking or admin call: result ``refused:<reason>``.

        Best effort: the caller is refused whether or not this record is written, and a failing
        audit store (the refusal itself may be that) is only logged."""
        if isinstance(exc, StoreError):
            return
        event = AuditEvent(call.operation, call.client, call.request_id, ref, "", f"refused:{exc.reason}",
                           {"message": exc.message[:200]})
        try:
            self.audit.append(event)
        except Exception as err:  # noqa: BLE001 - never turns a refusal into another error
            log(logging.WARNING, "a refusal could not be audited", request_id=call.request_id,
                error=type(err).__name__)

    @contextlib.contextmanager
    def changing(self) -> Iterator[Change]:
        """A state change kept in the store (a token revocation, the seal registry) and its audit record,
        in ONE transaction: both commit or neither does::

            with rt.changing() as change:
                rec = registry.revoke(seal_id, actor=..., reason=..., tx=change.tx)
                audit = change.record(ref=f"seal:{seal_id}", detail={...})

        Refuses first if the caller's deadline has passed; from then on the call runs to its end. If the
        record cannot be written (audit key, lock, disk) the change is rolled back and the caller gets
        StoreError (UNAVAILABLE, ``AUDIT_UNAVAILABLE``). Sign nothing slow inside: the audit log's
        writers wait for this transaction."""
        call = ctx.current()
        call.check_deadline()
        call.changing = True
        with self.audit.transaction() as atx:
            yield Change(call, atx)

    def before_change(self) -> None:
        """Call before a change the audit log must record that cannot join the store's transaction (a key
        store change; store changes use :meth:`changing`): refuses now if the caller's deadline has
        passed or no record could be written. After it the call is committed: its record is written
        even if the deadline passes meanwhile."""
        call = ctx.current()
        call.check_deadline()
        self.audit.check_writable()
        call.changing = True

    def record_many(self, items: Sequence[tuple[str, bytes | None, str, dict[str, Any]]], *, result: str = "ok",
                    operation: str = "") -> list[AuditRecord]:
        """Commit the call's records. A signing call whose deadline has passed is refused here instead
        (CallAborted): the reply could not reach the caller, so nothing is recorded or returned."""
        call = ctx.current()
        if not call.changing:
            call.check_deadline()
        events = [call_event(call, ref, data, doc_hash, result, detail, operation)
                  for ref, data, doc_hash, detail in items]
        try:
            return self.audit.append_many(events)
        except StoreError:
            raise
        except Exception as exc:  # any failure to record is a refusal
            raise StoreError(f"the audit record could not be written: {exc}", reason="AUDIT_UNAVAILABLE") from exc


class Change:
    """An audited change in progress (see :meth:`Runtime.changing`): make it in ``tx``, then ``record`` it."""

    def __init__(self, call: ctx.Call, atx: AuditTransaction) -> None:
        self._call = call
        self._atx = atx
        self.tx: Transaction = atx.tx

    def record(self, *, ref: str = "", data: bytes | None = None, document_hash: str = "", result: str = "ok",
               detail: dict[str, Any] | None = None, operation: str = "") -> AuditRecord:
        """The call's record, in the change's transaction (final once the ``with`` block commits)."""
        return self._atx.append(call_event(self._call, ref, data, document_hash, result, detail or {}, operation))


def call_event(call: ctx.Call, ref: str, data: bytes | None, document_hash: str, result: str,
               detail: dict[str, Any], operation: str = "") -> AuditEvent:
    """The audit event of the current call (its operation unless ``operation``); the document hash is
    ``document_hash``, else SM3 of ``data`` when given."""
    return AuditEvent(operation or call.operation, call.client, call.request_id, ref,
                      document_hash or (sm3_hex(data) if data is not None else ""), result, detail)
