"""The escalation ladder: a step waiting on people is chased once its deadline passes.

At the deadline the practitioner whose move it is (or the agency's safeguarding lead) is
reminded; later the agency's safeguarding lead is told; later still the partnership operator.
Nothing on the ladder ever declines for anyone: it chases and records, and the step waits on.

A workflow keeps one ``Ladder`` (like the samples' ``UpdatableTimer``, it is a small object the
workflow owns and drives) and waits on it with ``until``: a condition wait that times out at
the next rung. The deadline it waits against is the caller's, recomputed when it moves (an
urgency re-rated). Each rung that fires is recorded (an escalation in the record, a
``DeadlineMissed`` entry, a log line, a metric) and told to the agency or the operator.

Side-effect free and without module state (a pure module the sandbox passes through).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping, MutableSequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Protocol

from temporalio import workflow
from temporalio.exceptions import ActivityError

from workflows import agency_calls
from workflows.agency_calls import NOTIFY_BURST, NOTIFY_RETRY
from workflows.domain.deadlines import Escalation, escalation_times
from workflows.domain.vocabulary import Step, timestamp

with workflow.unsafe.imports_passed_through():
    from activities.agency import error_code
    from activities.names import NOTIFY_OPERATOR, NOTIFY_PRACTITIONER
    from protos.agency.v1 import agency_service_pb2 as agency_pb
    from protos.sharing.v1 import case_pb2 as pb

SAFEGUARDING_LEAD_ROLE = "designated_safeguarding_lead"
OPERATOR = Escalation.PARTNERSHIP_OPERATOR


class Record(Protocol):
    """Where the ladder writes what it did: the workflow's record keeper."""

    def note(self, event: str, agency_id: str, user_id: str, detail: str) -> None:
        """Append an entry to the decision record."""

    def publish(self) -> None:
        """Bring the operators' view up to date."""


def the_lead(step: Step, rung: Escalation) -> tuple[str, str]:
    """Every notification goes to the agency's safeguarding lead (user id, role)."""
    return "", SAFEGUARDING_LEAD_ROLE


def no_tags() -> Mapping[str, str]:
    """No metric tags beyond the step and the rung."""
    return {}


