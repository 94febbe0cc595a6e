"""A run's results: the header each results file opens with, a progress line per figure on
stderr, and the files written under ``bench/results/`` (``<stamp>`` and ``latest`` names)."""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
import sys
import time
from pathlib import Path
from typing import Any

from bench.report import machine, markdown

RESULTS = Path(__file__).resolve().parent / "results"


def log(message: str) -> None:
    """Print one progress line (stderr, stamped)."""
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def header(command: str) -> dict[str, Any]:
    """The opening of a run's results: when, on what machine, by which command, the load."""
    return {
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "machine": machine(), "command": command, "load_before": os.getloadavg(), "notes": [],
    }  # fmt: skip


def save(results: dict[str, Any], stamp: str, latest: str, data_dir: Path, keep: bool) -> str:
    """Write the results as ``<stamp>`` and ``latest`` (JSON and Markdown), keep the profiles
    and, unless ``keep``, remove the run's data dir. Returns the Markdown table."""
    table = markdown(results)
    # A harness check must not replace the latest real figures.
    for name in (stamp, latest):
        (RESULTS / f"{name}.json").write_text(json.dumps(results, indent=2, default=str) + "\n")
        (RESULTS / f"{name}.md").write_text(table)
    if not keep:
        for kind in ("profiles", "profiles-untuned"):
            if (data_dir / kind).exists():
                shutil.copytree(data_dir / kind, RESULTS / f"{kind}-{stamp}", dirs_exist_ok=True)
        shutil.rmtree(data_dir, ignore_errors=True)
    return table
