"""A disclosure's escalation ladder: the sharing case's rungs after a missed deadline.

A reminder at the deadline, the agency's safeguarding lead, then the partnership operator
(``workflows.domain.deadlines.escalation_times``); then it waits on. It never closes the case. A
notification or alert that cannot get through is recorded and never fails the workflow.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from datetime import timedelta
from typing import TYPE_CHECKING, Protocol

from temporalio import workflow
from temporalio.exceptions import ActivityError

from workflows.disclosure.retries import AGENCY_START_TO_CLOSE, NOTIFY_BURST
from workflows.domain.deadlines import Escalation, escalation_times
from workflows.domain.vocabulary import Step, timestamp

with workflow.unsafe.imports_passed_through():
    from activities.agency import agency_task_queue, error_code
    from activities.names import NOTIFY_OPERATOR, NOTIFY_PRACTITIONER
    from protos.agency.v1 import agency_service_pb2 as agency_pb
    from protos.sharing.v1 import case_pb2 as pb

if TYPE_CHECKING:
    from google.protobuf.internal.containers import RepeatedCompositeFieldContainer

SAFEGUARDING_LEAD_ROLE = "designated_safeguarding_lead"


class Keeper(Protocol):
    """Where a disclosure's steps write what they did: the workflow's record keeper."""

    def note(self, event: str, agency_id: str, user_id: str, detail: str) -> None:
        """Append an entry to the decision record."""

    def publish(self) -> None:
        """Bring the operators' view up to date."""


class Ladder:
    """Climbs the ladder for one disclosure, noting each rung in its record."""

    def __init__(self, case_ref: str, keeper: Keeper) -> None:
        self._case_ref = case_ref
        self._keeper = keeper

    async def wait(
        self,
        done: Callable[[], bool],
        step: Step,
        agency_id: str,
        due: dt.datetime,
        period: timedelta,
        escalations: RepeatedCompositeFieldContainer[pb.Escalation],
    ) -> None:
        """Wait until ``done()``, firing each rung after ``due`` (for a step of ``period``)
        and recording it in ``escalations``."""
        for at, rung in escalation_times(due, period):
            try:
                await workflow.wait_condition(
                    done,
                    timeout=max(at - workflow.now(), timedelta(seconds=1)),
                    timeout_summary=f"{step.value} {rung.value} due",
                )
                return
            except TimeoutError:
                pass
            await self._fire(step, rung, agency_id, due, escalations)
        await workflow.wait_condition(done)

    async def _fire(
        self,
        step: Step,
        rung: Escalation,
        agency_id: str,
        due: dt.datetime,
        escalations: RepeatedCompositeFieldContainer[pb.Escalation],
    ) -> None:
        escalation = pb.Escalation(
            step=step.value,
            level=rung.value,
            agency_id="" if rung is Escalation.PARTNERSHIP_OPERATOR else agency_id,
            at=timestamp(workflow.now()),
        )
        escalations.append(escalation)
        self._keeper.note("DeadlineMissed", escalation.agency_id, "",
                   f"step={step.value} level={rung.value}")  # fmt: skip
        workflow.logger.info("deadline_missed", extra={"step": step.value, "rung": rung.value})
        workflow.metric_meter().create_counter("safeshare_deadlines_missed").add(
            1, {"step": step.value, "level": rung.value}
        )
        if rung is Escalation.PARTNERSHIP_OPERATOR:
            await self.alert_operator(escalation)
        else:
            code = await self._notify(agency_id, step, rung, due)
            if code is not None:
                self._keeper.note("NotificationRefused", agency_id, "",
                           f"step={step.value} level={rung.value} code={code}")  # fmt: skip
        self._keeper.publish()

    async def _notify(
        self, agency_id: str, step: Step, rung: Escalation, due: dt.datetime
    ) -> str | None:
        """Tell the agency's safeguarding lead; ``None`` when it got through, else the code."""
        try:
            await workflow.execute_activity(
                NOTIFY_PRACTITIONER,
                agency_pb.NotifyPractitionerRequest(
                    notification_id=f"{self._case_ref}.{agency_id}.{step.value}.{rung.value}",
                    case_ref=self._case_ref,
                    kind=agency_pb.NOTIFICATION_KIND_REMINDER
                    if rung is Escalation.REMINDER
                    else agency_pb.NOTIFICATION_KIND_ESCALATION,
                    practitioner_role=SAFEGUARDING_LEAD_ROLE,
                    step=step.value,
                    due_at=timestamp(due),
                    text=f"SafeShare disclosure {self._case_ref}: {step.value.replace('_', ' ')} "
                    f"was due {due:%Y-%m-%d %H:%M} UTC.",
                ),
                task_queue=agency_task_queue(agency_id),
                result_type=agency_pb.NotifyPractitionerResponse,
                start_to_close_timeout=AGENCY_START_TO_CLOSE,
                retry_policy=NOTIFY_BURST,
                summary=f"{rung.value} to {agency_id} for {step.value}",
            )
        except ActivityError as err:
            return error_code(err)
        return None

    async def alert_operator(self, escalation: pb.Escalation) -> None:
        """Alert the operator; a failing alert is recorded, never raised."""
        try:
            await workflow.execute_activity(
                NOTIFY_OPERATOR,
                escalation,
                start_to_close_timeout=timedelta(seconds=30),
                retry_policy=NOTIFY_BURST,
                summary=f"Alert the partnership operator: {escalation.step}",
            )
        except ActivityError as err:
            self._keeper.note("OperatorAlertFailed", escalation.agency_id, "",
                       f"step={escalation.step} code={error_code(err)}")  # fmt: skip
