"""A real Prometheus, started on a free port with the shipped rules, scrapes a real hub
process (``safeshare hub --metrics-port``) and sees ``SafeShareRedDeadlineMissed`` go firing for
a real case: a RED share-first whose justification is never made climbs the escalation ladder to
the partnership operator.

The RED override deadline is an hour and the operator rung an hour after that, so the case
runs on Temporal's time-skipping test server (two hours pass in one call); the hub, its
NotifyOperator activity, the metrics endpoint and Prometheus are the real ones. The agencies'
adapters are the workflow tests' fakes, in this process.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import subprocess
import urllib.request
from collections.abc import Iterator
from contextlib import AsyncExitStack, contextmanager
from pathlib import Path
from typing import Any

import pytest
import yaml
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from activities.agency import agency_task_queue
from protos.sharing.v1 import case_pb2 as pb
from tests.factories import given_consent, sharing_request
from tests.fake_agencies import FakeAgencies
from tests.ops.tooling import RULES, tool_or_skip
from tests.safeshare.test_operators_metrics import _free_port, _scrape, _until_scraped, hub_process
from tests.workflows.harness import CSC, SCHOOL, actor
from tests.workflows.test_sharing_case import approval, proposal
from workflows.holder_exchange import HolderExchange
from workflows.ids import HUB_TASK_QUEUE, case_ref_for, case_workflow_id
from workflows.ids import holder_exchange_workflow_id as exchange_id
from workflows.seal import START
from workflows.sharing_case import SharingCase

pytestmark = pytest.mark.timeout(120)


@contextmanager
def prometheus(tmp_path: Path, targets: dict[str, str]) -> Iterator[int]:
    """Prometheus on a free loopback port with the shipped rules, scraping ``targets``
    (job -> host:port) every second and evaluating rules every second."""
    binary = tool_or_skip("prometheus", "prometheus")
    port = _free_port()
    config = {
        "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
        "rule_files": [str(RULES)],
        "scrape_configs": [
            {"job_name": job, "static_configs": [{"targets": [target]}]}
            for job, target in targets.items()
        ],
    }
    (tmp_path / "prometheus.yml").write_text(yaml.safe_dump(config))
    log = (tmp_path / "prometheus.log").open("wb")
    process = subprocess.Popen(
        [str(binary), f"--config.file={tmp_path / 'prometheus.yml'}",
         f"--storage.tsdb.path={tmp_path / 'tsdb'}", f"--web.listen-address=127.0.0.1:{port}"],
        stdout=log, stderr=subprocess.STDOUT,
    )  # fmt: skip
    try:
        yield port
    finally:
        process.terminate()
        process.wait(timeout=20)
        log.close()


def _alerts(port: int) -> list[dict[str, Any]]:
    url = f"http://127.0.0.1:{port}/api/v1/alerts"
    with urllib.request.urlopen(url, timeout=5) as response:
        return list(json.load(response)["data"]["alerts"])


async def _until_firing(port: int, name: str, log: Path) -> dict[str, Any]:
    alerts: list[dict[str, Any]] = []
    for _ in range(120):
        try:
            alerts = await asyncio.to_thread(_alerts, port)
        except OSError:
            alerts = []
        for alert in alerts:
            if alert["labels"]["alertname"] == name and alert["state"] == "firing":
                return alert
        await asyncio.sleep(0.5)
    pytest.fail(f"{name} never fired; alerts {alerts}; prometheus log:\n{_tail(log)}")


async def test_prometheus_fires_the_red_deadline_alert_for_a_real_case(
    time_skipping: WorkflowEnvironment, tmp_path: Path
) -> None:
    client, metrics_port = time_skipping.client, _free_port()
    agencies = FakeAgencies(consent={SCHOOL: given_consent(status=pb.CONSENT_STATUS_REFUSED)})
    request = sharing_request(
        requesting_agency_id=CSC, holding_agency_id=SCHOOL, urgency=pb.URGENCY_RED
    )
    ref = case_ref_for(CSC, request.request_id)
    hub_log = tmp_path / "hub.log"
    async with AsyncExitStack() as stack:
        # The hub checks the gateway's seals on starts and decisions: the test seals as it.
        signer = await stack.enter_async_context(hub_process(time_skipping, metrics_port, hub_log))
        for agency in (CSC, SCHOOL):
            await stack.enter_async_context(
                Worker(client, task_queue=agency_task_queue(agency),
                       activities=agencies.activities_for(agency))
            )  # fmt: skip
        prometheus_port = stack.enter_context(
            prometheus(tmp_path, {"safeshare-hub": f"127.0.0.1:{metrics_port}"})
        )
        await client.start_workflow(
            SharingCase.run, signer.sealed(request, case_workflow_id(ref), START),
            id=case_workflow_id(ref), task_queue=HUB_TASK_QUEUE,
        )  # fmt: skip
        exchange = client.get_workflow_handle_for(HolderExchange.run, exchange_id(ref, SCHOOL))
        await _until_state(exchange, pb.CASE_STATE_AWAITING_CONSENT_DECISION, hub_log)
        share_first = pb.ShareFirstDecision(
            actor=actor(SCHOOL, "teacher-1", "teacher"), harm_statement="immediate risk",
            minimum_data_set=[pb.INFORMATION_CATEGORY_EDUCATION_ATTENDANCE],
        )  # fmt: skip
        await exchange.execute_update(
            HolderExchange.share_first, signer.sealed(share_first, exchange.id, "share-1"),
            id="share-1",
        )  # fmt: skip
        await _until_state(exchange, pb.CASE_STATE_AWAITING_ACKNOWLEDGEMENT, hub_log)
        # Nobody justifies the share: reminder at 1 h, lead at 1.5 h, operator at 2 h.
        await time_skipping.sleep(dt.timedelta(hours=2, minutes=5))
        await _until_scraped(metrics_port, "safeshare_operator_alerts_open{")

        alert = await _until_firing(
            prometheus_port, "SafeShareRedDeadlineMissed", tmp_path / "prometheus.log"
        )
        # The justification is made and approved: the hub resolves the alert (gauge to 0).
        await exchange.execute_update(
            HolderExchange.propose_override, signer.sealed(proposal(), exchange.id, "propose-1"),
            id="propose-1",
        )  # fmt: skip
        await exchange.execute_update(
            HolderExchange.decide_override, signer.sealed(approval(), exchange.id, "decide-1"),
            id="decide-1",
        )  # fmt: skip
        resolved = await _until_resolved(metrics_port, ref)

    assert alert["labels"] == {
        "alertname": "SafeShareRedDeadlineMissed",
        "severity": "page",
        "case_ref": ref,
        "step": "override_decision",
        "rung": "partnership_operator",
        "agency_id": SCHOOL,
    }
    assert ref in alert["annotations"]["summary"]
    # The log line names the case, the step and the rung too (none of them redacted).
    lines = [json.loads(x) for x in hub_log.read_text().splitlines() if '"operator_alert"' in x]
    assert [(x["case_ref"], x["step"], x["rung"], x["reason"], x["urgency"]) for x in lines] == [
        (ref, "override_decision", "partnership_operator", "deadline_missed", "RED")
    ]
    assert lines[0]["level"] == "warning"
    assert 'reason="deadline_missed"' in resolved and 'urgency="RED"' in resolved


async def _until_resolved(port: int, ref: str) -> str:
    """The case's alert series once it reads 0 (the hub re-checks every 15 s)."""
    for _ in range(80):
        text = await asyncio.to_thread(_scrape, port)
        for line in text.splitlines():
            ours = (
                line.startswith("safeshare_operator_alerts_open{") and f'case_ref="{ref}"' in line
            )
            if ours and line.endswith(" 0"):
                return line
        await asyncio.sleep(0.5)
    pytest.fail(f"the alert of case {ref} was never resolved:\n{text[-2000:]}")


async def _until_state(exchange: Any, state: pb.CaseState.ValueType, log: Path) -> None:
    record = None
    for _ in range(200):
        try:
            record = await exchange.query(HolderExchange.holder_record)
        except Exception:  # not started yet, or the hub has not answered yet
            record = None
        if record is not None and record.state == state:
            return
        await asyncio.sleep(0.1)
    pytest.fail(f"the exchange never reached {pb.CaseState.Name(state)}:\n{_tail(log)}")


def _tail(path: Path) -> str:
    return path.read_text()[-3000:] if path.exists() else ""
