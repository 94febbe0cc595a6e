"""The results as a Markdown table (ratios first), and the machine they were measured on."""

# ruff: noqa: E501 -- a Markdown row reads best as one f-string, however long.

from __future__ import annotations

import math
import os
import platform
from typing import Any


def machine() -> dict[str, Any]:
    """Core count and CPU model (Linux /proc/cpuinfo)."""
    model = platform.processor() or "unknown"
    try:
        with open("/proc/cpuinfo") as info:
            model = next(
                line.split(":", 1)[1].strip() for line in info if line.startswith("model name")
            )
    except (OSError, StopIteration):
        pass
    return {"nproc": os.cpu_count(), "model": model, "python": platform.python_version()}


def _f(value: float, digits: int = 2) -> str:
    return (
        "n/a"
        if value is None or (isinstance(value, float) and math.isnan(value))
        else f"{value:.{digits}f}"
    )


def _ms(seconds: float) -> str:
    return _f(seconds * 1000, 1) + " ms"


def _pct(value: float) -> str:
    return "n/a" if math.isnan(value) else f"{value:.0%}"


def _query(q: dict[str, Any]) -> str:
    return (
        f"{_f(q['first_page_seconds'], 3)} / {_f(q['count_seconds'], 3)} / "
        f"{_f(q['all_seconds'], 3)} ({q['matches']})"
    )


def _profile_line(p: dict[str, Any], top_self: int, top_own: int) -> str:
    """One process's py-spy summary as a list item."""
    top = "; ".join(f"{name} {share:.0%}" for name, share in p["top_self"][:top_self])
    own = "; ".join(f"{name} {share:.0%}" for name, share in p["top_own"][:top_own])
    return (
        f"- **{p['process']}**: {p['samples']} samples, {p['own_code_share']:.0%} with SafeShare code "
        f"on the stack, {p['sandbox_import_share']:.0%} in the sandbox importer. "
        f"Self: {top}. SafeShare (inclusive): {own or 'none'}."
    )


