"""HolderExchange: one holding agency's part of a sharing case (a child workflow of the case).

consent check (holder's adapter) → if consent does not cover: the holder practitioner records
a consent decision, proposes an override (an approver decides), shares first (RED), or
declines → delivery of the approved categories only (holder's adapter extracts, recipient's
adapter stores, idempotent on the delivery id) → acknowledgement → close with the holder's
record. Every step waiting on a person runs against its deadline: reminder, then the agency's
safeguarding lead, then the partnership operator. Nothing ever silently declines.

Decisions from people arrive as Updates whose validators ask the pure model
(``workflows.domain.exchange.Exchange.check``) so a refused decision never reaches history.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import functools
from datetime import timedelta
from typing import Any, NoReturn

from temporalio import workflow
from temporalio.common import RetryPolicy, SearchAttributeUpdate
from temporalio.exceptions import ActivityError, ApplicationError

from workflows import memo_view, names, seal
from workflows import search_attributes as sa
from workflows.commands import AppliedCommands
from workflows.domain import practitioners
from workflows.domain.consent import (
    Asked,
    Cover,
    consent_cover,
    consent_cover_by_category,
    consent_facts,
    missing_decision_fields,
)
from workflows.domain.deadlines import (
    DEFAULT_TIMESCALES,
    Escalation,
    WorkingCalendar,
    calendar_of,
    deadline,
    escalation_times,
    timescales_of,
)
from workflows.domain.decision_record import holder_details, shared_basis
from workflows.domain.exchange import (
    Acknowledge,
    Command,
    ConsentChecked,
    DecideOverride,
    DeclineToShare,
    Delivered,
    Exchange,
    NothingToShare,
    ProposeOverride,
    RecordConsent,
    ShareFirst,
    StopDelivery,
    WithdrawConsent,
    WithdrawRequest,
)
from workflows.domain.override import missing_proposal_fields, missing_share_first_fields
from workflows.domain.refusal import Rule, incomplete
from workflows.domain.vocabulary import (
    Actor,
    Basis,
    Outcome,
    State,
    Step,
    WaitingOn,
    actor_of,
    proto_outcome,
    proto_state,
    proto_waiting_on,
    timestamp,
    urgency_of,
)
from workflows.ids import case_workflow_id, holder_exchange_workflow_id

# 👉 Generated protobuf modules and activity names are deterministic and side-effect free;
# passing them through the sandbox avoids re-importing them for every workflow run.
with workflow.unsafe.imports_passed_through():
    from activities.agency import (
        AGENCY_CALL_TIMEOUT,
        ApplicationErrorType,
        agency_task_queue,
        content_digest,
        error_code,
    )
    from activities.names import (
        APPROVERS_OF,
        EXTRACT_RECORDS,
        LOOKUP_CONSENT,
        NOTIFY_OPERATOR,
        NOTIFY_PRACTITIONER,
        RECEIVE_CONSENT_WITHDRAWN,
        RECEIVE_DELIVERY,
    )
    from protos.agency.v1 import agency_service_pb2 as agency_pb
    from protos.sharing.v1 import case_pb2 as pb

# 👉 Temporal is the one retry layer: adapters make each gRPC call once, with a deadline below
# the activity's start-to-close timeout, and raise non-retryable errors for refusals.
AGENCY_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=1),
    backoff_coefficient=2.0,
    maximum_interval=timedelta(minutes=1),
    non_retryable_error_types=[ApplicationErrorType.AGENCY_REJECTED],
)
# Delivery gives up after a bounded burst and tells operators, then tries again later.
DELIVERY_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=1),
    backoff_coefficient=2.0,
    maximum_interval=timedelta(seconds=30),
    maximum_attempts=6,
    non_retryable_error_types=[ApplicationErrorType.AGENCY_REJECTED],
)
DELIVERY_RETRY_PAUSE = timedelta(minutes=30)
NOTIFY_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=1), maximum_interval=timedelta(minutes=1)
)
# 👉 On an escalation path a notification that cannot get through must not hold up the
# ladder: a bounded burst, then the next rung (and the operator) hears of it instead.
NOTIFY_BURST = RetryPolicy(
    initial_interval=timedelta(seconds=1),
    backoff_coefficient=2.0,
    maximum_interval=timedelta(seconds=30),
    maximum_attempts=5,
    non_retryable_error_types=[ApplicationErrorType.AGENCY_REJECTED],
)
AGENCY_START_TO_CLOSE = AGENCY_CALL_TIMEOUT + timedelta(seconds=10)
SEALED_COMMANDS_PATCH = "gateway-sealed-commands"
"""Exchanges started before decisions were sealed take the old branch (no seal is checked)."""
PROMPT_WITHDRAWAL = "prompt-withdrawal"
"""A withdrawal takes effect at once: it cancels the first consent lookup in flight (the
exchange closes as its view says, not when the holder's system answers), and it ends a failing
delivery's pause so the recipient is asked again now, not up to 30 minutes later."""

# Workflow changes, each behind its patch so recorded histories replay on the old branch.
LADDER_NEVER_FAILS = "ladder-never-fails"
SAFEGUARDING_LEAD_ROLE = "designated_safeguarding_lead"
CANONICAL_PRACTITIONERS = "canonical-practitioners"
"""User ids and roles are compared and recorded in canonical form."""
NAMED_APPROVERS = "named-approvers"
"""An override is decided only by an approver the registry names (when it names any)."""
CONSENT_INTEGRITY = "consent-integrity"
"""The holder's system's REFUSED/WITHDRAWN binds; a recorded "given" must be confirmed by it."""
CONSENT_NOTICE_RECORDED_FIRST = "consent-notice-recorded-first"
"""A consent withdrawal is recorded before it is pushed; a refused push is retried."""
NOTICE_RETRY_PAUSE = timedelta(minutes=30)
WITHDRAWAL_KEEPS_SHARES = "withdrawal-keeps-shares"
"""A withdrawal lets an in-flight delivery land and an owed justification be decided."""
"""Notifications name who they are for; refusals climb the ladder; no alert failure fails."""
PER_CATEGORY_CONSENT = "per-category-consent"
"""What consent covers is delivered at once; every other category needs its own decision;
every delivered item carries its basis; the record shows each category asked."""
COMPACT_HISTORIES = "compact-histories"
"""Updates answer with a ``CommandResult`` (what changed), not the whole record; search
attributes are upserted once per workflow task and only where they changed; and every patch
above is taken as applied without a marker of its own.

👉 Each ``workflow.patched`` call writes a marker and an upsert of ``TemporalChangeVersion``
(two events) into a new history: an exchange started with this patch records one marker for
all the patches named above. A patch added later is checked with ``workflow.patched`` itself:
histories recorded with this one predate it."""


@workflow.defn(name=names.HOLDER_EXCHANGE)
class HolderExchange:
    """One holder's exchange. Its result is the holder's part of the decision record."""

    @workflow.init
    def __init__(self, exchange: pb.HolderExchangeInput) -> None:
        self._input = exchange
        self._request = exchange.request
        self._holder = exchange.holding_agency_id
        self._recipient = exchange.request.requesting_agency_id
        self._case_ref = exchange.case_ref
        # 👉 The calendars and timescales the protocol gate resolved when the case opened, as
        # recorded data; an exchange opened before cases recorded them keeps the defaults.
        self._holder_calendar = (
            calendar_of(exchange.holder_calendar)
            if exchange.HasField("holder_calendar")
            else WorkingCalendar()
        )
        self._recipient_calendar = (
            calendar_of(exchange.recipient_calendar)
            if exchange.HasField("recipient_calendar")
            else self._holder_calendar
        )
        self._timescales = (
            timescales_of(exchange.timescales)
            if exchange.HasField("timescales")
            else DEFAULT_TIMESCALES
        )
        self._model = Exchange(
            holder=self._holder,
            recipient=self._recipient,
            urgency=urgency_of(exchange.urgency or exchange.request.urgency),
        )
        self._record = pb.HolderRecord(holding_agency_id=self._holder)
        self._urgency_version = 0
        self._step: Step | None = None
        self._step_started: dt.datetime | None = None
        self._next_deadline: dt.datetime | None = None
        self._delivered_at: dt.datetime | None = None
        self._delivering_since: dt.datetime | None = None
        self._operator_alerted = False
        self._consent_integrity = False
        self._notice_pending = False
        self._notice_retries: asyncio.Task[None] | None = None
        self._delivery_ids: list[str] = []
        """Per category: every delivery made, in order."""
        self._bases: dict[str, pb.SharingBasis] = {}
        """Per category: the basis of each authorised category, as it was authorised."""
        self._commands = AppliedCommands()
        """Which command ids this run has applied (``workflows.commands``)."""
        self._prompt_withdrawal = workflow.patched(PROMPT_WITHDRAWAL)
        """The newest patch: it implies every one before it (one marker, not two)."""
        self._views = self._prompt_withdrawal or workflow.patched(memo_view.PATCH)
        """The exchange keeps its record in its memo (``workflows.memo_view``); a newer patch
        than compact histories, which it implies (one marker, not two)."""
        self._compact = self._views or workflow.patched(COMPACT_HISTORIES)
        self._sealed = self._patched(SEALED_COMMANDS_PATCH)
        """Commands must carry the gateway's seal (every exchange started since sealing)."""
        self._withdrawal_retried = False
        """A withdrawal has already cut one delivery pause short (prompt withdrawal)."""
        self._attributes: list[SearchAttributeUpdate[Any]] | None = None
        """Search attributes published but not upserted yet (compact histories)."""
        self._upserter: asyncio.Task[None] | None = None
        self._memo = memo_view.ViewInMemo(self._view) if self._views else None
        """The holder's record, kept in the exchange's memo for readers that need no worker."""

    # -- the run ------------------------------------------------------------------------

    @workflow.run
    async def run(self, exchange: pb.HolderExchangeInput) -> pb.HolderRecord:
        """Run this holder's exchange to its close and return the holder's record."""
        if self._memo is not None:
            self._memo.start()
        if self._sealed:
            self._require_case_parent()
        if self._patched(PER_CATEGORY_CONSENT):
            self._model.per_category = True
            self._model.asked = frozenset(self._asked_names())
            self._record.categories.extend(
                pb.CategoryDecision(category=c) for c in self._asked_categories()
            )
        self._publish()
        await self._check_consent()
        while self._model.state is not State.CLOSED:
            state = self._model.state
            if state is State.AWAITING_CONSENT_DECISION:
                await self._wait_for_people(Step.HOLDER_RESPONDS, state)
            elif state is State.AWAITING_OVERRIDE_DECISION:
                await self._wait_for_people(Step.OVERRIDE_DECISION, state)
            elif state is State.DELIVERING:
                await self._deliver()
            elif state is State.AWAITING_ACKNOWLEDGEMENT:
                step = (
                    Step.OVERRIDE_DECISION
                    if self._model.justification_pending
                    else Step.RECIPIENT_ACKNOWLEDGES
                )
                await self._wait_for_people(step, state)
        # 👉 Let a running update handler (e.g. a consent-withdrawal notice) finish before
        # the workflow completes, so its caller gets its result.
        await workflow.wait_condition(workflow.all_handlers_finished)
        # A refused consent-withdrawal notice is still being pushed: the exchange's record
        # is final only once the recipient has been told.
        await workflow.wait_condition(lambda: not self._notice_pending)
        return self._finish()

    async def _check_consent(self) -> None:
        lookup = workflow.start_activity(
            LOOKUP_CONSENT,
            agency_pb.LookupConsentRequest(
                case_ref=self._case_ref,
                subjects=self._request.subjects,
                purpose=self._request.purpose,
                recipient_agency_id=self._recipient,
                categories=[c.category for c in self._request.categories],
            ),
            task_queue=agency_task_queue(self._holder),
            result_type=agency_pb.LookupConsentResponse,
            start_to_close_timeout=AGENCY_START_TO_CLOSE,
            retry_policy=AGENCY_RETRY,
            summary=f"Look up consent at {self._holder}",
        )
        if self._prompt_withdrawal:
            # 👉 A withdrawal closes the exchange at once (its view says CLOSED from then): the
            # lookup in flight is cancelled rather than waited for, so the workflow ends too.
            await workflow.wait_condition(
                lambda: lookup.done() or self._model.state is State.CLOSED
            )
            if not lookup.done():
                lookup.cancel()
                with contextlib.suppress(ActivityError, asyncio.CancelledError):
                    await lookup
                self._note("ConsentLookupCancelled", self._holder, "", "withdrawn")
                return
        try:
            response = await lookup
        except ActivityError as err:
            self._nothing_to_share(f"consent_lookup_refused:{error_code(err)}")
            return
        if self._model.check(ConsentChecked(covers=False)) is not None:
            return  # withdrawn while the lookup ran
        consent = response.consent
        self._record.consent.CopyFrom(consent)
        cover = self._cover(consent)
        covered: frozenset[str] = frozenset()
        detail = ""
        if self._model.per_category:
            by_category = consent_cover_by_category(consent_facts(consent), self._asked(consent))
            covered = frozenset(c for c, found in by_category.items() if found.covers)
            detail = f" covered={len(covered)}/{len(by_category)}"
        self._note("ConsentChecked", self._holder, "",
                   f"status={pb.ConsentStatus.Name(consent.status)} covers={cover.covers}"
                   + detail + " " + " ".join(cover.reasons))  # fmt: skip
        self._consent_integrity = self._patched(CONSENT_INTEGRITY)
        status = pb.ConsentStatus.Name(consent.status).removeprefix("CONSENT_STATUS_")
        self._model.apply(
            ConsentChecked(
                covers=cover.covers,
                system_status=status if self._consent_integrity else "",
                covered=covered,
            )
        )
        self._publish()

    def _asked_categories(self) -> list[pb.InformationCategory.ValueType]:
        return list(dict.fromkeys(c.category for c in self._request.categories))

    def _asked_names(self) -> list[str]:
        return [pb.InformationCategory.Name(c) for c in self._asked_categories()]

    def _asked(self, consent: pb.ConsentRecord) -> Asked:
        return Asked(
            purpose=pb.Purpose.Name(self._request.purpose),
            recipient=self._recipient,
            categories=set(self._asked_names()),
            at=workflow.now(),
        )

    def _cover(self, consent: pb.ConsentRecord) -> Cover:
        categories = {pb.InformationCategory.Name(c.category) for c in self._request.categories}
        if self._model.per_category and self._model.authorised:
            # Part is shared on consent already: a recorded consent need cover only the rest.
            categories = set(self._model.undecided)
        return consent_cover(
            consent_facts(consent),
            Asked(
                purpose=pb.Purpose.Name(self._request.purpose),
                recipient=self._recipient,
                categories=categories,
                at=workflow.now(),
            ),
        )

    # -- deadlines, reminders and escalation ----------------------------------------------

    async def _wait_for_people(self, step: Step, state: State) -> None:
        """Wait while the exchange stays in ``state`` waiting on ``step``, climbing the
        escalation ladder as its deadline passes. Returns when the state or step changes."""
        if self._step is not step:
            self._step = step
            self._step_started = (
                self._delivered_at
                if step is Step.RECIPIENT_ACKNOWLEDGES and self._delivered_at
                else workflow.now()
            )
        fired = {e.level for e in self._record.escalations if e.step == step.value}
        while self._model.state is state and self._current_step() is step:
            assert self._step_started is not None
            # The recipient's calendar for its acknowledgement; the holder's for its steps.
            calendar = (
                self._recipient_calendar
                if step is Step.RECIPIENT_ACKNOWLEDGES
                else self._holder_calendar
            )
            urgency = self._model.urgency
            timescale = self._timescales[(urgency, step)]
            due = deadline(urgency, step, self._step_started, calendar, self._timescales)
            self._next_deadline = due
            self._publish()
            ladder = escalation_times(
                due,
                due - self._step_started,
                timescale.lead_after_period,
                timescale.operator_after_period,
            )
            rungs = [(at, rung) for at, rung in ladder if rung.value not in fired]
            moved = functools.partial(self._moved_on, state, step, self._urgency_version)
            if not rungs:
                await workflow.wait_condition(moved)
                continue
            at, rung = rungs[0]
            try:
                await workflow.wait_condition(
                    moved,
                    timeout=max(at - workflow.now(), timedelta(seconds=1)),
                    timeout_summary=f"{step.value} {rung.value} due",
                )
            except TimeoutError:
                fired.add(rung.value)
                if self._patched(LADDER_NEVER_FAILS):
                    fired |= await self._climb(step, rung, due)
                else:
                    await self._escalate(step, rung, due)
        self._next_deadline = None

    def _moved_on(self, state: State, step: Step, urgency_version: int) -> bool:
        """Whether the exchange left ``state`` or ``step``, or its urgency changed."""
        return (
            self._model.state is not state
            or self._current_step() is not step
            or self._urgency_version != urgency_version
        )

    def _current_step(self) -> Step | None:
        state = self._model.state
        if state is State.AWAITING_CONSENT_DECISION:
            return Step.HOLDER_RESPONDS
        if state is State.AWAITING_OVERRIDE_DECISION:
            return Step.OVERRIDE_DECISION
        if state is State.AWAITING_ACKNOWLEDGEMENT:
            if self._model.justification_pending:
                return Step.OVERRIDE_DECISION
            return Step.RECIPIENT_ACKNOWLEDGES
        return None

    async def _escalate(self, step: Step, rung: Escalation, due: dt.datetime) -> None:
        responsible = self._recipient if step is Step.RECIPIENT_ACKNOWLEDGES else self._holder
        escalation = pb.Escalation(
            step=step.value,
            level=rung.value,
            agency_id="" if rung is Escalation.PARTNERSHIP_OPERATOR else responsible,
            at=timestamp(workflow.now()),
        )
        self._record.escalations.append(escalation)
        self._note(
            "DeadlineMissed", escalation.agency_id, "", f"step={step.value} level={rung.value}"
        )
        # "rung", not "level": the log level would overwrite it.
        workflow.logger.info("deadline_missed", extra={"step": step.value, "rung": rung.value})
        missed = workflow.metric_meter().create_counter("safeshare_deadlines_missed")
        missed.add(
            1, {"step": step.value, "level": rung.value, "urgency": self._model.urgency.value}
        )
        if rung is Escalation.PARTNERSHIP_OPERATOR:
            await self._alert_operator(escalation)
        else:
            await self._notify(responsible, step, rung, due)
        self._publish()

    async def _climb(self, step: Step, rung: Escalation, due: dt.datetime) -> set[str]:
        """Fire ``rung`` and, while a notification is refused, the rungs above it at once.

        Returns the rungs fired. Nothing here raises: a refused or failing notification is
        recorded, told to the operator and passed up the ladder, never the end of the case.
        """
        ladder = list(Escalation)
        fired: set[str] = set()
        for current in ladder[ladder.index(rung) :]:
            if current.value in {e.level for e in self._record.escalations if e.step == step.value}:
                continue
            fired.add(current.value)
            escalation = self._missed(step, current)
            if current is Escalation.PARTNERSHIP_OPERATOR:
                await self._alert_operator_safely(escalation)
                break
            code = await self._notify_safely(escalation.agency_id, step, current, due)
            if code is None:
                break
            self._note("NotificationRefused", escalation.agency_id, "",
                       f"step={step.value} level={current.value} code={code}")  # fmt: skip
            operator = Escalation.PARTNERSHIP_OPERATOR.value
            await self._alert_operator_safely(
                pb.Escalation(step="notification", level=operator, agency_id=escalation.agency_id,
                              at=timestamp(workflow.now()))
            )  # fmt: skip
        self._publish()
        return fired

    def _missed(self, step: Step, rung: Escalation) -> pb.Escalation:
        """Record that ``rung`` of ``step``'s ladder fired (the record, log and metric)."""
        responsible = self._recipient if step is Step.RECIPIENT_ACKNOWLEDGES else self._holder
        escalation = pb.Escalation(
            step=step.value,
            level=rung.value,
            agency_id="" if rung is Escalation.PARTNERSHIP_OPERATOR else responsible,
            at=timestamp(workflow.now()),
        )
        self._record.escalations.append(escalation)
        self._note(
            "DeadlineMissed", escalation.agency_id, "", f"step={step.value} level={rung.value}"
        )
        # "rung", not "level": the log level would overwrite it.
        workflow.logger.info("deadline_missed", extra={"step": step.value, "rung": rung.value})
        missed = workflow.metric_meter().create_counter("safeshare_deadlines_missed")
        missed.add(
            1, {"step": step.value, "level": rung.value, "urgency": self._model.urgency.value}
        )
        return escalation

    def _addressee(self, step: Step, rung: Escalation) -> tuple[str, str]:
        """Who a notification is for, as ``agency.v1`` requires one: (user id, role).

        The reminder goes to the practitioner whose move it is when the case knows them (the
        requester for an acknowledgement, the proposer or the share-first decider for an
        override); otherwise, and for the lead's rung, to the agency's safeguarding lead.
        """
        if rung is Escalation.REMINDER:
            user = ""
            if step is Step.RECIPIENT_ACKNOWLEDGES:
                user = self._request.requester.user_id
            elif step is Step.OVERRIDE_DECISION:
                user = (
                    self._record.override_proposal.actor.practitioner.user_id
                    or self._record.share_first.actor.practitioner.user_id
                )
            if user:
                return user, ""
        return "", SAFEGUARDING_LEAD_ROLE

    async def _notify_safely(
        self, agency_id: str, step: Step, rung: Escalation, due: dt.datetime
    ) -> str | None:
        """Send one notification; ``None`` when it got through, else the failure's code."""
        user, role = self._addressee(step, rung)
        try:
            await workflow.execute_activity(
                NOTIFY_PRACTITIONER,
                agency_pb.NotifyPractitionerRequest(
                    notification_id=f"{self._case_ref}.{self._holder}.{step.value}.{rung.value}",
                    case_ref=self._case_ref,
                    kind=agency_pb.NOTIFICATION_KIND_REMINDER
                    if rung is Escalation.REMINDER
                    else agency_pb.NOTIFICATION_KIND_ESCALATION,
                    practitioner_user_id=user,
                    practitioner_role=role,
                    step=step.value,
                    due_at=timestamp(due),
                    text=f"SafeShare case {self._case_ref}: {step.value.replace('_', ' ')} was "
                    f"due {due:%Y-%m-%d %H:%M} UTC.",
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

    async def _alert_operator_safely(self, escalation: pb.Escalation) -> None:
        """Alert the operator; a failing alert is recorded and logged, never raised."""
        try:
            await workflow.execute_activity(
                NOTIFY_OPERATOR,
                escalation,
                start_to_close_timeout=timedelta(seconds=30),
                retry_policy=NOTIFY_BURST,
                summary=f"Alert the partnership operator: {escalation.step}",
            )
        except ActivityError as err:
            self._note("OperatorAlertFailed", escalation.agency_id, "",
                       f"step={escalation.step} code={error_code(err)}")  # fmt: skip
            workflow.logger.warning("operator_alert_failed", extra={"step": escalation.step})

    async def _notify(self, agency_id: str, step: Step, rung: Escalation, due: dt.datetime) -> None:
        kind = (
            agency_pb.NOTIFICATION_KIND_REMINDER
            if rung is Escalation.REMINDER
            else agency_pb.NOTIFICATION_KIND_ESCALATION
        )
        role = "designated_safeguarding_lead" if rung is Escalation.SAFEGUARDING_LEAD else ""
        await workflow.execute_activity(
            NOTIFY_PRACTITIONER,
            agency_pb.NotifyPractitionerRequest(
                # Deterministic: a retried or replayed notification is recognised.
                notification_id=f"{self._case_ref}.{self._holder}.{step.value}.{rung.value}",
                case_ref=self._case_ref,
                kind=kind,
                practitioner_role=role,
                step=step.value,
                due_at=timestamp(due),
                text=f"SafeShare case {self._case_ref}: {step.value.replace('_', ' ')} was due "
                f"{due:%Y-%m-%d %H:%M} UTC.",
            ),
            task_queue=agency_task_queue(agency_id),
            result_type=agency_pb.NotifyPractitionerResponse,
            start_to_close_timeout=AGENCY_START_TO_CLOSE,
            retry_policy=NOTIFY_RETRY,
            summary=f"{rung.value} to {agency_id} for {step.value}",
        )

    async def _alert_operator(self, escalation: pb.Escalation) -> None:
        await workflow.execute_activity(
            NOTIFY_OPERATOR,
            escalation,
            start_to_close_timeout=timedelta(seconds=30),
            retry_policy=NOTIFY_RETRY,
            summary=f"Alert the partnership operator: {escalation.step}",
        )

    # -- delivery -------------------------------------------------------------------------

    def _approved_categories(self) -> list[pb.InformationCategory.ValueType]:
        if self._model.per_category:
            # What a basis authorises and has not been delivered yet.
            return [
                c
                for c in self._asked_categories()
                if pb.InformationCategory.Name(c) in self._model.authorised
                and pb.InformationCategory.Name(c) not in self._model.delivered_categories
            ]
        asked = [c.category for c in self._request.categories]
        if self._record.HasField("share_first"):
            minimum = set(self._record.share_first.minimum_data_set)
        elif self._record.HasField("override_decision") and self._model.override_approved:
            minimum = set(self._record.override_proposal.minimum_data_set)
        else:
            return asked
        return [c for c in asked if c in minimum]

    async def _deliver(self) -> None:
        self._delivering_since = workflow.now()  # for the delivery latency metric only
        categories = self._approved_categories()
        try:
            extracted = await workflow.execute_activity(
                EXTRACT_RECORDS,
                agency_pb.ExtractRecordsRequest(
                    case_ref=self._case_ref, subjects=self._request.subjects, categories=categories
                ),
                task_queue=agency_task_queue(self._holder),
                result_type=agency_pb.ExtractRecordsResponse,
                start_to_close_timeout=AGENCY_START_TO_CLOSE,
                heartbeat_timeout=timedelta(seconds=10),
                retry_policy=AGENCY_RETRY,
                summary=f"Extract {len(categories)} approved categories at {self._holder}",
            )
        except ActivityError as err:
            self._nothing_to_share(f"extraction_refused:{error_code(err)}")
            return
        if self._model.state is not State.DELIVERING:
            return
        if self._model.withdrawn:  # withdrawn while the records were extracted
            self._stop_delivery("withdrawn_before_delivery")
            return
        # Defence in depth: nothing outside the approved categories leaves the hub.
        items = [item for item in extracted.items if item.category in set(categories)]
        number = len(self._delivery_ids) + 1 if self._model.per_category else 1
        request = agency_pb.ReceiveDeliveryRequest(
            # 👉 Derived from the case, not random: every retry and every replay presents
            # the same id, so the recipient stores the delivery once.
            delivery_id=f"{self._case_ref}.{self._holder}.{number}",
            case_ref=self._case_ref,
            holding_agency_id=self._holder,
            subjects=self._request.subjects,
            items=items,
            content_digest=content_digest(items),
        )
        if extracted.claim_ref:
            request.claim_ref = extracted.claim_ref
            request.claim_digest = extracted.claim_digest
        if self._model.per_category:
            # Every item travels with the basis that authorised its category.
            request.item_bases.extend(
                agency_pb.ItemBasis(
                    item_id=item.item_id,
                    basis=self._bases[pb.InformationCategory.Name(item.category)],
                )
                for item in items
            )
        while self._model.state is State.DELIVERING:
            try:
                response = await workflow.execute_activity(
                    RECEIVE_DELIVERY,
                    request,
                    task_queue=agency_task_queue(self._recipient),
                    result_type=agency_pb.ReceiveDeliveryResponse,
                    start_to_close_timeout=AGENCY_START_TO_CLOSE,
                    # Adapters heartbeat while the call is in flight: a dead adapter is
                    # noticed in seconds and the delivery retried elsewhere.
                    heartbeat_timeout=timedelta(seconds=10),
                    retry_policy=DELIVERY_RETRY,
                    summary=f"Deliver to {self._recipient}",
                )
            except ActivityError as err:
                if self._model.withdrawn and _refused(err):
                    # The recipient's system refused it (nothing stored) and the request was
                    # withdrawn meanwhile: nothing was shared and nothing more is tried.
                    self._stop_delivery(f"withdrawn_delivery_refused:{error_code(err)}")
                    return
                # 👉 Otherwise, withdrawn or not, this delivery may have been stored (a lost
                # reply): it is tried again, under the same id, until the recipient answers, so
                # the record says what the recipient holds.
                await self._delivery_failing(error_code(err))
                continue
            self._delivered(response.receipt, items, categories)
            return

    async def _delivery_failing(self, code: str) -> None:
        """A delivery that cannot succeed now escalates to operators, then tries again."""
        self._record.delivery_failures += 1
        self._note("DeliveryFailing", self._recipient, "", f"code={code}")
        if not self._operator_alerted:
            self._operator_alerted = True
            escalation = pb.Escalation(
                step="delivery", level=Escalation.PARTNERSHIP_OPERATOR.value,
                agency_id=self._recipient, at=timestamp(workflow.now()),
            )  # fmt: skip
            self._record.escalations.append(escalation)
            self._publish()
            if self._patched(LADDER_NEVER_FAILS):
                await self._alert_operator_safely(escalation)
            else:
                await self._alert_operator(escalation)
        await self._pause_delivery()

    async def _pause_delivery(self) -> None:
        def withdrawn_now() -> bool:
            # 👉 A withdrawal ends this pause once: the recipient is asked again at once, under
            # the same delivery id, and its answer resolves the exchange (stored: recorded as
            # delivered with the withdrawal; refused: nothing was shared). A recipient still
            # down leaves the usual pauses: a lost reply may have stored it.
            return (
                self._prompt_withdrawal and self._model.withdrawn and not self._withdrawal_retried
            )

        with contextlib.suppress(TimeoutError):
            await workflow.wait_condition(
                lambda: self._model.state is not State.DELIVERING or withdrawn_now(),
                timeout=DELIVERY_RETRY_PAUSE,
                timeout_summary="Retry the failing delivery",
            )
        if withdrawn_now():
            self._withdrawal_retried = True
            self._note("DeliveryRetriedForWithdrawal", self._recipient, "", "")

    def _delivered(
        self,
        receipt: pb.DeliveryReceipt,
        items: list[pb.RecordItem],
        categories: list[pb.InformationCategory.ValueType],
    ) -> None:
        self._record.receipt.CopyFrom(receipt)
        delivered = frozenset(pb.InformationCategory.Name(c) for c in categories)
        if self._model.per_category:
            self._delivery_ids.append(receipt.delivery_id)
            for decision in self._record.categories:
                if pb.InformationCategory.Name(decision.category) in delivered:
                    decision.shared_at.CopyFrom(timestamp(workflow.now()))
                    decision.delivery_id = receipt.delivery_id
        self._record.shared_items.extend(
            pb.SharedItem(item_id=i.item_id, category=i.category, kind=i.kind,
                          holding_agency_id=self._holder)
            for i in items
        )  # fmt: skip
        self._note("RecordsDelivered", self._recipient, "",
                   f"delivery_id={receipt.delivery_id} items={receipt.item_count} "
                   f"digest={receipt.content_digest} charge=none")  # fmt: skip
        self._delivered_at = workflow.now()
        latency = workflow.metric_meter().create_histogram_timedelta(
            "safeshare_delivery_latency", "From the DELIVERING step to the recipient's receipt."
        )
        latency.record(self._delivered_at - (self._delivering_since or self._delivered_at))
        self._operator_alerted = False
        # 👉 The exchange may have moved while the delivery was in flight: what landed is
        # recorded above whatever the model says now, and a refusal never fails the task.
        command = Delivered(delivered if self._model.per_category else None)
        if refusal := self._model.check(command):
            self._note("ModelRefused", self._holder, "", f"Delivered: {refusal.rule.value}")
        else:
            self._model.apply(command)
        self._publish()

    def _stop_delivery(self, reason: str) -> None:
        if self._model.check(StopDelivery()) is not None:
            return
        self._note("DeliveryStopped", self._recipient, "", reason)
        self._record.basis = f"Withdrawn by {self._recipient}"
        self._model.apply(StopDelivery())
        self._publish()

    def _nothing_to_share(self, reason: str) -> None:
        if self._model.check(NothingToShare()) is not None:
            return
        self._note("NothingToShare", self._holder, "", reason)
        if not self._model.delivered_categories:
            self._record.basis = f"Not shared by {self._holder}: {reason}"
        self._model.apply(NothingToShare())
        self._publish()

    # -- decisions from people (Updates with validators) ----------------------------------

    def _require_case_parent(self) -> None:
        """Only a case starts an exchange: Temporal sets the parent, a client cannot.

        The exchange trusts its input (the request, the gateway's key) because the case that
        started it checked the gateway's seal on the request and read the key in its gate.
        """
        parent = workflow.info().parent
        own_id = holder_exchange_workflow_id(self._case_ref, self._holder)
        if (
            parent is None
            or parent.workflow_id != case_workflow_id(self._case_ref)
            or workflow.info().workflow_id != own_id
        ):
            raise ApplicationError(
                "an exchange is started by its case only", type="NotStartedByCase",
                non_retryable=True,
            )  # fmt: skip

    def _check_seal(self, command: Any) -> None:
        """Refuse the update in hand unless the gateway sealed ``command`` for this exchange."""
        # 👉 Validators run live only (never on replay): every live decision is checked.
        if not self._sealed:
            return
        update = workflow.current_update_info()
        try:
            seal.check(self._input.gateway_public_key, workflow.info().workflow_id, command,
                       update.id if update else "")  # fmt: skip
        except seal.SealError as err:
            raise ApplicationError(str(err), type=Rule.NOT_PERMITTED.value) from None

    def _forwarded_by_case(self, command: Any) -> bool:
        """Whether a signal carries the gateway's seal on the case's own update (the case
        forwards its requester's commands; a signal from anyone else is ignored)."""
        # A signal handler also runs on replay: histories from a hub that ran without a key
        # (``unsealed_commands_accepted``; none is made now) replay as they ran. A live case
        # forwards only what its own validators checked.
        if not self._sealed or self._input.unsealed_commands_accepted:
            return True
        try:
            seal.check(self._input.gateway_public_key, case_workflow_id(self._case_ref), command)
        except seal.SealError:
            workflow.logger.warning("signal without the gateway's seal ignored")
            return False
        return True

    def _validate(self, command: Command) -> None:
        # 👉 Validators run before anything is written to history: a refused decision leaves
        # no trace in the case and the caller hears why at once.
        refusal = self._model.check(command)
        if refusal is not None:
            raise ApplicationError(refusal.message, type=refusal.rule.value)

    @workflow.update
    async def record_consent(
        self, decision: pb.ConsentDecision
    ) -> pb.HolderRecord | pb.CommandResult:
        """The holder practitioner records consent, or why it is not being sought."""
        self._commands.applied()
        since = len(self._record.entries)
        decided = _copy(decision)
        if self._patched(CANONICAL_PRACTITIONERS):
            practitioners.canonicalize(decided.actor.practitioner)
        decided.decided_at.CopyFrom(timestamp(workflow.now()))
        confirmed: pb.ConsentRecord | None = None
        if (
            self._consent_integrity
            and decided.HasField("consent")
            and decided.consent.status == pb.CONSENT_STATUS_GIVEN
        ):
            confirmed = await self._confirmed_consent(decided)
        self._record.consent_decision.CopyFrom(decided)
        if confirmed is not None:
            # The holder's system confirmed it: its record is the consent the case relies on.
            cover = self._cover(confirmed)
            covers, detail = cover.covers, " ".join((*cover.reasons, "confirmed_by_system"))
            self._record.consent.CopyFrom(confirmed)
        elif decided.HasField("consent"):
            cover = self._cover(decided.consent)
            covers, detail = cover.covers, " ".join(cover.reasons)
            self._record.consent.CopyFrom(decided.consent)
        else:
            covers = False
            detail = pb.NotSoughtReason.Name(decided.not_sought.reason)
            self._record.consent.status = pb.CONSENT_STATUS_NOT_SOUGHT
        self._note("ConsentRecorded", decided.actor.agency_id, decided.actor.practitioner.user_id,
                   f"covers={covers} {detail}".strip())  # fmt: skip
        self._model.apply(self._consent_command(decided, covers))
        self._publish()
        return self._answer(since)

    async def _confirmed_consent(self, decided: pb.ConsentDecision) -> pb.ConsentRecord:
        """The holder's system's own record of a consent a practitioner records as given,
        looked up afresh through the holder's adapter.

        Raises:
            ApplicationError: the system does not confirm a consent that covers the request,
                cannot be asked, or the exchange moved on while it was asked.
        """
        try:
            response = await workflow.execute_activity(
                LOOKUP_CONSENT,
                agency_pb.LookupConsentRequest(
                    case_ref=self._case_ref,
                    subjects=self._request.subjects,
                    purpose=self._request.purpose,
                    recipient_agency_id=self._recipient,
                    categories=[c.category for c in self._request.categories],
                ),
                task_queue=agency_task_queue(self._holder),
                result_type=agency_pb.LookupConsentResponse,
                start_to_close_timeout=AGENCY_START_TO_CLOSE,
                retry_policy=NOTIFY_BURST,
                summary=f"Confirm recorded consent at {self._holder}",
            )
        except ActivityError as err:
            reason = f"consent_not_confirmed:lookup_{error_code(err)}"
            self._refuse_consent(decided, reason)
        cover = self._cover(response.consent)
        if not cover.covers:
            self._refuse_consent(decided, " ".join(("consent_not_confirmed", *cover.reasons)))
        refusal = self._model.check(self._consent_command(decided, True))
        if refusal is not None:  # the exchange moved on while the system was asked
            raise ApplicationError(refusal.message, type=refusal.rule.value)
        return response.consent

    def _refuse_consent(self, decided: pb.ConsentDecision, reason: str) -> NoReturn:
        self._note("ConsentNotConfirmed", decided.actor.agency_id,
                   decided.actor.practitioner.user_id, reason)  # fmt: skip
        self._publish()
        raise ApplicationError(
            "the holder's system does not confirm this consent: " + reason,
            type=Rule.NOT_PERMITTED.value,
        )

    @record_consent.validator
    def _validate_record_consent(self, decision: pb.ConsentDecision) -> None:
        self._check_seal(decision)
        self._commands.check()
        decision = _canonical_copy(
            decision, lambda m: m.actor.practitioner, "decision.actor.practitioner"
        )
        if refusal := incomplete(missing_decision_fields(decision)):
            raise ApplicationError(refusal.message, type=refusal.rule.value)
        covers = decision.HasField("consent") and self._cover(decision.consent).covers
        self._validate(self._consent_command(decision, covers))

    def _consent_command(self, decision: pb.ConsentDecision, covers: bool) -> RecordConsent:
        return RecordConsent(
            actor_of(decision.actor),
            covers=covers,
            not_sought=decision.HasField("not_sought"),
        )

    @workflow.update
    async def propose_override(
        self, proposal: pb.OverrideProposal
    ) -> pb.HolderRecord | pb.CommandResult:
        """The holder proposes sharing without consent, with the full justification."""
        self._commands.applied()
        since = len(self._record.entries)
        proposed = _copy(proposal)
        if self._patched(CANONICAL_PRACTITIONERS):
            practitioners.canonicalize(proposed.actor.practitioner)
        proposed.proposed_at.CopyFrom(timestamp(workflow.now()))
        self._record.override_proposal.CopyFrom(proposed)
        reason = pb.OverrideReason.Name(proposed.reason_code)
        overriding = pb.ConsentStatus.Name(proposed.consent_state_overridden)
        self._note("OverrideProposed", proposed.actor.agency_id,
                   proposed.actor.practitioner.user_id,
                   f"reason={reason} overriding={overriding}")  # fmt: skip
        self._model.apply(self._proposal_command(proposed))
        self._publish()
        workflow.metric_meter().create_counter("safeshare_overrides").add(1, {"event": "proposed"})
        return self._answer(since)

    @propose_override.validator
    def _validate_propose_override(self, proposal: pb.OverrideProposal) -> None:
        self._check_seal(proposal)
        self._commands.check()
        proposal = _canonical_copy(
            proposal, lambda m: m.actor.practitioner, "proposal.actor.practitioner"
        )
        self._validate(self._proposal_command(proposal))

    def _proposal_command(self, proposal: pb.OverrideProposal) -> ProposeOverride:
        asked = {c.category for c in self._request.categories}
        missing = missing_proposal_fields(proposal, asked)
        return ProposeOverride(
            actor_of(proposal.actor),
            missing=tuple(missing),
            categories=frozenset(
                pb.InformationCategory.Name(c) for c in proposal.minimum_data_set if c in asked
            ),
        )

    @workflow.update
    async def decide_override(
        self, decision: pb.OverrideDecision
    ) -> pb.HolderRecord | pb.CommandResult:
        """An approver (a different user, in an approver role) approves or rejects."""
        self._commands.applied()
        since = len(self._record.entries)
        decided = _copy(decision)
        if self._patched(CANONICAL_PRACTITIONERS):
            practitioners.canonicalize(decided.actor.practitioner)
        if self._patched(NAMED_APPROVERS):
            await self._named_approver(decided)
        decided.decided_at.CopyFrom(timestamp(workflow.now()))
        self._record.override_decision.CopyFrom(decided)
        event = "OverrideApproved" if decided.approve else "OverrideRejected"
        self._note(event, decided.actor.agency_id, decided.actor.practitioner.user_id,
                   f"role={decided.actor.practitioner.role}")  # fmt: skip
        was_shared_first = self._model.shared_first
        self._model.apply(DecideOverride(actor_of(decided.actor), decided.approve))
        overrides = workflow.metric_meter().create_counter("safeshare_overrides")
        overrides.add(1, {"event": "approved" if decided.approve else "rejected"})
        if decided.approve:
            self._record.override_used = True
        elif not was_shared_first:
            self._record.basis = f"Not shared by {self._holder}: override_rejected"
        self._publish()
        if was_shared_first and not decided.approve:
            # Shared in a RED emergency and the justification was then rejected: operators review.
            escalation = pb.Escalation(
                step="override_decision", level=Escalation.PARTNERSHIP_OPERATOR.value,
                agency_id=self._holder, at=timestamp(workflow.now()),
            )  # fmt: skip
            self._record.escalations.append(escalation)
            if self._patched(LADDER_NEVER_FAILS):
                await self._alert_operator_safely(escalation)
            else:
                await self._alert_operator(escalation)
        return self._answer(since)

    async def _named_approver(self, decided: pb.OverrideDecision) -> None:
        """Refuse a decider the registry does not name as one of the holder's approvers (when
        it names any), and a decision the exchange moved past while the registry was read.

        Raises:
            ApplicationError: NotPermitted or OutOfTurn, with the reason.
        """
        try:
            named = await workflow.execute_activity(
                APPROVERS_OF,
                self._holder,
                result_type=list[str],
                start_to_close_timeout=timedelta(seconds=30),
                retry_policy=NOTIFY_BURST,
                summary=f"Who may decide {self._holder}'s overrides",
            )
        except ActivityError as err:
            raise ApplicationError(
                "the registry's approvers could not be read; try again",
                type=Rule.OUT_OF_TURN.value,
            ) from err
        approvers = {practitioners.canonical_user_id(a) for a in named} - {None}
        user = decided.actor.practitioner.user_id
        if approvers and user not in approvers:
            self._note("OverrideDecisionRefused", decided.actor.agency_id, user,
                       "not_a_named_approver")  # fmt: skip
            raise ApplicationError(
                f"not an approver the partnership registry names for {self._holder}",
                type=Rule.NOT_PERMITTED.value,
            )
        refusal = self._model.check(DecideOverride(actor_of(decided.actor), True))
        if refusal is not None:  # the exchange moved on while the registry was read
            raise ApplicationError(refusal.message, type=refusal.rule.value)

    @decide_override.validator
    def _validate_decide_override(self, decision: pb.OverrideDecision) -> None:
        self._check_seal(decision)
        self._commands.check()
        decision = _canonical_copy(
            decision, lambda m: m.actor.practitioner, "decision.actor.practitioner"
        )
        if not decision.reason:
            raise ApplicationError("required: decision.reason", type=Rule.INVALID.value)
        self._validate(DecideOverride(actor_of(decision.actor), decision.approve))

    @workflow.update
    async def share_first(
        self, decision: pb.ShareFirstDecision
    ) -> pb.HolderRecord | pb.CommandResult:
        """RED only: the holder shares now and justifies within the override deadline."""
        self._commands.applied()
        since = len(self._record.entries)
        decided = _copy(decision)
        if self._patched(CANONICAL_PRACTITIONERS):
            practitioners.canonicalize(decided.actor.practitioner)
        decided.decided_at.CopyFrom(timestamp(workflow.now()))
        self._record.share_first.CopyFrom(decided)
        self._record.override_used = True
        self._note("SharedFirst", decided.actor.agency_id, decided.actor.practitioner.user_id,
                   f"categories={len(decided.minimum_data_set)} justification_due")  # fmt: skip
        self._model.apply(self._share_first_command(decided))
        self._step = None
        self._publish()
        return self._answer(since)

    @share_first.validator
    def _validate_share_first(self, decision: pb.ShareFirstDecision) -> None:
        self._check_seal(decision)
        self._commands.check()
        decision = _canonical_copy(
            decision, lambda m: m.actor.practitioner, "decision.actor.practitioner"
        )
        self._validate(self._share_first_command(decision))

    def _share_first_command(self, decision: pb.ShareFirstDecision) -> ShareFirst:
        asked = {c.category for c in self._request.categories}
        missing = missing_share_first_fields(decision, asked)
        return ShareFirst(
            actor_of(decision.actor),
            missing=tuple(missing),
            categories=frozenset(
                pb.InformationCategory.Name(c) for c in decision.minimum_data_set if c in asked
            ),
        )

    @workflow.update
    async def decline_to_share(
        self, decision: pb.DeclineDecision
    ) -> pb.HolderRecord | pb.CommandResult:
        """The holder decides not to share, with reasons."""
        self._commands.applied()
        since = len(self._record.entries)
        decided = _copy(decision)
        if self._patched(CANONICAL_PRACTITIONERS):
            practitioners.canonicalize(decided.actor.practitioner)
        decided.decided_at.CopyFrom(timestamp(workflow.now()))
        self._record.decline.CopyFrom(decided)
        reasons = ",".join(decided.reasons)
        self._record.basis = f"Not shared by {self._holder}: declined:{reasons}"
        self._note("DeclinedToShare", decided.actor.agency_id, decided.actor.practitioner.user_id,
                   f"reasons={reasons}")  # fmt: skip
        self._model.apply(DeclineToShare(actor_of(decided.actor)))
        self._publish()
        return self._answer(since)

    @decline_to_share.validator
    def _validate_decline(self, decision: pb.DeclineDecision) -> None:
        self._check_seal(decision)
        self._commands.check()
        decision = _canonical_copy(
            decision, lambda m: m.actor.practitioner, "decision.actor.practitioner"
        )
        self._validate(DeclineToShare(actor_of(decision.actor), has_reasons=bool(decision.reasons)))

    @workflow.update
    async def acknowledge(
        self, acknowledgement: pb.Acknowledgement
    ) -> pb.HolderRecord | pb.CommandResult:
        """The recipient acknowledges the delivery (who, received or actioned, use, feedback)."""
        self._commands.applied()
        since = len(self._record.entries)
        ack = _copy(acknowledgement)
        if self._patched(CANONICAL_PRACTITIONERS):
            practitioners.canonicalize(ack.practitioner)
        ack.acknowledged_at.CopyFrom(timestamp(workflow.now()))
        ack.holding_agency_id = self._holder
        self._record.acknowledgement.CopyFrom(ack)
        self._note("Acknowledged", ack.agency_id, ack.practitioner.user_id,
                   f"status={pb.AcknowledgementStatus.Name(ack.status)}")  # fmt: skip
        self._model.apply(Acknowledge(Actor(ack.agency_id, ack.practitioner.user_id)))
        self._publish()
        return self._answer(since)

    @acknowledge.validator
    def _validate_acknowledge(self, acknowledgement: pb.Acknowledgement) -> None:
        self._check_seal(acknowledgement)
        self._commands.check()
        acknowledgement = _canonical_copy(
            acknowledgement, lambda m: m.practitioner, "acknowledgement.practitioner"
        )
        actor = Actor(acknowledgement.agency_id, acknowledgement.practitioner.user_id)
        self._validate(Acknowledge(actor))
        if acknowledgement.status == pb.ACKNOWLEDGEMENT_STATUS_UNSPECIFIED:
            raise ApplicationError("required: acknowledgement.status", type=Rule.INVALID.value)
        if not acknowledgement.practitioner.user_id:
            raise ApplicationError(
                "required: acknowledgement.practitioner.user_id", type=Rule.INVALID.value
            )

    @workflow.update
    async def withdraw_consent(
        self, withdrawal: pb.ConsentWithdrawal
    ) -> pb.HolderRecord | pb.CommandResult:
        """Consent withdrawn after delivery: record it and push it to the recipient."""
        self._commands.applied()
        since = len(self._record.entries)
        withdrawn = _copy(withdrawal)
        if self._patched(CANONICAL_PRACTITIONERS):
            practitioners.canonicalize(withdrawn.actor.practitioner)
        withdrawn.withdrawn_at.CopyFrom(timestamp(workflow.now()))
        self._model.apply(WithdrawConsent(actor_of(withdrawn.actor)))
        self._note("ConsentWithdrawn", withdrawn.actor.agency_id,
                   withdrawn.actor.practitioner.user_id, "after_delivery")  # fmt: skip
        if self._patched(CONSENT_NOTICE_RECORDED_FIRST):
            # 👉 Recorded before it is pushed: whatever the recipient's system answers, the
            # record holds the withdrawal and a repeat is rightly "already recorded".
            self._record.consent_withdrawal.CopyFrom(withdrawn)
            self._publish()
            if await self._push_consent_withdrawal():
                return self._answer(since)
            self._notice_pending = True
            escalation = pb.Escalation(
                step="consent_withdrawal", level=Escalation.PARTNERSHIP_OPERATOR.value,
                agency_id=self._recipient, at=timestamp(workflow.now()),
            )  # fmt: skip
            self._record.escalations.append(escalation)
            self._publish()
            await self._alert_operator_safely(escalation)
            self._notice_retries = asyncio.create_task(self._retry_consent_withdrawal())
            return self._answer(since)
        await workflow.execute_activity(
            RECEIVE_CONSENT_WITHDRAWN,
            agency_pb.ReceiveConsentWithdrawnRequest(
                notice_id=f"{self._case_ref}.{self._holder}.consent-withdrawn",
                case_ref=self._case_ref,
                delivery_ids=self._delivery_ids or [self._record.receipt.delivery_id],
                holding_agency_id=self._holder,
                withdrawn_at=withdrawn.withdrawn_at,
            ),
            task_queue=agency_task_queue(self._recipient),
            result_type=agency_pb.ReceiveConsentWithdrawnResponse,
            start_to_close_timeout=AGENCY_START_TO_CLOSE,
            retry_policy=AGENCY_RETRY,
            summary=f"Tell {self._recipient} consent was withdrawn",
        )
        withdrawn.recipient_notified = True
        self._record.consent_withdrawal.CopyFrom(withdrawn)
        self._note("ConsentWithdrawalDelivered", self._recipient, "", "recipient_notified")
        self._publish()
        return self._answer(since)

    async def _push_consent_withdrawal(self) -> bool:
        """Push the recorded withdrawal to the recipient: True once its system has it."""
        withdrawn = self._record.consent_withdrawal
        try:
            await workflow.execute_activity(
                RECEIVE_CONSENT_WITHDRAWN,
                agency_pb.ReceiveConsentWithdrawnRequest(
                    notice_id=f"{self._case_ref}.{self._holder}.consent-withdrawn",
                    case_ref=self._case_ref,
                    delivery_ids=self._delivery_ids or [self._record.receipt.delivery_id],
                    holding_agency_id=self._holder,
                    withdrawn_at=withdrawn.withdrawn_at,
                ),
                task_queue=agency_task_queue(self._recipient),
                result_type=agency_pb.ReceiveConsentWithdrawnResponse,
                start_to_close_timeout=AGENCY_START_TO_CLOSE,
                retry_policy=NOTIFY_BURST,
                summary=f"Tell {self._recipient} consent was withdrawn",
            )
        except ActivityError as err:
            self._note("ConsentWithdrawalNotDelivered", self._recipient, "",
                       f"code={error_code(err)}")  # fmt: skip
            self._publish()
            return False
        withdrawn.recipient_notified = True
        self._notice_pending = False
        self._note("ConsentWithdrawalDelivered", self._recipient, "", "recipient_notified")
        self._publish()
        return True

    async def _retry_consent_withdrawal(self) -> None:
        """Try the refused notice again every pause until the recipient's system takes it."""
        while not await self._push_consent_withdrawal():
            await workflow.sleep(NOTICE_RETRY_PAUSE, summary="Retry the consent-withdrawal notice")

    @withdraw_consent.validator
    def _validate_withdraw_consent(self, withdrawal: pb.ConsentWithdrawal) -> None:
        self._check_seal(withdrawal)
        self._commands.check()
        withdrawal = _canonical_copy(
            withdrawal, lambda m: m.actor.practitioner, "withdrawal.actor.practitioner"
        )
        self._validate(WithdrawConsent(actor_of(withdrawal.actor)))

    # -- from the parent case (signals: the parent validated them) ----------------------

    @workflow.signal(name=names.WITHDRAW_EXCHANGE)
    def withdraw(self, withdrawal: pb.RequestWithdrawal) -> None:
        """The requester withdrew the request (forwarded by the case)."""
        if not self._forwarded_by_case(withdrawal):
            return
        command = WithdrawRequest(
            actor_of(withdrawal.actor),
            keeps_shares=self._patched(WITHDRAWAL_KEEPS_SHARES),
        )
        refusal = self._model.check(command)
        if refusal is not None and command.keeps_shares:
            # Closing as the withdrawal arrived: the outcome stands and the record says why.
            self._note("WithdrawalNotApplied", withdrawal.actor.agency_id,
                       withdrawal.actor.practitioner.user_id, refusal.rule.value)  # fmt: skip
        if refusal is None:
            self._model.apply(command)
            if self._model.withdrawn:
                # Something was or may be shared: the share and its owed decisions stand.
                detail = "shared" if self._model.delivered else "delivery_in_flight"
            else:
                detail = ""
                self._record.basis = f"Withdrawn by {self._recipient}"
            self._note("RequestWithdrawn", withdrawal.actor.agency_id,
                       withdrawal.actor.practitioner.user_id, detail)  # fmt: skip
            self._publish()

    @workflow.signal(name=names.CHANGE_EXCHANGE_URGENCY)
    def change_urgency(self, change: pb.UrgencyChange) -> None:
        """The requester re-rated the urgency (forwarded by the case): deadlines move."""
        if not self._forwarded_by_case(change):
            return
        self._model.urgency = urgency_of(change.urgency)
        self._urgency_version += 1
        self._note("UrgencyChanged", change.actor.agency_id, change.actor.practitioner.user_id,
                   f"urgency={pb.Urgency.Name(change.urgency)}")  # fmt: skip
        self._publish()

    @workflow.query
    def holder_record(self) -> pb.HolderRecord:
        """This holder's record as it stands."""
        return self._view()

    # -- the record and the operators' view -----------------------------------------------

    def _view(self) -> pb.HolderRecord:
        view = _copy(self._record)
        view.state = proto_state(self._model.state)
        view.waiting_on = proto_waiting_on(self._waiting_on())
        view.outcome = proto_outcome(self._model.outcome)
        if self._next_deadline is not None and self._model.state is not State.CLOSED:
            view.next_deadline.CopyFrom(timestamp(self._next_deadline))
        return view

    def _answer(self, since: int) -> pb.HolderRecord | pb.CommandResult:
        """An update's answer: what it changed (compact histories), else the whole record.

        ``since`` is how many entries the record held when the update began."""
        if not self._compact:
            return self._view()
        result = pb.CommandResult(
            case_ref=self._case_ref,
            holding_agency_id=self._holder,
            state=proto_state(self._model.state),
            waiting_on=proto_waiting_on(self._waiting_on()),
            outcome=proto_outcome(self._model.outcome),
            entries=self._record.entries[since:],
            entry_number=len(self._record.entries),
        )
        if self._next_deadline is not None and self._model.state is not State.CLOSED:
            result.next_deadline.CopyFrom(timestamp(self._next_deadline))
        return result

    def _patched(self, patch: str) -> bool:
        """Whether ``patch`` (one from before compact histories) applies to this run."""
        return self._compact or workflow.patched(patch)

    def _waiting_on(self) -> WaitingOn:
        if self._model.state is State.DELIVERING and self._record.delivery_failures:
            return WaitingOn.OPERATOR
        return self._model.waiting_on

    def _finish(self) -> pb.HolderRecord:
        if not self._record.basis:
            self._record.basis = shared_basis(self._holder, self._model, self._record)
            if self._model.withdrawn:
                self._record.basis += f" Withdrawn by {self._recipient} after sharing."
        self._note("ExchangeClosed", self._holder, "",
                   f"outcome={self._model.outcome.value}")  # fmt: skip
        self._publish()
        self._upsert()  # now: nothing runs after the workflow completes
        if self._memo is not None:
            self._memo.flush()  # the last task: nothing runs after the workflow completes
        return self._view()

    def _note(self, event: str, agency_id: str, user_id: str, detail: str) -> None:
        if self._memo is not None:
            self._memo.changed()
        self._record.entries.append(
            pb.DecisionEntry(at=timestamp(workflow.now()), event=event,
                             agency_id=agency_id, user_id=user_id, detail=detail)
        )  # fmt: skip

    def _sync_categories(self) -> None:
        """Per category asked: the basis that authorised it (fixed when it was authorised)
        or why it is not shared."""
        for category, kind in self._model.authorised.items():
            if category not in self._bases:
                self._bases[category] = self._basis(kind)
        for decision in self._record.categories:
            name = pb.InformationCategory.Name(decision.category)
            if name in self._bases:
                decision.basis.CopyFrom(self._bases[name])
            decision.shared = name in self._model.delivered_categories
            decision.not_shared_reason = self._model.not_shared.get(name, "")

    def _basis(self, kind: Basis) -> pb.SharingBasis:
        now = timestamp(workflow.now())
        if kind is Basis.CONSENT:
            consent = self._record.consent
            return pb.SharingBasis(kind=pb.BASIS_KIND_CONSENT, consent_record_id=consent.record_id,
                                   consent_version=consent.version, decided_at=now)  # fmt: skip
        if kind is Basis.OVERRIDE:
            proposal = self._record.override_proposal
            reason = proposal.reason_code
            return pb.SharingBasis(kind=pb.BASIS_KIND_OVERRIDE, override_reason=reason,
                                   decided_at=now)  # fmt: skip
        return pb.SharingBasis(kind=pb.BASIS_KIND_SHARE_FIRST, decided_at=now)

    def _publish(self) -> None:
        """Keep the operators' view current: search attributes and current details (and the
        memo's view, once this task has done its work)."""
        if self._memo is not None:
            self._memo.changed()
        if self._model.per_category:
            self._sync_categories()
        state = self._model.state
        updates: list[SearchAttributeUpdate[Any]] = [
            sa.CASE_STATE.value_set(state.value),
            sa.URGENCY.value_set(self._model.urgency.value),
            sa.PURPOSE.value_set(pb.Purpose.Name(self._request.purpose).removeprefix("PURPOSE_")),
            sa.REQUESTING_AGENCY.value_set(self._recipient),
            sa.HOLDING_AGENCY.value_set([self._holder]),
            sa.WAITING_ON.value_set(self._waiting_on().value),
            sa.OVERRIDE_USED.value_set(self._record.override_used),
            sa.ESCALATED.value_set(bool(self._record.escalations)),
            sa.NEXT_DEADLINE.value_set(self._next_deadline)
            if self._next_deadline and state is not State.CLOSED
            else sa.NEXT_DEADLINE.value_unset(),
        ]
        if self._record.HasField("consent"):
            status = pb.ConsentStatus.Name(self._record.consent.status)
            updates.append(sa.CONSENT_STATUS.value_set(status.removeprefix("CONSENT_STATUS_")))
        if self._model.outcome is not Outcome.OPEN:
            updates.append(sa.OUTCOME.value_set(self._model.outcome.value))
        if self._compact:
            self._attributes = updates
            if self._upserter is None:
                self._upserter = asyncio.create_task(self._upsert_when_idle())
        else:
            workflow.upsert_search_attributes(updates)
        workflow.set_current_details(holder_details(
            self._holder, self._recipient, state, self._waiting_on(), self._next_deadline,
            self._model.outcome,
        ))  # fmt: skip

    async def _upsert_when_idle(self) -> None:
        # 👉 A condition is checked once every coroutine of the workflow task has run as far
        # as it can: what was published meanwhile is upserted in one command, not one each.
        while True:
            await workflow.wait_condition(lambda: self._attributes is not None)
            self._upsert()

    def _upsert(self) -> None:
        """Upsert the published search attributes that differ from the workflow's own."""
        if self._attributes is None:
            return
        changed = sa.changed(self._attributes, workflow.info().typed_search_attributes)
        self._attributes = None
        if changed:
            workflow.upsert_search_attributes(changed)


def _refused(err: ActivityError) -> bool:
    """Whether an agency activity failed because the agency refused it (not a transient)."""
    cause = err.cause
    return isinstance(cause, ApplicationError) and (
        cause.type == ApplicationErrorType.AGENCY_REJECTED
    )


def _canonical_copy(message: Any, practitioner: Any, path: str) -> Any:
    """A copy of ``message`` whose practitioner (``practitioner(copy)``) is in canonical form.

    Raises:
        ApplicationError: the user id or role has no canonical form (outside the charset).
    """
    copied = _copy(message)
    bad = practitioners.canonicalize(practitioner(copied))
    if bad:
        fields = ", ".join(f"{path}.{name}" for name in bad)
        raise ApplicationError(
            f"letters, digits and . _ @ - only: {fields}", type=Rule.INVALID.value
        )
    return copied


def _copy(message: Any) -> Any:
    copied = type(message)()
    copied.CopyFrom(message)
    return copied
