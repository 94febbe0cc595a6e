"""History files in Temporal's JSON history format, and what an auditor needs to know of each.

The format is what ``WorkflowHistory.to_json_dict()`` writes and ``WorkflowHistory.from_json``,
the Temporal UI's Import page and ``temporal workflow show --output json`` use: ``{"events":
[...]}`` with camelCase fields, ids as strings and payloads as stored (encrypted ones stay
encrypted). The format holds no workflow id, so the export names each file after its workflow.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

STARTED = "EVENT_TYPE_WORKFLOW_EXECUTION_STARTED"
SHARING_CASE = "SharingCase"
DISCLOSURE_CASE = "DisclosureCase"
CASE_TYPES = (SHARING_CASE, DISCLOSURE_CASE)
"""Workflows whose result is a case's decision record."""
HOLDER_EXCHANGE = "HolderExchange"


class HistoryFileError(Exception):
    """A file is not a history in Temporal's JSON format."""


def parse_history(content: bytes) -> list[dict[str, Any]]:
    """The events of a history file.

    Raises:
        HistoryFileError: not JSON, or no list of events.
    """
    try:
        document = json.loads(content)
    except (UnicodeDecodeError, ValueError):
        raise HistoryFileError("not valid JSON") from None
    events = document.get("events") if isinstance(document, dict) else None
    if not isinstance(events, list) or not all(isinstance(e, dict) for e in events):
        raise HistoryFileError("no list of events")
    return events


def dump_history(document: dict[str, Any]) -> bytes:
    """A history's file content: stable JSON, so the same history gives the same digest.

    👉 Keys are sorted: protobuf maps (search attributes, headers, payload metadata) come
    from the server in no fixed order, so two fetches of one closed history differed.
    """
    return (json.dumps(document, indent=1, sort_keys=True) + "\n").encode()


def event_id(event: dict[str, Any]) -> int | None:
    """An event's id (a string in the JSON format), or None if missing or malformed."""
    try:
        return int(event["eventId"])
    except (KeyError, TypeError, ValueError):
        return None


@dataclass(frozen=True)
class HistoryFacts:
    """What a history says about itself: its workflow, its run and its extent."""

    workflow_type: str
    run_id: str
    parent_workflow_id: str
    event_count: int
    first_event_id: int | None
    last_event_id: int | None
    last_event_type: str

    @classmethod
    def of(cls, events: list[dict[str, Any]]) -> HistoryFacts:
        """Read the facts from a history's events (the first should be the started event)."""
        started: dict[str, Any] = {}
        if events and events[0].get("eventType") == STARTED:
            started = events[0].get("workflowExecutionStartedEventAttributes", {})
        return cls(
            workflow_type=str(started.get("workflowType", {}).get("name", "")),
            run_id=str(started.get("originalExecutionRunId", "")),
            parent_workflow_id=str(
                started.get("parentWorkflowExecution", {}).get("workflowId", "")
            ),
            event_count=len(events),
            first_event_id=event_id(events[0]) if events else None,
            last_event_id=event_id(events[-1]) if events else None,
            last_event_type=str(events[-1].get("eventType", "")) if events else "",
        )


def child_executions(events: list[dict[str, Any]]) -> list[tuple[str, str]]:
    """The (workflow id, run id) of every child a case started, from its history."""
    children = []
    for event in events:
        attributes = event.get("childWorkflowExecutionStartedEventAttributes")
        if attributes:
            execution = attributes.get("workflowExecution", {})
            children.append((str(execution.get("workflowId")), str(execution.get("runId"))))
    return children