def markdown(r: dict[str, Any]) -> str:
    """The whole run as Markdown."""
    m = r["machine"]
    lines = [
        f"### Benchmark run {r['date']}",
        "",
        f"Machine: {m['nproc']} cores, {m['model']}, Python {m['python']}. "
        f"Load average before: {', '.join(f'{x:.2f}' for x in r['load_before'])}; "
        f"after: {', '.join(f'{x:.2f}' for x in r.get('load_after', []))}. "
        f"Run took {r.get('seconds', 0):.0f} s. Reproduce: `{r['command']}`.",
        "",
        "| measure | SafeShare | bare Temporal | ratio |",
        "|---|---|---|---|",
    ]
    for t in r.get("throughput", []):
        lines.append(
            f"| throughput, {t['path']} path, N={t['n']} (cases closed/s) | "
            f"{_f(t['safeshare_per_s'])} | {_f(t['bare_per_s'])} | {_f(t['ratio'])} |"
        )
    lat = r.get("latency")
    if lat:
        for q in ("p50", "p95"):
            lines.append(
                f"| idle latency submit → records stored, {q}, {lat['n']} sequential | "
                f"{_ms(lat['safeshare_' + q])} | {_ms(lat['bare_' + q])} | {_f(lat['ratio_' + q])} |"
            )
    rep = r.get("replay")
    if rep:
        lines.append(
            f"| replay of {rep['n']} closed cases, same Replayer loop, shipped runner (cases/s, replay only) | "
            f"{_f(rep['safeshare_per_s'], 1)} | {_f(rep['bare_per_s'], 1)} | {_f(rep['ratio'])} |"
        )
        if "cpu_ratio" in rep:
            ss_cpu, bare_cpu = rep["safeshare"], rep["bare"]
            lines.append(
                f"| the same replay per CPU second of the replaying process (cases/CPU s) | "
                f"{_f(ss_cpu['cases'] / ss_cpu['replay_cpu_seconds'] if ss_cpu['replay_cpu_seconds'] else math.nan, 1)} | "
                f"{_f(bare_cpu['cases'] / bare_cpu['replay_cpu_seconds'] if bare_cpu['replay_cpu_seconds'] else math.nan, 1)} | "
                f"{_f(rep['cpu_ratio'])} |"
            )
        if "stock_runner_per_s" in rep:
            lines.append(
                f"| replay with the SDK's own sandboxed runner, same passthrough modules (before the shipped runner answered payload contexts itself; CPU ratio {_f(rep['stock_runner_cpu_ratio'])}) | "
                f"{_f(rep['stock_runner_per_s'], 1)} | {_f(rep['bare_per_s'], 1)} | {_f(rep['stock_runner_ratio'])} |"
            )
        if "untuned_per_s" in rep:
            lines.append(
                f"| replay before tuning: default sandbox runner ({rep['safeshare_untuned']['cases']} cases) | "
                f"{_f(rep['untuned_per_s'], 1)} | {_f(rep['bare_per_s'], 1)} | {_f(rep['untuned_ratio'])} |"
            )
        if "unsandboxed_per_s" in rep:
            lines.append(
                f"| replay without the sandbox, for scale only ({rep['safeshare_unsandboxed']['cases']} cases) | "
                f"{_f(rep['unsandboxed_per_s'], 1)} | {_f(rep['bare_per_s'], 1)} | {_f(rep['unsandboxed_ratio'])} |"
            )
        lines.append(
            f"| fetch of those histories (s) | {_f(rep['safeshare']['fetch_seconds'])} | "
            f"{_f(rep['bare']['fetch_seconds'])} | "
            f"{_f(rep['safeshare']['fetch_seconds'] / rep['bare']['fetch_seconds'] if rep['bare']['fetch_seconds'] else math.nan)} |"
        )
    arc = r.get("archive")
    if arc:
        lines.append(
            f"| archiver: {arc['cases']} closed cases swept into a fresh archive (cases/s; "
            f"{_f(arc['ms_per_case'], 1)} ms wall and {_f(arc['cpu_ms_per_case'], 1)} ms CPU per "
            f"case; {arc['findings']} verify findings) | {_f(arc['per_s'], 1)} | "
            f"close rate {_f(arc['close_rate'], 1)} | {_f(arc['keeps_up'])} |"
        )
    aud = r.get("audit")
    if aud:
        bare_replay = rep["bare_per_s"] if rep else math.nan
        replay_rate = aud["cases"] / aud["replay_seconds"] if aud["replay_seconds"] else math.nan
        lines.append(
            f"| audit replay step (`safeshare audit replay` code) of {aud['cases']} closed cases, from the export folder (cases/s) | "
            f"{_f(replay_rate, 1)} | {_f(bare_replay, 1)} (bare loop) | {_f(replay_rate / bare_replay if bare_replay else math.nan)} |"
        )
        steps = " + ".join(
            f"{name} {_f(aud[key], 1)} s" for name, key in
            (("export", "export_seconds"), ("verify", "verify_seconds"), ("replay", "replay_seconds"))
        )  # fmt: skip
        lines.append(
            f"| audit export → verify → replay of {aud['cases']} closed cases (cases/s; {steps}; "
            f"{aud['findings']} findings, {aud['failures']} replay failures) | {_f(aud['per_s'], 1)} | "
            f"{_f(bare_replay, 1)} (bare loop, replay only) | {_f(aud['per_s'] / bare_replay if bare_replay else math.nan)} |"
        )
    for t in r.get("rpc", []):
        lines.append(
            f"| gateway {t['rpc']} at {t['in_flight']} in flight, p50 / p99 (vs grpc.aio echo) | "
            f"{_ms(t['p50'])} / {_ms(t['p99'])} | {_ms(t['echo_p50'])} / {_ms(t['echo_p99'])} | "
            f"{_f(t['p50'] / t['echo_p50'] if t['echo_p50'] else math.nan, 1)}"
            + (f" ({t['errors']} of {t['calls']} failed)" if t.get("errors") else "")
            + " |"
        )
    for y in r.get("yardsticks", []):
        goal = f", goal ≤ {y['goal']}" if y.get("goal") else ""
        lines.append(
            f"| {y['rpc']} vs bare `{y['bare']}` at {y['in_flight']} in flight, p50 / p99 "
            f"({y['calls']} calls, one workflow each{goal}) | {_ms(y['p50'])} / {_ms(y['p99'])} | "
            f"{_ms(y['bare_p50'])} / {_ms(y['bare_p99'])} | "
            f"{_f(y['p50'] / y['bare_p50'] if y['bare_p50'] else math.nan, 2)}"
            + (f" ({y['errors']} failed)" if y.get("errors") else "")
            + " |"
        )
    if watched := r.get("watch"):
        lines.append(
            f"| WatchCase delivery, recorded → received, p50 / p99 ({watched['events']} events of "
            f"{watched['cases']} cases, {watched['in_flight']} watched at a time; from the "
            f"entry's own time: {_ms(watched.get('stamped_p50', math.nan))} / "
            f"{_ms(watched.get('stamped_p99', math.nan))}) | "
            f"{_ms(watched['p50'])} / {_ms(watched['p99'])} | 200 ms p50 (goal) | "
            f"{_f(watched['p50'] / 0.2)} |"
        )
    bare_cost = next((c for c in r.get("cost", []) if c["path"] == "bare"), None)
    for c in r.get("cost", []):
        if c["path"] == "bare":
            continue
        lines.append(
            f"| history per case, {c['path']} (events / bytes) | {c['events']} / {c['history_bytes']} | "
            f"{bare_cost['events'] if bare_cost else 'n/a'} / {bare_cost['history_bytes'] if bare_cost else 'n/a'} | "
            f"{_f(c['history_bytes'] / bare_cost['history_bytes'] if bare_cost else math.nan, 1)} (bytes) |"
        )
        lines.append(
            f"| payload bytes per case, {c['path']}: plain → encrypted ({c['payloads']} payloads) | "
            f"{c['payload_bytes_plain']} → {c['payload_bytes_stored']} | "
            f"{bare_cost['payload_bytes_plain'] if bare_cost else 'n/a'} | "
            f"{_f(c['payload_bytes_stored'] / c['payload_bytes_plain'] if c['payload_bytes_plain'] else math.nan)} (encryption) |"
        )
    shape = {
        "activities": "activity_task_scheduled_event_attributes",
        "children": "start_child_workflow_execution_initiated_event_attributes",
        "updates": "workflow_execution_update_accepted_event_attributes",
        "timers": "timer_started_event_attributes",
        "search-attribute upserts": "upsert_workflow_search_attributes_event_attributes",
        "workflow tasks": "workflow_task_completed_event_attributes",
    }
    for c in r.get("cost", []):
        counts = ", ".join(f"{c['event_types'].get(k, 0)} {name}" for name, k in shape.items())
        lines.append(f"| shape of one case, {c['path']} (from its history) | {counts} | | |")
    if lines[-1] == "|---|---|---|---|":  # a run with no ratio rows (make bench-scale)
        del lines[-3:]
    scale = r.get("scale", [])
    if scale:
        lines += ["", "Scale: open cases waiting on people (consent refused: on the holder; every 10th with an override proposed: on an approver), created in steps. "
                  "Each list query: first page of 100 rows / count / every match (seconds), and the matches.", "",
                  "| open cases | WaitingOn='APPROVER' | NextDeadline < now | create rate (cases/s) | RSS MiB hub / gateway / adapters | CPU s hub / gateway |",
                  "|---|---|---|---|---|---|"]  # fmt: skip
        for s in scale:
            rss, cpu = s["rss_mib"], s["cpu_seconds"]
            adapters = " + ".join(f"{v:.0f}" for k, v in rss.items() if k.startswith("adapter"))
            lines.append(
                f"| {s['open_cases']} | {_query(s['approver'])} | {_query(s['overdue'])} | {s['create_per_second']} | "
                f"{rss.get('hub', 0):.0f} / {rss.get('gateway', 0):.0f} / {adapters} | "
                f"{cpu.get('hub', 0)} / {cpu.get('gateway', 0)} |"
            )
    rep = r.get("replicas")
    if rep:
        tp, loss = rep["throughput"], rep["loss"]

        def busy(run: dict[str, Any]) -> str:
            return (
                ", ".join(f"{k} {v}" for k, v in run["cpu_seconds"].items())
                + f" (cores busy {run['cores_busy']})"
            )

        lines += ["", f"Replicas: the common path, N={tp['one']['n']}, with one hub process and then two on the same server "
                  "(two gateways, two adapters per agency); CPU seconds used during each batch.", "",
                  "| hubs | cases/s | CPU s during the batch |", "|---|---|---|",
                  f"| 1 | {_f(tp['one']['per_s'])} | {busy(tp['one'])} |",
                  f"| 2 | {_f(tp['two']['per_s'])} | {busy(tp['two'])} |",
                  f"| ratio 2 / 1 | {_f(tp['ratio'])} | |",
                  "", f"Losing a replica of every part ({', '.join(loss['killed'])} killed as the window starts): "
                  f"submit → records stored, {loss['before']['n']} sequential cases per window.", "",
                  "| window | p50 | p99 |", "|---|---|---|"] + [
                  f"| {w} | {_ms(loss[w]['p50'])} | {_ms(loss[w]['p99'])} |" for w in ("before", "during", "after")]  # fmt: skip
    prof = r.get("profile")
    if prof:
        lines += ["", f"Profiles (py-spy, the tuning phase's {prof['n']} common-path cases with the hub as shipped, at "
                  f"{_f(prof['safeshare_per_s_profiled'])} cases/s while profiled):", ""]  # fmt: skip
        lines += [_profile_line(p, 5, 4) for p in prof["processes"]]
    for name, processes in r.get("yardstick_profiles", {}).items():
        lines += ["", f"{name} at 64 in flight, profiled (py-spy, the yardstick cases again):", ""]
        lines += [_profile_line(p, 8, 8) for p in processes]
    phase = r.get("phase_profile")
    if phase:
        lines += ["", f"{phase['title']}:", ""]
        lines += [_profile_line(p, 8, 8) for p in phase["processes"]]
    tune = r.get("tuning")
    if tune:
        before = tune["hub_profile_before"]
        shipped = next(
            (
                p["sandbox_import_share"]
                for p in r.get("profile", {}).get("processes", [])
                if p["process"] == "hub"
            ),
            math.nan,
        )
        lines += ["", "Tuning (workflows/runner.py: the pure modules passed through the sandbox), before and after, "
                  f"N={tune['n']} back to back, both profiled; ratios to the bare rate at N=200:", "",
                  f"| hub | SafeShare cases/s | bare cases/s | ratio | latency p50 ({tune['latency_n']} sequential; bare {_ms(tune['bare_latency_p50'])}) | ratio |",
                  "|---|---|---|---|---|---|",
                  f"| before: default sandbox runner (bench/untuned_hub.py) | {_f(tune['before_per_s'])} | {_f(tune['bare_per_s'])} | {_f(tune['before_ratio'])} | {_ms(tune['before_latency_p50'])} | {_f(tune['before_latency_p50'] / tune['bare_latency_p50'])} |",
                  f"| after: as shipped | {_f(tune['after_per_s'])} | {_f(tune['bare_per_s'])} | {_f(tune['after_ratio'])} | {_ms(tune['after_latency_p50'])} | {_f(tune['after_latency_p50'] / tune['bare_latency_p50'])} |",
                  "", f"Hub samples in the sandbox importer: before {before['sandbox_import_share']:.0%}, after {_pct(shipped)}."]  # fmt: skip
    if r.get("notes"):
        lines += ["", "Notes:", ""] + [f"- {n}" for n in r["notes"]]
    return "\n".join(lines) + "\n"
