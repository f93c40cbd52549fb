"""PKCS#11 key store: keys generated and kept in an HSM (SoftHSM2 in development)."""

from trustsvc.keys.pkcs11.pool import SessionPool
from trustsvc.keys.pkcs11.signer import Pkcs11Signer
from trustsvc.keys.pkcs11.store import Pkcs11KeyStore, open_from_env, pin_source

__all__ = ["Pkcs11KeyStore", "Pkcs11Signer", "SessionPool", "open_from_env", "pin_source"]
