"""How much of each benchmark a run measures: the full run's sizes, ``--quick``'s tiny ones
and the scale benchmark's on its own."""

from __future__ import annotations

import dataclasses


@dataclasses.dataclass(frozen=True)
class Sizes:
    """How much of each benchmark to run (``make bench``: about 14 minutes on 2 idle cores)."""

    throughput: tuple[int, ...] = (200, 1000)
    override: int = 100
    latency: int = 100
    rpc_calls: int = 100
    yardstick_calls: int = 200
    """Calls per yardstick row (bare start/describe/update, SubmitRequest/GetCase/Acknowledge)."""
    audit: int = 1000
    replay: int = 200
    """Cases in the same-Replayer-loop comparison (shipped runner, no sandbox, bare)."""
    tuning: int = 60
    tuning_latency: int = 10
    scale_steps: tuple[int, ...] = (100, 500, 1000, 2000, 5000, 10000)
    scale_budget: float = 0.0
    """Seconds for the scale phase; ``make bench-scale`` runs it alone, up to 10,000."""
    budget: float = 870.0
    """Seconds for the whole run; a size that would not fit is cut and the cut is reported."""
    replica_throughput: int = 200
    replica_latency: int = 30
    """Cases per window (before / during / after) of the replica-loss phase."""
    watch: int = 40
    """Cases watched by their requester to their close (WatchCase delivery latency)."""
    archive: int = 1000
    """Cases closed, then swept, by ``--archive`` alone (the whole run sweeps what it closed)."""


QUICK = Sizes((20,), 10, 10, 20, 20, 20, 10, 20, 5, (10, 30), 30.0, 300.0, 20, 5, 8)
SCALE_ONLY = Sizes(scale_budget=1800.0, budget=2100.0)
