"""Keys: kid per key version, JWKS with active and passive keys, rotation and retirement."""

from __future__ import annotations

import pytest

from trustsvc.keys.factory import open_keystore
from trustsvc.token import KeySet, TokenInvalid, TokenVerifier, TrustedIssuer
from trustsvc.token.jwk import from_jwk, thumbprint, to_jwk
from trustsvc.token.local import ensure_key, issuer_from_keystore, keyset_from_keystore


def test_rotation_without_downtime(tmp_path: object) -> None:
    store = open_keystore("soft", tmp_path)  # type: ignore[arg-type]
    ensure_key(store)
    ensure_key(store)  # idempotent
    old = issuer_from_keystore(store, "iss")
    old_token = old.issue("u")
    store.rotate("token-issuer")
    new = issuer_from_keystore(store, "iss")
    assert new.kid != old.kid
    keys = keyset_from_keystore(store)
    assert {k["kid"] for k in keys.jwks()["keys"]} == {old.kid, new.kid}
    verifier = TokenVerifier([TrustedIssuer("iss", keys)])
    assert verifier.verify(old_token).kid == old.kid  # passive still verifies
    assert verifier.verify(new.issue("u")).kid == new.kid

    store.disable("token-issuer", 1)  # retire the old version
    verifier = TokenVerifier([TrustedIssuer("iss", keyset_from_keystore(store))])
    with pytest.raises(TokenInvalid) as info:
        verifier.verify(old_token)
    assert info.value.reason == "UNKNOWN_KID"


def test_ref_style_kid(tmp_path: object) -> None:
    store = open_keystore("soft", tmp_path)  # type: ignore[arg-type]
    ensure_key(store, "es", "ec-p256")
    issuer = issuer_from_keystore(store, "iss", "es", kid_style="ref")
    assert issuer.kid == "es@1" and issuer.alg == "ES256"
    verifier = TokenVerifier([TrustedIssuer("iss", keyset_from_keystore(store, ("es",), kid_style="ref"))])
    assert verifier.verify(issuer.issue("u")).kid == "es@1"


@pytest.mark.parametrize("spec", ["sm2", "ec-p256", "ed25519", "rsa-2048"])
def test_jwk_round_trip(spec: str) -> None:
    from trustsvc.algorithms import PrivateKey

    key = PrivateKey.generate(spec).public_key
    kid = thumbprint(key)
    doc = to_jwk(key, kid, "X")
    assert from_jwk(doc) == key
    if spec == "sm2":
        assert doc["kty"] == "EC" and doc["crv"] == "SM2" and len(doc["x"]) == 43
    assert KeySet.from_jwks({"keys": [{**doc, "alg": KeySet.of((kid, key)).get(kid).alg}]}).get(kid) is not None


def test_jwks_refuses_private_members_and_junk() -> None:
    from trustsvc.algorithms import PrivateKey

    key = PrivateKey.generate("sm2").public_key
    doc = to_jwk(key, "k1", "SM2")
    with pytest.raises(TokenInvalid):
        from_jwk({**doc, "d": "AAAA"})
    keys = KeySet.from_jwks({"keys": [{**doc, "d": "AAAA"}, {"kty": "oct", "k": "AA", "kid": "h"}, "junk",
                                      {**doc, "kid": "../x"}, {**doc, "kid": "enc", "use": "enc"},
                                      {**doc, "kid": "wrong-alg", "alg": "ES256"}, {**doc, "kid": "ok"}]})
    assert [k.kid for k in keys] == ["ok"]


def test_known_thumbprint() -> None:
    # RFC 7638 §3.1 example key
    doc = {"kty": "RSA", "e": "AQAB", "n": (
        "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZC"
        "iFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZg"
        "nYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIq"
        "bw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw")}
    assert thumbprint(from_jwk(doc)) == "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"


def test_store_key_source_follows_rotation(tmp_path: object) -> None:
    from trustsvc.token.local import StoreKeySource

    store = open_keystore("soft", tmp_path)  # type: ignore[arg-type]
    ensure_key(store)
    clock = [0.0]
    source = StoreKeySource(store, ttl=60, min_refresh=5, clock=lambda: clock[0])
    verifier = TokenVerifier([TrustedIssuer("iss", source)])
    old_token = issuer_from_keystore(store, "iss").issue("u")
    assert verifier.verify(old_token)
    store.rotate("token-issuer")
    new_token = issuer_from_keystore(store, "iss").issue("u")
    with pytest.raises(TokenInvalid):
        verifier.verify(new_token)  # reloaded at most every 5 s
    clock[0] = 6.0
    assert verifier.verify(new_token) and verifier.verify(old_token)
    store.disable("token-issuer", 1)
    clock[0] = 70.0
    with pytest.raises(TokenInvalid) as info:
        verifier.verify(old_token)
    assert info.value.reason == "UNKNOWN_KID" and len(source.jwks()["keys"]) == 1
