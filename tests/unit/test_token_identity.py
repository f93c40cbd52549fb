"""GB/T 39046 identity claims: credit-code and ID checks, masking and keyed hashing."""

from __future__ import annotations

import pytest

from trustsvc.algorithms import SoftwareSigner
from trustsvc.token import (
    KeySet,
    LegalPerson,
    NaturalPerson,
    Privacy,
    TokenInvalid,
    TokenIssuer,
    TokenVerifier,
    TrustedIssuer,
)
from trustsvc.token.errors import TokenConfigError
from trustsvc.token.identity import (
    USCC_CHARSET,
    mask,
    org_code_check_char,
    uscc_check_char,
    validate_resident_id,
    validate_uscc,
)

KNOWN_USCC = "91350100M000100Y43"  # published GB 32100 example
RESIDENT_ID = "11010519491231002X"  # GB 11643 example


def test_uscc_check_character() -> None:
    assert validate_uscc(KNOWN_USCC) == KNOWN_USCC
    assert uscc_check_char(KNOWN_USCC[:17]) == "3"
    for i, bad in enumerate(c for c in USCC_CHARSET if c != "3"):
        if i > 5:
            break
        with pytest.raises(TokenInvalid) as info:
            validate_uscc(KNOWN_USCC[:17] + bad)
        assert info.value.reason == "BAD_CLAIM"
    for wrong in ("", "91350100M000100Y4", "91350100M000100Y4I", "91350100m000100y43", 12):
        with pytest.raises(TokenInvalid):
            validate_uscc(wrong)  # type: ignore[arg-type]


def test_org_code_check_character() -> None:
    assert org_code_check_char("D2143569") == "X"  # GB 11714 worked example: D2143569-X
    assert validate_uscc(KNOWN_USCC, check_org_code=True)  # M000100Y-4
    body = "91110000" + "D2143569" + "X"
    code = body + uscc_check_char(body)
    assert validate_uscc(code, check_org_code=True) == code
    broken = "91110000D21435692"
    with pytest.raises(TokenInvalid):
        validate_uscc(broken + uscc_check_char(broken), check_org_code=True)


def test_resident_id() -> None:
    assert validate_resident_id(RESIDENT_ID) == RESIDENT_ID
    with pytest.raises(TokenInvalid):
        validate_resident_id("110105194912310021")


def test_mask() -> None:
    assert mask("110105199003071234") == "110***********1234"
    assert mask("1234") == "****"


def test_natural_person_masked_in_token() -> None:
    signer = SoftwareSigner.generate("sm2")
    issuer = TokenIssuer(signer, "iss")
    person = NaturalPerson("U0001", "张三", "111", RESIDENT_ID, True)
    token = issuer.issue("U0001", person=person, acr="level3", amr=["face"])
    verifier = TokenVerifier([TrustedIssuer("iss", KeySet.of((issuer.kid, signer.public_key)))])
    ident = verifier.verify(token).identity
    assert ident == {"person_type": "natural", "user_code": "U0001", "name": "张三", "id_type": "111",
                     "id_number": "110***********002X", "real_name_verified": True}
    assert RESIDENT_ID not in token and RESIDENT_ID[6:14] not in str(ident)


def test_natural_person_keyed_hash() -> None:
    key = b"k" * 32
    claims = NaturalPerson("U1", "李四", "111", RESIDENT_ID).claims(Privacy("hash", key))
    again = NaturalPerson("U1", "李四", "111", RESIDENT_ID).claims(Privacy("hash", key))
    other = NaturalPerson("U1", "李四", "111", RESIDENT_ID).claims(Privacy("hash", b"z" * 32))
    assert "id_number" not in claims and claims["id_hash"].startswith("hmac-sm3:")
    assert claims["id_hash"] == again["id_hash"] != other["id_hash"]
    with pytest.raises(TokenConfigError):
        Privacy("hash", b"short")


def test_legal_person() -> None:
    claims = LegalPerson(KNOWN_USCC, "某某科技有限公司", "王五", True).claims(Privacy())
    assert claims["person_type"] == "legal" and claims["uscc"] == KNOWN_USCC
    with pytest.raises(TokenInvalid):
        LegalPerson("91350100M000100Y44", "x", "y").claims(Privacy())


def test_received_identity_checked() -> None:
    signer = SoftwareSigner.generate("ec-p256")
    issuer = TokenIssuer(signer, "iss")
    verifier = TokenVerifier([TrustedIssuer("iss", KeySet.of((issuer.kid, signer.public_key)))])
    bad = {"gbt39046": {"person_type": "legal", "uscc": "91350100M000100Y44", "name": "n",
                        "legal_representative": "r", "real_name_verified": True}}
    token = issuer.sign_claims({**issuer.claims("s"), **bad})
    with pytest.raises(TokenInvalid) as info:
        verifier.verify(token)
    assert info.value.reason == "BAD_CLAIM"
