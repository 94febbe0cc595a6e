"""The archiver's cost: one archiver, in this process, sweeps every closed case of the run into
a fresh SQLite archive (histories fetched, written, read twice and back, logged, a checkpoint
signed per batch), timed on the wall and on this process's CPU. Its sweep rate is compared
with the rate at which the same stack closes cases: it must keep up."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from temporalio.client import Client

from safeshare.archive.archiver import Archiver, ArchiverSettings
from safeshare.archive.checkpoint import DEFAULT_ORIGIN, VerifierKey
from safeshare.archive.url import open_archive
from safeshare.archive.verify import verify_archive


@dataclass(frozen=True)
class ArchiveSweep:
    """One archiver catching up with ``cases`` closed cases."""

    cases: int
    seconds: float
    cpu_seconds: float
    """This process's CPU (the archiver's own; Temporal's and SQLite's I/O wait excluded)."""
    close_rate: float
    """Cases closed per second by the stack (the throughput phase's N=1,000 figure)."""
    findings: int

    @property
    def per_second(self) -> float:
        """Cases archived per second."""
        return self.cases / self.seconds if self.seconds else 0.0

    @property
    def ms_per_case(self) -> float:
        """Wall time per case archived."""
        return 1000 * self.seconds / self.cases if self.cases else 0.0

    @property
    def cpu_ms_per_case(self) -> float:
        """Archiver CPU per case archived."""
        return 1000 * self.cpu_seconds / self.cases if self.cases else 0.0


async def sweep_all(
    client: Client, folder: Path, close_rate: float, batch: int = 200
) -> ArchiveSweep:
    """Archive every closed case on the server into a new archive under ``folder``."""
    store = await asyncio.to_thread(open_archive, f"sqlite:///{folder / 'archive.db'}")
    key = Ed25519PrivateKey.generate()
    archiver = Archiver(client, store, key, ArchiverSettings(batch_size=batch))
    try:
        wall, cpu = time.perf_counter(), time.process_time()
        while True:
            result = await archiver.sweep()
            if not result.archived:
                break
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
        findings = verify_archive(store, VerifierKey(DEFAULT_ORIGIN, key.public_key())).findings
        return ArchiveSweep(store.counts().archived, wall, cpu, close_rate, len(findings))
    finally:
        store.close()
