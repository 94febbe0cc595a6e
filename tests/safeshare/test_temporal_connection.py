"""Operators' and auditors' commands reach the Temporal server their configuration names, on a
real dev server: the profile the dev stack writes in its folder, a named profile from a TOML
file, and mutual TLS through a real TLS front (nginx) by flags or by profile. With nothing
configured, a command says which server it used."""

from __future__ import annotations

import asyncio
import os
import secrets
import sys
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import pytest_asyncio
from temporalio.testing import WorkflowEnvironment

from tests.chaos.tls_front import NginxFront, nginx_or_skip
from tests.eventually import eventually

pytestmark = [
    pytest.mark.stack,
    pytest.mark.asyncio(loop_scope="session"),
    pytest.mark.timeout(120),
]

ROOT = Path(__file__).resolve().parents[2]
NOT_CONFIGURED = "no --temporal-address, TEMPORAL_ADDRESS, Temporal profile or dev stack profile"


@dataclass(frozen=True)
class Ran:
    code: int
    out: str
    err: str


async def safeshare(cwd: Path, *argv: str, env: dict[str, str] | None = None) -> Ran:
    """Run a ``safeshare`` command as an operator would, in ``cwd``, with no Temporal
    configuration of this machine's (no TEMPORAL_* or SAFESHARE_TEMPORAL_* variables, a fresh
    HOME) unless ``env`` gives some."""
    clean = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("TEMPORAL_", "SAFESHARE_TEMPORAL_"))
    }
    clean.update(HOME=str(cwd / "home"), PYTHONPATH=str(ROOT), COLUMNS="200", **(env or {}))
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "safeshare", *argv, cwd=cwd, env=clean,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out, err = await asyncio.wait_for(process.communicate(), 60)
    assert process.returncode is not None
    return Ran(process.returncode, out.decode(), err.decode())


@pytest_asyncio.fixture(loop_scope="session")
async def open_case(dev_server: WorkflowEnvironment) -> AsyncIterator[str]:
    """A case workflow that stays open (no worker polls its queue): what ``cases list`` finds."""
    ref = "".join(secrets.choice("abcdefghijklmnopqrstuvwxyz234567") for _ in range(20))
    handle = await dev_server.client.start_workflow(
        "SharingCase", id=f"case-{ref}", task_queue=f"nobody-polls-{ref}"
    )
    try:
        yield ref
    finally:
        await handle.terminate()


def address_of(env: WorkflowEnvironment) -> str:
    return env.client.service_client.config.target_host


async def listed(cwd: Path, ref: str, *argv: str, env: dict[str, str] | None = None) -> Ran:
    """``cases list`` until it lists ``ref`` (visibility lags a start by a moment)."""
    return await eventually(
        lambda: safeshare(cwd, "cases", "list", *argv, env=env),
        lambda ran: ran.code == 0 and f"case-{ref}" in ran.out,
        what=f"case-{ref} listed",
        within=30,
        every=0.5,
    )


async def test_cases_list_reads_the_dev_stack_profile_in_its_folder(
    dev_server: WorkflowEnvironment, open_case: str, tmp_path: Path
) -> None:
    profile = tmp_path / ".safeshare" / "dev" / "temporal.toml"
    profile.parent.mkdir(parents=True)
    profile.write_text(f'[profile.default]\naddress = "{address_of(dev_server)}"\n')

    ran = await listed(tmp_path, open_case)

    assert "using Temporal at" not in ran.err, ran.err


async def test_with_nothing_configured_a_command_says_which_server_it_used(
    tmp_path: Path,
) -> None:
    ran = await safeshare(tmp_path, "cases", "list")

    # Whether or not something answers at the default address on this machine, the command
    # names it and why it chose it.
    assert "127.0.0.1:7233" in ran.err and NOT_CONFIGURED in ran.err, ran


@pytest.fixture
def front(dev_server: WorkflowEnvironment, tmp_path: Path) -> Iterator[NginxFront]:
    nginx_or_skip()
    started = NginxFront(tmp_path / "front", address_of(dev_server))
    started.start()
    yield started
    started.stop()


async def test_operators_reach_temporal_over_mutual_tls_by_flags_or_by_profile(
    front: NginxFront, open_case: str, tmp_path: Path
) -> None:
    operator = front.client("operator")

    await listed(
        tmp_path, open_case, "--temporal-address", front.address,
        "--temporal-ca", str(operator.ca), "--temporal-cert", str(operator.cert),
        "--temporal-key", str(operator.key),
    )  # fmt: skip
    assert any(subject.startswith("CN=operator") for subject in front.identities())

    auditor = front.client("auditor")
    profiles = tmp_path / "temporal.toml"
    profiles.write_text(
        f'[profile.front]\naddress = "{front.address}"\n'
        f'[profile.front.tls]\nserver_ca_cert_path = "{auditor.ca}"\n'
        f'client_cert_path = "{auditor.cert}"\nclient_key_path = "{auditor.key}"\n'
    )
    await listed(
        tmp_path, open_case, "--temporal-profile", "front",
        env={"TEMPORAL_CONFIG_FILE": str(profiles)},
    )  # fmt: skip
    assert any(subject.startswith("CN=auditor") for subject in front.identities())

    # No client certificate: the front refuses, and the command says so in one line.
    ran = await safeshare(
        tmp_path, "cases", "list", "--temporal-address", front.address,
        "--temporal-ca", str(operator.ca),
    )  # fmt: skip
    assert ran.code == 2, ran
    lines = [line for line in ran.err.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("safeshare: error: cannot reach Temporal at")
    assert front.address in lines[0] and "Traceback" not in ran.err
