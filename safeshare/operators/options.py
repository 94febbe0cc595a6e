"""Options every operator command shares: where Temporal is and the payload keys.

Operators' commands read cases, so they take the same Temporal configuration as the workers
(``safeshare.temporal``: the Temporal profile, TLS or API key included, then these flags).
Known failures print one readable line and exit 2, as every ``safeshare`` command does.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Coroutine
from pathlib import Path
from typing import Any, TypeVar

import typer

from safeshare.codec import KeyRingError, keys_from_env, load_key_file
from safeshare.temporal import TemporalConfigError, TemporalSettings
from safeshare.temporal_options import TemporalFlags

T = TypeVar("T")


class OperatorError(Exception):
    """A failure an operator command reports in one line."""


def fail(message: str) -> typer.Exit:
    """Print ``message`` as one error line; the caller raises what this returns."""
    typer.echo(f"safeshare: error: {message}", err=True)
    return typer.Exit(2)


PLAINTEXT_ENV = "SAFESHARE_PLAINTEXT_PAYLOADS"


def temporal_settings(
    flags: TemporalFlags, keys_file: Path | None, required: bool = False
) -> TemporalSettings:
    """Settings with the payload keys if the operator has them (None: search attributes only).

    With ``required``, no keys is an error unless payloads are in the clear (``PLAINTEXT_ENV``).
    """
    try:
        keys = load_key_file(keys_file) if keys_file else keys_from_env()
    except KeyRingError as err:
        raise fail(str(err)) from None
    if keys is None and required and os.environ.get(PLAINTEXT_ENV) != "1":
        raise fail(
            "this needs the payload keys (authorised operators): pass --keys-file or set "
            "SAFESHARE_KEYS_FILE"
        )
    try:
        return flags.settings(keys=keys)
    except TemporalConfigError as err:
        raise fail(str(err)) from None


def run(coroutine: Coroutine[Any, Any, T]) -> T:
    """Run a command's coroutine; known failures become one line on stderr and exit code 2."""
    from temporalio.service import RPCError

    from partnership.errors import RegistryError
    from safeshare.archive.errors import ArchiveError
    from safeshare.temporal import TemporalUnavailable
    from safeshare.tls import TlsError

    try:
        return asyncio.run(coroutine)
    except (
        OperatorError, RegistryError, TemporalUnavailable, TlsError, RPCError, OSError,
        ArchiveError,
    ) as err:  # fmt: skip
        raise fail(str(err)) from None
    except KeyboardInterrupt:
        raise typer.Exit(130) from None
