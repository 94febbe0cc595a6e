"""Options every ``safeshare archive`` command shares, and how a known failure is reported:
one readable line on stderr and exit code 2."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Annotated, TypeVar

import typer

T = TypeVar("T")
# A path relative to the folder the command runs in (sqlite:/// would make it absolute).
DEFAULT_ARCHIVE_URL = ".safeshare/archive.db"

ArchiveUrl = Annotated[
    str,
    typer.Option(
        "--archive",
        envvar="SAFESHARE_ARCHIVE_URL",
        help="The archive: sqlite:///PATH or postgresql://USER@HOST:PORT/DB.",
    ),
]
SigningKey = Annotated[
    Path,
    typer.Option(
        envvar="SAFESHARE_ARCHIVE_SIGNING_KEY",
        help="Ed25519 private key that signs checkpoints (PEM, 0600; made if missing).",
    ),
]
PublicKey = Annotated[
    Path | None,
    typer.Option(
        envvar="SAFESHARE_ARCHIVE_PUBLIC_KEY",
        help="The archive's public key (PEM), or give --vkey.",
    ),
]
Vkey = Annotated[
    str | None,
    typer.Option(envvar="SAFESHARE_ARCHIVE_VKEY", help="The archive's verifier key (name+id+key)."),
]


def fail(message: object) -> typer.Exit:
    """Print ``message`` as one error line; the caller raises what this returns."""
    typer.echo(f"safeshare: error: {message}", err=True)
    return typer.Exit(2)


def guard(action: Callable[[], T]) -> T:
    """Run an action; known failures become one line on stderr and exit code 2."""
    from partnership.errors import RegistryError
    from safeshare.archive.checkpoint import CheckpointError
    from safeshare.archive.errors import ArchiveError
    from safeshare.audit.signing import SigningError
    from safeshare.temporal import TemporalConfigError, TemporalUnavailable

    try:
        return action()
    except (
        ArchiveError, CheckpointError, SigningError, TemporalUnavailable, TemporalConfigError,
        RegistryError, OSError, ValueError,
    ) as err:  # fmt: skip
        raise fail(err) from None
    except KeyboardInterrupt:
        raise typer.Exit(130) from None