@dataclass
class Ladder:
    """One workflow's escalation ladder."""

    record: Record
    case_ref: str
    noun: str = "case"
    """How a notification names what is late: "SafeShare <noun> <ref>: ..."."""
    sender: str = ""
    """The agency every notification id names (an exchange's holder); empty: the agency told."""
    addressee: Callable[[Step, Escalation], tuple[str, str]] = the_lead
    """Who at the agency a notification is for (user id, role): ``agency.v1`` wants one."""
    tags: Callable[[], Mapping[str, str]] = no_tags
    """Metric tags added to every missed deadline (e.g. the urgency)."""

    async def until(
        self, done: Callable[[], bool], step: Step, at: dt.datetime, rung: Escalation
    ) -> bool:
        """Wait until ``done()`` or until ``rung`` of ``step`` is due at ``at``.

        Returns:
            True when the rung fell due first, False when ``done()`` came true.
        """
        try:
            await workflow.wait_condition(
                done,
                timeout=max(at - workflow.now(), timedelta(seconds=1)),
                timeout_summary=f"{step.value} {rung.value} due",
            )
        except TimeoutError:
            return True
        return False

    async def wait(
        self,
        done: Callable[[], bool],
        step: Step,
        agency_id: str,
        due: dt.datetime,
        period: timedelta,
        escalations: MutableSequence[pb.Escalation],
    ) -> None:
        """Wait until ``done()``, climbing the ladder after ``due`` (the lead half a
        ``period`` later, the operator a period later), then wait on. Never closes anything.

        A refused notification is recorded and the ladder climbs on at its own pace."""
        for at, rung in escalation_times(due, period):
            if not await self.until(done, step, at, rung):
                return
            escalation = self.missed(escalations, step, rung, agency_id)
            if rung is OPERATOR:
                await self.alert_operator(escalation)
            else:
                code = await self.notify(agency_id, step, rung, due)
                if code is not None:
                    self.record.note(
                        "NotificationRefused",
                        agency_id,
                        "",
                        f"step={step.value} level={rung.value} code={code}",
                    )
            self.record.publish()
        await workflow.wait_condition(done)

    async def climb(
        self,
        escalations: MutableSequence[pb.Escalation],
        step: Step,
        rung: Escalation,
        due: dt.datetime,
        agency_id: str,
    ) -> set[str]:
        """Fire ``rung`` of ``step`` and, while a notification is refused, the rungs above it
        at once (the operator hears of every refusal). Rungs in ``escalations`` are skipped.

        Returns the rungs fired. Nothing here raises: a refused or failing notification is
        recorded, told to the operator and passed up the ladder, never the end of the case.
        """
        ladder = list(Escalation)
        fired: set[str] = set()
        for current in ladder[ladder.index(rung) :]:
            if current.value in {e.level for e in escalations if e.step == step.value}:
                continue
            fired.add(current.value)
            escalation = self.missed(escalations, step, current, agency_id)
            if current is OPERATOR:
                await self.alert_operator(escalation)
                break
            code = await self.notify(escalation.agency_id, step, current, due)
            if code is None:
                break
            self.record.note("NotificationRefused", escalation.agency_id, "",
                             f"step={step.value} level={current.value} code={code}")  # fmt: skip
            await self.alert_operator(
                pb.Escalation(step="notification", level=OPERATOR.value,
                              agency_id=escalation.agency_id,
                              at=timestamp(workflow.now()))
            )  # fmt: skip
        self.record.publish()
        return fired

    def missed(
        self,
        escalations: MutableSequence[pb.Escalation],
        step: Step,
        rung: Escalation,
        agency_id: str,
    ) -> pb.Escalation:
        """Record that ``rung`` of ``step``'s ladder fired for ``agency_id`` (appended to
        ``escalations``, an entry, a log line, a metric); the escalation recorded."""
        escalation = pb.Escalation(
            step=step.value,
            level=rung.value,
            agency_id="" if rung is OPERATOR else agency_id,
            at=timestamp(workflow.now()),
        )
        escalations.append(escalation)
        self.record.note(
            "DeadlineMissed", escalation.agency_id, "", f"step={step.value} level={rung.value}"
        )
        # "rung", not "level": the log level would overwrite it.
        workflow.logger.info("deadline_missed", extra={"step": step.value, "rung": rung.value})
        missed = workflow.metric_meter().create_counter("safeshare_deadlines_missed")
        missed.add(1, {"step": step.value, "level": rung.value, **self.tags()})
        return escalation

    async def notify(
        self,
        agency_id: str,
        step: Step,
        rung: Escalation,
        due: dt.datetime,
        *,
        never_fails: bool = True,
    ) -> str | None:
        """Tell ``agency_id`` that ``rung`` of ``step`` fired: None when it got through, else
        the failure's code.

        ``never_fails=False`` is the ladder of runs recorded before refusals climbed it: the
        notification goes to the lead's role on the lead's rung only, is retried until it
        gets through, and a refusal raises.
        """
        if never_fails:
            user, role = self.addressee(step, rung)
        else:
            user, role = "", SAFEGUARDING_LEAD_ROLE if rung is Escalation.SAFEGUARDING_LEAD else ""
        notification = agency_pb.NotifyPractitionerRequest(
            # Deterministic: a retried or replayed notification is recognised.
            notification_id=f"{self.case_ref}.{self.sender or agency_id}.{step.value}.{rung.value}",
            case_ref=self.case_ref,
            kind=agency_pb.NOTIFICATION_KIND_REMINDER
            if rung is Escalation.REMINDER
            else agency_pb.NOTIFICATION_KIND_ESCALATION,
            practitioner_user_id=user,
            practitioner_role=role,
            step=step.value,
            due_at=timestamp(due),
            text=f"SafeShare {self.noun} {self.case_ref}: {step.value.replace('_', ' ')} was "
            f"due {due:%Y-%m-%d %H:%M} UTC.",
        )
        summary = f"{rung.value} to {agency_id} for {step.value}"
        response = agency_pb.NotifyPractitionerResponse
        if not never_fails:
            await agency_calls.start(
                NOTIFY_PRACTITIONER,
                notification,
                response,
                agency_id=agency_id,
                summary=summary,
                retry=NOTIFY_RETRY,
            )
            return None
        told = await agency_calls.attempt(
            NOTIFY_PRACTITIONER,
            notification,
            response,
            agency_id=agency_id,
            summary=summary,
            retry=NOTIFY_BURST,
        )
        return told.code if isinstance(told, agency_calls.Failed) else None

    async def alert_operator(self, escalation: pb.Escalation, *, never_fails: bool = True) -> None:
        """Alert the partnership operator; a failing alert is recorded and logged, never raised.

        ``never_fails=False`` is the alert of runs recorded before: retried until it gets
        through."""
        summary = f"Alert the partnership operator: {escalation.step}"
        if not never_fails:
            await agency_calls.hub(NOTIFY_OPERATOR, escalation, summary=summary, retry=NOTIFY_RETRY)
            return
        try:
            await agency_calls.hub(NOTIFY_OPERATOR, escalation, summary=summary, retry=NOTIFY_BURST)
        except ActivityError as err:
            self.record.note(
                "OperatorAlertFailed",
                escalation.agency_id,
                "",
                f"step={escalation.step} code={error_code(err)}",
            )
            workflow.logger.warning("operator_alert_failed", extra={"step": escalation.step})
