"""Where private keys live: a software keystore (encrypted at rest) and PKCS#11 HSMs."""

from trustsvc.keys.base import KeyInfo, KeyState, KeyStore, parse_key_ref

__all__ = ["KeyInfo", "KeyState", "KeyStore", "parse_key_ref"]
