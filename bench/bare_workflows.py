"""The baseline: bare Temporal workflows shaped like a SharingCase on its common path.

Counted from a real common-path history (consent on record → delivered → acknowledged): the
case runs one gate activity and one child; the child runs three activities (look up consent,
extract, receive delivery), then waits for one acknowledge Update under a deadline timer.
The bodies are trivial and the payloads are short strings: what is left is Temporal's own cost.
The child sets one keyword search attribute when it waits, so the bench finds waiting cases with
the same visibility query it uses for SafeShare.

This module is side-effect free: the workflow sandbox re-imports it.
"""

from __future__ import annotations

from datetime import timedelta

from temporalio import workflow
from temporalio.common import SearchAttributeKey

BARE_TASK_QUEUE = "bench.bare"
CASE_STATE = SearchAttributeKey.for_keyword("CaseState")
ACTIVITY_TIMEOUT = timedelta(seconds=30)
ACK_DEADLINE = timedelta(hours=6)


@workflow.defn
class BareExchange:
    """Three activities, then one Update awaited under a deadline timer."""

    def __init__(self) -> None:
        self._acknowledged = False

    @workflow.run
    async def run(self, ref: str) -> str:
        """Look up, extract, deliver, then wait for the acknowledgement."""
        for name in ("bare_lookup_consent", "bare_extract_records", "bare_receive_delivery"):
            await workflow.execute_activity(
                name, ref, start_to_close_timeout=ACTIVITY_TIMEOUT, result_type=str
            )
        workflow.upsert_search_attributes([CASE_STATE.value_set("AWAITING_ACKNOWLEDGEMENT")])
        try:
            await workflow.wait_condition(lambda: self._acknowledged, timeout=ACK_DEADLINE)
        except TimeoutError:
            return "timed out"
        await workflow.wait_condition(workflow.all_handlers_finished)
        return "acknowledged"

    @workflow.update
    def acknowledge(self, note: str) -> str:
        """The recipient acknowledges."""
        self._acknowledged = True
        return note

    @acknowledge.validator
    def _validate(self, note: str) -> None:
        if self._acknowledged:
            raise ValueError("already acknowledged")


@workflow.defn
class BareCase:
    """One gate activity and one child."""

    @workflow.run
    async def run(self, ref: str) -> str:
        """Run the gate, then the exchange."""
        await workflow.execute_activity(
            "bare_gate", ref, start_to_close_timeout=ACTIVITY_TIMEOUT, result_type=str
        )
        return await workflow.execute_child_workflow(
            BareExchange.run, ref, id=f"{workflow.info().workflow_id}.x"
        )
