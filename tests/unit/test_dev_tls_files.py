"""The development TLS files: keys owner-only from the start, whatever was left at their paths; CA files likewise."""

from __future__ import annotations

from pathlib import Path

from trustsvc.pki.ca import DevelopmentCA
from trustsvc.server.tls import ensure_dev_tls


def test_keys_are_owner_only_even_over_readable_leftovers(tmp_path: Path) -> None:
    # regression: touch(mode=0o600) keeps an existing file's mode, so a leftover 0644 file got the new key
    tls = tmp_path / "tls"
    (tls / "clients").mkdir(parents=True)
    leftovers = [tls / "server-key.pem", tls / "clients" / "demo-client-key.pem"]
    for path in leftovers:
        path.write_bytes(b"left over")
        path.chmod(0o644)
    files = ensure_dev_tls(tmp_path, clients=("demo-client",))
    for path in leftovers:
        assert path.stat().st_mode & 0o777 == 0o600 and path.read_bytes().startswith(b"-----BEGIN PRIVATE KEY")
    assert files.server_cert.read_bytes().startswith(b"-----BEGIN CERTIFICATE")
    ca_dir = tls / "ca"
    assert (ca_dir / "ca-key.pem").stat().st_mode & 0o777 == 0o600
    assert not list(tls.rglob("*.tmp"))  # no temporary file left behind
    assert DevelopmentCA.open(ca_dir).certificate.der  # the CA reads back what it wrote
