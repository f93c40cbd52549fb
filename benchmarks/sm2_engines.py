"""SM2 engine choice: sign/verify rates of every candidate side by side, plus an OpenSSL cross-check each.

Run: ``python -m benchmarks.sm2_engines [--seconds 0.3 --rounds 5]``. Writes
benchmarks/results/sm2_engines.json. Candidates: our native accelerator (_sm2native.c, chosen; bare and
through our Signer / Verifier), gmalglib (bare and through our Signer / Verifier, each path pinned to its
engine), tongsuopy, gmssl_pyx, gmssl_fast, pure-Python gmssl, and ECDSA P-256 (cryptography) as reference.
Also the curve operations alone, sign_digest(e) on a reusable per-key context and verify of a 32-byte e,
for native and gmalglib.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from benchmarks.harness import Check, interleaved, report
from trustsvc.algorithms import sm2, sm2_engine
from trustsvc.algorithms.encoding import private_key_to_pem
from trustsvc.algorithms.keypair import PrivateKey
from trustsvc.algorithms.signer import SoftwareSigner, Verifier
from trustsvc.algorithms.sm2_engine import GmalglibEngine, NativeEngine
from trustsvc.algorithms.sm3 import sm3

MSG = b"x" * 256  # a typical TBS_Sign / token payload size
ID = sm2.DEFAULT_ID


class Candidate:
    """sign(msg) -> signature (DER or raw r||s) and verify(msg, sig) -> bool, all with the default ID."""

    def __init__(self, name: str, sign: Callable[[bytes], bytes], verify: Callable[[bytes, bytes], bool]) -> None:
        self.name, self.sign, self.verify = name, sign, verify


def pinned_key(key: PrivateKey, engine: GmalglibEngine | NativeEngine) -> PrivateKey:
    """A copy of ``key`` whose signing context comes from ``engine`` whatever the process-wide engine is."""
    scalar, point = key.sm2_scalar(), key.public_key.point
    assert point is not None
    copy = PrivateKey.from_sm2_scalar(scalar, point)
    copy._ctx = engine.context(scalar, point)
    return copy


def candidates(key: PrivateKey) -> list[Candidate]:
    scalar, point = key.sm2_scalar(), key.public_key.point
    assert point is not None
    out: list[Candidate] = []
    verifier = Verifier(key.public_key)
    native, gm = NativeEngine(), GmalglibEngine()

    def ours_verify(engine: Any) -> Callable[[bytes, bytes], bool]:
        """Our Verifier with the process-wide engine swapped to ``engine`` for the call."""

        def verify(m: bytes, s: bytes) -> bool:
            saved, sm2_engine._engine = sm2_engine._engine, engine
            try:
                verifier.verify(m, s)
            finally:
                sm2_engine._engine = saved
            return True

        return verify

    import gmalglib.core as gmalg

    ctx = gmalg.SM2(sk=scalar, pk=point, uid=ID)

    def gm_verify(m: bytes, s: bytes) -> bool:
        return bool(ctx.verify(m, sm2.signature_to_rs(s)))

    native_ctx = native.context(scalar, point)
    z = sm2.z_value(point, ID)

    def native_verify(m: bytes, s: bytes) -> bool:
        return native.verify_e(point, sm3(z + m), sm2.signature_to_rs(s))

    out.append(Candidate("native", lambda m: native_ctx.sign_digest(sm3(z + m)), native_verify))  # type: ignore[attr-defined]
    out.append(Candidate("native via trustsvc Signer", SoftwareSigner(pinned_key(key, native)).sign,
                         ours_verify(native)))
    out.append(Candidate("gmalglib", lambda m: bytes(ctx.sign(m)), gm_verify))
    out.append(Candidate("gmalglib via trustsvc Signer", SoftwareSigner(pinned_key(key, gm)).sign, ours_verify(gm)))

    from tongsuopy.crypto import hashes as t_hashes
    from tongsuopy.crypto.asymciphers import ec as t_ec

    t_key = t_ec.derive_private_key(int.from_bytes(scalar, "big"), t_ec.SM2())
    t_pub = t_key.public_key()

    def t_verify(m: bytes, s: bytes) -> bool:
        try:
            t_pub.verify(s, m, t_ec.ECDSA(t_hashes.SM3()))
            return True
        except Exception:
            return False

    out.append(Candidate("tongsuopy", lambda m: t_key.sign(m, t_ec.ECDSA(t_hashes.SM3())), t_verify))

    try:  # optional comparison candidates (not dependencies): pip install gmssl_pyx gmssl-fast
        import gmssl_fast
        import gmssl_pyx
    except ImportError as exc:
        print(f"not measured (not installed): {exc.name}")
    else:
        out.append(Candidate("gmssl_pyx", lambda m: gmssl_pyx.sm2_sign(scalar, point[1:], m, ID),
                             lambda m, s: bool(gmssl_pyx.sm2_verify(point[1:], m, s, ID))))
        fast = gmssl_fast.SM2(private_key=scalar.hex(), public_key=point.hex())

        def fast_verify(m: bytes, s: bytes) -> bool:
            try:
                return bool(fast.verify(m, sm2.signature_to_rs(s)))
            except Exception:
                return False

        out.append(Candidate("gmssl_fast", fast.sign, fast_verify))

    from gmssl import func as g_func
    from gmssl import sm2 as g_sm2

    pure = g_sm2.CryptSM2(private_key=scalar.hex(), public_key=point[1:].hex())

    def pure_sign(m: bytes) -> bytes:
        return bytes.fromhex(pure.sign_with_sm3(m, g_func.random_hex(pure.para_len)))

    def pure_verify(m: bytes, s: bytes) -> bool:
        return bool(pure.verify_with_sm3(sm2.signature_to_rs(s).hex(), m))

    out.append(Candidate("gmssl (pure Python)", pure_sign, pure_verify))
    return out


def openssl_cross_check(key: PrivateKey, cand: Candidate, tmp: Path) -> dict[str, Any]:
    """One candidate signature verified by OpenSSL, and one OpenSSL signature verified by the candidate."""
    (tmp / "key.pem").write_bytes(private_key_to_pem(key))
    (tmp / "pub.pem").write_bytes(key.public_key.to_pem())
    (tmp / "msg").write_bytes(MSG)
    result: dict[str, Any] = {}
    try:
        sig = cand.sign(MSG)
        der = sm2.rs_to_der(sig) if len(sig) == 64 and sig[0] != 0x30 else sig
        (tmp / "sig").write_bytes(der)
        proc = subprocess.run(["openssl", "pkeyutl", "-verify", "-pubin", "-inkey", str(tmp / "pub.pem"), "-rawin",
                               "-digest", "sm3", "-pkeyopt", "distid:1234567812345678", "-in", str(tmp / "msg"),
                               "-sigfile", str(tmp / "sig")], capture_output=True)
        result["output_format"] = "DER" if sig[0] == 0x30 else "raw r||s"
        result["openssl_verifies_candidate"] = proc.returncode == 0
        if proc.returncode:
            reason, _ = sm2.diagnose(key.public_key.point or b"", MSG, sm2.signature_to_rs(der))
            result["diagnosis"] = reason
        theirs = subprocess.run(["openssl", "pkeyutl", "-sign", "-inkey", str(tmp / "key.pem"), "-rawin", "-digest",
                                 "sm3", "-pkeyopt", "distid:1234567812345678", "-in", str(tmp / "msg")],
                                capture_output=True, check=True).stdout
        result["candidate_verifies_openssl"] = bool(cand.verify(MSG, theirs))
    except Exception as exc:  # record, do not abort the benchmark
        result["error"] = f"{type(exc).__name__}: {exc}"
    result["correct"] = bool(result.get("openssl_verifies_candidate") and result.get("candidate_verifies_openssl"))
    return result


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=0.3)
    ap.add_argument("--rounds", type=int, default=5)
    args = ap.parse_args(argv)

    key = PrivateKey.generate("sm2")
    cands = candidates(key)
    with tempfile.TemporaryDirectory() as tmp:
        correctness = {c.name: openssl_cross_check(key, c, Path(tmp)) for c in cands}

    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec

    p256 = ec.generate_private_key(ec.SECP256R1())
    p256_sig = p256.sign(MSG, ec.ECDSA(hashes.SHA256()))
    jobs: dict[str, Callable[[], object]] = {}
    for c in cands:
        sig = c.sign(MSG)
        assert c.verify(MSG, sig), f"{c.name} does not verify its own signature"
        jobs[f"{c.name} sign"] = (lambda c=c: c.sign(MSG))  # type: ignore[misc]
        jobs[f"{c.name} verify"] = (lambda c=c, sig=sig: c.verify(MSG, sig))  # type: ignore[misc]
    # the curve operation alone: sign_digest(e) on a reusable per-key context
    e = sm2.e_value(key.public_key.point or b"", MSG)
    gm_ctx = GmalglibEngine().context(key.sm2_scalar(), key.public_key.point or b"")
    nat_ctx = NativeEngine().context(key.sm2_scalar(), key.public_key.point or b"")
    jobs["native sign_digest(e)"] = lambda: nat_ctx.sign_digest(e)  # type: ignore[attr-defined]
    jobs["gmalglib sign_digest(e)"] = lambda: gm_ctx.sign_digest(e)  # type: ignore[attr-defined]
    rs = sm2.signature_to_rs(bytes(nat_ctx.sign_digest(e)))  # type: ignore[attr-defined]
    point = key.public_key.point or b""
    native_engine, gm_engine = NativeEngine(), GmalglibEngine()
    jobs["native verify_digest(e)"] = lambda: native_engine.verify_e(point, e, rs)
    jobs["gmalglib verify_digest(e)"] = lambda: gm_engine.verify_e(point, e, rs)
    jobs["ECDSA P-256 (cryptography) sign"] = lambda: p256.sign(MSG, ec.ECDSA(hashes.SHA256()))
    jobs["ECDSA P-256 (cryptography) verify"] = lambda: p256.public_key().verify(p256_sig, MSG,
                                                                                 ec.ECDSA(hashes.SHA256()))
    rates = interleaved(jobs, seconds=args.seconds, rounds=args.rounds)
    chosen = rates["native via trustsvc Signer sign"].ops_per_s
    gm_signer = rates["gmalglib via trustsvc Signer sign"].ops_per_s
    pure = rates["gmssl (pure Python) sign"].ops_per_s
    native_e = rates["native sign_digest(e)"].ops_per_s
    gm_e = rates["gmalglib sign_digest(e)"].ops_per_s
    native_v = rates["native verify_digest(e)"].ops_per_s
    gm_v = rates["gmalglib verify_digest(e)"].ops_per_s
    checks = [
        Check("chosen engine sign rate / pure gmssl sign rate", chosen / pure, ">=", 15),
        Check("native / gmalglib sign rate, sign_digest(e) alone", native_e / gm_e, ">=", 1.5),
        Check("native / gmalglib sign rate, through trustsvc Signer", chosen / gm_signer, ">=", 1.2),
        Check("native / gmalglib verify rate, verify_digest(e) alone", native_v / gm_v, ">=", 1.5),
    ]
    ok = report("sm2_engines", rates, checks, extra={
        "correctness_vs_openssl": correctness, "cpu_count": os.cpu_count(), "message_bytes": len(MSG)})
    for name, res in correctness.items():
        print(f"  openssl cross-check {name:<32} {'OK' if res['correct'] else 'FAIL'} {res}")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
