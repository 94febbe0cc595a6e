"""``safeshare dev``: the whole system on this machine (``safeshare.devstack``)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from partnership.registry_file import DEFAULT_REGISTRY_PATH
from safeshare.commands.plumbing import run
from safeshare.log import configure_logging


def dev(
    data_dir: Annotated[Path, typer.Option(help="Where the dev stack keeps its data.")] = Path(
        ".safeshare"
    ),
    temporal_port: Annotated[int, typer.Option(help="Temporal frontend port.")] = 7233,
    ui_port: Annotated[int, typer.Option(help="Temporal Web UI port.")] = 8233,
    gateway_port: Annotated[int, typer.Option(help="Case API port.")] = 50051,
    agency_port: Annotated[
        int, typer.Option(help="First sandbox agency port; the others follow.")
    ] = 50061,
    codec_port: Annotated[int, typer.Option(help="Codec server port (for the UI).")] = 8081,
    metrics_port: Annotated[
        int,
        typer.Option(
            help="Hub metrics port; gateway +1, adapters +10..., agencies +30...; 0: off."
        ),
    ] = 9460,
    prometheus: Annotated[
        bool,
        typer.Option(help="Also start Prometheus (if installed) with the shipped alert rules."),
    ] = False,
    prometheus_port: Annotated[int, typer.Option(help="Prometheus's port.")] = 9090,
    otlp_endpoint: Annotated[
        str | None,
        typer.Option(
            envvar="SAFESHARE_OTLP_ENDPOINT",
            help="Export every process's traces over OTLP/gRPC, e.g. http://127.0.0.1:4317.",
        ),
    ] = None,
    demo: Annotated[bool, typer.Option(help="Submit the demo cases.")] = True,
    registry: Annotated[Path, typer.Option(help="Partnership registry file.")] = (
        DEFAULT_REGISTRY_PATH
    ),
    encryption: Annotated[
        bool,
        typer.Option(
            help="Encrypt Temporal payloads. --no-encryption only shows what would leak "
            "(the leak test's negative control); never use it with real data."
        ),
    ] = True,
    replicas: Annotated[
        int, typer.Option(min=1, max=9, help="Processes of each part: hubs, gateways, adapters.")
    ] = 1,
    hub_replicas: Annotated[
        int | None, typer.Option(min=1, max=9, help="Hub workers (default --replicas).")
    ] = None,
    gateway_replicas: Annotated[
        int | None,
        typer.Option(
            min=1, max=9, help="Gateways, on ports from --gateway-port (default --replicas)."
        ),
    ] = None,
    adapter_replicas: Annotated[
        int | None, typer.Option(min=1, max=9, help="Adapters per agency (default --replicas).")
    ] = None,
    hub_build_id: Annotated[
        str | None,
        typer.Option(help="Run the hubs under Worker Versioning as this build, made current."),
    ] = None,
) -> None:
    """Start the whole system on this machine, with demo cases, until Ctrl-C."""
    from safeshare.devstack.run import run_dev_stack
    from safeshare.devstack.settings import DevPorts, Replicas

    configure_logging(json=False, component="dev")
    ports = DevPorts(
        temporal=temporal_port,
        ui=ui_port,
        gateway=gateway_port,
        first_agency=agency_port,
        codec=codec_port,
        metrics=metrics_port,
        prometheus=prometheus_port,
    )
    counts = Replicas(
        hub=hub_replicas or replicas,
        gateway=gateway_replicas or replicas,
        adapter=adapter_replicas or replicas,
        hub_build_id=hub_build_id,
    )
    run(
        run_dev_stack(
            data_dir.resolve(),
            ports,
            registry.resolve(),
            demo=demo,
            encryption=encryption,
            replicas=counts,
            otlp_endpoint=otlp_endpoint,
            prometheus=prometheus,
        )
    )
