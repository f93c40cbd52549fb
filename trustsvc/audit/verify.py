"""Audit log verifier: recomputes the chain and checks signed checkpoints, naming each problem's kind and seq.

Every record's hash covers its own ``seq``, so a record that was moved still proves where it was
written: the verifier works out each record's original seq (its own, or the one under which its hash
verifies, found from the record it chains from) and compares the stored log with the original order.
It reports, at the seq where each is seen:

- EDITED: a record's fields do not match its hash (or a record was rewritten with a recomputed hash,
  so the next record no longer chains from it; or records were renumbered);
- DELETED: original records missing from the middle (``seq`` is the first missing one);
- TRUNCATED: the head row or a checkpoint points past the last record (``seq`` is the first missing one);
- INSERTED: a record that is not part of the original chain (``seq`` is where it is stored), whether
  records after it were renumbered to make room or it follows the head;
- REORDERED: a genuine record stored at another place (``seq`` is where it is stored, the message
  says where it was written);
- BAD_CHECKPOINT, UNTRUSTED_CHECKPOINT_KEY: a checkpoint signed over another hash, whose signature
  does not verify, or signed by a key that is not trusted;
- BAD_HEAD: the head row matches no record.
"""

from __future__ import annotations

import bisect
import dataclasses
from typing import Any

from trustsvc.algorithms.keypair import PublicKey
from trustsvc.algorithms.signature_algorithm import SignatureAlgorithm
from trustsvc.algorithms.signer import Verifier
from trustsvc.audit.log import (
    GENESIS,
    MIGRATIONS,
    AuditRecord,
    Checkpoint,
    record_hash,
    select_checkpoints,
    select_records,
)
from trustsvc.errors import TrustsvcError
from trustsvc.store.database import Database

KINDS = ("EDITED", "DELETED", "TRUNCATED", "INSERTED", "REORDERED", "BAD_CHECKPOINT", "UNTRUSTED_CHECKPOINT_KEY",
         "BAD_HEAD")


@dataclasses.dataclass(frozen=True)
class Problem:
    seq: int
    kind: str  # one of KINDS
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


def _hash_at(rec: AuditRecord, seq: int) -> str:
    return record_hash(rec.prev_hash, {**rec.body(), "seq": seq})


def _original_seqs(records: list[AuditRecord]) -> list[int | None]:
    """For each stored record, the seq its hash was computed over (None: its fields were edited)."""
    n = len(records)
    by_hash: dict[str, int] = {}
    for i, rec in enumerate(records):
        by_hash.setdefault(rec.hash, i)
    orig: list[int | None] = [None] * n
    decided = [False] * n
    for i, rec in enumerate(records):
        if rec.compute_hash() == rec.hash:
            orig[i], decided[i] = rec.seq, True

    def decide(i: int) -> None:
        # walk back along prev_hash to a decided record (no recursion: a moved region may be long)
        path, seen = [], set()
        j: int | None = i
        while j is not None and not decided[j] and j not in seen:
            seen.add(j)
            path.append(j)
            prev = records[j].prev_hash
            j = None if prev == GENESIS else by_hash.get(prev)
        for k in reversed(path):
            rec = records[k]
            pred = None if rec.prev_hash == GENESIS else by_hash.get(rec.prev_hash)
            cands = [1] if rec.prev_hash == GENESIS else []
            if pred is not None and pred != k and decided[pred] and orig[pred] is not None:
                cands.append(orig[pred] + 1)  # type: ignore[operator]
            cands += [rec.seq - 1, rec.seq + 1]
            orig[k] = next((c for c in cands if c >= 1 and c != rec.seq and _hash_at(rec, c) == rec.hash), None)
            decided[k] = True

    for i in range(n):
        if not decided[i]:
            decide(i)
    return orig


def _ranges(values: list[int]) -> list[tuple[int, int]]:
    out: list[tuple[int, int]] = []
    for v in sorted(values):
        if out and v == out[-1][1] + 1:
            out[-1] = (out[-1][0], v)
        else:
            out.append((v, v))
    return out


