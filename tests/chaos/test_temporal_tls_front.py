"""Every SafeShare process reaches Temporal over mutual TLS: a real TLS front (nginx,
``ssl_verify_client on``) before the dev server, each process with its own client
certificate, configured each way the one Temporal configuration allows (flags, a TOML profile,
``TEMPORAL_*`` variables). Cases run end to end through it; a process without a certificate
the front trusts is refused and says so in one line."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.chaos.checker import Checker
from tests.chaos.driver import Agencies, CaseDriver, DriverStats, play_all
from tests.chaos.scenarios import plan_cases
from tests.chaos.stack import ChaosStack
from tests.chaos.tls_front import nginx_or_skip

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(300)]


@pytest.fixture(scope="module")
def front_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ChaosStack]:
    nginx_or_skip()
    stack = ChaosStack(tmp_path_factory.mktemp("front"), temporal_front=True)
    try:
        stack.start()
        yield stack
    finally:
        stack.stop()


@pytest.mark.asyncio(loop_scope="module")
async def test_cases_run_end_to_end_with_every_process_on_its_own_certificate(
    front_stack: ChaosStack,
) -> None:
    stack = front_stack
    specs = plan_cases(20263, 6, stack.agencies, uuid.uuid4().hex[:6])
    tls = {agency: stack.agency_tls(agency) for agency in stack.agencies}
    async with Agencies.connect(stack.gateway_target, tls) as agencies:
        runs = await play_all(CaseDriver(agencies, DriverStats(), 90.0), specs, 6, 0.2)
    report = await Checker(stack, runs).check()
    assert report.ok, report.render()
    assert not any(run.gave_up for run in runs), report.render()

    assert stack.front is not None
    seen = {subject.split(",")[0] for subject in stack.front.identities()}
    every_process = {
        f"CN={name}" for name in stack.parts if name != "temporal" and "sandbox" not in name
    }
    assert every_process <= seen, f"never came through the front: {every_process - seen}"


@pytest.mark.parametrize("certificate", ["none", "another CA's"])
def test_a_process_without_a_certificate_the_front_trusts_is_refused(
    front_stack: ChaosStack, certificate: str
) -> None:
    stack = front_stack
    assert stack.front is not None
    env = {k: v for k, v in os.environ.items() if not k.startswith("TEMPORAL_")}
    env.update(
        SAFESHARE_KEYS_FILE=str(stack.keys_file),
        TEMPORAL_ADDRESS=stack.front.address,
        TEMPORAL_TLS_SERVER_CA_CERT_PATH=str(stack.front.ca_path),
    )
    if certificate != "none":
        # The partnership's own CA issued it: good for the Case API, not for Temporal.
        wrong = stack.pki.adapter(stack.agencies[0])
        env.update(
            TEMPORAL_TLS_CLIENT_CERT_PATH=str(wrong.cert),
            TEMPORAL_TLS_CLIENT_KEY_PATH=str(wrong.key),
        )
    _, gateway_key = stack.pki.gateway_signing_key()  # a hub refuses to start without it
    done = subprocess.run(
        [sys.executable, "-m", "safeshare", "hub", "--gateway-key", str(gateway_key)],
        env=env, capture_output=True, text=True, timeout=60,
        cwd=Path(__file__).resolve().parents[2],
    )  # fmt: skip
    assert done.returncode == 2, done.stderr
    lines = [line for line in done.stderr.splitlines() if line.startswith("safeshare: error:")]
    assert len(lines) == 1 and "cannot reach Temporal at " + stack.front.address in lines[0]
    assert "Traceback" not in done.stderr
