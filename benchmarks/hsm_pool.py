"""ECDSA P-256 signatures/s through the session pool with 1 and 2 workers, next to raw
python-pkcs11 on one session and in-process ``cryptography``, in one run. Needs softhsm2.

Workers are measured two ways: threads sharing one pool in this process, and worker processes
(spawn), each with its own pool on the same token, the way a daemon runs one process per core.

Targets: pool(1) >= 0.9 x raw python-pkcs11; 2 workers (processes) >= 1.7 x 1 worker. Threads
are reported for information: SoftHSM2 serialises them inside one process, with or without the
pool (docs/hsm.md). The same run also
measures the machine's own ceiling for two CPU-bound processes (in-process ``cryptography`` in 1 and
2 worker processes): on a shared or busy 2-core machine it is often far below 2, and the worker
targets can only be judged against it.

    python -m benchmarks.hsm_pool [--no-instructions]

Wall-clock ratios on a noisy machine swing by 10% and more; the per-call cost of the pool is
therefore also counted in CPU instructions (``valgrind --tool=callgrind``, repeatable whatever else
the machine does): N signatures raw and through the pool, minus the same script signing nothing.
"""

from __future__ import annotations

import argparse
import hashlib
import multiprocessing
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import uuid
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from cryptography.hazmat.primitives import hashes  # noqa: E402
from cryptography.hazmat.primitives.asymmetric import ec  # noqa: E402
from pkcs11 import Mechanism, ObjectClass  # noqa: E402

from benchmarks.harness import Check, interleaved, report  # noqa: E402
from tests.integration.hsm_helpers import PIN, SOFTHSM_MODULE, make_softhsm, use_conf  # noqa: E402
from trustsvc.keys.pkcs11 import Pkcs11KeyStore, pin_source  # noqa: E402

BATCH = 50
MSG = b"x" * 256


def _open(label: str) -> Pkcs11KeyStore:
    return Pkcs11KeyStore(SOFTHSM_MODULE, token_label=label, pin=pin_source(pin=PIN), max_sessions=4)


def _worker(conf: str, label: str, conn: Any) -> None:
    """A worker process: its own pool (or, without a label, in-process ``cryptography`` as the
    machine's CPU ceiling); signs ``n`` messages per request until told to stop."""
    os.environ["SOFTHSM2_CONF"] = conf
    store = _open(label) if label else None
    if store is not None:
        sign = store.signer("bench").sign
    else:
        key = ec.generate_private_key(ec.SECP256R1())
        sign = lambda m: key.sign(m, ec.ECDSA(hashes.SHA256()))  # noqa: E731
    conn.send("ready")
    while (n := conn.recv()) is not None:
        for _ in range(n):
            sign(MSG)
        conn.send(n)
    if store is not None:
        store.close()


class Workers:
    """``count`` worker processes; ``run()`` has each sign ``per_call`` messages, in parallel."""

    def __init__(self, count: int, conf: str, label: str, per_call: int = BATCH) -> None:
        ctx = multiprocessing.get_context("spawn")
        self.per_call = per_call
        self.conns, self.procs = [], []
        for _ in range(count):
            parent, child = ctx.Pipe()
            proc = ctx.Process(target=_worker, args=(conf, label, child), daemon=True)
            proc.start()
            self.conns.append(parent)
            self.procs.append(proc)
        for c in self.conns:
            assert c.recv() == "ready"

    def run(self) -> None:
        for c in self.conns:
            c.send(self.per_call)
        for c in self.conns:
            c.recv()

    def close(self) -> None:
        for c in self.conns:
            c.send(None)
        for p in self.procs:
            p.join(10)


INSTRUCTION_SCRIPT = """
import hashlib, sys
from pkcs11 import Mechanism, ObjectClass
from trustsvc.keys.pkcs11 import Pkcs11KeyStore, pin_source
from trustsvc.keys.pkcs11.signer import ecdsa_raw_to_der
module, label, pin, mode, n = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4], int(sys.argv[5])
store = Pkcs11KeyStore(module, token_label=label, pin=pin_source(pin=pin), max_sessions=4)
signer = store.signer("bench")
msg = b"x" * 256
session = store.pool.token.open(rw=True)
key = session.get_key(object_class=ObjectClass.PRIVATE_KEY, label="bench@1")
signer.sign(msg)
if mode == "raw":
    for _ in range(n):
        ecdsa_raw_to_der(key.sign(hashlib.sha256(msg).digest(), mechanism=Mechanism.ECDSA))
elif mode == "pool":
    for _ in range(n):
        signer.sign(msg)
"""


