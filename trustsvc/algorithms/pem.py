"""PEM armour (RFC 7468)."""

from __future__ import annotations

import base64
import binascii
import re

from trustsvc.errors import DecodeError

_BLOCK = re.compile(rb"-----BEGIN ([A-Z0-9 ]+)-----\s*(.*?)\s*-----END \1-----", re.S)


def is_pem(data: bytes) -> bool:
    return b"-----BEGIN " in data[:4096]


def encode(label: str, der: bytes) -> bytes:
    body = base64.b64encode(der)
    lines = [body[i:i + 64] for i in range(0, len(body), 64)]
    return b"".join([b"-----BEGIN ", label.encode(), b"-----\n", b"\n".join(lines), b"\n-----END ",
                     label.encode(), b"-----\n"])


def decode_all(data: bytes) -> list[tuple[str, bytes]]:
    """Every (label, DER) block in ``data``; raises DecodeError on bad base64."""
    out = []
    for m in _BLOCK.finditer(data):
        body = re.sub(rb"^[A-Za-z-]+:.*$", b"", m.group(2), flags=re.M)  # drop RFC 1421 headers
        try:
            out.append((m.group(1).decode(), base64.b64decode(b"".join(body.split()), validate=True)))
        except (binascii.Error, ValueError) as exc:
            raise DecodeError(f"bad base64 in PEM block {m.group(1).decode()}: {exc}", reason="BAD_PEM") from None
    return out


def decode(data: bytes) -> tuple[str, bytes]:
    """The first (label, DER) block; raises DecodeError when there is none."""
    blocks = decode_all(data)
    if not blocks:
        raise DecodeError("no PEM block found", reason="BAD_PEM")
    return blocks[0]


def der_of(data: bytes, *labels: str) -> bytes:
    """DER from PEM whose first block is labelled one of ``labels``, or ``data`` itself when it is not PEM."""
    if not is_pem(data):
        return data
    label, der = decode(data)
    if label not in labels:
        article = "an" if labels[0][0] in "AEIOX" else "a"
        raise DecodeError(f"expected {article} {labels[0]} PEM block, got {label}", reason="BAD_PEM")
    return der
