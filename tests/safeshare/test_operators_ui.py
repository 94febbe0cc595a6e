"""The Temporal Web UI as the operators' control room, in a real browser.

On one dev stack (demo cases: one waiting on the recipient, one waiting on the holder, a RED
case closed under override), every saved view of ``safeshare.operators.views`` is opened
from its link, and the list must show what visibility says it holds: a matching workflow's
id, or the UI's empty state. Then the page of the exchange waiting on the holder must show
its summary and its current details ("Waiting for ..."). Screenshots go to
``test-artifacts/operators-*.png``. Debian chromium only; nothing is downloaded.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from temporalio.client import Client

from safeshare.operators.views import VIEWS
from tests.safeshare.test_devstack import connect, dev_stack, free_ports, until
from tests.safeshare.test_leak import chromium_or_skip
from workflows.ids import holder_exchange_workflow_id

if TYPE_CHECKING:  # imported lazily at run time, as in test_leak
    from playwright.async_api import Page

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(300)]
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
EMPTY_LIST = "No Workflows Found"  # the UI's empty state of a filtered list
LAUNCH_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
               "--disable-component-update", "--disable-sync", "--no-first-run"]  # fmt: skip


async def _ids(client: Client, query: str) -> list[str]:
    return [execution.id async for execution in client.list_workflows(query)]


async def _in_a_frame(page: Page, text: str) -> None:
    """Wait (bounded) for ``text`` in one of the page's iframes: the UI renders summaries and
    details (markdown) in sandboxed iframes, out of the page's own text."""
    frames = page.frame_locator("iframe")
    for _ in range(60):
        for index in range(await page.locator("iframe").count()):
            if await frames.nth(index).get_by_text(text, exact=False).count():
                return
        await page.wait_for_timeout(500)
    pytest.fail(f"the case page never showed {text!r}")


async def test_saved_views_and_a_case_page_show_what_operators_look_for(tmp_path: Path) -> None:
    from playwright.async_api import async_playwright

    executable = chromium_or_skip()
    ARTIFACTS.mkdir(exist_ok=True)
    data_dir, ports = tmp_path / "data", free_ports()
    async with dev_stack(data_dir, ports) as stack:
        client = await connect(data_dir, ports)
        now = dt.datetime.now(dt.UTC)
        waiting_on_holder = holder_exchange_workflow_id(
            stack.demo_refs["demo-5"], "northshire-police"
        )
        overridden = holder_exchange_workflow_id(stack.demo_refs["demo-3"], "northshire-csc")

        async def settled() -> bool | None:
            # Visibility is eventually consistent: wait until the demo's states are indexed.
            open_ = await _ids(client, f"WorkflowId='{waiting_on_holder}' AND WaitingOn='HOLDER'")
            used = await _ids(client, f"WorkflowId='{overridden}' AND OverrideUsed=true")
            return True if open_ and used else None

        await until(settled, "the demo cases in visibility")
        expected = {view.name: await _ids(client, view.query(now)) for view in VIEWS}
        # The demo's RED case shared under an override this month: that view is not empty.
        assert overridden in expected["overrides-this-month"]

        async with async_playwright() as playwright:
            browser = await playwright.chromium.launch(
                executable_path=str(executable), args=LAUNCH_ARGS
            )
            try:
                page = await browser.new_page(viewport={"width": 1600, "height": 1000})
                for view in VIEWS:
                    await page.goto(view.url(ports.ui, now))
                    ids = expected[view.name]
                    wanted = ids[0] if ids else EMPTY_LIST
                    await page.get_by_text(wanted, exact=False).first.wait_for(timeout=30_000)
                    await page.screenshot(path=str(ARTIFACTS / f"operators-{view.name}.png"))
                    # The list is the view's: every match shown, nothing from outside it.
                    content = await page.content()
                    assert all(workflow_id in content for workflow_id in ids), view.name
                    if not ids:
                        assert stack.demo_refs["demo-5"] not in content, view.name

                await page.goto(
                    f"http://127.0.0.1:{ports.ui}/namespaces/default/workflows/{waiting_on_holder}"
                )
                # The history reads as words: activity and timer summaries on the timeline.
                await page.get_by_text("Look up consent at northshire-police").first.wait_for()
                await page.get_by_text("holder_responds reminder due").first.wait_for()
                await page.screenshot(path=str(ARTIFACTS / "operators-case-timeline.png"))
                # Its summary and what it waits for (current details) are under User Metadata.
                await page.get_by_role("tab", name="User Metadata").click()
                summary = f"Exchange with northshire-police for case {stack.demo_refs['demo-5']}"
                details = "Waiting for northshire-police to record consent"
                for text in (summary, details):
                    await _in_a_frame(page, text)
                await page.screenshot(
                    path=str(ARTIFACTS / "operators-case-page.png"), full_page=True
                )
            finally:
                await browser.close()
