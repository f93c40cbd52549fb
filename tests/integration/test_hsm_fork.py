"""Plain ``fork`` while other threads sign: the child inherits no locked PKCS#11 module mutex
and its inherited store and signer work.

The scenario runs in its own interpreter with a timeout, so a hang fails the test instead of
stopping the suite.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
import uuid
from pathlib import Path

from tests.conftest import require_tool
from tests.integration.hsm_helpers import PIN, ROOT, SOFTHSM_MODULE, make_softhsm

SCENARIO = textwrap.dedent("""
    import os, sys, threading
    from trustsvc.keys.pkcs11 import Pkcs11KeyStore, pin_source

    store = Pkcs11KeyStore(sys.argv[1], token_label=sys.argv[2], pin=pin_source(pin=sys.argv[3]),
                           max_sessions=4)
    store.create("fork-key", "ec-p256")
    signer = store.signer("fork-key")
    verifier = signer.verifier()
    # Python's own rule: finish lazy imports before forking with threads (a module lock held
    # by another thread at fork time deadlocks the child's next import, PKCS#11 or not).
    verifier.verify(b"warm-up", signer.sign(b"warm-up"))
    stop = threading.Event()
    errors = []

    def busy():
        while not stop.is_set():
            try:
                verifier.verify(b"parent", signer.sign(b"parent"))
            except Exception as exc:
                errors.append(repr(exc))

    threads = [threading.Thread(target=busy) for _ in range(2)]
    for t in threads:
        t.start()
    codes = []
    for n in range(6):
        pid = os.fork()
        if pid == 0:  # child: the inherited store and signer must work
            try:
                for i in range(40):
                    msg = f"child {n} {i}".encode()
                    verifier.verify(msg, signer.sign(msg))
                os._exit(0)
            except BaseException as exc:
                print("child failed:", repr(exc), flush=True)
                os._exit(1)
        codes.append(os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]))
    stop.set()
    for t in threads:
        t.join()
    verifier.verify(b"after", signer.sign(b"after"))
    print("codes", codes, "parent errors", errors[:3], flush=True)
    sys.exit(0 if codes == [0] * 6 and not errors else 1)
""")


def test_fork_while_threads_sign(tmp_path: Path) -> None:
    require_tool("softhsm2-util")
    label = "fork-" + uuid.uuid4().hex[:8]
    conf = make_softhsm(tmp_path / "hsm", label)
    env = {"SOFTHSM2_CONF": str(conf), "PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"}
    done = subprocess.run([sys.executable, "-c", SCENARIO, SOFTHSM_MODULE, label, PIN], env=env,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
