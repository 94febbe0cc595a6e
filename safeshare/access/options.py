"""Options every command that records or reads access events shares.

Defaults are the dev stack's files under ``.safeshare/``; a partnership points every process
(gateway, codec server, operators' CLI) at one log and one signing key.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

DEFAULT_ACCESS_LOG = Path(".safeshare") / "access.db"
DEFAULT_ACCESS_LOG_KEY = Path(".safeshare") / "dev" / "access-signing.key"

AccessLogPath = Annotated[
    Path,
    typer.Option(
        envvar="SAFESHARE_ACCESS_LOG",
        help="The access log (SQLite): every read of a case and every refused attempt.",
    ),
]
AccessLogKey = Annotated[
    Path,
    typer.Option(
        envvar="SAFESHARE_ACCESS_LOG_KEY",
        help="Ed25519 key (PEM, 0600) that signs the access log's checkpoints.",
    ),
]
Operator = Annotated[
    str | None,
    typer.Option(
        envvar="SAFESHARE_OPERATOR",
        help="Who you are (your partnership user id), recorded with every case you read; "
        "default: your login name.",
    ),
]
PurposeOption = Annotated[
    str,
    typer.Option(
        envvar="SAFESHARE_PURPOSE",
        help="Why you read (recorded): case_work, audit, operator_support, supervision, "
        "investigation.",
    ),
]
