"""The chaos suite's stack: one per session, shared by the run, the fuzz and the security
checks (each only looks at its own cases)."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from tests.chaos.stack import UNSAFE_DELIVERY_ENV, ChaosStack
from tests.safeshare.archive.postgres_server import running_postgres


@pytest.fixture(scope="session")
def chaos_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ChaosStack]:
    """Temporal (SQLite, WAL), sandbox agencies, two adapters each, two hubs, two gateways,
    and an archiver writing to a PostgreSQL case archive."""
    with running_postgres() as archive:
        stack = ChaosStack(
            tmp_path_factory.mktemp("chaos"),
            unsafe_delivery=os.environ.get(UNSAFE_DELIVERY_ENV) == "1",
            hub_replicas=2,
            gateway_replicas=2,
            archive=archive,
        )
        try:
            stack.start()
            yield stack
        finally:
            stack.stop()
