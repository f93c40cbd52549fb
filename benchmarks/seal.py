"""Seal signatures made and verified per second on one core, beside bare SM2 sign/verify of the same engine.

Target: making a seal signature costs at most 1.4x a bare SM2 signature (rate ratio bare/seal <= 1.4).
Both sign a 2 KiB document; the seal signature also builds TBS_Sign around the whole seal (picture
included). The ratio checked is the median of per-round ratios (each round runs bare then seal back to
back, so load from other processes hits both alike); the CPU-time ratio is printed beside it.
Run: python -m benchmarks.seal
"""

from __future__ import annotations

import statistics
import sys
import time
from collections.abc import Callable

from benchmarks.harness import Check, interleaved, report
from tests.unit.test_seal_support import make_setup
from trustsvc.seal.picture import render_png
from trustsvc.seal.sign import SealSigner
from trustsvc.seal.verify import verify


def _cpu_us(fn: Callable[[], object], n: int = 300) -> float:
    start = time.process_time()
    for _ in range(n):
        fn()
    return (time.process_time() - start) / n * 1e6


def main() -> int:
    picture = render_png("某某市人民政府办公室", name="公章", dpi=150)
    s = make_setup(picture=picture)
    signer = SealSigner(s.seal, s.holder, s.holder_cert)
    doc = b"x" * 2048
    prop = "/Doc_0/Signs/Sign_0/Signature.xml"
    sig = signer.sign_document(doc, prop)
    bare = s.holder.sign(doc)
    verifier = s.holder.verifier()
    make = lambda: signer.sign_document(doc, prop)  # noqa: E731
    bare_sign = lambda: s.holder.sign(doc)  # noqa: E731
    rates = interleaved({
        "bare SM2 sign": bare_sign,
        "seal signature make": make,
        "bare SM2 verify": lambda: verifier.verify(doc, bare),
        "seal signature verify (full report)": lambda: verify(sig, document=doc),
    }, seconds=0.4, rounds=7)
    per_round = [b / m for b, m in zip(rates["bare SM2 sign"].samples, rates["seal signature make"].samples,
                                       strict=True)]
    ratio = statistics.median(per_round)
    cpu = [_cpu_us(make) / _cpu_us(bare_sign) for _ in range(3)]
    print(f"  per-round cost ratios: {', '.join(f'{r:.2f}' for r in per_round)}; "
          f"CPU-time ratios: {', '.join(f'{r:.2f}' for r in cpu)}")
    checks = [Check("seal signature cost / bare SM2 signature", ratio, "<=", 1.4)]
    ok = report("seal", rates, checks, {"seal_bytes": len(s.seal), "picture_bytes": len(picture),
                                        "signature_bytes": len(sig), "per_round_ratios": per_round,
                                        "cpu_time_ratios": cpu})
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
