"""The chaos run's checker: independent of the code under test.

It reads what the recipients actually hold straight from the sandbox agencies' SQLite files
(``deliveries``, ``delivered_items``, and the holders' ``consents``), and what the cases
recorded from their Temporal histories (fetched with a client holding the payload keys), and
checks that nothing was lost, nothing stored twice, nothing shared without a basis, no
resubmission opened a second case, no workflow failed, and every history replays. Disclosures
(a holder telling a partner without a request) are held to the same rules: stored once, by
their recipient only, never without a basis (the gate passed, the recipient routed to, a
consent position on record, an approver's yes where one decided).
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import json
import sqlite3
from collections import Counter, defaultdict
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass, field
from pathlib import Path

from temporalio.api.enums.v1 import EventType, WorkflowTaskFailedCause
from temporalio.client import Client, WorkflowExecutionStatus, WorkflowFailureError, WorkflowHistory
from temporalio.worker import Replayer

from protos.sharing.v1 import case_pb2 as pb
from safeshare.archive.checkpoint import DEFAULT_ORIGIN, VerifierKey
from safeshare.archive.records import ARCHIVED
from safeshare.archive.url import open_archive
from safeshare.archive.verify import verify_archive
from safeshare.audit.signing import load_public_key, public_key_path
from safeshare.codec import data_converter
from tests.chaos import scenarios as sc
from tests.chaos.driver import CaseRun
from tests.chaos.stack import ChaosStack
from workflows.disclosure_case import DisclosureCase
from workflows.holder_exchange import HolderExchange
from workflows.sharing_case import SharingCase

# Written out here, not imported from the model under test (DESIGN.md: the approver roles).
APPROVER_ROLES = {"designated_safeguarding_lead", "manager", "caldicott_guardian"}
BAD_STATUSES = ("Failed", "Terminated", "TimedOut", "Canceled")
FETCH_CONCURRENCY = 20
CLOSE_GRACE_SECONDS = 90.0


@dataclass(frozen=True)
class StoredDelivery:
    """A delivery row as a recipient's store holds it, with its items' ids and categories."""

    recipient: str
    delivery_id: str
    case_ref: str
    holder: str
    items: tuple[tuple[str, int], ...]


@dataclass
class Report:
    """The checker's figures and every problem found (problems carry ids and codes only)."""

    counts: Counter[str] = field(default_factory=Counter)
    problems: dict[str, list[str]] = field(default_factory=lambda: defaultdict(list))

    def problem(self, kind: str, detail: str) -> None:
        """Record one problem of ``kind``."""
        self.problems[kind].append(detail)

    @property
    def ok(self) -> bool:
        """Whether no problem was found."""
        return not any(self.problems.values())

    def render(self) -> str:
        """The summary as plain lines."""
        lines = ["chaos checker: " + ("PASS" if self.ok else "FAIL")]
        lines += [f"  {name:<34} {value}" for name, value in sorted(self.counts.items())]
        for kind, details in sorted(self.problems.items()):
            if details:
                shown = ", ".join(details[:8]) + (" ..." if len(details) > 8 else "")
                lines.append(f"  PROBLEM {kind}: {len(details)} ({shown})")
        return "\n".join(lines)


def read_deliveries(db: Path, recipient: str) -> list[StoredDelivery]:
    """Every delivery in a recipient's store, read with sqlite3 directly."""
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as conn:
        rows = conn.execute(
            "SELECT delivery_id, case_ref, holding_agency_id FROM deliveries"
        ).fetchall()
        items: dict[str, list[tuple[str, int]]] = defaultdict(list)
        for delivery_id, item_id, category in conn.execute(
            "SELECT delivery_id, item_id, category FROM delivered_items"
        ):
            items[delivery_id].append((item_id, category))
    return [StoredDelivery(recipient, d, ref, holder, tuple(items[d])) for d, ref, holder in rows]


def read_consent(db: Path, child_key: str) -> dict[str, object] | None:
    """The consent row a holder's store keeps for ``child_key`` (None: none recorded)."""
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as conn:
        conn.row_factory = sqlite3.Row
        row = conn.execute("SELECT * FROM consents WHERE child_key = ?", (child_key,)).fetchone()
    return dict(row) if row is not None else None


