"""Audit speed: what an auditor runs on N closed cases, timed step by step with the audit tools
themselves (``safeshare audit export``, ``verify``, ``replay``): fetch and sign the histories into
a folder, verify the folder, replay it through the current workflow code with the keys."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

from temporalio.client import Client

from safeshare.audit.export import export_cases
from safeshare.audit.replay import as_replayable, replay_histories
from safeshare.audit.signing import ensure_signing_key, load_private_key
from safeshare.audit.sources import histories_from_path
from safeshare.audit.verify import verify_export


@dataclass(frozen=True)
class Audit:
    """One export → verify → replay of ``cases`` closed cases."""

    cases: int
    histories: int
    export_seconds: float
    verify_seconds: float
    replay_seconds: float
    findings: int
    """Verification findings (0 for an untouched export)."""
    failures: int
    """Histories that did not replay."""

    @property
    def per_second(self) -> float:
        """Cases through all three steps per second."""
        total = self.export_seconds + self.verify_seconds + self.replay_seconds
        return self.cases / total if total else 0.0


async def audit(client: Client, refs: list[str], folder: Path) -> Audit:
    """Export the cases ``refs`` into ``folder`` (new), verify it and replay it."""
    key_path = folder.parent / f"{folder.name}-signing.key"
    public_key = ensure_signing_key(key_path)
    private_key = load_private_key(key_path)
    t0 = time.perf_counter()
    exported = await export_cases(client, folder, private_key, refs=refs)
    t1 = time.perf_counter()
    verification = verify_export(folder, public_key)
    t2 = time.perf_counter()
    outcomes = await replay_histories(
        as_replayable(histories_from_path(folder)), client.data_converter
    )
    t3 = time.perf_counter()
    return Audit(
        cases=exported.cases,
        histories=exported.files,
        export_seconds=t1 - t0,
        verify_seconds=t2 - t1,
        replay_seconds=t3 - t2,
        findings=len(verification.findings),
        failures=sum(o.failure is not None for o in outcomes),
    )
