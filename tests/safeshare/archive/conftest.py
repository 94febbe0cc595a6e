"""Fixtures for the archive tests: one store per test, on each backend."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from safeshare.archive.store import ArchiveStore
from safeshare.archive.url import open_archive
from tests.safeshare.archive.postgres_server import PostgresServer, running_postgres

BACKENDS = ("sqlite", "postgres")


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    """One PostgreSQL server for the session (each test gets its own database)."""
    with running_postgres() as server:
        yield server


@pytest.fixture(params=BACKENDS)
def archive_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A new, empty archive on each backend."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'archive.db'}"
    server: PostgresServer = request.getfixturevalue("postgres_server")
    return server.new_database()


@pytest.fixture
def store(archive_url: str) -> Iterator[ArchiveStore]:
    """The archive at ``archive_url``."""
    opened = open_archive(archive_url)
    try:
        yield opened
    finally:
        opened.close()
