"""`trustsvc demo`: a first run that shows SM2 certificates and signatures working end to end."""

from __future__ import annotations

import argparse
import datetime as dt
import json
import shutil
import subprocess
import time
from pathlib import Path
from typing import Any

from cli.common import home
from trustsvc.algorithms.encoding import private_key_to_pem
from trustsvc.algorithms.signer import SoftwareSigner
from trustsvc.errors import TrustsvcError
from trustsvc.pki.ca import DevelopmentCA

MESSAGE = "trustsvc demo: 电子证照签名 / e-licence signing test message".encode()


def openssl_verify(public_key_pem: Path, message: Path, signature: Path) -> tuple[bool | None, str]:
    """(ok, detail): check an SM2 signature with the OpenSSL CLI; ok is None when openssl is absent."""
    exe = shutil.which("openssl")
    if exe is None:
        return None, "openssl not found"
    proc = subprocess.run([exe, "pkeyutl", "-verify", "-pubin", "-inkey", str(public_key_pem), "-rawin",
                           "-digest", "sm3", "-pkeyopt", "distid:1234567812345678", "-in", str(message),
                           "-sigfile", str(signature)], capture_output=True, text=True, timeout=30)
    detail = (proc.stdout + proc.stderr).strip().splitlines()
    return proc.returncode == 0, detail[0] if detail else f"exit {proc.returncode}"


def run_demo(home_dir: Path) -> dict[str, Any]:
    """Create or reuse a dev SM2 CA, issue a seal-holder cert, sign, verify, validate; return a report."""
    started = time.perf_counter()
    from cli.ca import passphrase

    ca = DevelopmentCA.open_or_init(home_dir / "ca", passphrase=passphrase(), key_type="sm2")
    out = home_dir / "demo"
    out.mkdir(parents=True, exist_ok=True, mode=0o700)
    issued = ca.issue("seal-holder", "演示印章持有人 demo seal holder", key_type="sm2", days=30)
    assert issued.private_key is not None
    signer = SoftwareSigner(issued.private_key, certificate_chain=[issued.certificate.der, ca.certificate.der])
    signature = signer.sign(MESSAGE)
    report: dict[str, Any] = {
        "home": str(home_dir), "ca": ca.certificate.subject, "ca_key_type": ca.signer.algorithm.value,
        "certificate": {"subject": issued.certificate.subject, "serial": f"{issued.serial:x}",
                        "profile": issued.profile.name, "not_after": issued.certificate.not_after.isoformat()},
        "algorithm": signer.algorithm.value, "signature_bytes": len(signature),
    }
    try:
        signer.verifier().verify(MESSAGE, signature)
        report["verify_trustsvc"] = "ok"
    except TrustsvcError as exc:
        report["verify_trustsvc"] = f"FAILED {exc.reason}: {exc.message}"
    result = ca.validate(issued.certificate, key_usage=["digital_signature", "non_repudiation"])
    report["chain"] = {"valid": result.valid, "reason": result.reason,
                       "checks": sum(1 for c in result.checks if c.status.value == "pass")}
    files = {"message": out / "message.txt", "signature": out / "message.sig", "public_key": out / "holder.pub.pem",
             "certificate": out / "holder.crt.pem", "private_key": out / "holder.key.pem"}
    files["message"].write_bytes(MESSAGE)
    files["signature"].write_bytes(signature)
    files["public_key"].write_bytes(issued.certificate.public_key.to_pem())
    files["certificate"].write_bytes(issued.certificate.to_pem())
    files["private_key"].touch(mode=0o600)
    files["private_key"].write_bytes(private_key_to_pem(issued.private_key))
    ok, detail = openssl_verify(files["public_key"], files["message"], files["signature"])
    report["verify_openssl"] = "not run (openssl absent)" if ok is None else ("ok" if ok else f"FAILED: {detail}")
    report["files"] = {k: str(v) for k, v in files.items()}
    report["ok"] = (report["verify_trustsvc"] == "ok" and result.valid and ok is not False)
    report["seconds"] = round(time.perf_counter() - started, 3)
    report["at"] = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
    return report


def summary(report: dict[str, Any]) -> str:
    mark = "OK " if report["ok"] else "FAIL"
    cert = report["certificate"]
    return "\n".join([
        f"[{mark}] trustsvc demo in {report['home']} ({report['seconds']} s)",
        f"  CA            {report['ca']} ({report['ca_key_type']})",
        f"  certificate   {cert['subject']}  serial {cert['serial']}  profile {cert['profile']}",
        f"  signature     {report['algorithm']}, {report['signature_bytes']} bytes DER, SM2 ID 1234567812345678",
        f"  verified by   trustsvc: {report['verify_trustsvc']};  OpenSSL CLI: {report['verify_openssl']}",
        f"  chain         {'valid' if report['chain']['valid'] else 'INVALID ' + str(report['chain']['reason'])}"
        f" ({report['chain']['checks']} checks passed)",
        f"  files         {Path(report['files']['message']).parent}/",
    ])


def _run(args: argparse.Namespace) -> int:
    report = run_demo(home(args))
    print(json.dumps(report, ensure_ascii=False, indent=2) if args.json else summary(report))
    return 0 if report["ok"] else 1


def register(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    parser = subparsers.add_parser("demo", help="first run: dev SM2 CA, certificate, signature, checks")
    parser.add_argument("--json", action="store_true", help="print the report as JSON")
    parser.set_defaults(func=_run)
