"""docs/errors.md lists every error reason the code raises, with the status the daemon answers."""

from __future__ import annotations

import functools
import importlib.util
import re
import subprocess
import sys
from pathlib import Path
from types import ModuleType

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "scripts" / "error_catalogue.py"

# Reasons the daemon answers INTERNAL: faults of the service's installation, key store, HSM or an
# upstream TSA, never of a request. A new one is a decision: add it here, or give it a caller's class.
SERVICE_FAULTS = re.compile(r"HSM_.*|KEYSTORE_CORRUPT|KEY_BLOB_INVALID|BAD_MASTER_KEY_FILE|WRONG_PASSPHRASE|"
                            r"PASSWORD_REQUIRED|CJK_FONT_MISSING|PDF_SIGNING_FAILED|PLACEHOLDER_TOO_SMALL|"
                            r"TSA_.*|BAD_TSA_RESPONSE|IMPRINT_MISMATCH|NONCE_MISMATCH|TIMESTAMP_UNTRUSTED|"
                            r"BAD_ISSUER|BAD_JWKS_SOURCE|BAD_PRIVACY_.*|BAD_TRUST_CONFIG|NO_ISSUERS")


@functools.cache
def _catalogue() -> ModuleType:
    spec = importlib.util.spec_from_file_location("error_catalogue", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["error_catalogue"] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def test_docs_errors_md_is_up_to_date() -> None:
    done = subprocess.run([sys.executable, str(SCRIPT), "--check"], capture_output=True, text=True, cwd=ROOT)
    assert done.returncode == 0, done.stderr


def test_every_reason_has_a_deliberate_status() -> None:
    reasons = _catalogue().collect()
    assert len(reasons) > 150
    for name, entry in reasons.items():
        assert re.fullmatch(r"[A-Z][A-Z0-9]*(_[A-Z0-9]+)*", name), name
        assert "UNKNOWN" not in entry.codes, name
        if "INTERNAL" in entry.codes:
            assert SERVICE_FAULTS.fullmatch(name), f"{name} is answered INTERNAL: {sorted(entry.classes)}"


def test_catalogue_finds_reasons_given_as_constants_and_class_defaults() -> None:
    reasons = _catalogue().collect()
    assert reasons["EXPIRED"].codes == {"INVALID_ARGUMENT"}  # token.errors constant, TokenInvalid
    assert reasons["BAD_KEY_NAME"].codes == {"INVALID_ARGUMENT"}
    assert "KEY_NOT_FOUND" in reasons and reasons["KEY_NOT_FOUND"].codes == {"NOT_FOUND"}
    assert reasons["AUDIT_UNAVAILABLE"].codes == {"UNAVAILABLE"}
