"""Resident memory and CPU time of a process, from /proc (Linux)."""

from __future__ import annotations

import os
from dataclasses import dataclass

_TICKS = os.sysconf("SC_CLK_TCK")


@dataclass(frozen=True)
class ProcSample:
    """One reading of a process."""

    rss_mib: float
    cpu_seconds: float


def sample(pid: int) -> ProcSample:
    """RSS and user+system CPU seconds of ``pid``; zeros if it is gone."""
    try:
        with open(f"/proc/{pid}/status") as status:
            rss_kib = next(int(line.split()[1]) for line in status if line.startswith("VmRSS:"))
        with open(f"/proc/{pid}/stat") as stat:
            fields = stat.read().rsplit(")", 1)[1].split()
    except (OSError, StopIteration):
        return ProcSample(0.0, 0.0)
    # Fields after the command name: utime and stime are the 12th and 13th.
    return ProcSample(round(rss_kib / 1024, 1), (int(fields[11]) + int(fields[12])) / _TICKS)
