"""The hub as it was before profiling tuned it, for the bench's before/after figures: Temporal's
default sandbox runner, which re-imports every workflow module (the pure ones included) for each
new workflow run. Everything else is ``safeshare.hub.build_hub_worker``'s; the tuning itself is
``workflows.runner.workflow_runner`` (the pure modules passed through).

Run: ``python -m bench.untuned_hub --temporal-address HOST:PORT --keys-file FILE
--gateway-key PEM``.
"""

from __future__ import annotations

import argparse
import asyncio
from pathlib import Path

from temporalio.client import Client
from temporalio.worker import Worker
from temporalio.worker.workflow_sandbox import SandboxedWorkflowRunner

from safeshare import hub
from safeshare.codec import load_key_file
from safeshare.log import configure_logging
from safeshare.shutdown import wait_for_stop_signal
from safeshare.temporal import TemporalSettings, connect_temporal

READY = "untuned-hub-ready"


def untuned_runner() -> SandboxedWorkflowRunner:
    """Temporal's default sandboxed runner: nothing of SafeShare's passed through."""
    return SandboxedWorkflowRunner()


def build_untuned_hub_worker(client: Client, gateway_key: Path) -> Worker:
    """``safeshare.hub.build_hub_worker(client)`` with the default sandbox runner."""
    # 👉 A worker registers its task queue when constructed, so it cannot be built and then
    # changed; the hub module's runner factory is swapped for this one call (bench process only).
    tuned = hub.workflow_runner
    hub.workflow_runner = untuned_runner
    try:
        return hub.build_hub_worker(client, gateway_key_path=gateway_key)
    finally:
        hub.workflow_runner = tuned


async def _main(address: str, keys_file: Path, gateway_key: Path) -> None:
    # Logs to stderr (the stack's log file): stdout is a pipe only the ready line is read from.
    configure_logging(component="hub")
    client = await connect_temporal(
        TemporalSettings(address=address, keys=load_key_file(keys_file))
    )
    async with build_untuned_hub_worker(client, gateway_key):
        print(READY, flush=True)
        await wait_for_stop_signal()


def main() -> None:
    """Parse arguments and run until SIGTERM."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--temporal-address", required=True)
    parser.add_argument("--keys-file", type=Path, required=True)
    parser.add_argument("--gateway-key", type=Path, required=True)
    args = parser.parse_args()
    asyncio.run(_main(args.temporal_address, args.keys_file, args.gateway_key))


if __name__ == "__main__":
    main()
