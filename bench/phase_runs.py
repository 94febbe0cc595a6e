"""One phase alone against a stack of its own (``--scale``, ``--yardsticks``, ``--replicas``,
``--watch``, ``--replay``, ``--archive``): for its figures, or as a smoke run of the harness."""

from __future__ import annotations

import dataclasses
import os
import time
from pathlib import Path
from typing import Any

from temporalio.converter import DataConverter
from temporalio.worker import WorkflowRunner
from temporalio.worker.workflow_sandbox import SandboxedWorkflowRunner

from bench import cases, flows, phases, profile, replay, replicas, scale, watch_latency, yardsticks
from bench.bare_workflows import BareCase, BareExchange
from bench.results import header, log
from bench.sizes import Sizes
from bench.stack import BenchStack, bench_stack
from bench.stats import ratio
from safeshare.codec import replay_converter
from safeshare.devstack.settings import Replicas
from workflows.holder_exchange import HolderExchange
from workflows.runner import workflow_runner
from workflows.sharing_case import SharingCase


async def run_scale(sizes: Sizes, data_dir: Path, command: str) -> dict[str, Any]:
    """The scale benchmark alone, with the time to reach 10,000 open cases."""
    began = time.monotonic()
    out = header(command)
    async with bench_stack(data_dir) as stack:
        log(f"stack up in {time.monotonic() - began:.1f} s")
        steps, note = await scale.run(stack, sizes.scale_steps, "scale", sizes.scale_budget)
        out["scale"] = [dataclasses.asdict(s) for s in steps]
        if note:
            out["notes"].append(note)
    out["load_after"] = os.getloadavg()
    out["seconds"] = round(time.monotonic() - began, 1)
    return out


async def run_yardsticks(sizes: Sizes, data_dir: Path, command: str) -> dict[str, Any]:
    """The yardstick rows alone (a smoke run of the phase; the figures come from ``make bench``)."""
    began = time.monotonic()
    out = header(command)
    async with bench_stack(data_dir) as stack:
        log(f"stack up in {time.monotonic() - began:.1f} s")
        await flows.bare_batch(stack, 5, "warm")
        await flows.safeshare_batch(stack, cases.COMMON, 5, "warm-common")
        measured = await yardsticks.measure(
            stack, "yard", sizes.yardstick_calls, data_dir / "profiles"
        )
        out["yardsticks"] = [dataclasses.asdict(y) for y in measured.rows]
        out["yardstick_profiles"] = measured.profiles
        log(f"yardsticks: {out['yardsticks']}")
    out["load_after"] = os.getloadavg()
    out["seconds"] = round(time.monotonic() - began, 1)
    return out


async def run_replicas(sizes: Sizes, data_dir: Path, command: str) -> dict[str, Any]:
    """The replica phases alone: two gateways and two adapters per agency, one then two hubs."""
    began = time.monotonic()
    out = header(command)
    two = Replicas(hub=1, gateway=2, adapter=2)
    async with bench_stack(data_dir, replicas=two) as stack:
        log(f"stack up in {time.monotonic() - began:.1f} s")
        await flows.safeshare_batch(stack, cases.COMMON, 5, "warm-common")
        out["replicas"] = await replicas.run(stack, sizes.replica_throughput, sizes.replica_latency)
        log(f"replicas: {out['replicas']}")
    out["load_after"] = os.getloadavg()
    out["seconds"] = round(time.monotonic() - began, 1)
    return out


