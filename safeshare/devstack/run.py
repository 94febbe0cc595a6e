"""``safeshare dev``: start the dev stack, submit the demo cases, print where everything is,
and run until SIGINT or SIGTERM."""

from __future__ import annotations

import asyncio
from pathlib import Path

from protos.sharing.v1 import case_pb2 as pb
from safeshare.demo import run_demo, run_demo_disclosures
from safeshare.devstack.console import console
from safeshare.devstack.processes import DevStackError
from safeshare.devstack.settings import DevPorts, Replicas
from safeshare.devstack.stack import DevStack
from safeshare.devstack.summary import print_summary
from safeshare.operators.review import ensure_dev_review_schedule
from safeshare.shutdown import wait_for_stop_signal
from workflows.domain.vocabulary import code


async def run_dev_stack(
    data_dir: Path,
    ports: DevPorts,
    registry_path: Path,
    demo: bool,
    encryption: bool = True,
    replicas: Replicas | None = None,
    otlp_endpoint: str | None = None,
    prometheus: bool = False,
) -> None:
    """Start the dev stack, submit the demo cases, and run until SIGINT or SIGTERM; with
    ``prometheus``, a Prometheus with the shipped rules; with ``otlp_endpoint``, every process
    exports its spans there."""
    stack = DevStack(
        data_dir, ports, registry_path, encryption=encryption, replicas=replicas,
        otlp_endpoint=otlp_endpoint,
    )  # fmt: skip
    stop = asyncio.ensure_future(wait_for_stop_signal())
    try:
        console.print(f"Starting SafeShare in {data_dir} ...")
        starting = asyncio.ensure_future(stack.start())
        await asyncio.wait({starting, stop}, return_when=asyncio.FIRST_COMPLETED)
        if stop.done():
            starting.cancel()
            return
        starting.result()
        if prometheus:
            await stack.start_prometheus()
        await ensure_dev_review_schedule(
            stack.temporal.address,
            stack.keys_file if encryption else None,
            data_dir / "reports",
        )
        results = await run_demo(stack.gateway_target, stack.demo_tls()) if demo else []
        disclosures = (
            await run_demo_disclosures(stack.gateway_target, stack.demo_tls()) if demo else []
        )
        print_summary(stack, results)
        for shown in disclosures:
            state = code(pb.CaseState, shown.view.state)
            console.print(f"  disclosure {shown.case_ref}  {state:<26} {shown.disclosure.story}")
        await stop
        console.print("Stopping SafeShare ...")
    except DevStackError as err:
        console.print(f"[red]safeshare dev: {err}[/]")
        raise SystemExit(2) from None
    finally:
        stop.cancel()
        await stack.stop()
        console.print("Stopped.")
