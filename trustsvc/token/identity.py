"""Identity claims of the platform dataset (GB/T 39046-2020 §6.9) and their checks.

The claims sit in one namespaced object claim, ``gbt39046`` (see docs/tokens.md). ID numbers
never leave in clear: they are masked (``110***********1234``) or replaced by a keyed
HMAC-SM3, per :class:`Privacy`.
"""

from __future__ import annotations

import operator
import re
from dataclasses import dataclass, field
from typing import Any

from trustsvc.algorithms.sm3 import sm3_hmac
from trustsvc.token import errors as E
from trustsvc.token.codec import b64encode
from trustsvc.token.errors import TokenConfigError, TokenInvalid

CLAIM = "gbt39046"
NATURAL, LEGAL = "natural", "legal"
RESIDENT_ID_CARD = "111"  # GA/T 517 code for the resident identity card

USCC_CHARSET = "0123456789ABCDEFGHJKLMNPQRTUWXY"
_USCC_WEIGHTS = (1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28)
_ORG_WEIGHTS = (3, 7, 9, 10, 5, 8, 4, 2)
_ID_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
_CODE = re.compile(r"[A-Za-z0-9_.:-]{1,32}")


def uscc_check_char(first17: str) -> str:
    """GB 32100-2015 check character over the first 17 characters."""
    total = sum(USCC_CHARSET.index(c) * w for c, w in zip(first17, _USCC_WEIGHTS, strict=True))
    return USCC_CHARSET[(31 - total % 31) % 31]


def org_code_check_char(first8: str) -> str:
    """GB 11714-1997 check character of a 9-character organisation code."""
    total = sum((int(c) if c.isdigit() else ord(c) - 55) * w for c, w in zip(first8, _ORG_WEIGHTS, strict=True))
    value = 11 - total % 11
    return "X" if value == 10 else "0" if value == 11 else str(value)


def validate_uscc(code: str, *, check_org_code: bool = False) -> str:
    """Return the unified social credit code if well-formed, else raise TokenInvalid(BAD_CLAIM)."""
    if not isinstance(code, str) or len(code) != 18 or any(c not in USCC_CHARSET for c in code):
        raise TokenInvalid("unified social credit code must be 18 characters of the GB 32100 set",
                           reason=E.BAD_CLAIM)
    if uscc_check_char(code[:17]) != code[17]:
        raise TokenInvalid("unified social credit code check character is wrong", reason=E.BAD_CLAIM)
    if check_org_code and org_code_check_char(code[8:16]) != code[16]:
        raise TokenInvalid("organisation code inside the credit code has a wrong check character",
                           reason=E.BAD_CLAIM)
    return code


def validate_resident_id(number: str) -> str:
    """18-digit resident ID number with its ISO 7064 MOD 11-2 check (GB 11643)."""
    if len(number) != 18 or not number[:17].isdigit() or number[17] not in "0123456789X":
        raise TokenInvalid("resident ID number must be 17 digits and a check character", reason=E.BAD_CLAIM)
    total = sum(map(operator.mul, map(int, number[:17]), _ID_WEIGHTS))
    if "10X98765432"[total % 11] != number[17]:
        raise TokenInvalid("resident ID number check character is wrong", reason=E.BAD_CLAIM)
    return number


def mask(number: str, keep_head: int = 3, keep_tail: int = 4) -> str:
    """``110101199003071234`` -> ``110***********1234``."""
    if len(number) <= keep_head + keep_tail:
        return "*" * len(number)
    return number[:keep_head] + "*" * (len(number) - keep_head - keep_tail) + number[-keep_tail:]