def instructions_per_signature(label: str, n: int = 400) -> dict[str, float] | None:
    """Instructions per signature, raw python-pkcs11 and through the pool (None without valgrind)."""
    valgrind = shutil.which("valgrind")
    if valgrind is None:
        return None
    root = str(Path(__file__).resolve().parents[1])
    counts = {}
    for mode in ("none", "raw", "pool"):
        out = subprocess.run([valgrind, "--tool=callgrind", "--callgrind-out-file=/dev/null", sys.executable, "-c",
                              INSTRUCTION_SCRIPT, SOFTHSM_MODULE, label, PIN, mode, str(n)],
                             capture_output=True, text=True, env={**os.environ, "PYTHONPATH": root}, check=True)
        counts[mode] = int(re.search(r"I\s+refs:\s+([\d,]+)", out.stderr).group(1).replace(",", ""))  # type: ignore[union-attr]
    return {"raw": (counts["raw"] - counts["none"]) / n, "pool": (counts["pool"] - counts["none"]) / n}


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--no-instructions", action="store_true", help="skip the callgrind instruction count")
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="hsm-bench-"))
    label = "bench-" + uuid.uuid4().hex[:6]
    conf = make_softhsm(tmp, label)
    use_conf(conf)
    store = _open(label)
    store.create("bench", "ec-p256")
    signer = store.signer("bench")
    # raw python-pkcs11 on one session, same host-side hashing and DER conversion
    from trustsvc.keys.pkcs11.signer import ecdsa_raw_to_der
    raw_session = store.pool.token.open()
    raw_key = raw_session.get_key(object_class=ObjectClass.PRIVATE_KEY, label="bench@1")

    def raw() -> None:
        for _ in range(BATCH):
            ecdsa_raw_to_der(raw_key.sign(hashlib.sha256(MSG).digest(), mechanism=Mechanism.ECDSA))

    raw_session2 = store.pool.token.open()
    raw_key2 = raw_session2.get_key(object_class=ObjectClass.PRIVATE_KEY, label="bench@1")

    def raw2() -> None:  # two threads, two sessions, no pool: SoftHSM2's own ceiling for threads
        def one(k: Any) -> None:
            for _ in range(BATCH):
                ecdsa_raw_to_der(k.sign(hashlib.sha256(MSG).digest(), mechanism=Mechanism.ECDSA))
        threads = [threading.Thread(target=one, args=(k,)) for k in (raw_key, raw_key2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()

    def pool1() -> None:
        for _ in range(BATCH):
            signer.sign(MSG)

    def pool2() -> None:
        threads = [threading.Thread(target=pool1) for _ in range(2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()

    key = ec.generate_private_key(ec.SECP256R1())

    def crypto() -> None:
        for _ in range(BATCH):
            key.sign(MSG, ec.ECDSA(hashes.SHA256()))

    one, two = Workers(1, str(conf), label), Workers(2, str(conf), label)
    cpu1, cpu2 = Workers(1, str(conf), "", 4 * BATCH), Workers(2, str(conf), "", 4 * BATCH)
    try:
        rates = interleaved({"raw_pkcs11_1_session": raw, "pool_1_thread": pool1,  # adjacent: the pair compared
                             "raw_pkcs11_2_threads": raw2, "pool_2_threads": pool2,
                             "pool_1_process": one.run, "pool_2_processes": two.run,
                             "cryptography_in_process": crypto,
                             "cpu_ceiling_1_process": cpu1.run, "cpu_ceiling_2_processes": cpu2.run},
                            ops_per_call={"raw_pkcs11_1_session": BATCH, "raw_pkcs11_2_threads": 2 * BATCH,
                                          "pool_1_thread": BATCH,
                                          "pool_2_threads": 2 * BATCH, "pool_1_process": BATCH,
                                          "pool_2_processes": 2 * BATCH, "cryptography_in_process": BATCH,
                                          "cpu_ceiling_1_process": 4 * BATCH, "cpu_ceiling_2_processes": 8 * BATCH})
    finally:
        for w in (one, two, cpu1, cpu2):
            w.close()
    r = {k: v.ops_per_s for k, v in rates.items()}
    checks = [
        Check("pool(1 thread) / raw python-pkcs11", r["pool_1_thread"] / r["raw_pkcs11_1_session"], ">=", 0.9),
        Check("pool(2 processes) / pool(1 process)", r["pool_2_processes"] / r["pool_1_process"], ">=", 1.7),
    ]
    # Not a target: what this machine gives two CPU-bound processes right now (in-process
    # cryptography, no PKCS#11). Below 1.7 the scaling targets cannot be shown on this run.
    ceiling = r["cpu_ceiling_2_processes"] / r["cpu_ceiling_1_process"]
    print(f"  machine ceiling (2 CPU-bound processes / 1): {ceiling:.2f}; load average {os.getloadavg()[0]:.2f}")
    # Not a target either: SoftHSM2 serialises threads of one process (docs/hsm.md); workers scale
    # as processes, which is what the worker target above measures.
    print(f"  threads, for information: pool 2/1 {r['pool_2_threads'] / r['pool_1_thread']:.2f}, raw python-pkcs11 "
          f"without the pool 2/1 {r['raw_pkcs11_2_threads'] / r['raw_pkcs11_1_session']:.2f}")
    raw_session2.close()
    raw_session.close()
    store.close()
    extra: dict[str, object] = {"cpus": os.cpu_count(), "machine_ceiling_2_over_1": ceiling,
                                "loadavg": os.getloadavg()}
    instr = None if args.no_instructions else instructions_per_signature(label)
    if instr is not None:
        extra["instructions_per_signature"] = instr
        print(f"  instructions per signature: raw {instr['raw']:,.0f}, pool {instr['pool']:,.0f} "
              f"(pool overhead {instr['pool'] / instr['raw'] - 1:+.1%})")
        checks.append(Check("raw / pool instructions per signature (callgrind)", instr["raw"] / instr["pool"],
                            ">=", 0.9))
    return 0 if report("hsm_pool", rates, checks, extra) else 1


if __name__ == "__main__":
    sys.exit(main())
