"""`trustsvc demo`: a first run that shows SM2 certificates and signatures working end to end."""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import logging
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from cli.common import home
from trustsvc.algorithms.encoding import private_key_to_pem
from trustsvc.algorithms.signer import SoftwareSigner
from trustsvc.errors import TrustsvcError
from trustsvc.pki.ca import DevelopmentCA

OPENSSL_MISSING = "SKIPPED: openssl is missing (not on PATH), so the OpenSSL cross-check did not run"
MESSAGE = "trustsvc demo: 电子证照签名 / e-licence signing test message".encode()


def openssl_verify(public_key_pem: Path, message: Path, signature: Path) -> tuple[bool | None, str]:
    """(ok, detail): check an SM2 signature with the OpenSSL CLI; ok is None when openssl is absent."""
    exe = shutil.which("openssl")
    if exe is None:
        return None, OPENSSL_MISSING
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
    report["verify_openssl"] = detail if ok is None else ("ok" if ok else f"FAILED: {detail}")
    report["files"] = {k: str(v) for k, v in files.items()}
    report["ok"] = report["verify_trustsvc"] == "ok" and result.valid and ok is not False
    if ok is None:
        report["warnings"] = [OPENSSL_MISSING]
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
        *(f"  WARNING       {w}" for w in report.get("warnings", ())),
    ])


def _step(steps: list[dict[str, Any]], name: str, called: str, fn: Any) -> Any:
    """Run one demo step; record (name, called, ok, result, verified_by) and never raise."""
    try:
        ok, result, verified_by, value = fn()
    except Exception as exc:  # noqa: BLE001 - the demo reports every failure and carries on
        ok, result, verified_by, value = False, f"ERROR {type(exc).__name__}: {str(exc)[:200]}", "-", None
    steps.append({"step": name, "called": called, "ok": bool(ok), "result": result, "verified_by": verified_by})
    return value


@contextlib.contextmanager
def daemon_log_file(path: Path) -> Iterator[logging.Handler]:
    """While open, the daemon's JSON log lines go to ``path`` (appended) instead of stderr."""
    from trustsvc.server.logs import LOGGER, JsonFormatter

    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    handler = logging.FileHandler(path, encoding="utf-8")
    handler.setFormatter(JsonFormatter())  # logs.setup() sees it and adds no stderr handler
    saved = (list(LOGGER.handlers), LOGGER.level, LOGGER.propagate)
    for h in saved[0]:
        LOGGER.removeHandler(h)
    LOGGER.addHandler(handler)
    LOGGER.setLevel(logging.INFO)
    LOGGER.propagate = False
    try:
        yield handler
    finally:
        LOGGER.removeHandler(handler)
        handler.close()
        for h in saved[0]:
            LOGGER.addHandler(h)
        LOGGER.setLevel(saved[1])
        LOGGER.propagate = saved[2]


def run_daemon_demo(home_dir: Path) -> dict[str, Any]:
    """Start the daemon on the embedded default (127.0.0.1, ephemeral port, mTLS), call each kind once, stop.

    The daemon's logs go to ``<home>/logs/demo-daemon.log`` (the report's ``log``), not to the terminal.
    """
    log_path = home_dir / "logs" / "demo-daemon.log"
    with daemon_log_file(log_path) as handler:
        report = _daemon_demo(home_dir, handler)
    report["log"] = str(log_path)
    return report


