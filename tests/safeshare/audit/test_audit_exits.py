"""An audit command whose case archive is down or holds a record that no longer reads ends
with one line and exit code 2, not a traceback."""

from __future__ import annotations

import pytest
import typer

from safeshare.archive.errors import ArchiveError, ArchiveUnavailable, UnreadableRecord
from safeshare.audit.exits import run


@pytest.mark.parametrize(
    "error",
    [
        ArchiveUnavailable("the archive database cannot be reached"),
        UnreadableRecord("the archived record of case abcdefghijklmnopqrst does not read"),
    ],
)
def test_an_archive_failure_is_one_line_and_exit_2(
    error: ArchiveError, capsys: pytest.CaptureFixture[str]
) -> None:
    async def command() -> None:
        raise error

    with pytest.raises(typer.Exit) as done:
        run(command())
    assert done.value.exit_code == 2
    assert capsys.readouterr().err == f"safeshare: error: {error}\n"
