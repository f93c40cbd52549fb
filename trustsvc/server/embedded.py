"""The embedded default: a data directory with SQLite, a software keystore, dev CAs, keys and a policy.

``bootstrap(config)`` is idempotent: the first start creates, later starts reuse.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from trustsvc.errors import Conflict, TrustsvcError
from trustsvc.keys.base import KeyInfo, KeyStore
from trustsvc.server.config import Config
from trustsvc.server.tls import ensure_dev_tls

DEFAULT_POLICY = """\
# trustsvc daemon policy: client certificate identity -> what it may do.
[clients."cn=admin"]
admin = true

[clients."cn=demo-client"]
operations = ["SignatureService/*", "TokenService/*", "SealService/GetSeal", "SealService/ListSeals",
              "SealService/SignWithSeal", "SealService/VerifySealSignature", "DocumentService/*",
              "TimeStampService/*"]
keys = ["default", "demo-*", "token", "tsa"]
seals = ["*"]
"""

# name -> (spec, CA profile)
DEFAULT_KEYS = {"default": ("sm2", "seal-holder"), "audit": ("sm2", "seal-holder"),
                "token": ("sm2", "token-issuer"), "tsa": ("sm2", "tsa"), "seal-maker": ("sm2", "seal-maker")}


def open_sm2_ca(home: Path) -> Any:
    from trustsvc.pki.ca import DevelopmentCA

    return DevelopmentCA.open_or_init(home / "ca", key_type="sm2")


def certify(keystore: KeyStore, ca: Any, info: KeyInfo, profile: str = "seal-holder") -> KeyInfo:
    """Issue a dev-CA certificate for a key that has none (SM2/EC); returns the updated info."""
    if ca is None or info.certificate_chain:
        return info
    try:
        issued = ca.issue(profile, f"trustsvc key {info.name}", public_key=info.public_key)
    except TrustsvcError:
        return info  # e.g. a key type the dev CA does not certify: signs data, not CMS
    keystore.set_certificate_chain(info.name, info.version, (issued.certificate.der, ca.certificate.der))
    return keystore.info(info.name, info.version)


def certify_key(rt: Any, info: KeyInfo) -> KeyInfo:
    profile = DEFAULT_KEYS.get(info.name, ("", "seal-holder"))[1]
    return certify(rt.keystore, rt.ca, info, profile)


def ensure_key(keystore: KeyStore, ca: Any, name: str, spec: str, profile: str) -> KeyInfo:
    try:
        info = keystore.info(name)
    except TrustsvcError:
        try:
            info = keystore.create(name, spec)
        except Conflict:
            info = keystore.info(name)
    return certify(keystore, ca, info, profile)


def bootstrap(config: Config) -> dict[str, Any]:
    """Create what the embedded default needs under ``config.home``; returns paths for the operator."""
    home = Path(config.home)
    home.mkdir(parents=True, exist_ok=True, mode=0o700)
    out: dict[str, Any] = {"home": str(home)}
    if not config.insecure and not (config.tls_cert and config.tls_key and config.tls_client_ca):
        files = ensure_dev_tls(home)
        config.tls_cert, config.tls_key, config.tls_client_ca = map(str, (files.server_cert, files.server_key,
                                                                        files.ca))
        out["client_certs"] = {n: list(map(str, files.client(n))) for n in ("admin", "demo-client")}
    policy = Path(config.policy)
    if not policy.exists():
        policy.parent.mkdir(parents=True, exist_ok=True)
        policy.write_text(DEFAULT_POLICY)
    out.update(tls_ca=config.tls_client_ca, server_cert=config.tls_cert, policy=str(policy),
               database=config.database)
    return out
