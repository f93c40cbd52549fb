"""Fixtures for the integration tests: one default daemon per module (``running``) and its clients."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.integration.test_daemon_fixtures import Running, start_daemon
from trustsvc.client import Client


@pytest.fixture(scope="module")
def running(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Running]:
    """The module's daemon on the embedded default, stopped when the module is done."""
    r = start_daemon(tmp_path_factory.mktemp("daemon"))
    yield r
    r.daemon.stop(2)


@pytest.fixture(scope="module")
def client(running: Running) -> Iterator[Client]:
    """The demo client of the module's ``running`` daemon."""
    with running.client() as c:
        yield c


@pytest.fixture(scope="module")
def admin(running: Running) -> Iterator[Client]:
    """The admin client of the module's ``running`` daemon."""
    with running.client("admin") as c:
        yield c
