"""The full run (``make bench``): every phase in turn against one stack, each size cut when
it would not fit the budget, the tuning pair last."""

from __future__ import annotations

import dataclasses
import os
import time
from pathlib import Path
from typing import Any

from bench import cases, flows, gateway_overhead, latency, phases, scale, watch_latency, yardsticks
from bench.results import header, log
from bench.sizes import Sizes
from bench.stack import bench_stack
from bench.stats import percentile, ratio


async def run_all(sizes: Sizes, data_dir: Path, command: str) -> dict[str, Any]:
    """Every benchmark in one go; ``command`` is recorded in the results."""
    began = time.monotonic()
    out = header(command)
    notes: list[str] = out["notes"]

    def left() -> float:
        return sizes.budget - (time.monotonic() - began)

    async with bench_stack(data_dir) as stack:
        log(f"stack up in {time.monotonic() - began:.1f} s")
        # Warm-up; also the cases whose cost per case is reported.
        await flows.bare_batch(stack, 5, "warm")
        await flows.safeshare_batch(stack, cases.COMMON, 5, "warm-common")
        await flows.safeshare_batch(stack, cases.OVERRIDE, 3, "warm-override")
        out["cost"] = await phases.costs(stack)
        log("cost per case measured")

        bare_lat = await latency.bare_latencies(stack, sizes.latency, "lat")
        ss_lat = await latency.safeshare_latencies(stack, sizes.latency, "lat")
        out["latency"] = {
            "n": sizes.latency,
            "bare_p50": percentile(bare_lat, 50), "bare_p95": percentile(bare_lat, 95),
            "safeshare_p50": percentile(ss_lat, 50), "safeshare_p95": percentile(ss_lat, 95),
            "ratio_p50": ratio(percentile(ss_lat, 50), percentile(bare_lat, 50)),
            "ratio_p95": ratio(percentile(ss_lat, 95), percentile(bare_lat, 95)),
        }  # fmt: skip
        log(f"latency: {out['latency']}")

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
            log(f"throughput: {out['throughput'][-1]}")
        bare_rate = out["throughput"][0]["bare_per_s"] if out["throughput"] else 0.0
        ovr = await flows.safeshare_batch(stack, cases.OVERRIDE, sizes.override, "tpo")
        out["throughput"].append({
            "path": "override", "n": sizes.override, "bare_per_s": bare_rate,
            "safeshare_per_s": ovr.per_second, "ratio": ratio(ovr.per_second, bare_rate),
        })  # fmt: skip
        log(f"override: {out['throughput'][-1]}")

        out["replay"] = await phases.replays(stack, audit_tag, min(audit_n, sizes.replay))
        log(f"replay: {out['replay']}")
        out["audit"] = await phases.audit(stack, audit_tag, min(audit_n, sizes.audit), data_dir)
        log(f"audit: {out['audit']}")
        out["archive"] = await phases.archive(stack, out["throughput"], data_dir)
        log(f"archive: {out['archive']}")

        out["rpc"] = [
            dataclasses.asdict(t)
            for t in await gateway_overhead.measure(stack, "rpc", sizes.rpc_calls)
        ]
        log(f"rpc: {out['rpc']}")
        measured = await yardsticks.measure(
            stack, "yard", sizes.yardstick_calls, data_dir / "profiles"
        )
        out["yardsticks"] = [dataclasses.asdict(y) for y in measured.rows]
        out["yardstick_profiles"] = measured.profiles
        log(f"yardsticks: {out['yardsticks']}")
        out["watch"] = dataclasses.asdict(await watch_latency.measure(stack, "watch", sizes.watch))
        log(f"watch: {out['watch']}")

        if sizes.scale_budget:
            steps, note = await scale.run(stack, sizes.scale_steps, "scale", sizes.scale_budget)
            out["scale"] = [dataclasses.asdict(s) for s in steps]
            if note:
                notes.append(note)
            log(f"scale: {out['scale']}")

        # Last: it replaces the hub, and every figure above is for the hub as shipped.
        bare_rate = out["throughput"][0]["bare_per_s"] if out["throughput"] else 0.0
        out["profile"], out["tuning"] = await phases.tuning(stack, sizes, bare_rate, data_dir)
        log(f"tuning: {out['tuning']}")
    out["load_after"] = os.getloadavg()
    out["seconds"] = round(time.monotonic() - began, 1)
    return out
