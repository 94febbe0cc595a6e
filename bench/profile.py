"""Sampling profiles (py-spy) of SafeShare's processes while a batch runs, summarised as the
functions where the samples land (self time) and the share spent in SafeShare's own code."""

from __future__ import annotations

import asyncio
import contextlib
import signal
import sysconfig
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

# py-spy names project files relative to the working dir: " (workflows/x.py:12)". The CLI
# entry frames sit at the root of every stack, so they do not count as SafeShare's cost.
OWN_CODE = tuple(
    f" ({m}"
    for m in ("workflows/", "agency_adapters/", "activities/", "protos/", "safeshare/gateway/",
              "safeshare/codec/", "safeshare/temporal", "safeshare/log", "safeshare/tls")
)  # fmt: skip
SANDBOX_IMPORT = "workflow_sandbox/_importer.py"
RATE = 50


@dataclass(frozen=True)
class Profile:
    """One process's samples."""

    process: str
    samples: int
    own_code_share: float
    """Share of samples with a SafeShare frame anywhere on the stack."""
    top_self: list[tuple[str, float]]
    """Functions by share of samples where they were the innermost frame."""
    top_own: list[tuple[str, float]]
    """SafeShare functions by share of samples on the stack (inclusive)."""
    sandbox_import_share: float
    """Share of samples inside the workflow sandbox's importer (re-importing modules)."""


def _py_spy() -> Path:
    return Path(sysconfig.get_path("scripts")) / "py-spy"


@contextlib.asynccontextmanager
async def recording(pids: dict[str, int], out_dir: Path) -> AsyncIterator[dict[str, Path]]:
    """Record every process in ``pids`` while the block runs; yields the output files."""
    out_dir.mkdir(parents=True, exist_ok=True)  # noqa: ASYNC240 (once, before any load)
    files = {name: out_dir / f"{name}.collapsed" for name in pids}
    spies = [
        await asyncio.create_subprocess_exec(
            str(_py_spy()),
            "record",
            "--pid",
            str(pid),
            "--rate",
            str(RATE),
            "--format",
            "raw",
            "--nonblocking",
            "--output",
            str(files[name]),
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.DEVNULL,
        )
        for name, pid in pids.items()
    ]
    try:
        yield files
    finally:
        for spy in spies:
            with contextlib.suppress(ProcessLookupError):
                spy.send_signal(signal.SIGINT)
        for spy in spies:
            try:
                await asyncio.wait_for(spy.wait(), 30)
            except TimeoutError:
                spy.kill()


def _frame_name(frame: str) -> str:
    # py-spy raw frames read "function (path/to/file.py:line)"; drop the line number.
    name, _, where = frame.partition(" (")
    where = where.rstrip(")").rsplit(":", 1)[0]
    for marker in ("site-packages/", "/work/main/", "/lib/python3"):
        if marker in where:
            where = where.split(marker, 1)[1]
    return f"{name} ({where})"


def summarise(process: str, collapsed: Path, top: int = 8) -> Profile:
    """Self-time and own-code shares from a py-spy raw (collapsed) file."""
    self_time: Counter[str] = Counter()
    own: Counter[str] = Counter()
    total = 0
    own_total = 0
    importing = 0
    if collapsed.exists():
        for line in collapsed.read_text().splitlines():
            stack, _, count_text = line.rpartition(" ")
            if not stack or not count_text.isdigit():
                continue
            count = int(count_text)
            frames = stack.split(";")
            total += count
            self_time[_frame_name(frames[-1])] += count
            mine = {_frame_name(f) for f in frames if any(m in f for m in OWN_CODE)}
            own_total += count if mine else 0
            importing += count if any(SANDBOX_IMPORT in f for f in frames) else 0
            for name in mine:
                own[name] += count
    share = (lambda c: round(c / total, 3)) if total else (lambda c: 0.0)
    return Profile(
        process, total, share(own_total),
        [(name, share(c)) for name, c in self_time.most_common(top)],
        [(name, share(c)) for name, c in own.most_common(top)],
        share(importing),
    )  # fmt: skip