def verify_records(records: list[AuditRecord], checkpoints: list[Checkpoint] = (),  # type: ignore[assignment]
                   *, head: tuple[int, str] | None = None,
                   trusted_keys: list[PublicKey] | None = None) -> AuditReport:
    """Check a list of records (in stored order), checkpoints and the head row."""
    report = AuditReport(records=len(records), checkpoints=len(checkpoints))
    found: dict[tuple[int, str], Problem] = {}

    def problem(seq: int, kind: str, message: str) -> None:
        found.setdefault((seq, kind), Problem(seq, kind, message))

    orig = _original_seqs(records)
    edited = {rec.seq for rec, o in zip(records, orig, strict=True) if o is None}
    for s in sorted(edited):
        problem(s, "EDITED", f"record {s} does not match its hash")

    # records claiming the same original seq: the one the chain (next record, checkpoint, head) refers to is
    # genuine, preferring one that was moved (it was hashed at that seq); the others were inserted
    referenced = {rec.prev_hash for rec in records} | {cp.hash for cp in checkpoints}
    if head is not None:
        referenced.add(head[1])
    claims: dict[int, list[int]] = {}
    for i, o in enumerate(orig):
        if o is not None:
            claims.setdefault(o, []).append(i)
    inserted: set[int] = set()
    for o, idx in claims.items():
        if len(idx) > 1:
            keep = max(idx, key=lambda i: (records[i].hash in referenced, records[i].seq != o, -i))  # noqa: B023
            inserted.update(i for i in idx if i != keep)
    kept = [i for i, o in enumerate(orig) if o is not None and i not in inserted]
    known: dict[int, int] = {i: o for i, o in enumerate(orig) if o is not None}  # stored index -> original seq
    by_orig = {known[i]: i for i in kept}
    max_orig = max(by_orig, default=0)

    # deletions: original seqs missing (an edited record still holds its place)
    present = set(by_orig) | edited
    missing = [s for s in range(1, max_orig) if s not in present]
    for a, b in _ranges(missing):
        problem(a, "DELETED", f"record {a} is missing" if a == b else f"records {a}..{b} are missing")

    # the chain in original order: record s+1 must chain from record s (the first from the genesis hash)
    for o, i in sorted(by_orig.items()):
        rec = records[i]
        if o == 1 and rec.prev_hash != GENESIS:
            problem(rec.seq, "EDITED", f"record {rec.seq} should be the first but chains from another record")
        nxt = by_orig.get(o + 1)
        if nxt is not None and records[nxt].prev_hash != rec.hash:
            problem(rec.seq, "EDITED", f"record {rec.seq} was rewritten: record {records[nxt].seq} does not chain "
                                       "from it")

    # the stored order of genuine records must follow their original order
    origs = [known[i] for i in kept]
    prefix_max: list[int] = []
    suffix_min: list[float] = []
    m = 0
    for o in origs:
        prefix_max.append(m)
        m = max(m, o)
    m2: float = float("inf")
    for o in reversed(origs):
        suffix_min.append(m2)
        m2 = min(m2, o)
    suffix_min.reverse()
    reordered = set()
    for pos, i in enumerate(kept):
        o = known[i]
        if o < prefix_max[pos] or o > suffix_min[pos]:
            reordered.add(i)
            problem(records[i].seq, "REORDERED", f"record stored at seq {records[i].seq} was written as seq {o}")

    # records not explained by an insertion, deletion or reordering were renumbered
    inserted_seqs = sorted(records[i].seq for i in inserted)
    for i in kept:
        o, rec = known[i], records[i]
        if i in reordered or o == rec.seq:
            continue
        expected = o + bisect.bisect_left(inserted_seqs, rec.seq) - bisect.bisect_left(missing, o)
        if rec.seq != expected:
            problem(rec.seq, "EDITED", f"record stored at seq {rec.seq} was written as seq {o} (renumbered)")
    for i in inserted:
        rec = records[i]
        problem(rec.seq, "INSERTED", f"record {rec.seq} is not part of the original chain (the genuine record "
                                     f"{known[i]} is stored at seq {records[by_orig[known[i]]].seq})")

    # the head row: it names the last record written
    if head is not None:
        report.head_seq = head[0]
        hseq, hhash = head
        last = records[-1] if records else None
        at_head = by_orig.get(hseq)
        if last is not None and last.seq == hseq and last.hash == hhash:
            pass  # consistent (any renumbering is reported above)
        elif hseq > max(max_orig, max(edited, default=0)):
            problem(max_orig + 1, "TRUNCATED", f"the head says {hseq} records; the log ends at {max_orig}")
        elif at_head is not None and records[at_head].hash == hhash:
            for o in sorted(o for o in by_orig if o > hseq):
                problem(records[by_orig[o]].seq, "INSERTED",
                        f"record {records[by_orig[o]].seq} follows the head ({hseq})")
        elif hseq not in edited and (hseq or records):
            problem(hseq, "BAD_HEAD", f"the head ({hseq}, {hhash[:16]}…) matches no record")

    # checkpoints: each signs the hash of the record written as its seq
    trusted = {k.spki.hex() for k in trusted_keys or []}
    for cp in checkpoints:
        signed = by_orig.get(cp.seq)
        if signed is None:
            if cp.seq in edited:
                pass  # reported as EDITED
            elif cp.seq > max_orig:
                problem(max_orig + 1, "TRUNCATED", f"checkpoint {cp.seq} refers to a record past the end")
            else:
                problem(cp.seq, "DELETED", f"checkpoint {cp.seq} refers to a missing record")
        elif records[signed].hash != cp.hash:
            problem(cp.seq, "BAD_CHECKPOINT", f"checkpoint {cp.seq} was signed over another hash")
        if trusted and cp.public_key not in trusted:
            problem(cp.seq, "UNTRUSTED_CHECKPOINT_KEY", f"checkpoint {cp.seq} signed by another key")
            continue
        try:
            key = PublicKey.from_spki(bytes.fromhex(cp.public_key))
            Verifier(key, SignatureAlgorithm(cp.algorithm)).verify(cp.message(), bytes.fromhex(cp.signature))
        except (TrustsvcError, ValueError) as exc:
            problem(cp.seq, "BAD_CHECKPOINT", f"checkpoint {cp.seq} signature does not verify: {exc}")
    report.problems = sorted(found.values(), key=lambda p: (p.seq, KINDS.index(p.kind)))
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
