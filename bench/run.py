"""Run every benchmark in one go against one dev server and write the results.

``make bench`` (or ``.venv/bin/python -m bench``); ``--quick`` runs tiny sizes to check the
harness. Results: ``bench/results/<stamp>.json`` and ``.md``, plus ``latest.*``, and the table is
printed. Every figure is a ratio to a baseline measured in the same run.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import datetime as dt
import json
import os
import shutil
import sys
import time
from pathlib import Path
from typing import Any

from temporalio.converter import DataConverter
from temporalio.worker import UnsandboxedWorkflowRunner, WorkflowRunner
from temporalio.worker.workflow_sandbox import SandboxedWorkflowRunner

from bench import (
    archive_speed,
    audit_speed,
    cases,
    cost,
    flows,
    gateway_overhead,
    latency,
    profile,
    replay,
    replicas,
    scale,
    watch_latency,
    yardsticks,
)
from bench.bare_workflows import BareCase, BareExchange
from bench.report import machine, markdown
from bench.stack import BenchStack, bench_stack
from bench.stats import percentile, ratio
from safeshare.codec import EncryptionCodec, load_key_file, replay_converter
from safeshare.devstack.settings import Replicas
from workflows.holder_exchange import HolderExchange
from workflows.ids import case_workflow_id, holder_exchange_workflow_id
from workflows.runner import workflow_runner
from workflows.sharing_case import SharingCase

RESULTS = Path(__file__).resolve().parent / "results"
PROFILED = ("hub", "gateway", "adapter-oakfield-primary", "adapter-northshire-csc")


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


def _log(message: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def _header(command: str) -> dict[str, Any]:
    return {
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "machine": machine(), "command": command, "load_before": os.getloadavg(), "notes": [],
    }  # fmt: skip


async def _run(sizes: Sizes, data_dir: Path, command: str) -> dict[str, Any]:
    began = time.monotonic()
    out = _header(command)
    notes: list[str] = out["notes"]

    def left() -> float:
        return sizes.budget - (time.monotonic() - began)

    async with bench_stack(data_dir) as stack:
        _log(f"stack up in {time.monotonic() - began:.1f} s")
        # Warm-up; also the cases whose cost per case is reported.
        await flows.bare_batch(stack, 5, "warm")
        await flows.safeshare_batch(stack, cases.COMMON, 5, "warm-common")
        await flows.safeshare_batch(stack, cases.OVERRIDE, 3, "warm-override")
        out["cost"] = await _costs(stack)
        _log("cost per case measured")

        bare_lat = await latency.bare_latencies(stack, sizes.latency, "lat")
        ss_lat = await latency.safeshare_latencies(stack, sizes.latency, "lat")
        out["latency"] = {
            "n": sizes.latency,
            "bare_p50": percentile(bare_lat, 50), "bare_p95": percentile(bare_lat, 95),
            "safeshare_p50": percentile(ss_lat, 50), "safeshare_p95": percentile(ss_lat, 95),
            "ratio_p50": ratio(percentile(ss_lat, 50), percentile(bare_lat, 50)),
            "ratio_p95": ratio(percentile(ss_lat, 95), percentile(bare_lat, 95)),
        }  # fmt: skip
        _log(f"latency: {out['latency']}")

        out["throughput"] = []
        audit_tag, audit_n = "", 0
        for n in sizes.throughput:
            last = out["throughput"][-1] if out["throughput"] else None
            if last is not None:
                # This size, then the phases after it (about 300 s on 2 idle cores).
                needed = n / last["safeshare_per_s"] + n / last["bare_per_s"] + 300
                if needed > left():
                    notes.append(
                        f"throughput N={n} skipped: about {needed:.0f} s needed, "
                        f"{left():.0f} s of the budget left"
                    )
                    continue
            bare = await flows.bare_batch(stack, n, f"tp{n}")
            ss = await flows.safeshare_batch(stack, cases.COMMON, n, f"tp{n}")
            out["throughput"].append({
                "path": "common", "n": n, "bare_per_s": bare.per_second,
                "safeshare_per_s": ss.per_second, "ratio": ratio(ss.per_second, bare.per_second),
            })  # fmt: skip
            audit_tag, audit_n = f"tp{n}", n
            _log(f"throughput: {out['throughput'][-1]}")
        bare_rate = out["throughput"][0]["bare_per_s"] if out["throughput"] else 0.0
        ovr = await flows.safeshare_batch(stack, cases.OVERRIDE, sizes.override, "tpo")
        out["throughput"].append({
            "path": "override", "n": sizes.override, "bare_per_s": bare_rate,
            "safeshare_per_s": ovr.per_second, "ratio": ratio(ovr.per_second, bare_rate),
        })  # fmt: skip
        _log(f"override: {out['throughput'][-1]}")

        out["replay"] = await _replays(stack, audit_tag, min(audit_n, sizes.replay))
        _log(f"replay: {out['replay']}")
        out["audit"] = await _audit(stack, audit_tag, min(audit_n, sizes.audit), data_dir)
        _log(f"audit: {out['audit']}")
        out["archive"] = await _archive(stack, out["throughput"], data_dir)
        _log(f"archive: {out['archive']}")

        out["rpc"] = [
            dataclasses.asdict(t)
            for t in await gateway_overhead.measure(stack, "rpc", sizes.rpc_calls)
        ]
        _log(f"rpc: {out['rpc']}")
        out["yardsticks"] = [
            dataclasses.asdict(y)
            for y in await yardsticks.measure(stack, "yard", sizes.yardstick_calls)
        ]
        _log(f"yardsticks: {out['yardsticks']}")
        out["watch"] = dataclasses.asdict(await watch_latency.measure(stack, "watch", sizes.watch))
        _log(f"watch: {out['watch']}")

        if sizes.scale_budget:
            steps, note = await scale.run(stack, sizes.scale_steps, "scale", sizes.scale_budget)
            out["scale"] = [dataclasses.asdict(s) for s in steps]
            if note:
                notes.append(note)
            _log(f"scale: {out['scale']}")

        # Last: it replaces the hub, and every figure above is for the hub as shipped.
        bare_rate = out["throughput"][0]["bare_per_s"] if out["throughput"] else 0.0
        out["profile"], out["tuning"] = await _tuning(stack, sizes, bare_rate, data_dir)
        _log(f"tuning: {out['tuning']}")
    out["load_after"] = os.getloadavg()
    out["seconds"] = round(time.monotonic() - began, 1)
    return out


async def _run_scale(sizes: Sizes, data_dir: Path, command: str) -> dict[str, Any]:
    """The scale benchmark alone, with the time to reach 10,000 open cases."""
    began = time.monotonic()
    out = _header(command)
    async with bench_stack(data_dir) as stack:
        _log(f"stack up in {time.monotonic() - began:.1f} s")
        steps, note = await scale.run(stack, sizes.scale_steps, "scale", sizes.scale_budget)
        out["scale"] = [dataclasses.asdict(s) for s in steps]
        if note:
            out["notes"].append(note)
    out["load_after"] = os.getloadavg()
    out["seconds"] = round(time.monotonic() - began, 1)
    return out


async def _run_yardsticks(sizes: Sizes, data_dir: Path, command: str) -> dict[str, Any]:
    """The yardstick rows alone (a smoke run of the phase; the figures come from ``make bench``)."""
    began = time.monotonic()
    out = _header(command)
    async with bench_stack(data_dir) as stack:
        _log(f"stack up in {time.monotonic() - began:.1f} s")
        await flows.bare_batch(stack, 5, "warm")
        await flows.safeshare_batch(stack, cases.COMMON, 5, "warm-common")
        out["yardsticks"] = [
            dataclasses.asdict(y)
            for y in await yardsticks.measure(stack, "yard", sizes.yardstick_calls)
        ]
        _log(f"yardsticks: {out['yardsticks']}")
    out["load_after"] = os.getloadavg()
    out["seconds"] = round(time.monotonic() - began, 1)
    return out


async def _run_replicas(sizes: Sizes, data_dir: Path, command: str) -> dict[str, Any]:
    """The replica phases alone: two gateways and two adapters per agency, one then two hubs."""
    began = time.monotonic()
    out = _header(command)
    two = Replicas(hub=1, gateway=2, adapter=2)
    async with bench_stack(data_dir, replicas=two) as stack:
        _log(f"stack up in {time.monotonic() - began:.1f} s")
        await flows.safeshare_batch(stack, cases.COMMON, 5, "warm-common")
        out["replicas"] = await replicas.run(stack, sizes.replica_throughput, sizes.replica_latency)
        _log(f"replicas: {out['replicas']}")
    out["load_after"] = os.getloadavg()
    out["seconds"] = round(time.monotonic() - began, 1)
    return out


async def _run_watch(sizes: Sizes, data_dir: Path, command: str) -> dict[str, Any]:
    """The WatchCase delivery phase alone (a smoke run of that phase)."""
    began = time.monotonic()
    out = _header(command)
    async with bench_stack(data_dir) as stack:
        await flows.safeshare_batch(stack, cases.COMMON, 3, "warm-common")
        out["watch"] = dataclasses.asdict(await watch_latency.measure(stack, "watch", sizes.watch))
        _log(f"watch: {out['watch']}")
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


async def _run_replay(sizes: Sizes, data_dir: Path, command: str) -> dict[str, Any]:
    """The replay phase alone: ``sizes.replay`` cases of each side closed, then the same
    Replayer loop over both (SafeShare's with the shipped runner and with none), then
    SafeShare's and the baseline's replays again under py-spy (this process), for where the
    time goes. The histories are kept in the data dir (``--keep``) to replay again offline."""
    began = time.monotonic()
    out = _header(command)
    n = sizes.replay
    async with bench_stack(data_dir) as stack:
        _log(f"stack up in {time.monotonic() - began:.1f} s")
        await flows.bare_batch(stack, 5, "warm")
        await flows.safeshare_batch(stack, cases.COMMON, 5, "warm-common")
        await flows.bare_batch(stack, n, f"rp{n}")
        await flows.safeshare_batch(stack, cases.COMMON, n, f"rp{n}")
        _log(f"{n} cases closed on each side")
        saved = data_dir / "replay-histories"
        out["replay"] = await _replays(stack, f"rp{n}", n, saved)
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
        _log(f"replay: {out['replay']}")
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


async def _run_archive(sizes: Sizes, data_dir: Path, command: str) -> dict[str, Any]:
    """The archiver phase alone: ``sizes.archive`` SafeShare cases closed (their close rate),
    then one archiver sweeping them all into a fresh archive."""
    began = time.monotonic()
    out = _header(command)
    async with bench_stack(data_dir) as stack:
        await flows.safeshare_batch(stack, cases.COMMON, 3, "warm-common")
        n = sizes.archive
        closed = await flows.safeshare_batch(stack, cases.COMMON, n, f"arc{n}")
        throughput = [{"path": "common", "n": n, "safeshare_per_s": closed.per_second}]
        out["archive"] = await _archive(stack, throughput, data_dir)
        _log(f"archive: {out['archive']}")
    out["load_after"] = os.getloadavg()
    out["seconds"] = round(time.monotonic() - began, 1)
    return out


async def _tuning(
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


async def _costs(stack: BenchStack) -> list[dict[str, Any]]:
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


async def _replays(
    stack: BenchStack, tag: str, n: int, saved: Path | None = None
) -> dict[str, Any]:
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


async def _audit(stack: BenchStack, tag: str, n: int, data_dir: Path) -> dict[str, Any]:
    refs = [cases.case_ref(cases.COMMON, f"{tag}-{i}") for i in range(n)]
    found = await audit_speed.audit(stack.safeshare, refs, data_dir / "audit-export")
    return {**dataclasses.asdict(found), "per_s": found.per_second}


async def _archive(
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


def main() -> None:
    """Parse arguments, run, write and print the results."""
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="tiny sizes: check the harness")
    parser.add_argument(
        "--scale", action="store_true", help="only the scale benchmark, up to 10,000 open cases"
    )
    parser.add_argument(
        "--replicas", action="store_true", help="only the replica phases (one/two hubs, loss)"
    )
    parser.add_argument(
        "--yardsticks", type=int, metavar="N", default=0,
        help="only the Temporal yardsticks against the Case API, N calls per row",
    )  # fmt: skip
    parser.add_argument(
        "--watch", action="store_true", help="only the WatchCase delivery latency phase"
    )
    parser.add_argument(
        "--archive", type=int, metavar="N", default=0,
        help="only the archiver phase: N cases closed, then swept (its cost and sweep rate)",
    )  # fmt: skip
    parser.add_argument(
        "--replay", type=int, metavar="N", default=0,
        help="only the replay phase: N cases of each side closed, replayed, then profiled",
    )  # fmt: skip
    parser.add_argument("--keep", action="store_true", help="keep the run's data dir")
    args = parser.parse_args()
    if args.yardsticks:
        sizes = dataclasses.replace(Sizes(), yardstick_calls=args.yardsticks)
        command, latest = (
            f".venv/bin/python -m bench --yardsticks {args.yardsticks}",
            "latest-yardsticks",
        )
        run = _run_yardsticks
    elif args.replay:
        sizes = dataclasses.replace(Sizes(), replay=args.replay)
        command, latest = f".venv/bin/python -m bench --replay {args.replay}", "latest-replay"
        run = _run_replay
    elif args.archive:
        sizes = dataclasses.replace(Sizes(), archive=args.archive)
        command, latest = f".venv/bin/python -m bench --archive {args.archive}", "latest-archive"
        run = _run_archive
    elif args.replicas:
        sizes, command, latest = Sizes(), "make bench-replicas", "latest-replicas"
        run = _run_replicas
    elif args.watch:
        sizes, command, latest = Sizes(), ".venv/bin/python -m bench --watch", "latest-watch"
        run = _run_watch
    elif args.scale:
        sizes, command, latest = SCALE_ONLY, "make bench-scale", "latest-scale"
        run = _run_scale
    else:
        sizes, command, latest = Sizes(), "make bench", "latest"
        run = _run
    if args.quick:
        quick = dataclasses.replace(
            QUICK, archive=args.archive or 20, replay=args.replay or QUICK.replay
        )
        sizes, latest = quick, f"{latest}-quick"
        flag = (
            f" --replay {args.replay}"
            if args.replay
            else f" --archive {args.archive}"
            if args.archive
            else " --scale"
            if args.scale
            else " --replicas"
            if args.replicas
            else " --watch"
            if args.watch
            else ""
        )
        command = f".venv/bin/python -m bench --quick{flag}"
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%SZ")
    RESULTS.mkdir(parents=True, exist_ok=True)
    data_dir = RESULTS / f"run-{stamp}"
    try:
        results = asyncio.run(run(sizes, data_dir, command))
    except KeyboardInterrupt:
        print("bench: interrupted", file=sys.stderr)
        raise SystemExit(130) from None
    except Exception as err:  # one readable line, the data dir kept for its logs
        print(
            f"bench: failed: {type(err).__name__}: {err} (logs in {data_dir / 'logs'})",
            file=sys.stderr,
        )
        raise SystemExit(1) from None
    table = markdown(results)
    # A harness check must not replace the latest real figures.
    for name in (stamp, latest):
        (RESULTS / f"{name}.json").write_text(json.dumps(results, indent=2, default=str) + "\n")
        (RESULTS / f"{name}.md").write_text(table)
    if not args.keep:
        for kind in ("profiles", "profiles-untuned"):
            if (data_dir / kind).exists():
                shutil.copytree(data_dir / kind, RESULTS / f"{kind}-{stamp}", dirs_exist_ok=True)
        shutil.rmtree(data_dir, ignore_errors=True)
    print(table)
