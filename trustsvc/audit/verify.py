"""Audit log verifier: recomputes the chain and checks signed checkpoints, naming each problem's seq.

Detects an edited record (its hash no longer matches its fields), a deleted record (a gap in
``seq`` or a chain break), an inserted or reordered record (``prev_hash`` not the previous hash),
a truncated tail (the head row or a checkpoint points past the last record) and a checkpoint
whose signature, key or hash is wrong.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from trustsvc.algorithms.keypair import PublicKey
from trustsvc.algorithms.signature_algorithm import SignatureAlgorithm
from trustsvc.algorithms.signer import Verifier
from trustsvc.audit.log import GENESIS, MIGRATIONS, AuditRecord, Checkpoint, select_checkpoints, select_records
from trustsvc.errors import TrustsvcError
from trustsvc.store.database import Database


@dataclasses.dataclass(frozen=True)
class Problem:
    seq: int
    kind: str  # EDITED, DELETED, INSERTED_OR_REORDERED, TRUNCATED, BAD_CHECKPOINT, UNTRUSTED_CHECKPOINT_KEY
    message: str


@dataclasses.dataclass
class AuditReport:
    records: int = 0
    checkpoints: int = 0
    head_seq: int = 0
    problems: list[Problem] = dataclasses.field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    @property
    def first_bad_seq(self) -> int | None:
        return min((p.seq for p in self.problems), default=None)

    def to_json(self) -> dict[str, Any]:
        return {"ok": self.ok, "records": self.records, "checkpoints": self.checkpoints, "head_seq": self.head_seq,
                "first_bad_seq": self.first_bad_seq, "problems": [dataclasses.asdict(p) for p in self.problems]}


def verify_records(records: list[AuditRecord], checkpoints: list[Checkpoint] = (),  # type: ignore[assignment]
                   *, head: tuple[int, str] | None = None,
                   trusted_keys: list[PublicKey] | None = None) -> AuditReport:
    """Check a list of records (in stored order) and checkpoints."""
    report = AuditReport(records=len(records), checkpoints=len(checkpoints))
    problems = report.problems
    expected_seq, prev = 1, GENESIS
    by_seq: dict[int, AuditRecord] = {}
    for rec in records:
        edited = rec.compute_hash() != rec.hash
        if rec.seq != expected_seq:
            if rec.seq > expected_seq:
                problems.append(Problem(expected_seq, "DELETED",
                                        f"records {expected_seq}..{rec.seq - 1} are missing"))
            else:
                problems.append(Problem(rec.seq, "INSERTED_OR_REORDERED",
                                        f"seq {rec.seq} appears after seq {expected_seq - 1}"))
        if edited:
            problems.append(Problem(rec.seq, "EDITED", f"record {rec.seq} does not match its hash"))
        elif rec.prev_hash != prev and rec.seq == expected_seq:
            problems.append(Problem(rec.seq, "INSERTED_OR_REORDERED",
                                    f"record {rec.seq} does not chain from the record before it"))
        by_seq.setdefault(rec.seq, rec)
        expected_seq = max(expected_seq, rec.seq) + 1
        prev = rec.hash
    last_seq = records[-1].seq if records else 0
    if head is not None:
        report.head_seq = head[0]
        if head[0] > last_seq:
            problems.append(Problem(last_seq + 1, "TRUNCATED",
                                    f"the head says {head[0]} records; the log ends at {last_seq}"))
        elif head[0] < last_seq or (records and head[1] != records[-1].hash):
            problems.append(Problem(head[0] + 1, "INSERTED_OR_REORDERED",
                                    f"records after the head ({head[0]}) or a head hash mismatch"))
    trusted = {k.spki.hex() for k in trusted_keys or []}
    for cp in checkpoints:
        signed = by_seq.get(cp.seq)
        if signed is None:
            problems.append(Problem(cp.seq, "TRUNCATED" if cp.seq > last_seq else "DELETED",
                                    f"checkpoint {cp.seq} refers to a missing record"))
        elif signed.hash != cp.hash:
            problems.append(Problem(cp.seq, "BAD_CHECKPOINT", f"checkpoint {cp.seq} was signed over another hash"))
        if trusted and cp.public_key not in trusted:
            problems.append(Problem(cp.seq, "UNTRUSTED_CHECKPOINT_KEY", f"checkpoint {cp.seq} signed by another key"))
            continue
        try:
            key = PublicKey.from_spki(bytes.fromhex(cp.public_key))
            Verifier(key, SignatureAlgorithm(cp.algorithm)).verify(cp.message(), bytes.fromhex(cp.signature))
        except (TrustsvcError, ValueError) as exc:
            problems.append(Problem(cp.seq, "BAD_CHECKPOINT", f"checkpoint {cp.seq} signature does not verify: {exc}"))
    problems.sort(key=lambda p: p.seq)
    return report


def verify_log(db: Database, *, trusted_keys: list[PublicKey] | None = None) -> AuditReport:
    """Verify the whole stored log (records, checkpoints and head read in one snapshot)."""
    db.migrate("audit", MIGRATIONS)
    with db.read() as tx:
        records = select_records(tx)
        checkpoints = select_checkpoints(tx)
        row = tx.execute("SELECT seq, hash FROM audit_head WHERE id = 1").fetchone()
    head = (int(row[0]), str(row[1])) if row else None
    return verify_records(records, checkpoints, head=head, trusted_keys=trusted_keys)