@dataclass(frozen=True)
class Privacy:
    """How ID numbers appear in tokens: ``mask`` (default) or ``hash`` (keyed HMAC-SM3)."""

    mode: str = "mask"
    hmac_key: bytes = field(default=b"", repr=False)

    def __post_init__(self) -> None:
        if self.mode not in ("mask", "hash"):
            raise TokenConfigError(f"privacy mode {self.mode!r}: use mask or hash", reason="BAD_PRIVACY_MODE")
        if self.mode == "hash" and len(self.hmac_key) < 16:
            raise TokenConfigError("privacy mode hash needs an HMAC key of at least 16 bytes",
                                   reason="BAD_PRIVACY_KEY")

    def protect(self, id_type: str, number: str) -> dict[str, str]:
        if self.mode == "hash":
            digest = sm3_hmac(self.hmac_key, f"{id_type}:{number}".encode())
            return {"id_hash": "hmac-sm3:" + b64encode(digest)}
        return {"id_number": mask(number)}


@dataclass(frozen=True)
class NaturalPerson:
    """A natural person, checked once on construction (raises TokenInvalid BAD_CLAIM)."""

    user_code: str
    name: str
    id_type: str
    id_number: str = field(repr=False)
    real_name_verified: bool = False

    def __post_init__(self) -> None:
        _text(self.user_code, "user_code", 20)
        _text(self.name, "name", 100)
        if not isinstance(self.id_type, str) or not _CODE.fullmatch(self.id_type):
            raise TokenInvalid("id_type must be a short code", reason=E.BAD_CLAIM)
        _text(self.id_number, "id_number", 64)
        number = self.id_number.strip().upper()
        if self.id_type == RESIDENT_ID_CARD:
            validate_resident_id(number)
        object.__setattr__(self, "id_number", number)

    def claims(self, privacy: Privacy) -> dict[str, Any]:
        return {"person_type": NATURAL, "user_code": self.user_code, "name": self.name, "id_type": self.id_type,
                **privacy.protect(self.id_type, self.id_number), "real_name_verified": bool(self.real_name_verified)}


@dataclass(frozen=True)
class LegalPerson:
    """A legal person, checked once on construction (raises TokenInvalid BAD_CLAIM)."""

    uscc: str
    name: str
    legal_representative: str
    real_name_verified: bool = False

    def __post_init__(self) -> None:
        validate_uscc(self.uscc)
        _text(self.name, "name", 200)
        _text(self.legal_representative, "legal_representative", 100)

    def claims(self, privacy: Privacy) -> dict[str, Any]:
        del privacy  # nothing personal to hide: the credit code is public
        return {"person_type": LEGAL, "uscc": self.uscc, "name": self.name,
                "legal_representative": self.legal_representative,
                "real_name_verified": bool(self.real_name_verified)}


def _text(value: object, name: str, limit: int) -> None:
    if not isinstance(value, str) or not value or len(value) > limit:
        raise TokenInvalid(f"{name} must be text of 1..{limit} characters", reason=E.BAD_CLAIM)


def check_identity(obj: object) -> dict[str, Any]:
    """Shape check of a received ``gbt39046`` claim (never sees clear ID numbers)."""
    if not isinstance(obj, dict):
        raise TokenInvalid(f"{CLAIM} must be an object", reason=E.BAD_CLAIM)
    kind = obj.get("person_type")
    if kind == NATURAL:
        for name in ("user_code", "name", "id_type"):
            _text(obj.get(name), name, 100)
        if not isinstance(obj.get("id_number", obj.get("id_hash")), str):
            raise TokenInvalid("natural person needs id_number (masked) or id_hash", reason=E.BAD_CLAIM)
    elif kind == LEGAL:
        validate_uscc(obj.get("uscc"))  # type: ignore[arg-type]
        _text(obj.get("name"), "name", 200)
        _text(obj.get("legal_representative"), "legal_representative", 100)
    else:
        raise TokenInvalid("person_type must be natural or legal", reason=E.BAD_CLAIM)
    if not isinstance(obj.get("real_name_verified"), bool):
        raise TokenInvalid("real_name_verified must be a boolean", reason=E.BAD_CLAIM)
    return obj
