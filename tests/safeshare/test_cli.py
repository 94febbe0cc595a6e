"""The CLI answers bad input with one readable line and exit code 2, never a traceback."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from safeshare.cli import app
from safeshare.pki import DevPki

TLS = ["--tls-ca", "/nonexistent/ca", "--tls-cert", "/nonexistent/c", "--tls-key", "/nonexistent/k"]


@pytest.mark.parametrize(
    "argv",
    [
        ["sandbox-agency", "--agency", "riverside-gp", *TLS],
        ["registry", "show", "--registry", "/nonexistent/registry.toml"],
    ],
)
def test_bad_input_is_one_line_and_exit_2(argv: list[str]) -> None:
    result = CliRunner().invoke(app, argv)
    assert result.exit_code == 2
    assert_one_line_error(result.output)


def assert_one_line_error(output: str) -> str:
    lines = [line for line in output.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("safeshare: error: "), output
    assert "Traceback" not in output
    return lines[0]


@pytest.mark.parametrize("command", ["adapter", "sandbox-agency"])
def test_an_agency_id_that_cannot_name_a_queue_is_refused_before_anything_starts(
    command: str, pki: DevPki
) -> None:
    tls = pki.adapter("riverside-gp")
    argv = [command, "--agency", "Not An Id", "--tls-ca", str(tls.ca),
            "--tls-cert", str(tls.cert), "--tls-key", str(tls.key)]  # fmt: skip
    if command == "adapter":
        argv += ["--target", "127.0.0.1:1", "--temporal-address", "127.0.0.1:1"]
    result = CliRunner().invoke(app, argv)
    assert result.exit_code == 2
    assert "is not an agency id" in assert_one_line_error(result.output)
