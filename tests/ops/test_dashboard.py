"""The Grafana dashboard and the alert rules name only metrics that SafeShare's processes
export: every PromQL expression's metric names are checked against the metrics endpoints of a
running dev stack (hub, gateway, archiver, an adapter, a sandbox agency) after its demo cases
ran (``test_observability.py``, which has the stack); here, the checker and the PromQL tokenizer.

A few series only appear once their event happens (a missed deadline, an operator alert, a
failed workflow task, an archive failure, the first archived case), which the demo cases do
not cause (or not by then). For those, and only those, the check falls back to where the name
is defined: SafeShare's own source for ``safeshare_*`` names, the Temporal SDK's core library
for ``temporal_*`` names; the test lists them, so the fallback cannot hide a misspelling.
"""

from __future__ import annotations

import sysconfig
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.ops.promql import metric_names
from tests.ops.tooling import OPS, ROOT, RULES

DASHBOARD = OPS / "grafana" / "safeshare.json"
PROMETHEUS_OWN = {"up"}  # made by Prometheus for every scrape target
# Exported only once their event happens; see the module docstring.
EVENT_BORN = {
    "safeshare_operator_alerts_open",
    "safeshare_operator_alerts",
    "safeshare_deadlines_missed",
    "safeshare_archive_failures",
    "safeshare_archive_cases_archived",
    "temporal_workflow_task_execution_failed",
}
SOURCES = ("safeshare", "workflows", "activities", "agency_adapters")


def dashboard_expressions(dashboard: dict[str, Any]) -> dict[str, str]:
    """Every query of the dashboard, by panel title."""
    found = {}
    for panel in dashboard["panels"]:
        for target in panel.get("targets", []):
            found[f"{panel['title']} / {target['refId']}"] = target["expr"]
    return found


def rule_expressions() -> dict[str, str]:
    groups = yaml.safe_load(RULES.read_text())["groups"]
    return {rule["alert"]: rule["expr"] for group in groups for rule in group["rules"]}


def defined_in_code(name: str) -> bool:
    """Whether ``name`` is a metric SafeShare's code creates, or the Temporal SDK's core knows."""
    if name.startswith("temporal_"):
        core = next((Path(sysconfig.get_path("purelib")) / "temporalio" / "bridge").glob("*.so"))
        return name.removeprefix("temporal_").encode() in core.read_bytes()
    quoted = f'"{name}"'
    return any(quoted in path.read_text() for top in SOURCES for path in (ROOT / top).rglob("*.py"))


def unexported(expressions: dict[str, str], exported: set[str]) -> dict[str, set[str]]:
    """The metric names of each expression that no process exports (none: all is well)."""
    missing: dict[str, set[str]] = {}
    for where, expr in expressions.items():
        names = metric_names(expr)
        assert names, f"{where}: no metric in {expr!r}"
        absent = {
            name
            for name in names - exported - PROMETHEUS_OWN
            if not (name in EVENT_BORN and defined_in_code(name))
        }
        if absent:
            missing[where] = absent
    return missing


@pytest.mark.parametrize(
    ("expr", "names"),
    [
        ('sum by (rpc, code) (rate(safeshare_gateway_requests{code=~"A|B"}[5m]))',
         {"safeshare_gateway_requests"}),
        ("histogram_quantile(0.95, sum by (le) (rate(x_bucket[$__rate_interval])))", {"x_bucket"}),
        ("sum(rate(a_sum[5m])) / sum(rate(a_count[5m])) > 0.05", {"a_sum", "a_count"}),
        ("(sum(temporal_num_pollers{task_queue=\"safeshare.hub\"}) or vector(0)) < 1",
         {"temporal_num_pollers"}),
        ("min by (c) (expiry_seconds) - time() < 30 * 86400", {"expiry_seconds"}),
        ("up{job=~\"safeshare-.*\"} == 0", {"up"}),
        ("rate(b[5m] offset 1h) and on (instance) c unless ignoring (job) d", {"b", "c", "d"}),
        ("sum(e) by (le) / 1e3", {"e"}),
        ('label_replace(f, "dst", "$1", "src", "(.*)")', {"f"}),
        ("max_over_time(g[1h:5m])", {"g"}),
    ],
)  # fmt: skip
def test_promql_metric_names(expr: str, names: set[str]) -> None:
    assert metric_names(expr) == names
