"""``safeshare registry``: validate, show and change the partnership registry.

Changes take effect at once: the protocol gate re-reads the file when it changes. Restart the
gateway after adding an agency (it loads the registry when it starts).
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from partnership.errors import RegistryError
from partnership.registry import DEFAULT_TIMESCALES, Registry
from partnership.registry_file import DEFAULT_REGISTRY_PATH, load_registry
from safeshare.operators.options import fail
from safeshare.operators.registry_store import (
    KINDS,
    add_agency,
    bind_provider,
    read_data,
    renew_signature,
)

registry_app = typer.Typer(help="The partnership registry: signatories and providers.",
                           no_args_is_help=True)  # fmt: skip

RegistryPath = Annotated[
    Path,
    typer.Option("--registry", envvar="SAFESHARE_REGISTRY", help="The registry file."),
]
By = Annotated[str, typer.Option(help="Who makes the change (recorded in the file).")]
ReviewDate = Annotated[str, typer.Option(help="The next protocol review date (YYYY-MM-DD).")]
ExpectVersion = Annotated[
    int | None,
    typer.Option(help="Refuse the change unless the registry is still at this version."),
]
SignedVersion = Annotated[
    str | None, typer.Option(help="Protocol version signed (default: the one in force).")
]


def _date(text: str) -> dt.date:
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        raise typer.BadParameter("expected YYYY-MM-DD", param_hint="--review-date") from None


def _changed(registry: Registry, what: str) -> None:
    typer.echo(f"registry version {registry.registry_version}: {what}")


@registry_app.command()
def validate(registry: RegistryPath = DEFAULT_REGISTRY_PATH) -> None:
    """Check the registry file; print its version and agencies."""
    try:
        loaded = load_registry(registry)
    except RegistryError as err:
        raise fail(str(err)) from None
    typer.echo(
        f"{registry}: valid; registry version {loaded.registry_version}, protocol "
        f"{loaded.protocol_version}, {len(loaded.agencies)} agencies, region {loaded.region}, "
        + (
            "default timescales"
            if loaded.timescales == DEFAULT_TIMESCALES
            else "its own timescales"
        )
    )


@registry_app.command()
def show(registry: RegistryPath = DEFAULT_REGISTRY_PATH) -> None:
    """Show the agencies, whether each is current, and the recent changes."""
    try:
        loaded = load_registry(registry)
        changes = read_data(registry).get("changes", [])
    except RegistryError as err:
        raise fail(str(err)) from None
    today = dt.datetime.now(dt.UTC).date()
    table = Table(title=f"Partnership registry v{loaded.registry_version} "
                        f"(protocol {loaded.protocol_version})", title_justify="left")  # fmt: skip
    for column in ("agency", "name", "kind", "signed", "review date", "commissioned by", "status"):
        table.add_column(column)
    for agency in sorted(loaded.agencies.values(), key=lambda a: a.id):
        bound = loaded.agencies.get(agency.commissioned_by or "", agency)
        status = "current"
        if bound.signed_protocol_version != loaded.protocol_version:
            status = "outdated protocol"
        elif bound.review_date < today:
            status = "review overdue"
        elif agency.commissioned_until is not None and agency.commissioned_until < today:
            status = "commissioning lapsed"
        table.add_row(
            agency.id,
            agency.name,
            agency.kind,
            agency.signed_protocol_version,
            agency.review_date.isoformat(),
            agency.commissioned_by or "",
            status,
        )
    console = Console(width=160)
    console.print(table)
    for entry in changes[-5:]:
        console.print(f"  v{entry.get('registry_version')} {entry.get('at')} "
                      f"{entry.get('by')}: {entry.get('change')}")  # fmt: skip


@registry_app.command("add-agency")
def add_agency_command(
    agency_id: Annotated[str, typer.Option("--id", help="The agency's code (a-z, 0-9, -).")],
    name: Annotated[str, typer.Option(help="The agency's name.")],
    review_date: ReviewDate,
    by: By,
    kind: Annotated[str, typer.Option(help=f"One of {', '.join(KINDS)}.")] = "statutory",
    signed_version: SignedVersion = None,
    commissioned_by: Annotated[
        str | None, typer.Option(help="For a provider: the partner agency that commissions it.")
    ] = None,
    expect_version: ExpectVersion = None,
    registry: RegistryPath = DEFAULT_REGISTRY_PATH,
) -> None:
    """Add a partner agency that has signed the protocol (or a commissioned provider)."""
    date = _date(review_date)
    try:
        changed = add_agency(registry, by, agency_id=agency_id, name=name, kind=kind,
                             review_date=date, signed_protocol_version=signed_version,
                             commissioned_by=commissioned_by,
                             expect_version=expect_version)  # fmt: skip
    except RegistryError as err:
        raise fail(str(err)) from None
    _changed(changed, f"added {agency_id}")


@registry_app.command()
def renew(
    agency: Annotated[str, typer.Option(help="The agency whose signature was renewed.")],
    review_date: ReviewDate,
    by: By,
    signed_version: SignedVersion = None,
    expect_version: ExpectVersion = None,
    registry: RegistryPath = DEFAULT_REGISTRY_PATH,
) -> None:
    """Record a renewed signature: the version signed and the next review date."""
    date = _date(review_date)
    try:
        changed = renew_signature(registry, by, agency_id=agency, review_date=date,
                                  signed_protocol_version=signed_version,
                                  expect_version=expect_version)  # fmt: skip
    except RegistryError as err:
        raise fail(str(err)) from None
    _changed(changed, f"renewed {agency} until {date.isoformat()}")


@registry_app.command("bind-provider")
def bind_provider_command(
    provider: Annotated[str, typer.Option(help="The contracted provider's agency id.")],
    commissioner: Annotated[str, typer.Option(help="The partner agency that commissions it.")],
    by: By,
    expect_version: ExpectVersion = None,
    registry: RegistryPath = DEFAULT_REGISTRY_PATH,
) -> None:
    """Bind a contracted provider to its commissioner (the protocol binds it through them)."""
    try:
        changed = bind_provider(registry, by, provider_id=provider, commissioner_id=commissioner,
                                expect_version=expect_version)  # fmt: skip
    except RegistryError as err:
        raise fail(str(err)) from None
    _changed(changed, f"bound {provider} to {commissioner}")
