"""PKI interop: our certificates, CSRs and CRLs checked by OpenSSL and BouncyCastle, and theirs by us."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from tests.conftest import require_tool
from tests.interop import bouncycastle as bc
from trustsvc.algorithms import SoftwareSigner
from trustsvc.pki import Certificate, CertificateRequest, CertificateRevocationList, build_csr, validate
from trustsvc.pki.ca import DevelopmentCA

DISTID = "distid:1234567812345678"


def openssl(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    exe = require_tool("openssl")
    return subprocess.run([exe, *args], cwd=cwd, capture_output=True, text=True, timeout=60)


def ok(proc: subprocess.CompletedProcess[str]) -> str:
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc.stdout


def java() -> None:
    require_tool("java")
    require_tool("javac")


@pytest.fixture(scope="module", params=["sm2", "ec-p256", "rsa-2048"])
def dev_ca(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> DevelopmentCA:
    return DevelopmentCA.init(tmp_path_factory.mktemp(request.param) / "ca", key_type=request.param)


def test_our_certificates_verify_with_openssl(dev_ca: DevelopmentCA, tmp_path: Path) -> None:
    spec = dev_ca._state()["key_type"]
    issued = dev_ca.issue("server", "localhost", key_type=spec, dns=["localhost"])
    (tmp_path / "root.pem").write_bytes(dev_ca.certificate.to_pem())
    (tmp_path / "leaf.pem").write_bytes(issued.certificate.to_pem())
    (tmp_path / "crl.pem").write_bytes(dev_ca.current_crl().to_pem())
    vfy = ["-vfyopt", DISTID] if spec == "sm2" else []
    out = ok(openssl("verify", *vfy, "-CAfile", "root.pem", "-purpose", "sslserver", "leaf.pem", cwd=tmp_path))
    assert "leaf.pem: OK" in out
    if spec == "sm2":
        return  # OpenSSL 3.0 checks CRL signatures with the empty SM2 ID (-vfyopt is not applied); BC checks ours
    # with our CRL: good before revocation, revoked after
    ok(openssl("verify", *vfy, "-crl_check", "-CRLfile", "crl.pem", "-CAfile", "root.pem", "leaf.pem", cwd=tmp_path))
    (tmp_path / "crl.pem").write_bytes(dev_ca.revoke(issued.serial).to_pem())
    proc = openssl("verify", *vfy, "-crl_check", "-CRLfile", "crl.pem", "-CAfile", "root.pem", "leaf.pem",
                   cwd=tmp_path)
    assert proc.returncode != 0 and "revoked" in (proc.stdout + proc.stderr)


def test_our_sm2_csr_verifies_with_openssl_and_bc(tmp_path: Path) -> None:
    java()
    csr = build_csr(SoftwareSigner.generate("sm2"), {"common_name": "csr", "organization_name": "trustsvc"},
                    dns=["a.example"])
    (tmp_path / "req.pem").write_bytes(csr.to_pem())
    assert "verify OK" in ok(openssl("req", "-in", "req.pem", "-verify", "-noout", "-vfyopt", DISTID, cwd=tmp_path)) \
        + openssl("req", "-in", "req.pem", "-verify", "-noout", "-vfyopt", DISTID, cwd=tmp_path).stderr
    assert bc.run("CertTool", "verify-csr", str(tmp_path / "req.pem")).stdout.startswith("OK")


def test_our_sm2_certificate_and_crl_verify_with_bouncycastle(tmp_path: Path) -> None:
    java()
    ca = DevelopmentCA.init(tmp_path / "ca")
    issued = ca.issue("seal-maker", "制章人 maker")
    crl = ca.revoke(issued.serial)
    for name, data in (("root.pem", ca.certificate.to_pem()), ("leaf.pem", issued.certificate.to_pem()),
                       ("crl.pem", crl.to_pem())):
        (tmp_path / name).write_bytes(data)
    for subject in ("leaf.pem", "root.pem"):
        proc = bc.run("Sm2Tool", "verify-cert", str(tmp_path / subject), str(tmp_path / "root.pem"))
        assert proc.stdout.startswith("OK"), proc.stdout + proc.stderr
    out = bc.run("CertTool", "verify-crl", str(tmp_path / "crl.pem"), str(tmp_path / "root.pem")).stdout
    assert out.startswith("OK") and str(issued.serial) in out


def test_bouncycastle_sm2_chain_validates_with_us(tmp_path: Path) -> None:
    java()
    assert bc.run("CertTool", "make-chain", str(tmp_path)).stdout.startswith("OK")
    root = Certificate.load((tmp_path / "root.pem").read_bytes())
    leaf = Certificate.load((tmp_path / "leaf.pem").read_bytes())
    assert root.signature_algorithm_oid == "1.2.156.10197.1.501"
    result = validate(leaf, trust_anchors=[root], key_usage=["digital_signature", "non_repudiation"])
    assert result.valid, result.summary()


@pytest.fixture(scope="module")
def openssl_chain(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An SM2 root, a leaf (standard ID), a leaf signed with the empty ID and a CRL, all made by OpenSSL."""
    d = tmp_path_factory.mktemp("openssl-sm2")
    ok(openssl("genpkey", "-algorithm", "SM2", "-out", "root.key", cwd=d))
    ok(openssl("req", "-x509", "-new", "-key", "root.key", "-subj", "/C=CN/O=OpenSSL/CN=OpenSSL SM2 Root",
               "-sigopt", DISTID, "-days", "30", "-addext", "basicConstraints=critical,CA:TRUE",
               "-addext", "keyUsage=critical,keyCertSign,cRLSign", "-out", "root.pem", cwd=d))
    ok(openssl("genpkey", "-algorithm", "SM2", "-out", "leaf.key", cwd=d))
    ok(openssl("req", "-new", "-key", "leaf.key", "-subj", "/CN=OpenSSL SM2 leaf", "-sigopt", DISTID,
               "-out", "leaf.csr", cwd=d))
    (d / "ext.cnf").write_text("keyUsage=critical,digitalSignature,nonRepudiation\nbasicConstraints=CA:FALSE\n")
    ok(openssl("x509", "-req", "-in", "leaf.csr", "-CA", "root.pem", "-CAkey", "root.key", "-CAcreateserial",
               "-sigopt", DISTID, "-vfyopt", DISTID, "-days", "10", "-extfile", "ext.cnf", "-out", "leaf.pem", cwd=d))
    ok(openssl("x509", "-req", "-in", "leaf.csr", "-CA", "root.pem", "-CAkey", "root.key", "-CAcreateserial",
               "-vfyopt", DISTID, "-days", "10", "-out", "leaf-empty-id.pem", cwd=d))
    (d / "ca.cnf").write_text("[ca]\ndefault_ca = d\n[d]\ndatabase = index.txt\ncrlnumber = crlnumber\n"
                              "default_md = sm3\ndefault_crl_days = 7\n")
    (d / "index.txt").write_text("")
    (d / "crlnumber").write_text("10\n")
    ok(openssl("ca", "-config", "ca.cnf", "-keyfile", "root.key", "-cert", "root.pem", "-revoke",
               "leaf-empty-id.pem", "-crl_reason", "keyCompromise", cwd=d))
    ok(openssl("ca", "-config", "ca.cnf", "-gencrl", "-keyfile", "root.key", "-cert", "root.pem",
               "-sigopt", DISTID, "-out", "crl.pem", cwd=d))
    return d


