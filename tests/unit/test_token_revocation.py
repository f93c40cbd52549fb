"""Revocation by jti and by subject in the shared store, on SQLite and PostgreSQL."""

from __future__ import annotations

import pytest

from trustsvc.algorithms import SoftwareSigner
from trustsvc.store.database import Database
from trustsvc.token import KeySet, RevocationStore, TokenInvalid, TokenIssuer, TokenVerifier, TrustedIssuer, introspect

NOW = 1_800_000_000


def test_revoke_by_jti_and_subject(db_url: str) -> None:
    signer = SoftwareSigner.generate("sm2")
    clock = [float(NOW)]
    issuer = TokenIssuer(signer, "iss", clock=lambda: clock[0])
    store = RevocationStore(Database(db_url))
    verifier = TokenVerifier([TrustedIssuer("iss", KeySet.of((issuer.kid, signer.public_key)))],
                             revocation=store, clock=lambda: clock[0])
    t1 = issuer.issue("alice", jti="t1")
    t2 = issuer.issue("alice", jti="t2")
    t3 = issuer.issue("bob", jti="t3")
    assert verifier.verify(t1)

    store.revoke_jti("iss", "t1", expires_at=NOW + 900)
    store.revoke_jti("iss", "t1")  # idempotent
    with pytest.raises(TokenInvalid) as info:
        verifier.verify(t1)
    assert info.value.reason == "REVOKED"
    assert verifier.verify(t2) and verifier.verify(t3)

    # a second daemon on the same database sees it
    other = TokenVerifier([TrustedIssuer("iss", KeySet.of((issuer.kid, signer.public_key)))],
                          revocation=RevocationStore(Database(db_url)), clock=lambda: clock[0])
    assert introspect(other, t1) == {"active": False}

    assert store.revoke_subject("iss", "alice", before=NOW + 1) == NOW + 1
    assert store.revoke_subject("iss", "alice", before=NOW - 100) == NOW + 1  # never moves back
    with pytest.raises(TokenInvalid):
        verifier.verify(t2)
    assert verifier.verify(t3)
    clock[0] = NOW + 5
    assert verifier.verify(issuer.issue("alice", jti="t4"))  # issued after the cut-off

    assert introspect(other, t3)["active"] is True

    # t6 expires at NOW + 905 but a verifier's 60 s leeway still takes it at NOW + 930: its revocation must stay
    t6 = issuer.issue("carol", jti="t6")
    store.revoke_jti("iss", "t6", expires_at=NOW + 905)
    clock[0] = NOW + 930
    assert store.purge_expired(NOW + 930) == 0
    assert introspect(other, t6) == {"active": False}
    assert store.purge_expired(NOW + 930, keep_s=0) == 2  # what dropping them at expiry would do: t6 is back
    assert introspect(other, t6)["active"] is True


def test_purge_keeps_revocations_a_day_past_expiry(db_url: str) -> None:
    store = RevocationStore(Database(db_url))
    store.revoke_jti("iss", "a", expires_at=NOW)
    store.revoke_jti("iss", "forever")  # no expiry known: never purged
    assert store.purge_expired(NOW + 86_400) == 0
    assert store.purge_expired(NOW + 86_401) == 1
    assert store.purge_expired(NOW + 10**9) == 0
    assert store.is_revoked("iss", "forever", None, None)
    with pytest.raises(ValueError):
        store.purge_expired(NOW, keep_s=-1)
