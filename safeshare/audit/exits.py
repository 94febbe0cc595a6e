"""How a ``safeshare audit`` command ends when it cannot go on.

A known failure (a missing key, an unreachable server, a bad export) prints one readable line
on stderr and exits 2; evidence that does not verify is refused with its findings and exit 1.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from typing import Any, TypeVar

import typer
from rich.console import Console

from safeshare.codec import KeyRingError
from safeshare.tls import TlsError

T = TypeVar("T")


def fail(message: object) -> typer.Exit:
    """Print ``message`` as one error line; the exit (code 2) for the caller to raise."""
    typer.echo(f"safeshare: error: {message}", err=True)
    return typer.Exit(2)


def run(coroutine: Awaitable[T]) -> T:
    """Run a command's coroutine; known failures become one line on stderr and exit code 2."""
    from safeshare.access.log import AccessLogError
    from safeshare.access.record import RecordError
    from safeshare.archive.errors import ArchiveError
    from safeshare.audit.export import ExportError
    from safeshare.audit.replay import ReplayInputError
    from safeshare.audit.report import ReportError
    from safeshare.audit.signing import SigningError
    from safeshare.temporal import TemporalUnavailable

    async def main() -> T:
        return await coroutine

    try:
        return asyncio.run(main())
    except (
        ExportError, ReplayInputError, ReportError, SigningError, TemporalUnavailable,
        KeyRingError, TlsError, OSError, RecordError, AccessLogError, ArchiveError,
    ) as err:  # fmt: skip
        raise fail(err) from None
    except KeyboardInterrupt:
        raise typer.Exit(130) from None


def refuse(evidence: Any, what: str) -> typer.Exit:
    """Print the evidence's findings and why nothing is done; the exit (code 1) to raise."""
    console = Console(highlight=False, stderr=True)
    for finding in evidence.findings:
        console.print(f"[red]✗[/red] {finding}")
    console.print(
        f"[red]refusing to {what}[/red]: the evidence does not verify "
        "(--unverified goes on, and marks every page)"
    )
    return typer.Exit(1)
