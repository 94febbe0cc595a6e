"""What the dev stack prints once it is up: where every part listens, where its files are,
the demo cases, and the one plain line that scripts and tests wait for."""

from __future__ import annotations

from rich.table import Table

from protos.sharing.v1 import case_pb2 as pb
from safeshare.audit.signing import public_key_path
from safeshare.demo import DemoResult
from safeshare.devstack.codec_server import DEV_OPERATORS
from safeshare.devstack.console import console
from safeshare.devstack.settings import HOST
from safeshare.devstack.stack import DevStack
from safeshare.devstack.temporal_server import NAMESPACE, RETENTION_DAYS
from safeshare.operators.views import describe_views
from workflows.domain.vocabulary import code


def print_summary(stack: DevStack, results: list[DemoResult]) -> None:
    """Print where everything is and the demo cases to stderr, then the ready lines to stdout."""
    pki = stack.pki.root
    console.print()
    console.print("[bold green]SafeShare dev stack is up.[/]")
    console.print(f"  Temporal Web UI   {stack.ui_url}")
    console.print(f"  Temporal server   {HOST}:{stack.ports.temporal} (namespace {NAMESPACE})")
    console.print(
        f"  Temporal profile  {stack.temporal_profile} (read by safeshare cases, ops, review, "
        "audit run in this folder; elsewhere export TEMPORAL_CONFIG_FILE=<it>)"
    )
    if stack.encryption:
        console.print(f"  codec server      {stack.codec.url} (the UI decrypts through it)")
        console.print(f"  payload keys      {stack.keys_file}")
        console.print(
            f"  operator sign-in   {stack.codec.url}/login "
            f"(local provider {stack.codec.oidc_issuer}; "
            f'operators: {", ".join(DEV_OPERATORS)}); then tick "include cross-origin '
            "credentials\" in the UI's codec settings"
        )
        console.print(
            "  [bold red]dev only: the codec server trusts the UI's origin without a sign-in[/]"
        )
        console.print(f"  access log        {stack.access_log}")
    else:
        console.print("  [bold red]payload encryption is OFF: histories are in the clear[/]")
    console.print(f"  Case API (gRPC)   {stack.gateway_target} (mTLS; certificates in {pki})")
    for agency_id, port in stack.agency_ports.items():
        console.print(f"  sandbox agency    {HOST}:{port}  {agency_id}")
    for name, endpoint in stack.metrics_endpoints.items():
        console.print(f"  metrics           {endpoint}  {name}")
    console.print(
        f"  retention         Temporal keeps closed cases {RETENTION_DAYS} days (namespace "
        f"{NAMESPACE}); the case archive keeps them for the registry's retention"
    )
    console.print(f"  case archive      {stack.archive_url} (safeshare archive status)")
    console.print(
        f"  archive log key   {public_key_path(stack.archive_key)} (auditors verify with it)"
    )
    if stack.prometheus_url:
        console.print(
            f"  Prometheus        {stack.prometheus_url}/alerts (SafeShare's alert rules; "
            "dashboard: ops/grafana/safeshare.json)"
        )
    elif stack.metrics_endpoints:
        console.print("  Prometheus        not started (safeshare dev --prometheus starts one)")
    if stack.otlp_endpoint:
        console.print(f"  traces            exported to {stack.otlp_endpoint} (OTLP/gRPC)")
    console.print(f"  data              {stack.data_dir}")
    console.print(f"  logs              {stack.data_dir / 'logs'}")
    console.print(
        "Operators' saved views (docs/operators.md):\n" + "\n".join(describe_views(stack.ports.ui))
    )
    if results:
        table = Table(title="Demo cases", title_justify="left")
        for column in ("case", "requester -> holder", "state", "outcome", "what it shows"):
            table.add_column(column, no_wrap=column != "what it shows")
        for result in results:
            record = result.view.record
            table.add_row(
                f"case-{result.case_ref}",
                f"{result.case.requester} -> {result.case.holder}",
                code(pb.CaseState, result.view.state),
                code(pb.Outcome, record.outcome)
                if record.outcome != pb.OUTCOME_UNSPECIFIED
                else "(open)",
                result.case.story,
            )
        console.print(table)
        for result in results:
            console.print(f"  {stack.case_url(result.case_ref)}")
    console.print("Press Ctrl-C to stop.")
    # One plain line that scripts and tests wait for.
    print(f"safeshare-dev-ready gateway={stack.gateway_target} ui={stack.ui_url}", flush=True)
    for result in results:
        print(f"safeshare-dev-case {result.case.request_id} {result.case_ref}", flush=True)
