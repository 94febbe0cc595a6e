"""The saved views: each a valid visibility query the dev server accepts, and a UI link that
carries exactly that query."""

from __future__ import annotations

import datetime as dt
import re
from urllib.parse import parse_qs, urlparse

import pytest
from temporalio.testing import WorkflowEnvironment

from protos.sharing.v1 import case_pb2 as pb
from safeshare.operators.views import VIEWS
from workflows import search_attributes as sa
from workflows.domain import disclosure, vocabulary

NOW = dt.datetime(2026, 11, 17, 9, 30, tzinfo=dt.UTC)


REGISTERED = {
    "waiting-on-approver": (
        "WorkflowType='HolderExchange' AND WaitingOn='APPROVER' AND ExecutionStatus='Running'"
    ),
    "deadline-passed": (
        "WorkflowType='HolderExchange' AND NextDeadline < '2026-11-17T09:30:00Z' AND "
        "ExecutionStatus='Running'"
    ),
    "escalated": "WorkflowType='HolderExchange' AND Escalated=true AND ExecutionStatus='Running'",
    "delivery-failing": (
        "WorkflowType='HolderExchange' AND CaseState='DELIVERING' AND WaitingOn='OPERATOR' AND "
        "ExecutionStatus='Running'"
    ),
    "red-open": "WorkflowType='SharingCase' AND Urgency='RED' AND ExecutionStatus='Running'",
    "disclosures-open": "WorkflowType='DisclosureCase' AND ExecutionStatus='Running'",
    "disclosures-overdue": (
        "WorkflowType='DisclosureCase' AND NextDeadline < '2026-11-17T09:30:00Z' AND "
        "ExecutionStatus='Running'"
    ),
    "overrides-this-month": (
        "WorkflowType='HolderExchange' AND OverrideUsed=true AND "
        "StartTime >= '2026-11-01T00:00:00Z'"
    ),
}
"""Each saved view's query at NOW, exactly as registered in safeshare.operators.views."""

# What the workflows write into the attributes the views filter on (a view that filters on a
# value nothing writes, e.g. WaitingOn='APROVER', lists nothing and would look like good news).
WRITTEN = {
    "WorkflowType": {"SharingCase", "HolderExchange", "DisclosureCase"},
    "WaitingOn": {w.value for w in vocabulary.WaitingOn}
    | {pb.WaitingOn.Name(w).removeprefix("WAITING_ON_") for w in pb.WaitingOn.values() if w},
    "CaseState": {s.value for s in vocabulary.State} | {s.value for s in disclosure.State},
    "Urgency": {pb.Urgency.Name(u).removeprefix("URGENCY_") for u in pb.Urgency.values() if u},
    "ExecutionStatus": {"Running"},
}


def test_each_view_is_exactly_its_registered_query() -> None:
    assert {v.name: v.query(NOW) for v in VIEWS} == REGISTERED


def test_each_value_a_view_filters_on_is_one_the_workflows_write() -> None:
    registered_attributes = {key.name for key in sa.ALL} | {"WorkflowType", "StartTime"}
    for saved in VIEWS:
        for attribute, value in re.findall(r"(\w+)\s*(?:=|<|>=)\s*'([^']*)'", saved.query(NOW)):
            assert attribute in registered_attributes | {"ExecutionStatus"}, (saved.name, attribute)
            if attribute in WRITTEN:
                assert value in WRITTEN[attribute], (saved.name, attribute, value)


def test_links_open_the_filtered_list_in_the_ui() -> None:
    for saved in VIEWS:
        url = urlparse(saved.url(8233, NOW))
        assert (url.netloc, url.path) == ("127.0.0.1:8233", "/namespaces/default/workflows")
        assert parse_qs(url.query)["query"] == [REGISTERED[saved.name]]


@pytest.mark.asyncio(loop_scope="session")
async def test_every_view_is_a_query_the_server_accepts(dev_server: WorkflowEnvironment) -> None:
    for saved in VIEWS:
        await dev_server.client.count_workflows(saved.query(NOW))  # raises on a bad query
