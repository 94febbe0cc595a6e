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
import sys

from bench import full_run, phase_runs
from bench.results import RESULTS, save
from bench.sizes import QUICK, SCALE_ONLY, Sizes


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
        run = phase_runs.run_yardsticks
    elif args.replay:
        sizes = dataclasses.replace(Sizes(), replay=args.replay)
        command, latest = f".venv/bin/python -m bench --replay {args.replay}", "latest-replay"
        run = phase_runs.run_replay
    elif args.archive:
        sizes = dataclasses.replace(Sizes(), archive=args.archive)
        command, latest = f".venv/bin/python -m bench --archive {args.archive}", "latest-archive"
        run = phase_runs.run_archive
    elif args.replicas:
        sizes, command, latest = Sizes(), "make bench-replicas", "latest-replicas"
        run = phase_runs.run_replicas
    elif args.watch:
        sizes, command, latest = Sizes(), ".venv/bin/python -m bench --watch", "latest-watch"
        run = phase_runs.run_watch
    elif args.scale:
        sizes, command, latest = SCALE_ONLY, "make bench-scale", "latest-scale"
        run = phase_runs.run_scale
    else:
        sizes, command, latest = Sizes(), "make bench", "latest"
        run = full_run.run_all
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
    print(save(results, stamp, latest, data_dir, args.keep))
