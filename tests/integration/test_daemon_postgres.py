"""Two daemons sharing one real PostgreSQL database (the shared-state deployment): a token revoked
on one is refused by the other, an idempotency key used on one replays on the other, a seal
suspended on one cannot sign on the other, and both append to one audit chain that verifies."""

from __future__ import annotations

import concurrent.futures
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest

from tests.integration.test_daemon_fixtures import Running, start_daemon
from trustsvc.audit import verify_log
from trustsvc.client import Client, error_reason, seal_pb2, token_pb2
from trustsvc.store.database import Database

pytestmark = pytest.mark.integration


@pytest.fixture
def pair(tmp_path: Path, pg_url: str) -> Iterator[tuple[Running, Running]]:
    """Daemons A and B: one home (keys, CA, TLS: what an HSM and a shared CA give real deployments),
    one PostgreSQL database, two ports."""
    a = start_daemon(tmp_path / "home", database=pg_url)
    b = start_daemon(tmp_path / "home", database=pg_url)
    yield a, b
    for r in (a, b):
        r.daemon.stop(2)


def _token(c: Client, subject: str) -> str:
    return c.call(c.tokens.IssueToken, token_pb2.IssueTokenRequest(subject=subject, audience=["portal"])).token


def _verify(c: Client, token: str) -> tuple[bool, str]:
    res = c.call(c.tokens.VerifyToken, token_pb2.VerifyTokenRequest(token=token, audience="portal"),
                 idempotent=True).result
    return res.valid, res.reason


def test_two_daemons_share_revocations_idempotency_seals_and_one_audit_chain(pair: tuple[Running, Running],
                                                                               pg_url: str) -> None:
    a, b = pair
    with a.client() as ca, b.client() as cb, b.client("admin") as admin_b:
        # a token issued by A is valid on B; revoked on B, A refuses it
        token = _token(ca, "110101199001011234")
        assert _verify(cb, token) == (True, "")
        cb.call(cb.tokens.RevokeToken, token_pb2.RevokeTokenRequest(token=token, reason="test"))
        assert _verify(ca, token) == (False, "REVOKED")

        # the same idempotency key on A, then on B: one signature, replayed
        first = ca.sign_data("default", b"contract", idempotency_key="shared-1")
        again = cb.sign_data("default", b"contract", idempotency_key="shared-1")
        assert (again.signature, again.audit.seq) == (first.signature, first.audit.seq)
        with pytest.raises(grpc.RpcError) as err:
            cb.sign_data("default", b"another contract", idempotency_key="shared-1")
        assert error_reason(err.value) == "IDEMPOTENCY_KEY_REUSED"

        # a seal suspended through B cannot sign on A
        seal_id = ca.call(ca.seals.ListSeals, seal_pb2.ListSealsRequest()).seals[0].seal_id
        assert ca.call(ca.seals.SignWithSeal, seal_pb2.SignWithSealRequest(seal_id=seal_id, data=b"x")).ses_signature
        admin_b.call(admin_b.seals.SuspendSeal, seal_pb2.SuspendSealRequest(seal_id=seal_id, reason="test"))
        with pytest.raises(grpc.RpcError) as err:
            ca.call(ca.seals.SignWithSeal, seal_pb2.SignWithSealRequest(seal_id=seal_id, data=b"y"))
        assert err.value.code() == grpc.StatusCode.FAILED_PRECONDITION

        # both daemons signing at once append to one chain
        def sign(i: int) -> int:
            c = (ca, cb)[i % 2]
            return int(c.sign_data("default", b"doc %d" % i).audit.seq)
        with concurrent.futures.ThreadPoolExecutor(8) as pool:
            seqs = list(pool.map(sign, range(40)))
    assert len(set(seqs)) == 40
    db = Database(pg_url)
    report = verify_log(db, trusted_keys=[a.daemon.rt.audit.signer.public_key])  # type: ignore[union-attr]
    assert report.ok, report.problems
    # issue, revoke, one signature (its replay adds none), the refused key reuse, seal signature,
    # suspension, the refused seal signature, then the 40
    assert report.records == 7 + 40 and set(seqs) <= set(range(1, report.records + 1))
    refused = [r.result for r in a.daemon.rt.audit.records() if r.result.startswith("refused:")]
    assert refused == ["refused:IDEMPOTENCY_KEY_REUSED", "refused:SEAL_NOT_ACTIVE"], refused
