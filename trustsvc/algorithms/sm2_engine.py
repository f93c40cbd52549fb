"""Native SM2 engines behind one small interface.

The scheme (Z, e = SM3(Z‖M), encodings) lives in ``sm2.py``; an engine only does the curve
arithmetic: key generation, signing and verifying a 32-byte e, encryption. The default engine
is ``native``: our own extension (``_sm2native.c``) for signatures (constant-time k·G) and
verification, with gmalglib (C, /dev/urandom) for encryption, decryption and point checks; when
the extension is not built, gmalglib alone. See docs/sm2-engine.md for the measured choice.
Select another with the environment variable ``TRUSTSVC_SM2_ENGINE`` (``native``, ``gmalglib``,
``pure-python``).
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Callable
from typing import Protocol

from trustsvc.errors import UnsupportedAlgorithm


class Sm2Engine(Protocol):
    """Curve operations on raw values: scalar 32 bytes, point 65 bytes (04‖X‖Y), signature r‖s."""

    name: str
    can_sign: bool

    def generate(self) -> tuple[bytes, bytes]: ...
    def public_point(self, scalar: bytes) -> bytes: ...
    def sign_e(self, scalar: bytes, point: bytes, e: bytes) -> bytes: ...
    def verify_e(self, point: bytes, e: bytes, rs: bytes) -> bool: ...
    def encrypt(self, point: bytes, plaintext: bytes) -> bytes: ...
    def decrypt(self, scalar: bytes, point: bytes, c1c3c2: bytes) -> bytes: ...
    def is_valid_point(self, point: bytes) -> bool: ...


class GmalglibEngine:
    """gmalglib's C implementation (default)."""

    name = "gmalglib"
    can_sign = True

    def __init__(self) -> None:
        import gmalglib.core as core

        self._core = core

    def generate(self) -> tuple[bytes, bytes]:
        sk, pk = self._core.SM2().generate_keypair()
        return bytes(sk), bytes(pk)

    def public_point(self, scalar: bytes) -> bytes:
        return bytes(self._core.SM2().get_pk(scalar))

    def context(self, scalar: bytes | None, point: bytes) -> object:
        """A reusable per-key context; signing through it skips per-call key set-up."""
        if scalar is None:
            return self._core.SM2(pk=point)
        return self._core.SM2(sk=scalar, pk=point)

    def sign_e(self, scalar: bytes, point: bytes, e: bytes) -> bytes:
        return bytes(self._core.SM2(sk=scalar, pk=point).sign_digest(e))

    def verify_e(self, point: bytes, e: bytes, rs: bytes) -> bool:
        return bool(self._core.SM2(pk=point).verify_digest(e, rs))

    def encrypt(self, point: bytes, plaintext: bytes) -> bytes:
        return bytes(self._core.SM2(pk=point).encrypt(plaintext))

    def decrypt(self, scalar: bytes, point: bytes, c1c3c2: bytes) -> bytes:
        return bytes(self._core.SM2(sk=scalar, pk=point).decrypt(c1c3c2))

    def is_valid_point(self, point: bytes) -> bool:
        try:
            return bool(self._core.SM2().is_pk_valid(point))
        except Exception:
            return False


