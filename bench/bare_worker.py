"""The baseline's worker process: the bare workflows and trivial activities, with the hub's
worker settings (SDK defaults, sandboxed workflows). Run: ``python -m bench.bare_worker``."""

from __future__ import annotations

import argparse
import asyncio
import sqlite3
import time
from datetime import timedelta
from pathlib import Path

from temporalio import activity
from temporalio.client import Client
from temporalio.worker import Worker

from bench.bare_workflows import BARE_TASK_QUEUE, BareCase, BareExchange
from safeshare.shutdown import wait_for_stop_signal


class BareActivities:
    """Trivial bodies; the delivery writes one row, as the sandbox agency stores a delivery."""

    def __init__(self, deliveries_db: Path) -> None:
        self._conn = sqlite3.connect(deliveries_db, isolation_level=None)
        self._conn.execute("PRAGMA journal_mode=WAL")
        self._conn.execute(
            "CREATE TABLE IF NOT EXISTS deliveries (ref TEXT PRIMARY KEY, received_at REAL)"
        )

    @activity.defn(name="bare_gate")
    async def gate(self, ref: str) -> str:
        """Always passes."""
        return ref

    @activity.defn(name="bare_lookup_consent")
    async def lookup_consent(self, ref: str) -> str:
        """Always covered."""
        return ref

    @activity.defn(name="bare_extract_records")
    async def extract_records(self, ref: str) -> str:
        """Nothing to extract."""
        return ref

    @activity.defn(name="bare_receive_delivery")
    async def receive_delivery(self, ref: str) -> str:
        """Store the delivery, idempotently."""
        self._conn.execute("INSERT OR IGNORE INTO deliveries VALUES (?, ?)", (ref, time.time()))
        return ref


async def _main(address: str, deliveries_db: Path) -> None:
    client = await Client.connect(address)
    acts = BareActivities(deliveries_db)
    worker = Worker(
        client,
        task_queue=BARE_TASK_QUEUE,
        workflows=[BareCase, BareExchange],
        activities=[acts.gate, acts.lookup_consent, acts.extract_records, acts.receive_delivery],
        graceful_shutdown_timeout=timedelta(seconds=10),
    )
    async with worker:
        print("bare-worker-ready", flush=True)
        await wait_for_stop_signal()


def main() -> None:
    """Parse arguments and run until SIGTERM."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--temporal-address", required=True)
    parser.add_argument("--deliveries-db", type=Path, required=True)
    args = parser.parse_args()
    asyncio.run(_main(args.temporal_address, args.deliveries_db))


if __name__ == "__main__":
    main()
