"""Small helpers shared by the PKI modules: parse guards and signature-algorithm fields."""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from trustsvc.algorithms.signature_algorithm import SignatureAlgorithm
from trustsvc.algorithms.signer import Signer
from trustsvc.errors import DecodeError, TrustsvcError

T = TypeVar("T")


def guarded(what: str, reason: str, parse: Callable[[], T]) -> T:
    """Run ``parse``; turn anything asn1crypto raises on hostile input into DecodeError."""
    try:
        return parse()
    except TrustsvcError as exc:
        if isinstance(exc, DecodeError):
            raise
        raise DecodeError(f"{what} unusable: {exc.message}", reason=reason) from None
    except Exception as exc:  # asn1crypto raises ValueError, TypeError, KeyError, OverflowError ...
        raise DecodeError(f"not a DER {what}: {exc}", reason=reason) from None


def signature_algorithm_field(signer: Signer) -> dict[str, object]:
    """The AlgorithmIdentifier for ``signer``'s algorithm (no parameters, except RSA-PSS)."""
    field: dict[str, object] = {"algorithm": signer.algorithm.oid}
    if signer.algorithm is SignatureAlgorithm.RSA_PSS_SHA256:
        field["parameters"] = {"hash_algorithm": {"algorithm": "sha256"}, "mask_gen_algorithm": {
            "algorithm": "mgf1", "parameters": {"algorithm": "sha256"}}, "salt_length": 32}
    return field