def _daemon_demo(home_dir: Path, log_handler: logging.Handler) -> dict[str, Any]:
    from trustsvc.client import Client, document_pb2
    from trustsvc.server import Daemon, load_config
    from trustsvc.server.logs import LOGGER

    started = time.perf_counter()
    out = home_dir / "demo-output"
    out.mkdir(parents=True, exist_ok=True, mode=0o700)
    steps: list[dict[str, Any]] = []
    cfg = load_config(None, home=str(home_dir), listen="127.0.0.1:0", metrics_listen="", grace_s=5)
    daemon = Daemon(cfg)
    for h in [h for h in LOGGER.handlers if h is not log_handler]:  # whatever setup() added: not on stderr
        LOGGER.removeHandler(h)

    def start() -> tuple[bool, str, str, Any]:
        bound = daemon.start()
        wired = [k for k, v in daemon.wired.items() if v]
        return bool(bound), f"listening on 127.0.0.1:{bound}, services: {', '.join(wired)}", "port bound", bound

    def stop() -> tuple[bool, str, str, Any]:
        daemon.stop(5)
        return daemon.server is None, "stopped", "graceful drain finished, audit checkpointed", None

    port = _step(steps, "daemon start", "Daemon.start (embedded default, mTLS)", start)
    report: dict[str, Any] = {"home": str(home_dir), "output": str(out), "steps": steps}
    if port:
        target = f"127.0.0.1:{port}"
        try:
            with Client.from_home(home_dir, target, "demo-client", server_name="localhost", timeout=60) as c:
                c.wait_ready(15)
                _daemon_calls(c, steps, out, document_pb2)
        except Exception as exc:  # noqa: BLE001
            steps.append({"step": "client", "called": f"connect {target}", "ok": False,
                          "result": f"ERROR {type(exc).__name__}: {str(exc)[:200]}", "verified_by": "-"})
        finally:
            _step(steps, "daemon stop", "Daemon.stop (graceful drain)", stop)
    report["ok"] = bool(steps) and all(s["ok"] for s in steps)
    report["seconds"] = round(time.perf_counter() - started, 3)
    return report


def _daemon_calls(c: Any, steps: list[dict[str, Any]], out: Path, document_pb2: Any) -> None:
    data = "trustsvc demo: 数据签名 / data signature over gRPC".encode()

    def sign_data() -> tuple[bool, str, str, Any]:
        resp = c.sign_data("default", data)
        res = c.verify_signed_data(data, resp.signature, certificate=resp.certificate)
        bad = c.verify_signed_data(data + b"!", resp.signature, certificate=resp.certificate)
        exported = c.export_cert("default")
        (out / "data.txt").write_bytes(data)
        (out / "data.sig").write_bytes(resp.signature)
        from trustsvc.pki.certificate import Certificate

        cert = Certificate.load(exported.certificate)
        (out / "default.crt.pem").write_bytes(cert.to_pem())
        (out / "default.pub.pem").write_bytes(cert.public_key.to_pem())
        ok_ssl, detail = openssl_verify(out / "default.pub.pem", out / "data.txt", out / "data.sig")
        ssl = f"OpenSSL CLI {detail}" if ok_ssl is None else (
            "OpenSSL CLI ok" if ok_ssl else f"OpenSSL CLI FAILED: {detail}")
        ok = res.valid and not bad.valid and ok_ssl is not False
        return (ok, f"{resp.algorithm}, {len(resp.signature)} bytes; verified: {res.valid and 'valid' or res.reason}",
                f"VerifySignedData (tamper rejected: {not bad.valid}); ExportCert + {ssl}", None)

    _step(steps, "data signature", "SignatureService.SignData(key=default) -> VerifySignedData", sign_data)

    def token() -> tuple[bool, str, str, Any]:
        issued = c.issue_token("110101199001011234", audience=["portal"], scopes=["licence.read"], ttl_seconds=300)
        (out / "token.jwt").write_text(issued.token + "\n")
        ver = c.verify_token(issued.token, audience="portal")
        ok = ver.result.valid and ver.claims["sub"] == "110101199001011234"
        return (ok, f"token {issued.token_id} for natural person 110101199001011234; "
                    f"verified: {ver.result.valid and 'valid' or ver.result.reason}",
                "TokenService.VerifyToken (signature, audience, expiry, subject claim)", None)

    _step(steps, "token", "TokenService.IssueToken(subject=natural person) -> VerifyToken", token)

    def seal() -> tuple[bool, str, str, Any]:
        seals = c.list_seals().seals
        active = [s for s in seals if s.state == "active"]
        if not active:
            return False, "no active seal (the embedded default should make a demo seal)", "ListSeals", None
        seal_id = active[0].seal_id
        doc = "电子证照 demo document for an electronic seal".encode()
        signed = c.sign_with_seal(seal_id, doc, property_info="trustsvc-demo")
        (out / "seal-document.txt").write_bytes(doc)
        (out / "seal-signature.der").write_bytes(signed.ses_signature)
        ver = c.verify_seal_signature(signed.ses_signature, doc)
        ok = ver.result.valid and ver.seal_id == seal_id
        return (ok, f"seal {seal_id} ({active[0].name}), SES_Signature {len(signed.ses_signature)} bytes; "
                    f"verified: {ver.result.valid and 'valid' or ver.result.reason}",
                "SealService.VerifySealSignature (GB/T 38540 SES_Signature)", None)

    _step(steps, "seal", "SealService.SignWithSeal(demo seal) -> VerifySealSignature", seal)

    def pdf() -> tuple[bool, str, str, Any]:
        from trustsvc.pdf.devkit import licence_pdf

        original = licence_pdf(text="trustsvc demo e-licence")
        seals = c.list_seals(state="active").seals
        seal_id = seals[0].seal_id if seals else ""
        licence = document_pb2.LicenceMetadata(  # DEMO ONLY: a made-up licence
            licence_type="营业执照", licence_number="DEMO-0001", holder_name="示例科技有限公司",
            holder_id="91110000DEMO00001X", issuing_authority="示例市场监督管理局", issue_date="2026-01-01")
        opts = document_pb2.PdfSignOptions(key="default", reason="licence issued", location="Beijing",
                                           seal_id=seal_id, rect=[400, 80, 520, 200] if seal_id else [],
                                           licence=licence)
        signed = c.sign_pdf(original, opts)
        (out / "licence.pdf").write_bytes(original)
        (out / "licence-signed.pdf").write_bytes(signed.pdf)
        ver = c.verify_pdf(signed.pdf)
        verdict = "valid" if ver.result.valid else ver.result.reason
        stamp = f"visible seal {seal_id} at (400, 80)-(520, 200) on page 1" if seal_id else "no seal (invisible)"
        carried = ver.licence.licence_number == licence.licence_number
        bound = [s.seal_id for s in ver.signatures] == [seal_id]  # the signature names the seal it was stamped with
        return (ver.result.valid and bool(seal_id) and carried and bound,
                f"signed PDF {len(signed.pdf)} bytes, {stamp}, licence {ver.licence.licence_number or 'MISSING'}, "
                f"seal bound: {ver.signatures[0].seal_id if ver.signatures else '-'}; verified: {verdict}",
                "DocumentService.VerifyPdf (PAdES byte range + signature, licence metadata, bound seal)", None)

    _step(steps, "pdf", "DocumentService.SignPdf(e-licence PDF, demo seal stamp) -> VerifyPdf", pdf)


