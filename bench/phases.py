"""The phases that report a figure from more than one measurement: cost per case, the
replay comparison, the audit tools, the archiver and the sandbox tuning pair. The full run
and the one-phase runs both call them."""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path
from typing import Any

from temporalio.worker import UnsandboxedWorkflowRunner

from bench import archive_speed, audit_speed, cases, cost, flows, latency, profile, replay
from bench.bare_workflows import BareCase, BareExchange
from bench.sizes import Sizes
from bench.stack import BenchStack
from bench.stats import percentile, ratio
from safeshare.codec import EncryptionCodec, load_key_file, replay_converter
from workflows.holder_exchange import HolderExchange
from workflows.ids import case_workflow_id, holder_exchange_workflow_id
from workflows.runner import workflow_runner
from workflows.sharing_case import SharingCase

PROFILED = ("hub", "gateway", "adapter-oakfield-primary", "adapter-northshire-csc")


async def tuning(
    stack: BenchStack, sizes: Sizes, bare_rate: float, data_dir: Path
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Before/after for the sandbox passthrough (workflows/runner.py), back to back and both
    profiled: the hub as shipped, then ``bench.untuned_hub`` (Temporal's default runner) in
    its place. Returns the shipped stack's profile and the before/after figures; the ratios
    are to the bare rate at N = 200 measured earlier in the run."""
    n, lat_n = sizes.tuning, sizes.tuning_latency
    bare_lat = await latency.bare_latencies(stack, lat_n, "tune-lat")
    pids = {name: pid for name, pid in stack.pids().items() if name in PROFILED}
    async with profile.recording(pids, data_dir / "profiles") as files:
        after = await flows.safeshare_batch(stack, cases.COMMON, n, "tune-after")
    shipped = {
        "n": n, "safeshare_per_s_profiled": after.per_second,
        "processes": [dataclasses.asdict(profile.summarise(p, f)) for p, f in files.items()],
    }  # fmt: skip
    after_lat = await latency.safeshare_latencies(stack, lat_n, "tune-lat-after")
    await stack.swap_hub_for_untuned()
    await flows.safeshare_batch(stack, cases.COMMON, 5, "tune-warm")
    hub = {"hub": stack.pids()["hub"]}
    async with profile.recording(hub, data_dir / "profiles-untuned") as files:
        before = await flows.safeshare_batch(stack, cases.COMMON, n, "tune-before")
    before_lat = await latency.safeshare_latencies(stack, lat_n, "tune-lat-before")
    return shipped, {
        "n": n, "bare_per_s": bare_rate, "before_per_s": before.per_second,
        "after_per_s": after.per_second, "before_ratio": ratio(before.per_second, bare_rate),
        "after_ratio": ratio(after.per_second, bare_rate),
        "latency_n": lat_n, "bare_latency_p50": percentile(bare_lat, 50),
        "before_latency_p50": percentile(before_lat, 50),
        "after_latency_p50": percentile(after_lat, 50),
        "hub_profile_before": dataclasses.asdict(
            profile.summarise("hub (untuned)", files["hub"])
        ),
    }  # fmt: skip


async def costs(stack: BenchStack) -> list[dict[str, Any]]:
    codec = EncryptionCodec(load_key_file(stack.dev.keys_file))
    found = []
    for path, tag in ((cases.COMMON, "warm-common-0"), (cases.OVERRIDE, "warm-override-0")):
        ref = cases.case_ref(path, tag)
        ids = [case_workflow_id(ref), holder_exchange_workflow_id(ref, path.holder)]
        found.append(await cost.case_cost(stack.safeshare, f"safeshare {path.name}", ids, codec))
    found.append(await cost.case_cost(stack.bare, "bare", ["bare-warm-0", "bare-warm-0.x"], None))
    return [dataclasses.asdict(c) for c in found]


def _common_ids(tag: str, n: int) -> list[str]:
    refs = [cases.case_ref(cases.COMMON, f"{tag}-{i}") for i in range(n)]
    return [
        w
        for r in refs
        for w in (case_workflow_id(r), holder_exchange_workflow_id(r, cases.COMMON.holder))
    ]


async def replays(stack: BenchStack, tag: str, n: int, saved: Path | None = None) -> dict[str, Any]:
    """The same Replayer loop over the baseline's and SafeShare's histories of one batch
    (``n`` cases), SafeShare's with the shipped runner and, for scale, with no sandbox. Each
    side's histories are fetched once; ``saved``: a folder to write them to (JSON, one file
    per workflow) for replaying again offline."""
    bare_ids = [w for i in range(n) for w in (f"bare-{tag}-{i}", f"bare-{tag}-{i}.x")]
    ids = _common_ids(tag, n)
    t0 = time.perf_counter()
    bare_histories = await replay.fetch(stack.bare, bare_ids)
    t1 = time.perf_counter()
    histories = await replay.fetch(stack.safeshare, ids)
    t2 = time.perf_counter()
    if saved is not None:
        replay.save(saved / "bare", bare_histories)
        replay.save(saved / "safeshare", histories)
    bare = await replay.replay_fetched(
        bare_histories, n, [BareCase, BareExchange], stack.bare.data_converter,
        fetch_seconds=t1 - t0,
    )  # fmt: skip
    workflows = [SharingCase, HolderExchange]
    converter = replay_converter(stack.safeshare.data_converter)
    ss = await replay.replay_fetched(
        histories, n, workflows, converter, workflow_runner(), fetch_seconds=t2 - t1
    )
    # The ceiling: no sandbox at all (not an option SafeShare takes; it shows the sandbox's cost).
    unsandboxed = await replay.replay_fetched(
        histories, n, workflows, converter, UnsandboxedWorkflowRunner(), fetch_seconds=t2 - t1
    )
    return {
        "n": n, "bare": dataclasses.asdict(bare), "safeshare": dataclasses.asdict(ss),
        "safeshare_unsandboxed": dataclasses.asdict(unsandboxed),
        "unsandboxed_per_s": unsandboxed.replay_per_second,
        "unsandboxed_ratio": ratio(unsandboxed.replay_per_second, bare.replay_per_second),
        "bare_per_s": bare.replay_per_second, "safeshare_per_s": ss.replay_per_second,
        "ratio": ratio(ss.replay_per_second, bare.replay_per_second),
        "cpu_ratio": ratio(ss.replay_per_cpu_second, bare.replay_per_cpu_second),
        "unsandboxed_cpu_ratio": ratio(
            unsandboxed.replay_per_cpu_second, bare.replay_per_cpu_second
        ),
    }  # fmt: skip


async def audit(stack: BenchStack, tag: str, n: int, data_dir: Path) -> dict[str, Any]:
    refs = [cases.case_ref(cases.COMMON, f"{tag}-{i}") for i in range(n)]
    found = await audit_speed.audit(stack.safeshare, refs, data_dir / "audit-export")
    return {**dataclasses.asdict(found), "per_s": found.per_second}


async def archive(
    stack: BenchStack, throughput: list[dict[str, Any]], data_dir: Path
) -> dict[str, Any]:
    common = [t for t in throughput if t["path"] == "common"]
    close_rate = common[-1]["safeshare_per_s"] if common else 0.0
    found = await archive_speed.sweep_all(stack.safeshare, data_dir / "archive-bench", close_rate)
    return {
        **dataclasses.asdict(found), "per_s": found.per_second, "ms_per_case": found.ms_per_case,
        "cpu_ms_per_case": found.cpu_ms_per_case,
        "keeps_up": ratio(found.per_second, close_rate) if close_rate else 0.0,
    }  # fmt: skip
