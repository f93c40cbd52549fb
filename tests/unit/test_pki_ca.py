"""The development CA, `trustsvc ca` and `trustsvc demo`."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest

from cli.demo import run_demo
from cli.main import main
from tests.conftest import require_tool
from trustsvc.algorithms import SoftwareSigner
from trustsvc.errors import Conflict, NotFound, WrongPassphrase
from trustsvc.pki import Certificate, build_csr
from trustsvc.pki.ca import PROFILES, DevelopmentCA


@pytest.fixture(scope="module")
def ca(tmp_path_factory: pytest.TempPathFactory) -> DevelopmentCA:
    return DevelopmentCA.init(tmp_path_factory.mktemp("ca") / "ca", passphrase=b"correct horse")


def test_key_encrypted_at_rest(ca: DevelopmentCA) -> None:
    key_file = ca.directory / "ca-key.pem"
    assert b"ENCRYPTED PRIVATE KEY" in key_file.read_bytes()
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    with pytest.raises(WrongPassphrase):
        DevelopmentCA.open(ca.directory, b"wrong")
    with pytest.raises(WrongPassphrase):
        DevelopmentCA.open(ca.directory)
    assert DevelopmentCA.open(ca.directory, b"correct horse").certificate == ca.certificate


def test_init_twice_and_missing(ca: DevelopmentCA, tmp_path: Path) -> None:
    with pytest.raises(Conflict):
        DevelopmentCA.init(ca.directory)
    with pytest.raises(NotFound):
        DevelopmentCA.open(tmp_path / "none")


def test_root_certificate(ca: DevelopmentCA) -> None:
    root = ca.certificate
    assert root.is_ca and root.is_self_signed and root.path_length == 1
    assert {"key_cert_sign", "crl_sign"} <= root.key_usage
    assert root.signature_algorithm_oid == "1.2.156.10197.1.501"
    root.verify_signed_by(root.public_key)


@pytest.mark.parametrize("name", sorted(PROFILES))
def test_profiles(ca: DevelopmentCA, name: str) -> None:
    prof = PROFILES[name]
    issued = ca.issue(name, f"cn {name}", dns=["svc.example"] if name == "server" else ())
    cert = issued.certificate
    assert issued.private_key is not None and issued.private_key.public_key == cert.public_key
    assert not cert.is_ca
    assert cert.key_usage == set(prof.key_usage) - {"key_encipherment"}  # SM2 keys do not encipher
    assert cert.extended_key_usage == set(prof.extended_key_usage)
    if name == "tsa":
        assert "extended_key_usage" in cert.asn1.critical_extensions
    if name in ("seal-maker", "seal-holder"):
        assert "non_repudiation" in cert.key_usage
    result = ca.validate(cert, key_usage=sorted(cert.key_usage), extended_key_usage=list(prof.extended_key_usage))
    assert result.valid, result.summary()


@pytest.mark.parametrize("spec", ["ec-p256", "rsa-2048"])
def test_other_leaf_algorithms(ca: DevelopmentCA, spec: str) -> None:
    issued = ca.issue("server", "srv", key_type=spec, dns=["localhost"], ips=["127.0.0.1"])
    assert issued.certificate.public_key.key_type.value == spec.split("-")[0]
    assert ca.validate(issued.certificate, extended_key_usage=["server_auth"]).valid
    if spec == "rsa-2048":
        assert "key_encipherment" in issued.certificate.key_usage


def test_issue_for_request_and_revoke(ca: DevelopmentCA) -> None:
    signer = SoftwareSigner.generate("sm2")
    issued = ca.issue_for_request(build_csr(signer, "from csr"), "seal-maker")
    assert issued.private_key is None and issued.certificate.public_key == signer.public_key
    assert issued.certificate.common_name == "from csr"
    assert ca.certificate_by_serial(issued.serial) == issued.certificate
    crl = ca.revoke(issued.serial)
    assert crl.is_revoked(issued.serial)
    assert ca.validate(issued.certificate).reason == "REVOKED"
    with pytest.raises(Conflict):
        ca.revoke(issued.serial)
    with pytest.raises(NotFound):
        ca.revoke(0xDEAD)
    record = next(r for r in ca.index() if int(r["serial"], 16) == issued.serial)
    assert record["revoked_at"] and record["reason"] == "unspecified"


def test_fresh_crl_republishes_only_when_next_update_is_near(ca: DevelopmentCA) -> None:
    current = ca.current_crl()
    assert ca.fresh_crl().crl_number == current.crl_number  # a week left: kept
    ca.publish_crl(days=1)  # nextUpdate within a day: due
    stale = ca.current_crl()
    fresh = ca.fresh_crl()
    assert fresh.crl_number == stale.crl_number + 1 and ca.current_crl().crl_number == fresh.crl_number


def test_serials_are_unique(ca: DevelopmentCA) -> None:
    serials = [ca.issue("client", f"c{i}").serial for i in range(3)]
    assert len(set(serials)) == 3 and serials == sorted(serials)


@pytest.mark.parametrize("key_type", ["ec-p256", "rsa-2048"])
def test_ca_with_other_algorithms(tmp_path: Path, key_type: str) -> None:
    ca = DevelopmentCA.init(tmp_path / "ca", key_type=key_type)
    assert stat.S_IMODE((tmp_path / "ca" / "ca-key.pem").stat().st_mode) == 0o600
    issued = ca.issue("token-issuer", "tokens")
    assert ca.validate(issued.certificate).valid


def test_cli_flow(tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("TRUSTSVC_CA_PASSPHRASE", raising=False)
    home = ["--home", str(tmp_path / "home")]
    assert main([*home, "ca", "init", "--name", "CLI Root"]) == 0
    cert, key = tmp_path / "s.pem", tmp_path / "s.key"
    assert main([*home, "ca", "issue", "--profile", "seal-holder", "--cn", "holder", "--out-cert", str(cert),
                 "--out-key", str(key)]) == 0
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    capsys.readouterr()
    assert main([*home, "ca", "--json", "verify", str(cert), "--key-usage", "non_repudiation"]) == 0
    assert json.loads(capsys.readouterr().out)["valid"] is True
    assert main([*home, "ca", "verify", str(cert), "--at", "2000-01-01"]) == 1
    assert "NOT_YET_VALID" in capsys.readouterr().out
    serial = format(Certificate.load(cert.read_bytes()).serial_number, "x")
    assert main([*home, "ca", "revoke", serial, "--reason", "keyCompromise"]) == 0
    assert main([*home, "ca", "crl", "--out", str(tmp_path / "x.crl")]) == 0
    assert (tmp_path / "x.crl").read_bytes().startswith(b"-----BEGIN X509 CRL-----")
    capsys.readouterr()
    assert main([*home, "ca", "verify", str(cert)]) == 1
    assert "REVOKED" in capsys.readouterr().out
    assert main([*home, "ca", "revoke", "not-hex"]) == 2
    assert main([*home, "ca", "issue", "--profile", "server", "--cn", "no-san"]) == 2
    csr = tmp_path / "req.pem"
    csr.write_bytes(build_csr(SoftwareSigner.generate("sm2"), "csr holder").to_pem())
    assert main([*home, "ca", "issue", "--profile", "client", "--csr", str(csr), "--out-cert",
                 str(tmp_path / "c.pem")]) == 0
    assert main([*home, "ca", "list"]) == 0


def test_cli_encrypted_ca(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TRUSTSVC_CA_PASSPHRASE", "s3cret")
    home = ["--home", str(tmp_path)]
    assert main([*home, "ca", "init"]) == 0
    assert b"ENCRYPTED" in (tmp_path / "ca" / "ca-key.pem").read_bytes()
    monkeypatch.setenv("TRUSTSVC_CA_PASSPHRASE", "wrong")
    assert main([*home, "ca", "crl"]) == 3


def test_demo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    require_tool("openssl")
    monkeypatch.delenv("TRUSTSVC_CA_PASSPHRASE", raising=False)
    report = run_demo(tmp_path)
    assert report["ok"] and report["verify_trustsvc"] == "ok" and report["chain"]["valid"]
    assert report["verify_openssl"] == "ok"
    again = run_demo(tmp_path)  # reuses the CA
    assert again["ok"] and again["ca"] == report["ca"]
    assert again["certificate"]["serial"] != report["certificate"]["serial"]
    assert main(["--home", str(tmp_path), "demo"]) == 0
    assert os.stat(report["files"]["private_key"]).st_mode & 0o077 == 0
