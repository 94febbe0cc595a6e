"""Finding Debian's Prometheus tools: a test that needs one skips without it locally and fails
under CI (``.ci/run`` installs ``prometheus`` and ``prometheus-alertmanager`` when missing)."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
OPS = ROOT / "ops"
RULES = OPS / "prometheus" / "safeshare-rules.yml"
RULE_TESTS = OPS / "prometheus" / "tests" / "safeshare-rules-test.yml"
ALERTMANAGER_CONFIG = OPS / "alertmanager" / "alertmanager.yml"


def tool_or_skip(name: str, package: str) -> Path:
    """The path of Debian tool ``name``; skip without it, except under CI where it must be."""
    found = shutil.which(name)
    if found:
        return Path(found)
    if os.environ.get("CI"):
        pytest.fail(f"CI must install Debian {package} ({name}); .ci/run does")
    pytest.skip(f"no {name}: apt-get install {package}")
