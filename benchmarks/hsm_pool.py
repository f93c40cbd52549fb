"""ECDSA P-256 signatures/s through the session pool with 1 and 2 workers, next to raw
python-pkcs11 on one session and in-process ``cryptography``, in one run. Needs softhsm2.

Workers are measured two ways: threads sharing one pool in this process, and worker processes
(spawn), each with its own pool on the same token, the way a daemon runs one process per core.

Targets: pool(1) >= 0.9 x raw python-pkcs11; 2 workers >= 1.7 x 1 worker.

    python -m benchmarks.hsm_pool
"""

from __future__ import annotations

import hashlib
import multiprocessing
import os
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
    """A worker process: its own pool; signs ``n`` messages per request until told to stop."""
    os.environ["SOFTHSM2_CONF"] = conf
    store = _open(label)
    signer = store.signer("bench")
    conn.send("ready")
    while (n := conn.recv()) is not None:
        for _ in range(n):
            signer.sign(MSG)
        conn.send(n)
    store.close()


class Workers:
    """``count`` worker processes; ``run()`` has each sign BATCH messages, in parallel."""

    def __init__(self, count: int, conf: str, label: str) -> None:
        ctx = multiprocessing.get_context("spawn")
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
            c.send(BATCH)
        for c in self.conns:
            c.recv()

    def close(self) -> None:
        for c in self.conns:
            c.send(None)
        for p in self.procs:
            p.join(10)


def main() -> int:
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
    try:
        rates = interleaved({"raw_pkcs11_1_session": raw, "pool_1_thread": pool1, "pool_2_threads": pool2,
                             "pool_1_process": one.run, "pool_2_processes": two.run,
                             "cryptography_in_process": crypto},
                            ops_per_call={"raw_pkcs11_1_session": BATCH, "pool_1_thread": BATCH,
                                          "pool_2_threads": 2 * BATCH, "pool_1_process": BATCH,
                                          "pool_2_processes": 2 * BATCH, "cryptography_in_process": BATCH})
    finally:
        one.close()
        two.close()
    r = {k: v.ops_per_s for k, v in rates.items()}
    checks = [
        Check("pool(1 thread) / raw python-pkcs11", r["pool_1_thread"] / r["raw_pkcs11_1_session"], ">=", 0.9),
        Check("pool(2 processes) / pool(1 process)", r["pool_2_processes"] / r["pool_1_process"], ">=", 1.7),
        Check("pool(2 threads) / pool(1 thread)", r["pool_2_threads"] / r["pool_1_thread"], ">=", 1.7),
    ]
    raw_session.close()
    store.close()
    return 0 if report("hsm_pool", rates, checks, {"cpus": os.cpu_count(),
                                                   "loadavg": os.getloadavg()}) else 1


if __name__ == "__main__":
    sys.exit(main())
