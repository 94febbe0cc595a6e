"""``safeshare dev --prometheus``: the configuration it writes scrapes every metrics endpoint of
the stack under the job names the rules and the dashboard use, loads the shipped rules, and
passes ``promtool check config`` (which also checks the rule files it names)."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

from safeshare.devstack.prometheus import ALERT_RULES, prometheus_config
from tests.ops.tooling import RULES, tool_or_skip

ENDPOINTS = {
    "hub": "http://127.0.0.1:9460/metrics",
    "gateway": "http://127.0.0.1:9461/metrics",
    "archiver": "http://127.0.0.1:9462/metrics",
    "adapter-northshire-csc": "http://127.0.0.1:9470/metrics",
    "adapter-riverside-gp": "http://127.0.0.1:9473/metrics",
    "sandbox-northshire-csc": "http://127.0.0.1:9490/metrics",
}


def test_the_dev_prometheus_config_scrapes_every_process_with_the_shipped_rules(
    tmp_path: Path,
) -> None:
    config = prometheus_config(ENDPOINTS)
    assert ALERT_RULES == RULES and config["rule_files"] == [str(RULES)]
    jobs = {
        job["job_name"]: job["static_configs"][0]["targets"] for job in config["scrape_configs"]
    }
    assert jobs == {
        "safeshare-adapter": ["127.0.0.1:9470", "127.0.0.1:9473"],
        "safeshare-agency": ["127.0.0.1:9490"],
        "safeshare-archiver": ["127.0.0.1:9462"],
        "safeshare-gateway": ["127.0.0.1:9461"],
        "safeshare-hub": ["127.0.0.1:9460"],
    }
    promtool = tool_or_skip("promtool", "prometheus")
    path = tmp_path / "prometheus.yml"
    path.write_text(json.dumps(config))
    checked = subprocess.run(
        [str(promtool), "check", "config", str(path)], capture_output=True, text=True, check=False
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "SUCCESS" in checked.stdout and "rules found" in checked.stdout
