"""``safeshare archive``: run the archiver, and the auditors' and operators' archive commands.

- ``run``: the archiver (a loop; the dev stack starts one), in ``archiver_cli``;
- ``status``, ``checkpoint``, ``list``, ``verify``, ``prove``, ``check-proof``, ``purge``:
  reading, verifying and purging the archive, in ``records_cli``.

Every command is registered here when this module is imported; ``safeshare.cli`` adds the
sub-app as ``safeshare archive``. Known failures print one readable line and exit 2.
"""

from __future__ import annotations

import typer

from safeshare.archive.archiver_cli import run_command
from safeshare.archive.records_cli import (
    check_proof,
    checkpoint,
    list_command,
    prove,
    purge,
    status,
    verify,
)

archive_app = typer.Typer(
    help="The case archive: closed cases kept beyond Temporal's retention, with a signed log.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)

archive_app.command("run")(run_command)
archive_app.command()(status)
archive_app.command()(checkpoint)
archive_app.command("list")(list_command)
archive_app.command()(verify)
archive_app.command()(prove)
archive_app.command("check-proof")(check_proof)
archive_app.command()(purge)