def load(d: Path, name: str) -> Certificate:
    return Certificate.load((d / name).read_bytes())


def test_openssl_sm2_chain_validates_with_us(openssl_chain: Path) -> None:
    root, leaf = load(openssl_chain, "root.pem"), load(openssl_chain, "leaf.pem")
    crl = CertificateRevocationList.load((openssl_chain / "crl.pem").read_bytes())
    result = validate(leaf, trust_anchors=[root], crls=[crl], key_usage=["non_repudiation"],
                      require_revocation=True)
    assert result.valid, result.summary()
    CertificateRequest.load((openssl_chain / "leaf.csr").read_bytes()).verify()


def test_openssl_sm2_crl_parses_and_verifies(openssl_chain: Path) -> None:
    root = load(openssl_chain, "root.pem")
    revoked = load(openssl_chain, "leaf-empty-id.pem")
    crl = CertificateRevocationList.load((openssl_chain / "crl.pem").read_bytes())
    crl.verify_signed_by(root.public_key)
    assert crl.crl_number == 0x10 and crl.issuer_name == root.subject_name
    entry = crl.revocation(revoked.serial_number)
    assert entry is not None and entry.reason is not None and entry.reason.value == "key_compromise"


def test_empty_sm2_id_certificate_says_the_id_may_differ(openssl_chain: Path) -> None:
    root, leaf = load(openssl_chain, "root.pem"), load(openssl_chain, "leaf-empty-id.pem")
    result = validate(leaf, trust_anchors=[root])
    assert result.reason == "SM2_ID_MISMATCH"
    assert "SM2 ID may differ" in result.failures[0].message


def test_openssl_p256_crl_verifies_with_us(tmp_path: Path) -> None:
    ok(openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout",
               "root.key", "-subj", "/CN=P256 Root", "-days", "5", "-out", "root.pem", cwd=tmp_path))
    (tmp_path / "ca.cnf").write_text("[ca]\ndefault_ca = d\n[d]\ndatabase = index.txt\ncrlnumber = crlnumber\n"
                                     "default_md = sha256\ndefault_crl_days = 2\n")
    (tmp_path / "index.txt").write_text("")
    (tmp_path / "crlnumber").write_text("01\n")
    ok(openssl("ca", "-config", "ca.cnf", "-gencrl", "-keyfile", "root.key", "-cert", "root.pem", "-out",
               "crl.pem", cwd=tmp_path))
    crl = CertificateRevocationList.load((tmp_path / "crl.pem").read_bytes())
    crl.verify_signed_by(load(tmp_path, "root.pem").public_key)
    assert crl.entries == []
