"""The hub worker with one tuning the profiles point at, for the bench's before/after figures:
the pure modules the workflows import are passed through the sandbox instead of being
re-imported for every workflow run. Everything else is ``safeshare.hub.build_hub_worker``'s.

Run: ``python -m bench.tuned_hub --temporal-address HOST:PORT --keys-file FILE``.
"""

from __future__ import annotations

import argparse
import asyncio
import functools
from pathlib import Path

from temporalio.client import Client
from temporalio.worker import Worker
from temporalio.worker.workflow_sandbox import SandboxedWorkflowRunner, SandboxRestrictions

from safeshare import hub
from safeshare.codec import load_key_file
from safeshare.shutdown import wait_for_stop_signal
from safeshare.temporal import TemporalSettings, connect_temporal

# Pure, deterministic modules with no mutable module state: safe to share across runs.
PASSTHROUGH = (
    "workflows.case_model",
    "workflows.calendar",
    "workflows.translate",
    "workflows.ids",
    "workflows.search_attributes",
    "workflows.case_view",
    "protos",
)


def tuned_runner() -> SandboxedWorkflowRunner:
    """The sandboxed runner with the pure workflow modules passed through."""
    return SandboxedWorkflowRunner(
        restrictions=SandboxRestrictions.default.with_passthrough_modules(*PASSTHROUGH)
    )


def build_tuned_hub_worker(client: Client) -> Worker:
    """``safeshare.hub.build_hub_worker(client)`` with the pure modules passed through."""
    runner = tuned_runner()
    # 👉 A worker registers its task queue when constructed, so it cannot be built twice;
    # instead the hub module's Worker is given the runner for this one call (bench process only).
    original = hub.Worker
    hub.Worker = functools.partial(Worker, workflow_runner=runner)  # type: ignore[misc,assignment]
    try:
        return hub.build_hub_worker(client)
    finally:
        hub.Worker = original  # type: ignore[misc]


async def _main(address: str, keys_file: Path) -> None:
    client = await connect_temporal(
        TemporalSettings(address=address, keys=load_key_file(keys_file))
    )
    async with build_tuned_hub_worker(client):
        print("tuned-hub-ready", flush=True)
        await wait_for_stop_signal()


def main() -> None:
    """Parse arguments and run until SIGTERM."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--temporal-address", required=True)
    parser.add_argument("--keys-file", type=Path, required=True)
    args = parser.parse_args()
    asyncio.run(_main(args.temporal_address, args.keys_file))


if __name__ == "__main__":
    main()