def full_summary(pki: dict[str, Any], daemon: dict[str, Any]) -> str:
    lines = [summary(pki), f"[{'OK ' if daemon['ok'] else 'FAIL'}] daemon demo over gRPC + mTLS "
             f"({daemon['seconds']} s), outputs in {daemon['output']}/"]
    for s in daemon["steps"]:
        lines.append(f"  [{'OK ' if s['ok'] else 'FAIL'}] {s['step']:<15} {s['called']}")
        lines.append(f"        result: {s['result']}")
        lines.append(f"        verified by: {s['verified_by']}")
    ok = pki["ok"] and daemon["ok"]
    skipped = bool(pki.get("warnings")) or any(OPENSSL_MISSING in s["verified_by"] for s in daemon["steps"])
    lines.append(f"daemon log: {daemon['log']}")
    lines.append(f"demo {'PASSED' if ok else 'FAILED'}" + (f" ({OPENSSL_MISSING})" if skipped else ""))
    return "\n".join(lines)


def _run(args: argparse.Namespace) -> int:
    home_dir = home(args)
    report = run_demo(home_dir)
    daemon = run_daemon_demo(home_dir)
    ok = bool(report["ok"] and daemon["ok"])
    if args.json:
        print(json.dumps({"pki": report, "daemon": daemon, "ok": ok}, ensure_ascii=False, indent=2))
    else:
        print(full_summary(report, daemon))
    return 0 if ok else 1


def register(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    parser = subparsers.add_parser(
        "demo", help="first run: dev SM2 CA, then the daemon over mTLS: data signature, token, seal, PDF")
    parser.add_argument("--json", action="store_true", help="print the report as JSON")
    parser.set_defaults(func=_run)
