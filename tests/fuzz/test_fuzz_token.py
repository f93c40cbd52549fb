"""Fuzz the token parser and verifier: whatever the input, only TokenInvalid escapes."""

from __future__ import annotations

import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from trustsvc.algorithms import SoftwareSigner
from trustsvc.token import KeySet, TokenInvalid, TokenIssuer, TokenVerifier, TrustedIssuer, introspect
from trustsvc.token.codec import b64encode

SIGNER = SoftwareSigner.generate("sm2")
ISSUER = TokenIssuer(SIGNER, "iss", audience="app")
VERIFIER = TokenVerifier([TrustedIssuer("iss", KeySet.of((ISSUER.kid, SIGNER.public_key)))], audience="app")
GOOD = ISSUER.issue("u")

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=12)
header_values = st.fixed_dictionaries(
    {}, optional={"alg": st.sampled_from(["SM2", "none", "HS256", "ES256", "SM3withSM2", "x"]) | json_values,
                  "kid": st.just(ISSUER.kid) | json_values, "crit": json_values, "jku": json_values,
                  "typ": json_values})
claim_values = st.fixed_dictionaries(
    {}, optional={"iss": st.just("iss") | json_values, "sub": json_values, "aud": st.just("app") | json_values,
                  "exp": json_values, "nbf": json_values, "iat": json_values, "jti": json_values,
                  "gbt39046": json_values, "amr": json_values, "acr": json_values})


def _check(token: str | bytes) -> None:
    try:
        VERIFIER.verify(token)
    except TokenInvalid as exc:
        assert exc.reason.isupper()
        assert introspect(VERIFIER, token) == {"active": False}


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.text(max_size=200) | st.binary(max_size=200))
def test_random_text(token: str | bytes) -> None:
    _check(token)


@settings(max_examples=150, deadline=None)
@given(st.integers(0, len(GOOD) - 1), st.characters(codec="ascii"))
def test_mutated_good_token(pos: int, char: str) -> None:
    mutated = GOOD[:pos] + char + GOOD[pos + 1:]
    _check(mutated)
    if mutated != GOOD:  # soundness: no other spelling of the token verifies (base64url's spare bits included)
        with pytest.raises(TokenInvalid):
            VERIFIER.verify(mutated)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(header_values, claim_values, st.binary(max_size=80))
def test_structured(header: dict[str, object], claims: dict[str, object], sig: bytes) -> None:
    token = ".".join((b64encode(json.dumps(header).encode()), b64encode(json.dumps(claims).encode()), b64encode(sig)))
    _check(token)
