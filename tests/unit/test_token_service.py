"""TokenService: the façade the daemon and CLI use, over a key store and the shared database."""

from __future__ import annotations

from pathlib import Path

import pytest

from trustsvc.errors import InvalidInput
from trustsvc.keys.factory import open_keystore
from trustsvc.store.database import Database
from trustsvc.token import NaturalPerson, TokenInvalid
from trustsvc.token.service import TokenConfig, TokenService


def test_service_round_trip_and_rotation(tmp_path: Path) -> None:
    config = TokenConfig.from_dict({"issuer": "https://idp.example", "audience": "app", "privacy": "hash"},
                                   hmac_key=b"h" * 32)
    service = TokenService(open_keystore("soft", tmp_path), Database(f"sqlite:///{tmp_path}/t.db"), config)
    person = NaturalPerson("U1", "王五", "111", "11010519491231002X", True)
    token = service.issue("U1", aud="app", person=person, acr="2", amr=["pwd"])
    verified = service.verify(token)
    assert verified.alg == "SM2" and verified.identity is not None and "id_hash" in verified.identity
    assert service.introspect(token)["active"] is True

    service.keystore.rotate(config.key)
    service.keys.min_refresh = 0  # see the new key at once
    token2 = service.issue("U1", aud="app")
    assert service.verify(token2).kid != verified.kid and service.verify(token)
    assert len(service.jwks()["keys"]) == 2

    service.revoke_jti(verified.claims["jti"])
    with pytest.raises(TokenInvalid) as info:
        service.verify(token)
    assert info.value.reason == "REVOKED"
    assert service.revoke_subject("U1", before=2**40) == 2**40
    assert service.introspect(token2) == {"active": False}


def test_daemon_mode_signer_lookup_and_mint(tmp_path: Path) -> None:
    """The daemon passes its own (policy-checked) signer lookup; the issuer is reused until the signer changes."""
    from trustsvc.token.codec import parse_compact

    store = open_keystore("soft", tmp_path)
    store.create("tok", "sm2")
    looked_up: list[str] = []
    current = {"signer": store.signer("tok")}

    def signers(name: str):  # type: ignore[no-untyped-def]
        looked_up.append(name)
        if name != "tok":
            raise PermissionError(name)
        return current["signer"]

    service = TokenService(store, Database(f"sqlite:///{tmp_path}/t.db"),
                           TokenConfig(issuer="iss", key="tok", extra_keys=("someone-elses",)),
                           signers=signers, create_key=False)
    assert {i.name for i in store.list()} == {"tok"}  # create_key=False: nothing made behind our back
    issued = service.mint("U1", {"scope": "a b"}, aud="app", ttl=60)
    assert parse_compact(issued.token).payload == issued.claims and issued.claims["scope"] == "a b"
    assert issued.key_ref == current["signer"].key_ref
    assert service.verify(issued.token, audience="app").claims["jti"] == issued.claims["jti"]
    with pytest.raises(TokenInvalid) as info:
        service.verify(issued.token, audience="other")
    assert info.value.reason == "WRONG_AUDIENCE"
    first = service.issuer()
    assert service.issuer() is first and looked_up == ["tok"] * 3
    with pytest.raises(PermissionError):  # a token key, but the lookup (the daemon's policy) refuses it
        service.mint("U1", key="someone-elses")
    with pytest.raises(InvalidInput) as refused:  # not a token key: its kid would be in no JWKS
        service.mint("U1", key="stranger")
    assert refused.value.reason == "NOT_A_TOKEN_KEY" and "stranger" not in looked_up
    store.rotate("tok")
    current["signer"] = store.signer("tok")
    assert service.issuer() is not first and service.issuer().kid != first.kid
