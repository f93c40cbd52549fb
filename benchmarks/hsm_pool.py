"""ECDSA P-256 signatures/s: the session pool (1 and 2 worker threads) next to raw python-pkcs11
on one session and in-process ``cryptography``, in one run. Needs softhsm2.

Targets: pool(1) >= 0.9 x raw; pool(2 workers) >= 1.7 x pool(1).
"""

from __future__ import annotations

import hashlib
import sys
import tempfile
import threading
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from cryptography.hazmat.primitives import hashes  # noqa: E402
from cryptography.hazmat.primitives.asymmetric import ec  # noqa: E402
from pkcs11 import Mechanism, ObjectClass  # noqa: E402

from benchmarks.harness import Check, interleaved, report  # noqa: E402
from tests.integration.hsm_helpers import PIN, SOFTHSM_MODULE, make_softhsm, use_conf  # noqa: E402
from trustsvc.keys.pkcs11 import Pkcs11KeyStore, pin_source  # noqa: E402

BATCH = 50


def main() -> int:
    tmp = Path(tempfile.mkdtemp(prefix="hsm-bench-"))
    label = "bench-" + uuid.uuid4().hex[:6]
    use_conf(make_softhsm(tmp, label))
    store = Pkcs11KeyStore(SOFTHSM_MODULE, token_label=label, pin=pin_source(pin=PIN), max_sessions=4)
    store.create("bench", "ec-p256")
    signer = store.signer("bench")
    msg = b"x" * 256
    # raw python-pkcs11 on one session, same host-side hashing and DER conversion
    from trustsvc.keys.pkcs11.signer import ecdsa_raw_to_der
    raw_session = store.pool.token.open()
    raw_key = raw_session.get_key(object_class=ObjectClass.PRIVATE_KEY, label="bench@1")

    def raw() -> None:
        for _ in range(BATCH):
            ecdsa_raw_to_der(raw_key.sign(hashlib.sha256(msg).digest(), mechanism=Mechanism.ECDSA))

    def pool1() -> None:
        for _ in range(BATCH):
            signer.sign(msg)

    def pool2() -> None:
        threads = [threading.Thread(target=pool1) for _ in range(2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()

    key = ec.generate_private_key(ec.SECP256R1())

    def crypto() -> None:
        for _ in range(BATCH):
            key.sign(msg, ec.ECDSA(hashes.SHA256()))

    rates = interleaved({"raw_pkcs11_1_session": raw, "pool_1_worker": pool1, "pool_2_workers": pool2,
                         "cryptography_in_process": crypto},
                        ops_per_call={"raw_pkcs11_1_session": BATCH, "pool_1_worker": BATCH,
                                      "pool_2_workers": 2 * BATCH, "cryptography_in_process": BATCH})
    checks = [
        Check("pool(1) / raw python-pkcs11", rates["pool_1_worker"].ops_per_s / rates["raw_pkcs11_1_session"].ops_per_s,
              ">=", 0.9),
        Check("pool(2 workers) / pool(1)", rates["pool_2_workers"].ops_per_s / rates["pool_1_worker"].ops_per_s,
              ">=", 1.7),
    ]
    raw_session.close()
    store.close()
    return 0 if report("hsm_pool", rates, checks) else 1


if __name__ == "__main__":
    sys.exit(main())
