"""Shared fixtures: temporary homes, PostgreSQL databases, tool checks."""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest

PG_ADMIN_URL = os.environ.get("TRUSTSVC_TEST_PG", "postgresql://postgres@127.0.0.1:5432/postgres")


def throwaway_certificate(subject_key: Any, name: str = "test") -> bytes:
    """DER certificate for ``subject_key`` (a cryptography public key) from a throwaway P-256 CA. Test-only."""
    import datetime as dt

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.hazmat.primitives.serialization import Encoding

    ca = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(x509.oid.NameOID.COMMON_NAME, name)])
    cert = (x509.CertificateBuilder().subject_name(subject).issuer_name(subject).serial_number(7)
            .public_key(subject_key).not_valid_before(dt.datetime(2024, 1, 1))
            .not_valid_after(dt.datetime(2034, 1, 1)).sign(ca, hashes.SHA256()))
    return cert.public_bytes(Encoding.DER)


def require_tool(name: str) -> str:
    """Path of a command the tests need; fails (never skips) when scripts/bootstrap.sh did not install it."""
    path = shutil.which(name)
    if path is None:
        pytest.fail(f"{name} is missing: run scripts/bootstrap.sh --with-test-deps")
    return path


@pytest.fixture
def pg_url() -> Iterator[str]:
    """A fresh, empty PostgreSQL database for one test, dropped afterwards."""
    import psycopg

    name = "trustsvc_t_" + uuid.uuid4().hex[:12]
    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    base = PG_ADMIN_URL.rsplit("/", 1)[0]
    try:
        yield f"{base}/{name}"
    finally:
        with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path: object) -> Iterator[str]:
    """The same test on SQLite and on PostgreSQL."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path}/trustsvc.db"
    else:
        yield request.getfixturevalue("pg_url")


# CI runs are reproducible: hypothesis explores the same examples each run (explore locally with
# HYPOTHESIS_PROFILE=explore).
from hypothesis import settings as _hyp_settings  # noqa: E402

_hyp_settings.register_profile("ci", derandomize=True, database=None)
_hyp_settings.register_profile("explore")
_hyp_settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))


@pytest.fixture
def make_client(client_target: str) -> Iterator[Callable[..., Any]]:
    """Clients (insecure, 3 fast retries) to the test module's ``client_target`` fixture; closed afterwards."""
    from trustsvc.client import Client

    made: list[Client] = []

    def make(**kwargs: Any) -> Client:
        c = Client(client_target, **{"insecure": True, "retries": 3, "backoff": 0.001, "timeout": 5.0, **kwargs})
        made.append(c)
        return c

    yield make
    for c in made:
        c.close()


@pytest.fixture
def client(make_client: Callable[..., Any]) -> Any:
    return make_client()
