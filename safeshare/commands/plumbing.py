"""What every ``safeshare`` command does around its work: its logging, Temporal settings,
payload keys and access log, and one readable line with exit code 2 for a known failure (never
a traceback)."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Coroutine
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

from activities.agency import AGENCY_ID_PATTERN
from activities.gateway_key import GatewayKeyError
from partnership.errors import RegistryError
from safeshare.codec import KeyRing, KeyRingError, keys_from_env, load_key_file
from safeshare.log import configure_logging
from safeshare.temporal import TemporalConfigError, TemporalSettings, TemporalUnavailable
from safeshare.temporal_options import TemporalFlags
from safeshare.tls import TlsError

if TYPE_CHECKING:
    from safeshare.access.log import AccessLog

PLAINTEXT_ENV = "SAFESHARE_PLAINTEXT_PAYLOADS"
"""Set to 1 to run without payload encryption: only to show what would leak (the leak test)."""


class UsageError(Exception):
    """Options that do not fit together."""


def temporal_settings(
    flags: TemporalFlags, keys_file: Path | None = None, metrics_port: int | None = None
) -> TemporalSettings:
    """The Temporal connection: the Temporal profile, these flags on top (safeshare.temporal)."""
    keys = payload_keys(keys_file, required=os.environ.get(PLAINTEXT_ENV) != "1")
    metrics = None if metrics_port is None else f"127.0.0.1:{metrics_port}"
    try:
        return flags.settings(keys=keys, metrics_address=metrics)
    except TemporalConfigError as err:
        typer.echo(f"safeshare: error: {err}", err=True)
        raise typer.Exit(2) from None


def payload_keys(keys_file: Path | None, required: bool = True) -> KeyRing | None:
    """The payload key ring from --keys-file, SAFESHARE_KEYS_FILE or SAFESHARE_KEYS.

    Safe by default: with no keys the command refuses to start, unless encryption was turned
    off explicitly (SAFESHARE_PLAINTEXT_PAYLOADS=1).
    """
    try:
        keys = load_key_file(keys_file) if keys_file else keys_from_env()
    except KeyRingError as err:
        typer.echo(f"safeshare: error: {err}", err=True)
        raise typer.Exit(2) from None
    if keys is None and required:
        typer.echo(
            "safeshare: error: no payload encryption keys: pass --keys-file, or set "
            f"SAFESHARE_KEYS_FILE or SAFESHARE_KEYS ({PLAINTEXT_ENV}=1: payloads in the clear)",
            err=True,
        )
        raise typer.Exit(2)
    return keys


def run(coroutine: Coroutine[Any, Any, None]) -> None:
    """Run a command's coroutine; known failures become one line on stderr and exit code 2."""
    try:
        asyncio.run(coroutine)
    except (
        TlsError, RegistryError, TemporalUnavailable, UsageError, OSError, GatewayKeyError,
        KeyRingError,
    ) as err:  # fmt: skip
        typer.echo(f"safeshare: error: {err}", err=True)
        raise typer.Exit(2) from None
    except KeyboardInterrupt:
        raise typer.Exit(130) from None


def require_agency_id(agency_id: str) -> None:
    """Refuse an agency id that cannot name a task queue or a certificate, in one line."""
    if not AGENCY_ID_PATTERN.fullmatch(agency_id):
        typer.echo(
            f"safeshare: error: --agency {agency_id!r} is not an agency id "
            "(lower-case letters, digits and hyphens, 2-40 characters)",
            err=True,
        )
        raise typer.Exit(2)


def start_logging(component: str, log_format: str | None, log_level: str) -> None:
    """Configure logging for ``component`` (``--log-format``: json, console or unset)."""
    json = None if log_format is None else log_format == "json"
    configure_logging(level=log_level, json=json, component=component)


def open_access_log(path: Path, key: Path) -> AccessLog:
    """The access log for a command, or one readable line and exit 2."""
    from safeshare.access.log import AccessLog
    from safeshare.audit.signing import SigningError

    try:
        return AccessLog.open(path, key)
    except (OSError, SigningError) as err:
        typer.echo(f"safeshare: error: cannot open the access log: {err}", err=True)
        raise typer.Exit(2) from None
