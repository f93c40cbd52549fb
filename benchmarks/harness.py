"""Side-by-side throughput measurement: each job against its baseline in the same run.

Results are ratios (robust on noisy machines) plus absolute rates for reference. Every
benchmark writes ``benchmarks/results/NAME.json`` and prints a table.
"""

from __future__ import annotations

import json
import platform
import statistics
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

RESULTS = Path(__file__).parent / "results"


@dataclass
class Rate:
    name: str
    ops_per_s: float
    samples: list[float] = field(default_factory=list)


def measure(name: str, fn: Callable[[], object], *, seconds: float = 1.0, rounds: int = 3,
            ops_per_call: int = 1) -> Rate:
    """Run ``fn`` repeatedly for ``seconds`` per round; report the median rate over ``rounds``."""
    fn()  # warm up
    samples = []
    for _ in range(rounds):
        n = 0
        start = time.perf_counter()
        deadline = start + seconds
        while time.perf_counter() < deadline:
            fn()
            n += ops_per_call
        samples.append(n / (time.perf_counter() - start))
    return Rate(name, statistics.median(samples), samples)


def interleaved(jobs: dict[str, Callable[[], object]], *, seconds: float = 0.5, rounds: int = 5,
                ops_per_call: dict[str, int] | None = None) -> dict[str, Rate]:
    """Measure several jobs round-robin so that machine noise hits them alike."""
    ops_per_call = ops_per_call or {}
    for fn in jobs.values():
        fn()
    samples: dict[str, list[float]] = {k: [] for k in jobs}
    for _ in range(rounds):
        for name, fn in jobs.items():
            n = 0
            start = time.perf_counter()
            deadline = start + seconds
            while time.perf_counter() < deadline:
                fn()
                n += ops_per_call.get(name, 1)
            samples[name].append(n / (time.perf_counter() - start))
    return {k: Rate(k, statistics.median(v), v) for k, v in samples.items()}


@dataclass
class Check:
    """A target: ``ratio = numerator / denominator`` must satisfy ``op threshold``."""

    description: str
    ratio: float
    op: str
    threshold: float

    @property
    def passed(self) -> bool:
        return self.ratio >= self.threshold if self.op == ">=" else self.ratio <= self.threshold


def report(bench: str, rates: dict[str, Rate], checks: list[Check], extra: dict[str, object] | None = None) -> bool:
    """Print a table and write JSON; returns True when every check passed."""
    RESULTS.mkdir(exist_ok=True)
    width = max(len(k) for k in rates) + 2
    print(f"\n== {bench}")
    for r in rates.values():
        print(f"  {r.name:<{width}} {r.ops_per_s:>12,.1f} ops/s")
    for c in checks:
        mark = "PASS" if c.passed else "FAIL"
        print(f"  [{mark}] {c.description}: {c.ratio:.2f} {c.op} {c.threshold}")
    payload = {
        "benchmark": bench,
        "machine": {"python": platform.python_version(), "platform": platform.platform()},
        "rates": {k: asdict(v) for k, v in rates.items()},
        "checks": [dict(asdict(c), passed=c.passed) for c in checks],
        **(extra or {}),
    }
    (RESULTS / f"{bench}.json").write_text(json.dumps(payload, indent=2))
    return all(c.passed for c in checks)
