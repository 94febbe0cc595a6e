"""Reading an open case's workflows without a worker: one ``describe`` per workflow.

Each case, exchange and disclosure workflow keeps its current view in its memo
(``workflows.memo_view``), encrypted by the payload codec like every payload; ``describe``
answers from what Temporal holds, so these reads work while every hub worker is down and do
not wait for a worker between workflow tasks. A workflow started before views were published
has none in its memo: its view comes from the workflow's query, as it always did (that needs
a worker).

Used by the gateway (GetCase, every command's reply, WatchCase) and ``safeshare cases show``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Generic, TypeVar

from google.protobuf.message import Message
from temporalio.client import WorkflowExecutionDescription, WorkflowExecutionStatus, WorkflowHandle
from temporalio.service import RPCError, RPCStatusCode

from protos.sharing.v1 import case_pb2 as pb
from workflows import memo_view

V = TypeVar("V", bound=Message)

CASE_QUERY = "case_view"
"""The case (or disclosure) workflow's query, for cases that publish no view."""
HOLDER_QUERY = "holder_record"
"""The exchange's query, for exchanges that publish no view."""


@dataclass(frozen=True)
class Described(Generic[V]):
    """One workflow as ``describe`` saw it, and its published view (None if it has none)."""

    description: WorkflowExecutionDescription
    view: V | None

    @property
    def running(self) -> bool:
        """Whether the workflow may still change its view."""
        return self.description.status == WorkflowExecutionStatus.RUNNING

    @property
    def started_before_views(self) -> bool:
        """Whether the workflow publishes no view: it started before views were published
        (a workflow that does publish writes its view in its first workflow task)."""
        return self.view is None and not _first_task_pending(self.description)


def _first_task_pending(description: WorkflowExecutionDescription) -> bool:
    # Started, its first workflow task scheduled (and perhaps started): nothing completed yet.
    return description.history_length <= 3 and description.status == (
        WorkflowExecutionStatus.RUNNING
    )


async def describe(
    handle: WorkflowHandle[Any, Any], view_type: type[V], rpc_timeout: timedelta | None
) -> Described[V]:
    """Describe the workflow and decode the view in its memo.

    Raises:
        RPCError: no such workflow (NOT_FOUND), or Temporal cannot be reached.
    """
    description = await handle.describe(rpc_timeout=rpc_timeout)
    memo = await description.memo()
    return Described(description, memo_view.assemble(view_type, memo))


async def case_view(
    handle: WorkflowHandle[Any, Any], rpc_timeout: timedelta | None
) -> Described[pb.CaseView]:
    """The open case's (or disclosure's) own view: its memo's, or its query's for a case
    started before views were published.

    Raises:
        RPCError: no such workflow (NOT_FOUND), or Temporal cannot be reached.
    """
    described = await describe(handle, pb.CaseView, rpc_timeout)
    if described.view is not None:
        return described
    view = await handle.query(CASE_QUERY, result_type=pb.CaseView, rpc_timeout=rpc_timeout)
    return Described(described.description, view)


async def holder_record(
    handle: WorkflowHandle[Any, Any], rpc_timeout: timedelta | None
) -> Described[pb.HolderRecord] | None:
    """The exchange's record: its memo's, or its query's for an exchange started before
    views were published; None while it has not started or its first task has not run.

    Raises:
        RPCError: Temporal cannot be reached, or the query failed.
    """
    try:
        described = await describe(handle, pb.HolderRecord, rpc_timeout)
    except RPCError as err:
        if err.status == RPCStatusCode.NOT_FOUND:
            return None
        raise
    if described.view is not None:
        return described
    if not described.started_before_views:
        return None
    view = await handle.query(HOLDER_QUERY, result_type=pb.HolderRecord, rpc_timeout=rpc_timeout)
    return Described(described.description, view)
