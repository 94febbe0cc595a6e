"""The ``safeshare`` command line: every part of the system, and the dev stack that runs them all.

This is the entry point (``main``) and the ``app`` every command is registered on; each
command lives in ``safeshare.commands`` (one file each), parses its options into settings and
hands them to ``safeshare.services`` or ``safeshare.devstack``. Known failures print one
readable line and exit 2; they never print a traceback.
"""

from __future__ import annotations

import atexit
import contextlib
import logging
import os
import sys

import typer

from safeshare.archive.cli import archive_app
from safeshare.audit.cli import audit_app
from safeshare.commands.adapter import adapter
from safeshare.commands.codec_server import codec_server
from safeshare.commands.dev import dev
from safeshare.commands.gateway import gateway
from safeshare.commands.hub import hub
from safeshare.commands.sandbox import sandbox_agency, sandbox_faults
from safeshare.files import private_umask
from safeshare.operators.commands import register as register_operator_commands

app = typer.Typer(
    name="safeshare",
    help="SafeShare: multi-agency information sharing for safeguarding children.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)

# In this order in ``safeshare --help``.
app.command()(hub)
app.command()(gateway)
app.command()(adapter)
app.command("sandbox-agency")(sandbox_agency)
app.command()(dev)
app.command("sandbox-faults")(sandbox_faults)
app.command("codec-server")(codec_server)
register_operator_commands(app)
app.add_typer(audit_app, name="audit")
app.add_typer(archive_app, name="archive")


@app.callback()
def _every_command() -> None:
    """SafeShare: multi-agency safeguarding information sharing."""
    # Everything a command writes may hold case data: the owner's alone (safeshare.files).
    private_umask()


def main() -> None:
    """Entry point of the ``safeshare`` command."""
    private_umask()
    try:
        app(prog_name="safeshare")
        code = 0
    except SystemExit as done:
        code = _exit_code(done.code)
    _exit_after_cleanup(code)


def _exit_code(code: object) -> int:
    if code is None:
        return 0
    if isinstance(code, int):
        return code
    sys.stderr.write(f"{code}\n")
    return 1


def _exit_after_cleanup(code: int) -> None:
    """Exit with ``code`` once every exit handler has run, skipping interpreter finalization.

    👉 gRPC's and Temporal's native threads can still be running when the interpreter
    finalizes, and one of them releasing the GIL then aborts the process ("PyGILState_Release:
    thread state must be current", exit 134, seen about once in six runs of a short command).
    Exit handlers (span exporters, log handlers) run first, while everything is alive.
    """
    atexit._run_exitfuncs()
    logging.shutdown()
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):
            stream.flush()
    os._exit(code)


if __name__ == "__main__":
    main()
