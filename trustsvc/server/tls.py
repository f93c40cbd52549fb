"""TLS material for mTLS: server credentials, and the development TLS CA for the embedded default.

TLS stacks do not speak SM2, so the TLS CA and certificates use ECDSA P-256 (a separate dev CA in
``<home>/tls/ca``); signing keys stay SM2 under the SM2 dev CA in ``<home>/ca``.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import grpc

from trustsvc.algorithms.encoding import private_key_to_pem
from trustsvc.fileio import write_atomic

DEFAULT_CLIENTS = {"admin": True, "demo-client": False}


@dataclasses.dataclass(frozen=True)
class TlsFiles:
    ca: Path
    server_cert: Path
    server_key: Path

    def client(self, name: str) -> tuple[Path, Path]:
        d = self.ca.parent / "clients"
        return d / f"{name}.pem", d / f"{name}-key.pem"


def ensure_dev_tls(home: Path, *, hosts: tuple[str, ...] = ("localhost",), ips: tuple[str, ...] = ("127.0.0.1",),
                   clients: tuple[str, ...] = tuple(DEFAULT_CLIENTS)) -> TlsFiles:
    """Create (once) a P-256 TLS CA, a server certificate and client certificates under ``home/tls``."""
    from trustsvc.pki.ca import DevelopmentCA

    tls = home / "tls"
    files = TlsFiles(tls / "ca.pem", tls / "server.pem", tls / "server-key.pem")
    ca = DevelopmentCA.open_or_init(tls / "ca", key_type="ec-p256", name="trustsvc development TLS CA")
    if not files.ca.exists():
        write_atomic(files.ca, ca.certificate.to_pem())
    if not files.server_cert.exists():
        issued = ca.issue("server", "trustsvc-daemon", key_type="ec-p256", dns=hosts, ips=ips, days=825)
        assert issued.private_key is not None
        _write_key(files.server_key, private_key_to_pem(issued.private_key))
        write_atomic(files.server_cert, issued.certificate.to_pem())  # last: it marks the pair complete
    for name in clients:
        issue_client_cert(home, name, ca=ca)
    return files


def issue_client_cert(home: Path, name: str, *, ca: object | None = None) -> tuple[Path, Path]:
    """A client certificate with CN ``name`` from the dev TLS CA (idempotent)."""
    from trustsvc.pki.ca import DevelopmentCA

    tls = home / "tls"
    cert_path, key_path = tls / "clients" / f"{name}.pem", tls / "clients" / f"{name}-key.pem"
    if cert_path.exists():
        return cert_path, key_path
    ca = ca or DevelopmentCA.open(tls / "ca")
    cert_path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    issued = ca.issue("client", name, key_type="ec-p256", days=825)  # type: ignore[attr-defined]
    assert issued.private_key is not None
    _write_key(key_path, private_key_to_pem(issued.private_key))
    write_atomic(cert_path, issued.certificate.to_pem())  # last: it marks the pair complete
    return cert_path, key_path


def _write_key(path: Path, data: bytes) -> None:
    """Owner-only from the start, whatever a file left at ``path`` had; atomic, so never a torn key."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    write_atomic(path, data, mode=0o600)


def server_credentials(cert: Path, key: Path, client_ca: Path) -> grpc.ServerCredentials:
    """mTLS: the client must present a certificate chaining to ``client_ca``."""
    return grpc.ssl_server_credentials([(key.read_bytes(), cert.read_bytes())],
                                       root_certificates=client_ca.read_bytes(), require_client_auth=True)
