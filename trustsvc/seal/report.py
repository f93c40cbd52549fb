"""Verification reports: every step by name with pass / fail / warning / skipped and a reason."""

from __future__ import annotations

import dataclasses
import datetime as dt
import enum
from typing import Any


class Status(str, enum.Enum):  # noqa: UP042 - str() output kept
    PASS = "pass"
    FAIL = "fail"
    WARNING = "warning"
    SKIPPED = "skipped"


class Verdict(str, enum.Enum):  # noqa: UP042 - str() output kept
    VALID = "valid"
    VALID_WITH_WARNINGS = "valid-with-warnings"
    INVALID = "invalid"
    NOT_SES = "not-ses"


@dataclasses.dataclass
class Check:
    name: str
    status: Status
    reason: str
    detail: str = ""

    def to_dict(self) -> dict[str, str]:
        return {"name": self.name, "status": self.status.value, "reason": self.reason, "detail": self.detail}


@dataclasses.dataclass
class Report:
    """What was verified and how each step went; ``verdict`` sums it up."""

    kind: str  # "seal", "signature" or "not-ses"
    at: dt.datetime
    structure: str = ""
    version: int | None = None
    es_id: str = ""
    checks: list[Check] = dataclasses.field(default_factory=list)
    facts: dict[str, Any] = dataclasses.field(default_factory=dict)

    def add(self, name: str, status: Status, reason: str, detail: str = "") -> Check:
        check = Check(name, status, reason, detail)
        self.checks.append(check)
        return check

    def check(self, name: str) -> Check:
        for c in self.checks:
            if c.name == name:
                return c
        raise KeyError(name)

    def status(self, name: str) -> Status:
        return self.check(name).status

    @property
    def failed(self) -> list[Check]:
        return [c for c in self.checks if c.status is Status.FAIL]

    @property
    def verdict(self) -> Verdict:
        if self.kind == "not-ses":
            return Verdict.NOT_SES
        if self.failed:
            return Verdict.INVALID
        if any(c.status is Status.WARNING for c in self.checks):
            return Verdict.VALID_WITH_WARNINGS
        return Verdict.VALID

    @property
    def valid(self) -> bool:
        return self.verdict in (Verdict.VALID, Verdict.VALID_WITH_WARNINGS)

    def to_dict(self) -> dict[str, Any]:
        return {"verdict": self.verdict.value, "kind": self.kind, "structure": self.structure,
                "version": self.version, "es_id": self.es_id, "at": self.at.isoformat(),
                "facts": self.facts, "checks": [c.to_dict() for c in self.checks]}

    def to_text(self) -> str:
        lines = [f"verdict: {self.verdict.value}  ({self.kind} {self.structure} esID={self.es_id!r} "
                 f"at {self.at.isoformat()})"]
        for c in self.checks:
            lines.append(f"  [{c.status.value:7}] {c.name}: {c.reason}" + (f" - {c.detail}" if c.detail else ""))
        return "\n".join(lines)
