"""Where the dev stack tells its user what it is doing: stderr, through rich."""

from __future__ import annotations

import sys

from rich.console import Console

# Wide enough for the demo table when stderr is a log file rather than a terminal.
console = Console(stderr=True, highlight=False, width=None if sys.stderr.isatty() else 140)