class NativeEngine:
    """Signing, public points and verification from ``trustsvc.algorithms._sm2native`` (ours; signing is
    constant-time with a fixed-base comb; GIL released while it computes); encryption, decryption and point
    checks from gmalglib."""

    name = "native"
    can_sign = True

    def __init__(self) -> None:
        from trustsvc.algorithms import _sm2native  # type: ignore[attr-defined]

        self._native = _sm2native
        self._gm = GmalglibEngine()

    def generate(self) -> tuple[bytes, bytes]:
        from trustsvc.algorithms.sm2_curve import N

        while True:  # uniform in [1, n-2]: n-1 cannot sign (1 + d = n has no inverse)
            scalar = os.urandom(32)
            if 1 <= int.from_bytes(scalar, "big") <= N - 2:
                return scalar, bytes(self._native.public_point(scalar))

    def public_point(self, scalar: bytes) -> bytes:
        return bytes(self._native.public_point(scalar))

    def context(self, scalar: bytes | None, point: bytes) -> object:
        """A reusable per-key context: ``sign_digest(e)`` with (1+d)^-1 computed once; checks point = d·G."""
        if scalar is None:
            return self._gm.context(None, point)
        return self._native.SignContext(scalar, point)

    def sign_e(self, scalar: bytes, point: bytes, e: bytes) -> bytes:
        return bytes(self._native.SignContext(scalar, point).sign_digest(e))

    def verify_e(self, point: bytes, e: bytes, rs: bytes) -> bool:
        return bool(self._native.verify_digest(point, e, rs))

    def encrypt(self, point: bytes, plaintext: bytes) -> bytes:
        return self._gm.encrypt(point, plaintext)

    def decrypt(self, scalar: bytes, point: bytes, c1c3c2: bytes) -> bytes:
        return self._gm.decrypt(scalar, point, c1c3c2)

    def is_valid_point(self, point: bytes) -> bool:
        return self._gm.is_valid_point(point)


class PurePythonEngine:
    """Pure-Python verification only (gmssl's curve code), for platforms with no native wheel."""

    name = "pure-python"
    can_sign = False

    def __init__(self) -> None:
        from gmssl import sm2 as gm_sm2

        self._mod = gm_sm2
        warnings.warn(
            "trustsvc: no native SM2 engine; using pure-Python verification (about 70 verifies/s). "
            "Signing with software SM2 keys is disabled.",
            RuntimeWarning,
            stacklevel=2,
        )

    def _refuse(self) -> UnsupportedAlgorithm:
        return UnsupportedAlgorithm(
            "the pure-Python SM2 engine only verifies; install gmalglib to sign", reason="SM2_ENGINE_VERIFY_ONLY"
        )

    def generate(self) -> tuple[bytes, bytes]:
        raise self._refuse()

    def public_point(self, scalar: bytes) -> bytes:
        raise self._refuse()

    def sign_e(self, scalar: bytes, point: bytes, e: bytes) -> bytes:
        raise self._refuse()

    def encrypt(self, point: bytes, plaintext: bytes) -> bytes:
        raise self._refuse()

    def decrypt(self, scalar: bytes, point: bytes, c1c3c2: bytes) -> bytes:
        raise self._refuse()

    def verify_e(self, point: bytes, e: bytes, rs: bytes) -> bool:
        crypt = self._mod.CryptSM2(private_key=None, public_key=point[1:].hex())
        return bool(crypt.verify(rs.hex(), e))

    def is_valid_point(self, point: bytes) -> bool:
        from trustsvc.algorithms.sm2_curve import is_on_curve

        return is_on_curve(point)


_ENGINES: dict[str, Callable[[], Sm2Engine]] = {
    "native": NativeEngine,
    "gmalglib": GmalglibEngine,
    "pure-python": PurePythonEngine,
}
_engine: Sm2Engine | None = None


def get_engine() -> Sm2Engine:
    """The process-wide engine: TRUSTSVC_SM2_ENGINE if set, else native, else gmalglib, else pure Python."""
    global _engine
    if _engine is None:
        wanted = os.environ.get("TRUSTSVC_SM2_ENGINE")
        if wanted:
            if wanted not in _ENGINES:
                raise UnsupportedAlgorithm(f"unknown SM2 engine {wanted!r}; known: {sorted(_ENGINES)}")
            _engine = _ENGINES[wanted]()
        else:
            for factory in (NativeEngine, GmalglibEngine):
                try:
                    _engine = factory()
                    break
                except ImportError:
                    continue
            else:
                _engine = PurePythonEngine()
    assert _engine is not None
    return _engine