async def run_watch(sizes: Sizes, data_dir: Path, command: str) -> dict[str, Any]:
    """The WatchCase delivery phase alone (a smoke run of that phase)."""
    began = time.monotonic()
    out = header(command)
    async with bench_stack(data_dir) as stack:
        await flows.safeshare_batch(stack, cases.COMMON, 3, "warm-common")
        out["watch"] = dataclasses.asdict(await watch_latency.measure(stack, "watch", sizes.watch))
        log(f"watch: {out['watch']}")
        # Where the time goes: the phase again, half the cases, the gateway and the hub under
        # py-spy (the figures above are unprofiled).
        pids = {name: pid for name, pid in stack.pids().items() if name in ("gateway", "hub")}
        async with profile.recording(pids, data_dir / "profiles") as files:
            half = max(sizes.watch // 2, 1)
            profiled = await watch_latency.measure(stack, "watch-profiled", half)
        out["phase_profile"] = {
            "title": f"WatchCase profiles (py-spy, {profiled.cases} more cases watched, "
            f"{profiled.in_flight} at a time; p50 while profiled {profiled.p50 * 1000:.0f} ms)",
            "processes": [
                dataclasses.asdict(profile.summarise(p, f, top=12)) for p, f in files.items()
            ],
        }
    out["load_after"] = os.getloadavg()
    out["seconds"] = round(time.monotonic() - began, 1)
    return out


async def run_replay(sizes: Sizes, data_dir: Path, command: str) -> dict[str, Any]:
    """The replay phase alone: ``sizes.replay`` cases of each side closed, then the same
    Replayer loop over both (SafeShare's with the shipped runner and with none), then
    SafeShare's and the baseline's replays again under py-spy (this process), for where the
    time goes. The histories are kept in the data dir (``--keep``) to replay again offline."""
    began = time.monotonic()
    out = header(command)
    n = sizes.replay
    async with bench_stack(data_dir) as stack:
        log(f"stack up in {time.monotonic() - began:.1f} s")
        await flows.bare_batch(stack, 5, "warm")
        await flows.safeshare_batch(stack, cases.COMMON, 5, "warm-common")
        await flows.bare_batch(stack, n, f"rp{n}")
        await flows.safeshare_batch(stack, cases.COMMON, n, f"rp{n}")
        log(f"{n} cases closed on each side")
        saved = data_dir / "replay-histories"
        out["replay"] = await phases.replays(stack, f"rp{n}", n, saved)
        # Before the runner answered payload contexts itself: the SDK's sandboxed runner with
        # the same passthrough modules, over the same histories.
        stock = SandboxedWorkflowRunner(restrictions=workflow_runner().restrictions)
        before = await replay.replay_fetched(
            replay.load(saved / "safeshare"), n, [SharingCase, HolderExchange],
            stack.safeshare.data_converter, stock,
        )  # fmt: skip
        bare_rate = out["replay"]["bare_per_s"]
        bare_cpu = out["replay"]["bare"]["cases"] / out["replay"]["bare"]["replay_cpu_seconds"]
        out["replay"] |= {
            "safeshare_stock_runner": dataclasses.asdict(before),
            "stock_runner_per_s": before.replay_per_second,
            "stock_runner_ratio": ratio(before.replay_per_second, bare_rate),
            "stock_runner_cpu_ratio": ratio(before.replay_per_cpu_second, bare_cpu),
        }
        log(f"replay: {out['replay']}")
        out["phase_profile"] = {
            "title": "Replay profiles (py-spy on the replaying process, the same histories "
            "replayed once more)",
            "processes": await _replay_profiles(stack, saved, n, data_dir / "profiles"),
        }
    out["load_after"] = os.getloadavg()
    out["seconds"] = round(time.monotonic() - began, 1)
    return out


async def _replay_profiles(
    stack: BenchStack, saved: Path, n: int, out_dir: Path
) -> list[dict[str, Any]]:
    """Each side's saved histories replayed once more, this process under py-spy."""
    sides: tuple[tuple[str, str, list[type], DataConverter, WorkflowRunner | None], ...] = (
        ("replay-safeshare", "safeshare", [SharingCase, HolderExchange],
         replay_converter(stack.safeshare.data_converter), workflow_runner()),
        ("replay-bare", "bare", [BareCase, BareExchange], stack.bare.data_converter, None),
    )  # fmt: skip
    found = []
    for name, folder, workflows, converter, runner in sides:
        histories = replay.load(saved / folder)
        async with profile.recording({name: os.getpid()}, out_dir) as files:
            await replay.replay_fetched(histories, n, workflows, converter, runner)
        found.append(dataclasses.asdict(profile.summarise(name, files[name], top=12)))
    return found


async def run_archive(sizes: Sizes, data_dir: Path, command: str) -> dict[str, Any]:
    """The archiver phase alone: ``sizes.archive`` SafeShare cases closed (their close rate),
    then one archiver sweeping them all into a fresh archive."""
    began = time.monotonic()
    out = header(command)
    async with bench_stack(data_dir) as stack:
        await flows.safeshare_batch(stack, cases.COMMON, 3, "warm-common")
        n = sizes.archive
        closed = await flows.safeshare_batch(stack, cases.COMMON, n, f"arc{n}")
        throughput = [{"path": "common", "n": n, "safeshare_per_s": closed.per_second}]
        out["archive"] = await phases.archive(stack, throughput, data_dir)
        log(f"archive: {out['archive']}")
    out["load_after"] = os.getloadavg()
    out["seconds"] = round(time.monotonic() - began, 1)
    return out
