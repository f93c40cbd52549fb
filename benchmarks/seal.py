"""Seal signatures made and verified per second on one core, beside bare SM2 sign/verify of the same engine.

Target: making a seal signature costs at most 1.4x a bare SM2 signature (rate ratio bare/seal <= 1.4).
Run: python -m benchmarks.seal
"""

from __future__ import annotations

import sys

from benchmarks.harness import Check, interleaved, report
from tests.unit.test_seal_support import make_setup
from trustsvc.seal.picture import render_png
from trustsvc.seal.sign import SealSigner
from trustsvc.seal.verify import verify


def main() -> int:
    picture = render_png("某某市人民政府办公室", name="公章", dpi=150)
    s = make_setup(picture=picture)
    signer = SealSigner(s.seal, s.holder, s.holder_cert)
    doc = b"x" * 2048
    sig = signer.sign_document(doc, "/Doc_0/Signs/Sign_0/Signature.xml")
    bare = s.holder.sign(doc)
    verifier = s.holder.verifier()
    rates = interleaved({
        "bare SM2 sign": lambda: s.holder.sign(doc),
        "seal signature make": lambda: signer.sign_document(doc, "/Doc_0/Signs/Sign_0/Signature.xml"),
        "bare SM2 verify": lambda: verifier.verify(doc, bare),
        "seal signature verify (full report)": lambda: verify(sig, document=doc),
    }, seconds=0.5, rounds=3)
    ratio = rates["bare SM2 sign"].ops_per_s / rates["seal signature make"].ops_per_s
    checks = [Check("seal signature cost / bare SM2 signature", ratio, "<=", 1.4)]
    ok = report("seal", rates, checks, {"seal_bytes": len(s.seal), "picture_bytes": len(picture)})
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
