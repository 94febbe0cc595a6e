"""The saved views: each a valid visibility query the dev server accepts, and a UI link that
carries exactly that query."""

from __future__ import annotations

import datetime as dt
from urllib.parse import parse_qs, urlparse

import pytest
from temporalio.testing import WorkflowEnvironment

from safeshare.operators.views import VIEWS, view

NOW = dt.datetime(2026, 11, 17, 9, 30, tzinfo=dt.UTC)


def test_links_open_the_filtered_list_in_the_ui() -> None:
    assert [v.name for v in VIEWS] == [
        "waiting-on-approver", "deadline-passed", "escalated", "delivery-failing", "red-open",
        "disclosures-open", "disclosures-overdue", "overrides-this-month",
    ]  # fmt: skip
    for saved in VIEWS:
        url = urlparse(saved.url(8233, NOW))
        assert (url.netloc, url.path) == ("127.0.0.1:8233", "/namespaces/default/workflows")
        assert parse_qs(url.query)["query"] == [saved.query(NOW)]
    assert "NextDeadline < '2026-11-17T09:30:00Z'" in view("deadline-passed").query(NOW)
    assert "StartTime >= '2026-11-01T00:00:00Z'" in view("overrides-this-month").query(NOW)


@pytest.mark.asyncio(loop_scope="session")
async def test_every_view_is_a_query_the_server_accepts(dev_server: WorkflowEnvironment) -> None:
    for saved in VIEWS:
        await dev_server.client.count_workflows(saved.query(NOW))  # raises on a bad query
