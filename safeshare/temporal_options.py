"""The command-line options that say how to reach Temporal, shared by every ``safeshare`` command.

Each is an override of the Temporal client configuration (``safeshare.temporal``): unset, the
profile (``TEMPORAL_CONFIG_FILE``/``TEMPORAL_PROFILE``, ``TEMPORAL_*`` variables) decides, and
with no profile either, the local dev server at 127.0.0.1:7233.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

_PROFILE = "default: the Temporal profile"

TemporalAddress = Annotated[
    str | None,
    typer.Option(
        envvar="SAFESHARE_TEMPORAL_ADDRESS",
        help=f"Temporal frontend host:port ({_PROFILE}, else 127.0.0.1:7233).",
        show_default=False,
    ),
]
Namespace = Annotated[
    str | None,
    typer.Option(
        envvar="SAFESHARE_TEMPORAL_NAMESPACE",
        help=f"Temporal namespace ({_PROFILE}, else default).",
        show_default=False,
    ),
]
TemporalCa = Annotated[
    Path | None,
    typer.Option(
        envvar="SAFESHARE_TEMPORAL_TLS_CA",
        help=f"CA for TLS to Temporal (PEM; {_PROFILE}'s).",
        show_default=False,
    ),
]
TemporalCert = Annotated[
    Path | None,
    typer.Option(
        envvar="SAFESHARE_TEMPORAL_TLS_CERT",
        help=f"Client certificate for Temporal ({_PROFILE}'s).",
        show_default=False,
    ),
]
TemporalKey = Annotated[
    Path | None,
    typer.Option(
        envvar="SAFESHARE_TEMPORAL_TLS_KEY",
        help=f"Client key for Temporal ({_PROFILE}'s).",
        show_default=False,
    ),
]