def consent_covers(
    consent: dict[str, object] | None, recipient: str, categories: Iterable[int], at: dt.datetime
) -> bool:
    """Whether a stored consent row covers safeguarding sharing of ``categories`` now."""
    if consent is None or consent["status"] != pb.CONSENT_STATUS_GIVEN:
        return False
    recipients = json.loads(str(consent["recipient_agency_ids"]))
    valid_from, valid_until = consent["valid_from"], consent["valid_until"]
    return (
        pb.PURPOSE_SAFEGUARDING in json.loads(str(consent["purposes"]))
        and (not recipients or recipient in recipients)
        and set(categories) <= set(json.loads(str(consent["categories"])))
        and (not valid_from or dt.datetime.fromisoformat(str(valid_from)) <= at)
        and (not valid_until or at < dt.datetime.fromisoformat(str(valid_until)))
    )


class Checker:
    """Checks one chaos run's cases against the stores and the histories."""

    def __init__(self, stack: ChaosStack, runs: list[CaseRun]) -> None:
        self._stack = stack
        self._runs = runs
        self.report = Report()

    async def check(self) -> Report:
        """Run every check; the report says what was found."""
        client = await Client.connect(
            self._stack.temporal_address, data_converter=data_converter(self._stack.keys)
        )
        records = await self._outcomes(client)
        self._deliveries(records)
        await self._statuses(client)
        await self._histories(client)
        await self._archived(records)
        return self.report

    # -- the case archive ---------------------------------------------------------------------

    async def _archived(self, records: dict[str, pb.DecisionRecord]) -> None:
        """Every closed case is archived exactly once, and the archive verifies."""
        stack = self._stack
        if stack.archive is None:
            return
        wanted = sorted(f"case-{ref}" for ref in records)
        store = await asyncio.to_thread(open_archive, stack.archive_url)
        try:
            known: dict[str, str] = {}
            for _ in range(180):  # every fault is undone; the archiver sweeps every 2 s
                known = await asyncio.to_thread(store.known, wanted)
                latest = await asyncio.to_thread(store.latest_checkpoint)
                leaves = await asyncio.to_thread(store.leaves)
                signed = latest is not None and latest[0] == len(leaves)
                if signed and all(known.get(w) == ARCHIVED for w in wanted):
                    break
                await asyncio.sleep(1.0)
            for workflow_id in wanted:
                if known.get(workflow_id) != ARCHIVED:
                    self.report.problem("closed case not archived", workflow_id)
            logged = Counter(leaf.record_id for leaf in leaves if leaf.kind == "record")
            for workflow_id in wanted:
                if logged[workflow_id] > 1:
                    self.report.problem("case archived more than once", workflow_id)
            verifier = VerifierKey(
                DEFAULT_ORIGIN, load_public_key(public_key_path(stack.archive_key))
            )
            result = await asyncio.to_thread(verify_archive, store, verifier)
            for finding in result.findings:
                self.report.problem(f"archive {finding.kind}", finding.subject)
            self.report.counts["cases archived once"] = sum(logged[w] == 1 for w in wanted)
            self.report.counts["archive leaves signed"] = (
                result.checkpoint.size if result.checkpoint else 0
            )
        finally:
            store.close()

    # -- outcomes and resubmissions ---------------------------------------------------------

    async def _outcomes(self, client: Client) -> dict[str, pb.DecisionRecord]:
        report, records = self.report, {}
        gate = asyncio.Semaphore(FETCH_CONCURRENCY)

        async def one(run: CaseRun) -> None:
            spec = run.spec
            report.counts[f"cases {spec.scenario.value}"] += 1
            if not run.case_refs:
                report.problem("lost (never accepted)", spec.request_id)
                return
            if len(set(run.case_refs)) != 1:
                report.problem("resubmission opened a second case", spec.request_id)
            ref = run.case_refs[0]
            if len(run.case_refs) > 1:
                report.counts["resubmissions answered"] += len(run.case_refs) - 1
                runs = [
                    w async for w in client.list_workflows(f"WorkflowId = 'case-{ref}'")
                ]  # fmt: skip
                if len(runs) != 1:
                    report.problem("resubmission opened a second case", ref)
            if spec.scenario in sc.DISCLOSURES and run.created[1:] != [False]:
                report.problem("resubmitted disclosure not answered with its case", ref)
            if spec.scenario is sc.Scenario.DUPLICATE_ACK:
                report.counts[f"second acknowledgement {run.second_ack_code or 'none'}"] += 1
                if run.second_ack_code != "FAILED_PRECONDITION":
                    report.problem("duplicate acknowledgement not refused", ref)
            handle = client.get_workflow_handle(f"case-{ref}", result_type=pb.DecisionRecord)
            async with gate:
                # A case the parties saw close may still be finishing an activity that was in
                # flight (e.g. a lookup behind an adapter outage when the request was withdrawn):
                # give it a bounded while before it counts as lost.
                with contextlib.suppress(TimeoutError, WorkflowFailureError):
                    await asyncio.wait_for(handle.result(), CLOSE_GRACE_SECONDS)
                described = await handle.describe()
                if described.status != WorkflowExecutionStatus.COMPLETED:
                    report.problem("lost (case not closed)", ref)
                    return
                record = await handle.result()
            records[ref] = record
            if spec.scenario is sc.Scenario.RED_UNJUSTIFIED:
                # The deadline passed: the whole ladder fired and the case still ended well.
                rungs = [e.level for h in record.holders for e in h.escalations
                         if e.step == "override_decision"]  # fmt: skip
                if rungs[:3] != ["reminder", "safeguarding_lead", "partnership_operator"]:
                    report.problem("ladder did not climb", f"{ref}:{','.join(rungs)}")
                else:
                    report.counts["cases whose deadline passed"] += 1
            if spec.scenario is sc.Scenario.WITHDRAWN_RACING:
                if record.outcome in sc.RACING_OUTCOMES and record.HasField("withdrawal"):
                    report.counts["cases with the right outcome"] += 1
                    report.counts[f"racing withdrawals {pb.Outcome.Name(record.outcome)}"] += 1
                else:
                    report.problem("wrong outcome", f"{ref}:{pb.Outcome.Name(record.outcome)}")
                return
            if record.outcome != sc.EXPECTED_OUTCOME[spec.scenario]:
                report.problem(
                    "wrong outcome",
                    f"{ref}:{spec.scenario.value}:{pb.Outcome.Name(record.outcome)}",
                )
            else:
                report.counts["cases with the right outcome"] += 1

        await asyncio.gather(*(one(run) for run in self._runs))
        report.counts["cases submitted"] = len(self._runs)
        return records

    # -- what the recipients hold -----------------------------------------------------------

    def _deliveries(self, records: dict[str, pb.DecisionRecord]) -> None:
        report, stack = self.report, self._stack
        specs = {run.case_refs[0]: run.spec for run in self._runs if run.case_refs}
        stored = [
            delivery
            for agency in stack.agencies
            for delivery in read_deliveries(stack.agency_db(agency), agency)
        ]
        by_case: dict[tuple[str, str], list[StoredDelivery]] = defaultdict(list)
        items: Counter[tuple[str, str, str]] = Counter()
        for delivery in stored:
            by_case[(delivery.case_ref, delivery.holder)].append(delivery)
            for item_id, _ in delivery.items:
                items[(delivery.case_ref, delivery.holder, item_id)] += 1
        report.counts["deliveries stored"] = len(stored)
        report.counts["delivered items stored"] = sum(items.values())
        for (ref, holder), found in by_case.items():
            spec = specs.get(ref)
            if spec is None:
                continue  # not a case of this run (the fuzz or security tests')
            if len(found) > 1:
                report.problem("delivered twice", f"{ref}.{holder} x{len(found)}")
            for delivery in found:
                if delivery.recipient != spec.requester:
                    report.problem("delivered to a non-party", f"{ref}->{delivery.recipient}")
                self._justified(delivery, spec, records.get(ref))
        report.counts["items stored more than once"] = sum(
            1 for key, n in items.items() if n > 1 and key[0] in specs
        )
        for key, n in items.items():
            if n > 1 and key[0] in specs:
                report.problem("item stored more than once", f"{key[0]}.{key[1]}:{key[2]} x{n}")
        for ref, spec in specs.items():
            found = by_case.get((ref, spec.holder), [])
            if spec.scenario is sc.Scenario.WITHDRAWN_RACING:
                record = records.get(ref)
                shared = record is not None and record.outcome == pb.OUTCOME_SHARED_WITH_CONSENT
                if shared != bool(found):
                    # A race must never hide a share, nor claim one that did not land.
                    report.problem("record and recipient disagree", f"{ref}:shared={shared}")
                continue
            if spec.scenario in sc.SHARES and not found:
                report.problem("lost (expected delivery missing)", ref)
            elif spec.scenario not in sc.SHARES and found:
                report.problem("delivered without a basis", f"{ref}:{spec.scenario.value}")

    def _justified(
        self, delivery: StoredDelivery, spec: sc.CaseSpec, record: pb.DecisionRecord | None
    ) -> None:
        report = self.report
        ref = delivery.case_ref
        if record is None:
            report.problem("delivered without a basis", f"{ref}:no decision record")
            return
        if spec.scenario in sc.DISCLOSURES:
            self._disclosure_justified(delivery, record)
            return
        holder = next((h for h in record.holders if h.holding_agency_id == delivery.holder), None)
        if holder is None:
            report.problem("delivered without a basis", f"{ref}:holder not in record")
            return
        categories = {category for _, category in delivery.items}
        asked = {c.category for c in record.request.categories}
        consent = read_consent(self._stack.agency_db(delivery.holder), spec.child_key)
        now = dt.datetime.now(dt.UTC)
        approved = holder.override_decision
        if consent_covers(consent, delivery.recipient, categories, now):
            basis_ok = categories <= asked
            report.counts["deliveries justified by consent"] += 1
        elif (
            holder.HasField("override_decision")
            and approved.approve
            and approved.actor.practitioner.role in APPROVER_ROLES
            and approved.actor.practitioner.user_id
            != holder.override_proposal.actor.practitioner.user_id
        ):
            basis_ok = categories <= set(holder.override_proposal.minimum_data_set) & asked
            report.counts["deliveries justified by an override"] += 1
        else:
            basis_ok = False
        if not basis_ok:
            report.problem("delivered without a basis", f"{ref}.{delivery.holder}")

    def _disclosure_justified(self, delivery: StoredDelivery, record: pb.DecisionRecord) -> None:
        """A disclosure's delivery needs: the gate passed, the recipient routed to, a consent
        position on record (consent, or a lawful basis and reason without it), an approver's
        yes where one decided, and only the disclosure's own items."""
        told = record.disclosure
        position = told.disclosure.consent
        without = position.without_consent
        recipients = {r.recipient_agency_id for r in told.recipients}
        basis_ok = (
            record.gate.passed
            and told.holding_agency_id == delivery.holder
            and delivery.recipient in recipients
            and (position.HasField("consent") or bool(without.lawful_basis and without.reason))
            and (not told.HasField("approval") or told.approval.approve)
        )
        if basis_ok:
            self.report.counts["deliveries justified by a disclosure's basis"] += 1
        else:
            self.report.problem("delivered without a basis", f"{delivery.case_ref}:disclosure")

    # -- workflow statuses and histories ------------------------------------------------------

    def _workflow_ids(self) -> list[str]:
        ids = []
        for run in self._runs:
            if run.case_refs:
                ref = run.case_refs[0]
                ids.append(f"case-{ref}")
                if run.spec.scenario not in sc.DISCLOSURES:  # a disclosure has no exchange
                    ids.append(f"case-{ref}.{run.spec.holder}")
        return ids

    async def _statuses(self, client: Client) -> None:
        for status in BAD_STATUSES:
            count = (await client.count_workflows(f"ExecutionStatus = '{status}'")).count
            self.report.counts[f"workflows {status.lower()}"] = count
            if count:
                self.report.problem(f"workflows {status.lower()}", str(count))
        cases = (await client.count_workflows("WorkflowType = 'SharingCase'")).count
        self.report.counts["SharingCase executions"] = cases
        told = (await client.count_workflows("WorkflowType = 'DisclosureCase'")).count
        self.report.counts["DisclosureCase executions"] = told

    async def _histories(self, client: Client) -> None:
        gate = asyncio.Semaphore(FETCH_CONCURRENCY)

        async def fetch(workflow_id: str) -> WorkflowHistory:
            async with gate:
                return await client.get_workflow_handle(workflow_id).fetch_history()

        histories = await asyncio.gather(*(fetch(i) for i in self._workflow_ids()))
        failed_tasks = unhandled = 0
        for history in histories:
            for event in history.events:
                if event.event_type != EventType.EVENT_TYPE_WORKFLOW_TASK_FAILED:
                    continue
                cause = event.workflow_task_failed_event_attributes.cause
                if cause == WorkflowTaskFailedCause.WORKFLOW_TASK_FAILED_CAUSE_UNHANDLED_COMMAND:
                    # The server's own race, not the workflow's: a signal or update arrived
                    # while the task was closing the workflow; the SDK runs the task again
                    # with it at once.
                    unhandled += 1
                    continue
                failed_tasks += 1
                self.report.problem("workflow task failed", history.workflow_id)
        self.report.counts["workflow tasks failed"] = failed_tasks
        self.report.counts["workflow tasks redone for new events (UnhandledCommand)"] = unhandled
        self.report.counts["histories fetched"] = len(histories)

        async def each() -> AsyncIterator[WorkflowHistory]:
            for history in histories:
                yield history

        replayer = Replayer(
            workflows=[SharingCase, HolderExchange, DisclosureCase],
            data_converter=data_converter(self._stack.keys),
        )
        results = await replayer.replay_workflows(each(), raise_on_replay_failure=False)
        self.report.counts["histories replayed"] = len(histories) - len(results.replay_failures)
        for workflow_id in results.replay_failures:
            self.report.problem("history does not replay", workflow_id)
