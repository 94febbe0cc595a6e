"""Chaos run profiles: ``short`` (CI, the default) and ``long`` (``make chaos PROFILE=long``).

Chosen with ``SAFESHARE_CHAOS_PROFILE``; ``SAFESHARE_CHAOS_SEED`` and ``SAFESHARE_CHAOS_CASES``
override the seed and the number of cases (small counts while developing).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, replace

from tests.chaos.fault_driver import FaultPlan

PROFILE_ENV = "SAFESHARE_CHAOS_PROFILE"


@dataclass(frozen=True)
class Profile:
    """How big a chaos run is and how hard it is hit."""

    name: str
    seed: int
    cases: int
    concurrency: int
    submit_gap: float
    """Seconds between the starts of two cases."""
    case_seconds: float
    """How long one case may take, faults included, before it counts as lost."""
    faults: FaultPlan
    timeout: float
    """The whole test's limit (pytest-timeout)."""


PROFILES = {
    "short": Profile(
        name="short", seed=20261, cases=200, concurrency=24, submit_gap=0.1,
        case_seconds=150.0, timeout=600.0,
        faults=FaultPlan(
            window=40.0, worker_kills=5, adapter_outages=1, server_restarts=1, sandbox_faults=6,
            replica_kills=2,
            archiver_kills=2, archive_outages=1,
        ),
    ),
    "long": Profile(
        name="long", seed=20262, cases=2000, concurrency=48, submit_gap=0.08,
        case_seconds=600.0, timeout=3600.0,
        faults=FaultPlan(
            window=600.0, worker_kills=30, adapter_outages=4, server_restarts=3, sandbox_faults=30,
            replica_kills=8,
            archiver_kills=6, archive_outages=3,
        ),
    ),
}  # fmt: skip


def current_profile() -> Profile:
    """The profile the environment asks for (default: short).

    Raises:
        KeyError: no such profile.
    """
    profile = PROFILES[os.environ.get(PROFILE_ENV, "short")]
    if seed := os.environ.get("SAFESHARE_CHAOS_SEED"):
        profile = replace(profile, seed=int(seed))
    if cases := os.environ.get("SAFESHARE_CHAOS_CASES"):
        profile = replace(profile, cases=int(cases))
    return profile
