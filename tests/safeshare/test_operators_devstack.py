"""The operators' tools on a real `safeshare dev`: saved views printed, the review schedule
created, `safeshare review run` reporting the demo cases, `safeshare cases` listing them."""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path

import pytest

from safeshare.operators.review import SCHEDULE_ID
from safeshare.operators.views import VIEWS
from tests.safeshare.test_devstack import DEMO_CASES, connect, dev_stack, free_ports

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(300), pytest.mark.asyncio(loop_scope="session")]


async def safeshare(*argv: str, keys: Path) -> tuple[int, str]:
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "safeshare", *argv,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
        env={**os.environ, "SAFESHARE_KEYS_FILE": str(keys), "COLUMNS": "400"},
    )  # fmt: skip
    out, _ = await asyncio.wait_for(process.communicate(), 120)
    return process.returncode or 0, out.decode()


async def test_operators_tools_on_the_dev_stack(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    ports = free_ports()
    async with dev_stack(data_dir, ports) as stack:
        printed = stack.stderr_path.read_text()
        for saved in VIEWS:
            assert saved.name in printed
        client = await connect(data_dir, ports)
        described = await client.get_schedule_handle(SCHEDULE_ID).describe()
        assert described.schedule.state.note == "cron: 0 6 1 * *"

        keys = data_dir / "dev" / "keys.json"
        target = ("--temporal-address", f"127.0.0.1:{ports.temporal}")
        code, out = await safeshare("review", "run", "--reports-dir", str(tmp_path / "reports"),
                                    *target, keys=keys)  # fmt: skip
        assert code == 0, out
        assert f"cases opened: {len(DEMO_CASES)}" in out
        assert list((tmp_path / "reports").glob("protocol-review-*.md"))
        code, out = await safeshare("cases", "list", *target, keys=keys)
        assert code == 0, out
        for ref in stack.demo_refs.values():
            assert f"case-{ref}" in out, out
        code, out = await safeshare("review", "schedule", "--cron", "0 7 * * 1", *target, keys=keys)
        assert code == 0 and "0 7 * * 1" in out, out
