"""Prometheus for the dev stack (``safeshare dev --prometheus``): scraping every process's
metrics, with the shipped alert rules."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

from safeshare.devstack.processes import ChildProcesses, DevStackError
from safeshare.devstack.settings import HOST

ALERT_RULES = Path(__file__).resolve().parents[2] / "ops" / "prometheus" / "safeshare-rules.yml"


def prometheus_config(metrics_endpoints: dict[str, str]) -> dict[str, Any]:
    """A Prometheus configuration scraping the dev stack's processes, one job per kind
    (``safeshare-hub``, ``-gateway``, ``-adapter``, ``-agency``: the names the alert rules
    and the dashboard use), with the shipped alert rules."""
    jobs: dict[str, list[str]] = {}
    for name, endpoint in metrics_endpoints.items():
        kind = name.split("-", 1)[0]
        job = "safeshare-agency" if kind == "sandbox" else f"safeshare-{kind}"
        target = endpoint.removeprefix("http://").removesuffix("/metrics")
        jobs.setdefault(job, []).append(target)
    return {
        "global": {"scrape_interval": "15s", "evaluation_interval": "15s"},
        "rule_files": [str(ALERT_RULES)],
        "scrape_configs": [
            {"job_name": job, "static_configs": [{"targets": targets}]}
            for job, targets in sorted(jobs.items())
        ],
    }


async def spawn_prometheus(
    processes: ChildProcesses, home: Path, port: int, metrics_endpoints: dict[str, str]
) -> str:
    """Start Prometheus on ``port``, keeping its data in ``home``; its URL once it listens.

    Raises:
        DevStackError: Prometheus is not installed, or did not start.
    """
    binary = shutil.which("prometheus")
    if binary is None:
        raise DevStackError(
            "--prometheus: Prometheus is not installed (Debian: apt-get install prometheus)"
        )
    config = _write_config(home, metrics_endpoints)
    await processes.spawn_binary(
        "prometheus", binary, f"--config.file={config}",
        f"--storage.tsdb.path={home / 'data'}",
        f"--web.listen-address={HOST}:{port}",
    )  # fmt: skip
    await processes.wait_for_port("prometheus", port)
    return f"http://{HOST}:{port}"


def _write_config(home: Path, metrics_endpoints: dict[str, str]) -> Path:
    home.mkdir(parents=True, exist_ok=True)
    config = home / "prometheus.yml"
    # JSON is YAML: no YAML writer needed.
    config.write_text(json.dumps(prometheus_config(metrics_endpoints), indent=2) + "\n")
    return config
