"""Traces, metrics and Prometheus on the real dev stack, started once for this module with
``--otlp-endpoint`` (a receiver in the test), ``--metrics-port`` and, when Debian's prometheus
is installed, ``--prometheus``. (The leak test scans exported spans for its canaries too.) One demo case (consent covers:
delivered and acknowledged) must be one trace from ``SubmitRequest`` at the gateway through the
hub's workflows and activities to both adapters (holder and recipient) and their calls to the
agencies' systems; the processes' log lines of the case carry that trace id; and no personal
data is in any exported span.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import socket
import urllib.request
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio

from tests.ops.otlp_receiver import ReceivedSpan, Receiver, otlp_receiver
from tests.ops.promql import exported_names
from tests.ops.test_dashboard import DASHBOARD, dashboard_expressions, rule_expressions, unexported
from tests.safeshare.test_devstack import Ports, dev_stack, free_metrics_base, free_ports
from tests.safeshare.test_leak import DEMO_STRINGS

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(300), pytest.mark.asyncio(loop_scope="session")]

REQUESTER, HOLDER = "northshire-csc", "oakfield-primary"  # demo-1


@dataclass
class Run:
    data_dir: Path
    ports: Ports
    demo_refs: dict[str, str]
    receiver: Receiver
    metrics_port: int
    """The hub's; gateway +1, archiver +2, adapters +10.., sandbox agencies +30.."""
    prometheus_port: int | None


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def traced(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Run]:
    data_dir, ports, metrics = tmp_path_factory.mktemp("traced") / "data", free_ports(), 0
    metrics = free_metrics_base()
    prometheus = _free_port() if shutil.which("prometheus") else None
    async with otlp_receiver() as receiver:
        extra = ["--otlp-endpoint", receiver.endpoint, "--metrics-port", str(metrics)]
        if prometheus:
            extra += ["--prometheus", "--prometheus-port", str(prometheus)]
        async with dev_stack(data_dir, ports, *extra) as stack:
            yield Run(data_dir, ports, stack.demo_refs, receiver, metrics, prometheus)


async def _case_trace(traced: Run, ref: str, recipient: str = REQUESTER) -> list[ReceivedSpan]:
    """Every span of the trace the case's workflow ran in, once the recipient's delivery span
    has been exported (batches arrive within a second or so)."""
    workflow_id = f"case-{ref}"
    spans: list[ReceivedSpan] = []
    for _ in range(60):
        # The trace the case started in (later decisions through the gateway are traces of
        # their own, which name the workflow too).
        ids = {s.trace_id for s in traced.receiver.spans if s.name == "StartWorkflow:SharingCase"
               and s.attributes.get("temporalWorkflowID") == workflow_id}  # fmt: skip
        if len(ids) == 1:
            [trace_id] = ids
            spans = [s for s in traced.receiver.spans if s.trace_id == trace_id]
            if any(s.service == "safeshare-sandbox-agency" and s.instance == recipient
                   for s in spans):  # fmt: skip
                return spans
        await asyncio.sleep(0.5)
    names = sorted({(s.service, s.instance, s.name) for s in spans})
    pytest.fail(f"no complete trace for {workflow_id}; spans so far: {names}")


async def test_one_trace_runs_from_the_gateway_through_the_hub_to_both_adapters(
    traced: Run,
) -> None:
    ref = traced.demo_refs["demo-1"]
    spans = await _case_trace(traced, ref)
    services = {s.service for s in spans}
    assert {"safeshare-gateway", "safeshare-hub"} <= services, services
    # Each agency's adapter and sandbox system names its agency (service.instance.id).
    assert {
        (s.service, s.instance) for s in spans if "agency" in s.service or "adapter" in s.service
    } >= {
        ("safeshare-adapter", HOLDER),
        ("safeshare-adapter", REQUESTER),
        ("safeshare-sandbox-agency", HOLDER),
        ("safeshare-sandbox-agency", REQUESTER),
    }
    names = {(s.service, s.name) for s in spans}
    # The trace starts at the Case API call, and reaches each agency system's own RPCs.
    assert ("safeshare-gateway", "/sharing.v1.CaseService/SubmitRequest") in names
    assert ("safeshare-hub", "RunWorkflow:SharingCase") in names
    assert ("safeshare-hub", "RunWorkflow:HolderExchange") in names
    adapters = {(s.instance, s.name) for s in spans if s.service == "safeshare-adapter"}
    assert (HOLDER, "RunActivity:agency.LookupConsent") in adapters
    assert (REQUESTER, "RunActivity:agency.ReceiveDelivery") in adapters
    agencies = {(s.instance, s.name) for s in spans if s.service == "safeshare-sandbox-agency"}
    assert (HOLDER, "/agency.v1.AgencyService/LookupConsent") in agencies
    assert (REQUESTER, "/agency.v1.AgencyService/ReceiveDelivery") in agencies
    # Other cases are other traces.
    other = await _case_trace(traced, traced.demo_refs["demo-2"], "oakfield-primary")
    assert other[0].trace_id != spans[0].trace_id


