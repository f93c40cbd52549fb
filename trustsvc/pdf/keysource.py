"""Time stampers for PDF commands; the key sources themselves are ``trustsvc.keys.source``."""

from __future__ import annotations

from typing import TYPE_CHECKING

from trustsvc.keys.source import KeySource, load_signer

if TYPE_CHECKING:
    from pyhanko.sign.timestamps import TimeStamper


def local_tsa_timestamper(source: KeySource, ref: str) -> TimeStamper:
    """A pyHanko time stamper over a LocalTsa whose key ``ref`` (with a timeStamping certificate) is in the store."""
    from trustsvc.tsa.authority import LocalTsa
    from trustsvc.tsa.pyhanko_adapter import LocalTsaTimeStamper

    return LocalTsaTimeStamper(LocalTsa(load_signer(source, ref)))


def http_timestamper(url: str) -> TimeStamper:
    """pyHanko's RFC 3161 HTTP client for ``url``."""
    from pyhanko.sign.timestamps import HTTPTimeStamper

    return HTTPTimeStamper(url)
