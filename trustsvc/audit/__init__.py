"""Tamper-evident audit log: hash chain, signed checkpoints, verifier."""

from trustsvc.audit.canonical import canonical_json
from trustsvc.audit.log import AuditEvent, AuditLog, AuditRecord, AuditTransaction, Checkpoint
from trustsvc.audit.verify import AuditReport, Problem, verify_log, verify_records

__all__ = ["AuditEvent", "AuditLog", "AuditRecord", "AuditReport", "AuditTransaction", "Checkpoint", "Problem",
           "canonical_json", "verify_log", "verify_records"]