async def test_every_log_line_of_the_case_carries_a_trace_id(traced: Run) -> None:
    ref = traced.demo_refs["demo-1"]
    [trace_id] = {s.trace_id for s in await _case_trace(traced, ref)}
    logs = traced.data_dir / "logs"
    lines = {}
    # (The hub writes no per-case lines on this path: its workflows log only deadlines missed
    # and its activities operator alerts.)
    for process in ("gateway", f"adapter-{HOLDER}", f"adapter-{REQUESTER}"):
        text = (logs / f"{process}.log").read_text()
        lines[process] = [json.loads(x) for x in text.splitlines() if x.startswith("{")]
        of_case = [x for x in lines[process] if x.get("case_ref") == ref]
        assert of_case, f"{process} logged nothing of case {ref}"
        # Each line names the trace it was written in (each later decision is a trace too).
        assert all(len(x.get("trace_id", "")) == 32 for x in of_case), (process, of_case)
    # The submission and the adapters' calls for it are lines of the case's first trace.
    [submitted] = [x for x in lines["gateway"]
                   if x.get("case_ref") == ref and x.get("rpc") == "SubmitRequest"]  # fmt: skip
    assert submitted["trace_id"] == trace_id
    for process in (f"adapter-{HOLDER}", f"adapter-{REQUESTER}"):
        assert trace_id in {x.get("trace_id") for x in lines[process] if x.get("case_ref") == ref}


async def test_no_personal_data_in_exported_spans(traced: Run) -> None:
    await _case_trace(traced, traced.demo_refs["demo-1"])
    exported = "\n".join(json.dumps(s.raw) for s in traced.receiver.spans)
    assert len(traced.receiver.spans) > 20
    found = {name for name, value in DEMO_STRINGS.items() if value in exported}
    assert found == set(), found
    for personal in ("Amara", "2016-03-14", "9990000018"):
        assert personal not in exported


def _scrape(port: int) -> str:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
        return str(response.read().decode())


async def _exported(run: Run) -> set[str]:
    """Every metric name the hub, gateway, archiver, an adapter and a sandbox agency export."""
    ports = [run.metrics_port + offset for offset in (0, 1, 2, 10, 30)]
    names: set[str] = set()
    for _ in range(60):
        texts = [await asyncio.to_thread(_scrape, port) for port in ports]
        names = set().union(*(exported_names(text) for text in texts))
        # The hub counts open exchanges and overdue disclosures every 15 s; the first count
        # may not have run yet.
        wanted = {"safeshare_exchanges_open", "safeshare_disclosure_acknowledgements_overdue",
                  "safeshare_archive_lag_seconds"}  # fmt: skip
        if wanted <= names:
            return names
        await asyncio.sleep(1)
    return names


async def test_every_dashboard_and_rule_expression_names_exported_metrics(traced: Run) -> None:
    exported = await _exported(traced)
    assert "safeshare_cases_opened" in exported and "temporal_num_pollers" in exported
    assert "safeshare_certificate_expiry_timestamp_seconds" in exported
    dashboard = json.loads(DASHBOARD.read_text())
    assert unexported(dashboard_expressions(dashboard), exported) == {}
    assert unexported(rule_expressions(), exported) == {}
    # The check can fail: a panel naming a metric nobody exports is reported.
    wrong = {"panels": [{"title": "typo", "targets": [
        {"refId": "A", "expr": "sum(rate(safeshare_gateway_request[5m]))"},
        {"refId": "B", "expr": "safeshare_deadline_missed"},
    ]}]}  # fmt: skip
    assert unexported(dashboard_expressions(wrong), exported) == {
        "typo / A": {"safeshare_gateway_request"},
        "typo / B": {"safeshare_deadline_missed"},
    }


def _api(port: int, path: str) -> Any:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as response:
        return json.load(response)["data"]


async def test_dev_prometheus_scrapes_every_process_with_the_shipped_rules(traced: Run) -> None:
    if traced.prometheus_port is None:
        if os.environ.get("CI"):
            pytest.fail("CI must install Debian prometheus (.ci/run does)")
        pytest.skip("no prometheus: apt-get install prometheus")
    port = traced.prometheus_port
    for _ in range(60):
        targets = (await asyncio.to_thread(_api, port, "/api/v1/targets"))["activeTargets"]
        health = {(t["labels"]["job"], t["health"]) for t in targets}
        if len(targets) >= 11 and {h for _, h in health} == {"up"}:
            break
        await asyncio.sleep(1)
    assert {job for job, _ in health} == {
        "safeshare-hub", "safeshare-gateway", "safeshare-archiver", "safeshare-adapter",
        "safeshare-agency",
    }, health  # fmt: skip
    assert {h for _, h in health} == {"up"}, targets
    groups = (await asyncio.to_thread(_api, port, "/api/v1/rules"))["groups"]
    assert {g["name"] for g in groups} == {
        "safeshare-cases", "safeshare-archive", "safeshare-processes", "safeshare-certificates",
        "safeshare-disclosures",
    }  # fmt: skip
