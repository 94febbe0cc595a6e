"""The shipped alert rules and Alertmanager config, checked by the real tools: promtool checks
and unit-tests the rules, amtool checks the routing. Each rule's unit test must depend on the
rule: with the rule's condition (its comparison) removed, or its ``for:`` removed, or the rule
gone, ``promtool test rules`` must fail."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.ops.tooling import ALERTMANAGER_CONFIG, RULE_TESTS, RULES, tool_or_skip

# The comparison that makes an expression a condition: the last top-level one.
COMPARISON = re.compile(r"\s*(>|<|==|!=|>=|<=)\s*[\d. *]+\s*$")


def _rules() -> list[dict[str, Any]]:
    groups = yaml.safe_load(RULES.read_text())["groups"]
    return [rule for group in groups for rule in group["rules"]]


def _promtool_test(rules_text: str, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    """``promtool test rules`` on the shipped tests, against ``rules_text`` as the rules file."""
    promtool = tool_or_skip("promtool", "prometheus")
    (tmp_path / "tests").mkdir(exist_ok=True)
    (tmp_path / RULES.name).write_text(rules_text)
    shutil.copy(RULE_TESTS, tmp_path / "tests" / RULE_TESTS.name)
    return subprocess.run(
        [str(promtool), "test", "rules", str(tmp_path / "tests" / RULE_TESTS.name)],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip


def _mutated(change: Any) -> str:
    """The rules file with ``change(rule)`` applied to every rule it returns True for."""
    document = yaml.safe_load(RULES.read_text())
    for group in document["groups"]:
        group["rules"] = [rule for rule in group["rules"] if change(rule) is not False]
    return yaml.safe_dump(document, sort_keys=False)


def test_promtool_checks_the_rules() -> None:
    promtool = tool_or_skip("promtool", "prometheus")
    checked = subprocess.run(
        [str(promtool), "check", "rules", str(RULES)], capture_output=True, text=True, check=False
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert f"SUCCESS: {len(_rules())} rules found" in checked.stdout


def test_every_rule_has_a_unit_test_and_they_pass(tmp_path: Path) -> None:
    tested = set(re.findall(r"alertname: (\w+)", RULE_TESTS.read_text()))
    assert {rule["alert"] for rule in _rules()} == tested
    passed = _promtool_test(RULES.read_text(), tmp_path)
    assert passed.returncode == 0, passed.stdout + passed.stderr
    assert "SUCCESS" in passed.stdout


def test_every_alert_names_its_severity_and_case_alerts_name_the_case() -> None:
    for rule in _rules():
        assert rule["labels"]["severity"] in {"page", "ticket"}, rule["alert"]
        if "safeshare_operator_alerts_open" in rule["expr"]:
            for label in ("case_ref", "step", "rung"):
                assert label in rule["expr"], (rule["alert"], label)
                assert "{{ $labels.case_ref }}" in rule["annotations"]["summary"], rule["alert"]


@pytest.mark.parametrize("alert", [rule["alert"] for rule in _rules()])
def test_removing_a_rules_condition_fails_its_unit_test(alert: str, tmp_path: Path) -> None:
    def strip_condition(rule: dict[str, Any]) -> bool:
        if rule["alert"] == alert:
            stripped = COMPARISON.sub("", rule["expr"])
            assert stripped != rule["expr"], f"{alert}: no comparison found to remove"
            rule["expr"] = stripped
        return True

    failed = _promtool_test(_mutated(strip_condition), tmp_path)
    assert failed.returncode != 0, f"{alert} without its condition still passed:\n{failed.stdout}"
    assert alert in failed.stdout + failed.stderr


@pytest.mark.parametrize("alert", [rule["alert"] for rule in _rules() if "for" in rule])
def test_removing_a_rules_for_clause_fails_its_unit_test(alert: str, tmp_path: Path) -> None:
    def drop_for(rule: dict[str, Any]) -> bool:
        if rule["alert"] == alert:
            del rule["for"]
        return True

    failed = _promtool_test(_mutated(drop_for), tmp_path)
    assert failed.returncode != 0, f"{alert} without its for: still passed:\n{failed.stdout}"
    assert alert in failed.stdout + failed.stderr


def test_removing_a_rule_fails_the_unit_tests(tmp_path: Path) -> None:
    failed = _promtool_test(
        _mutated(lambda rule: rule["alert"] != "SafeShareRedDeadlineMissed"), tmp_path
    )
    assert failed.returncode != 0
    assert "SafeShareRedDeadlineMissed" in failed.stdout + failed.stderr


def test_amtool_checks_the_alertmanager_config() -> None:
    amtool = tool_or_skip("amtool", "prometheus-alertmanager")
    checked = subprocess.run(
        [str(amtool), "check-config", str(ALERTMANAGER_CONFIG)],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "SUCCESS" in checked.stdout


def test_alertmanager_routes_pages_to_the_on_call_webhook_and_tickets_by_email() -> None:
    amtool = tool_or_skip("amtool", "prometheus-alertmanager")

    def receiver(*labels: str) -> str:
        routed = subprocess.run(
            [str(amtool), "config", "routes", "test", "--config.file", str(ALERTMANAGER_CONFIG),
             *labels],
            capture_output=True, text=True, check=False,
        )  # fmt: skip
        return routed.stdout.strip()

    assert receiver("alertname=SafeShareRedDeadlineMissed", "severity=page") == "on-call"
    assert receiver("alertname=SafeShareDeadlineMissed", "severity=ticket") == "operators-email"
    assert receiver("alertname=Other") == "operators-email"
