"""CMS interop: ours verified by BouncyCastle and OpenSSL; theirs verified by ours."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from tests.conftest import require_tool
from tests.interop import bouncycastle
from tests.unit.test_cms_pki import make_pki
from trustsvc.algorithms.encoding import private_key_to_pem
from trustsvc.pki.cms import sign_cms, verify_cms

DATA = b"%PDF-1.7 pretend e-licence bytes \x00\x01\x02" * 50


def _bc(*args: str) -> subprocess.CompletedProcess[str]:
    require_tool("java")
    return bouncycastle.run("CmsTool", *args)


@pytest.mark.parametrize("spec", ["sm2", "ec-p256"])
@pytest.mark.parametrize("detached", [True, False])
@pytest.mark.parametrize("signed_attributes", [True, False])
def test_ours_verified_by_bouncycastle(tmp_path: Path, spec: str, detached: bool, signed_attributes: bool) -> None:
    pki = make_pki(spec)
    der = sign_cms(pki.signer, DATA, detached=detached, signed_attributes=signed_attributes)
    (tmp_path / "sig.p7s").write_bytes(der)
    (tmp_path / "data.bin").write_bytes(DATA)
    args = [str(tmp_path / "sig.p7s")] + ([str(tmp_path / "data.bin")] if detached else [])
    proc = _bc("verify", *args)
    assert proc.returncode == 0 and proc.stdout.startswith("OK"), proc.stdout + proc.stderr


def test_bouncycastle_detects_tampering(tmp_path: Path) -> None:
    pki = make_pki("sm2")
    (tmp_path / "sig.p7s").write_bytes(sign_cms(pki.signer, DATA))
    (tmp_path / "data.bin").write_bytes(DATA + b"!")
    proc = _bc("verify", str(tmp_path / "sig.p7s"), str(tmp_path / "data.bin"))
    assert proc.returncode == 1 and "FAIL" in proc.stdout


def _write_key_cert(tmp_path: Path, pki) -> tuple[Path, Path]:  # type: ignore[no-untyped-def]
    key = tmp_path / "key.pem"
    key.write_bytes(private_key_to_pem(pki.signer._key))
    cert = tmp_path / "cert.pem"
    cert.write_bytes(pki.leaf.to_pem())
    return key, cert


@pytest.mark.parametrize("mode", [("detached", "attrs"), ("attached", "attrs"), ("attached", "noattrs")])
def test_bouncycastle_sm2_verified_by_ours(tmp_path: Path, mode: tuple[str, str]) -> None:
    pki = make_pki("sm2")
    key, cert = _write_key_cert(tmp_path, pki)
    (tmp_path / "data.bin").write_bytes(DATA)
    out = tmp_path / "bc.p7s"
    proc = _bc("sign", "SM3withSM2", str(key), str(cert), str(tmp_path / "data.bin"), str(out), *mode)
    assert proc.returncode == 0, proc.stderr
    result = verify_cms(out.read_bytes(), DATA if mode[0] == "detached" else None, trust_anchors=[pki.root])
    assert result.ok, result.to_dict()
    assert result.signers[0].digest_algorithm == "sm3"


def test_ecdsa_verified_by_openssl(tmp_path: Path) -> None:
    openssl = require_tool("openssl")
    pki = make_pki("ec-p256")
    (tmp_path / "data.bin").write_bytes(DATA)
    for detached in (True, False):
        (tmp_path / "sig.der").write_bytes(sign_cms(pki.signer, DATA, detached=detached))
        args = [openssl, "cms", "-verify", "-binary", "-noverify", "-inform", "DER", "-in", str(tmp_path / "sig.der"),
                "-out", str(tmp_path / "out.bin")]
        if detached:
            args += ["-content", str(tmp_path / "data.bin")]
        proc = subprocess.run(args, capture_output=True, text=True)
        assert proc.returncode == 0, proc.stderr
        assert (tmp_path / "out.bin").read_bytes() == DATA


@pytest.mark.parametrize("spec", ["ec-p256", "rsa-2048"])
@pytest.mark.parametrize("extra", [[], ["-nodetach"], ["-noattr"]])
def test_openssl_cms_verified_by_ours(tmp_path: Path, spec: str, extra: list[str]) -> None:
    openssl = require_tool("openssl")
    pki = make_pki(spec)
    key, cert = _write_key_cert(tmp_path, pki)
    (tmp_path / "data.bin").write_bytes(DATA)
    out = tmp_path / "ossl.der"
    proc = subprocess.run([openssl, "cms", "-sign", "-binary", "-md", "sha256", "-in", str(tmp_path / "data.bin"),
                           "-signer", str(cert), "-inkey", str(key), "-outform", "DER", "-out", str(out), *extra],
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    attached = "-nodetach" in extra
    result = verify_cms(out.read_bytes(), None if attached else DATA, trust_anchors=[pki.root])
    assert result.ok, result.to_dict()


def test_empty_sm2_id_fails_with_reason(tmp_path: Path) -> None:
    pki = make_pki("sm2")
    signer = pki.signer.with_certificates(pki.signer.certificate_chain)
    signer.sm2_id = b""  # what OpenSSL 3 does without distid
    der = sign_cms(signer, DATA)
    result = verify_cms(der, DATA)
    assert result.check("signature").reason == "SM2_ID_MISMATCH"
    (tmp_path / "sig.p7s").write_bytes(der)
    (tmp_path / "data.bin").write_bytes(DATA)
    assert _bc("verify", str(tmp_path / "sig.p7s"), str(tmp_path / "data.bin")).returncode == 1
