"""An exchange waiting on people: each step runs against its deadline and climbs the
escalation ladder (``workflows.ladder``) as it passes; a re-rated urgency moves the deadline.
"""

from __future__ import annotations

import datetime as dt
import functools
from typing import TYPE_CHECKING

from temporalio import workflow

from workflows.domain.deadlines import Escalation, deadline, escalation_times
from workflows.domain.vocabulary import State, Step
from workflows.exchange import patches

if TYPE_CHECKING:
    from workflows.exchange.state import ExchangeState


async def wait_for_people(x: ExchangeState, step: Step, state: State) -> None:
    """Wait while the exchange stays in ``state`` waiting on ``step``, climbing the escalation
    ladder as its deadline passes. Returns when the state or step changes."""
    if x.step is not step:
        x.step = step
        x.step_started = (
            x.delivered_at
            if step is Step.RECIPIENT_ACKNOWLEDGES and x.delivered_at
            else workflow.now()
        )
    fired = {e.level for e in x.record.escalations if e.step == step.value}
    while x.model.state is state and x.model.step is step:
        due, rungs = _deadline(x, step)
        rungs = [(at, rung) for at, rung in rungs if rung.value not in fired]
        moved = functools.partial(_moved_on, x, state, step, x.urgency_version)
        if not rungs:
            await workflow.wait_condition(moved)
            continue
        at, rung = rungs[0]
        if await x.ladder.until(moved, step, at, rung):
            fired.add(rung.value)
            if x.patched(patches.LADDER_NEVER_FAILS):
                responsible = x.responsible(step)
                fired |= await x.ladder.climb(x.record.escalations, step, rung, due, responsible)
            else:
                await _escalate(x, step, rung, due)
    x.next_deadline = None


def _deadline(
    x: ExchangeState, step: Step
) -> tuple[dt.datetime, list[tuple[dt.datetime, Escalation]]]:
    """``step``'s deadline at the urgency now (published as the next deadline), and when each
    rung of its ladder falls due."""
    assert x.step_started is not None
    # The recipient's calendar for its acknowledgement; the holder's for its steps.
    calendar = x.recipient_calendar if step is Step.RECIPIENT_ACKNOWLEDGES else x.holder_calendar
    urgency = x.model.urgency
    timescale = x.timescales[(urgency, step)]
    due = deadline(urgency, step, x.step_started, calendar, x.timescales)
    x.next_deadline = due
    x.publish()
    rungs = escalation_times(
        due, due - x.step_started, timescale.lead_after_period, timescale.operator_after_period
    )
    return due, rungs


def _moved_on(x: ExchangeState, state: State, step: Step, urgency_version: int) -> bool:
    """Whether the exchange left ``state`` or ``step``, or its urgency changed."""
    return (
        x.model.state is not state
        or x.model.step is not step
        or x.urgency_version != urgency_version
    )


async def _escalate(x: ExchangeState, step: Step, rung: Escalation, due: dt.datetime) -> None:
    """One rung, as runs recorded before refusals climbed the ladder fired it."""
    responsible = x.responsible(step)
    escalation = x.ladder.missed(x.record.escalations, step, rung, responsible)
    if rung is Escalation.PARTNERSHIP_OPERATOR:
        await x.ladder.alert_operator(escalation, never_fails=False)
    else:
        await x.ladder.notify(responsible, step, rung, due, never_fails=False)
    x.publish()
