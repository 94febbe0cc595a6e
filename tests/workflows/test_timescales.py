"""Timescales from the registry: validated on load, recorded by every case with the policy
version, applied to cases opened after a change; a minute-scale test registry shows the whole
escalation ladder live on a real server."""

from __future__ import annotations

import asyncio
import datetime as dt
import shutil
import tomllib
from pathlib import Path
from typing import Any

import pytest
from temporalio.client import WorkflowExecutionStatus
from temporalio.testing import WorkflowEnvironment
from typer.testing import CliRunner

from partnership.errors import RegistryError
from partnership.registry_file import DEFAULT_REGISTRY_PATH, RegistrySource, load_registry
from protos.sharing.v1 import case_pb2 as pb
from safeshare.cli import app
from safeshare.operators.registry_store import change_registry, dump_registry, renew_signature
from safeshare.operators.views import view
from safeshare.pki import DevPki
from tests.eventually import eventually
from tests.workflows.harness import SCHOOL
from tests.workflows.real_agencies import case_at_real_agencies
from workflows.domain.deadlines import DEFAULT_TIMESCALES, timescales_of
from workflows.domain.vocabulary import Step, Urgency
from workflows.holder_exchange import HolderExchange
from workflows.sharing_case import SharingCase

MINUTES_REGISTRY = DEFAULT_REGISTRY_PATH.with_name("registry-minutes.toml")
LADDER = ["reminder", "safeguarding_lead", "partnership_operator"]


def _with_timescales(path: Path, scale: float = 1.0) -> None:
    """Give the registry at ``path`` the minute-scale test timescales, times ``scale``."""
    timescales = tomllib.loads(MINUTES_REGISTRY.read_text())["timescales"]
    for steps in timescales.values():
        for table in steps.values():
            table["minutes"] = table["minutes"] * scale

    def mutate(data: dict[str, Any]) -> None:
        data["timescales"] = timescales

    change_registry(path, "ops-1", "timescales for the test", mutate)


@pytest.fixture
def registry_copy(tmp_path: Path) -> Path:
    path = tmp_path / "registry.toml"
    shutil.copy(DEFAULT_REGISTRY_PATH, path)
    return path


def test_the_default_timescales_are_todays() -> None:
    registry = load_registry()
    policy = timescales_of(_policy(registry))
    assert policy == DEFAULT_TIMESCALES
    assert policy[(Urgency.GREEN, Step.RECIPIENT_ACKNOWLEDGES)].period == dt.timedelta(hours=40)
    assert not policy[(Urgency.RED, Step.HOLDER_RESPONDS)].working_hours


def _policy(registry: Any) -> pb.TimescalePolicy:
    from activities.calendars import timescale_policy

    return timescale_policy(registry)


def test_the_minute_scale_registry_is_valid_and_survives_a_change(registry_copy: Path) -> None:
    registry = load_registry(MINUTES_REGISTRY)
    green = registry.timescales[("GREEN", "holder_responds")]
    assert green.minutes == 2 and not green.working_hours
    copy = registry_copy.with_name("minutes.toml")
    shutil.copy(MINUTES_REGISTRY, copy)
    renew_signature(copy, "ops-1", agency_id=SCHOOL, review_date=dt.date(2029, 1, 1))
    assert load_registry(copy).timescales == registry.timescales
    assert copy.read_text().startswith("# A TEST registry")


@pytest.mark.parametrize(
    ("change", "says"),
    [
        (lambda t: t["GREEN"].pop("override_decision"), "timescales.GREEN: override_decision is required"),
        (lambda t: t.pop("AMBER"), "timescales: AMBER is required"),
        (lambda t: t["RED"]["holder_responds"].update(minutes=0), "minutes must be between"),
        (lambda t: t["RED"]["holder_responds"].update(minutes=-5), "minutes must be between"),
        (lambda t: t["RED"]["holder_responds"].update(minutes="2"), "minutes must be a number"),
        (lambda t: t["RED"]["holder_responds"].update(working_hours="no"), "working_hours must be true or false"),
        (lambda t: t["RED"]["holder_responds"].update(lead_after_period=1.5), "lead_after_period <"),
        (lambda t: t["RED"]["holder_responds"].update(hours=2), "unknown key 'hours'"),
    ],
)  # fmt: skip
def test_a_bad_timescale_is_refused_on_load_by_validate_and_on_reload(
    registry_copy: Path, change: Any, says: str
) -> None:
    source = RegistrySource(registry_copy)
    _with_timescales(registry_copy)
    good = source.current()
    assert good.timescales[("GREEN", "holder_responds")].minutes == 2
    data = tomllib.loads(registry_copy.read_text())
    change(data["timescales"])
    registry_copy.write_text(dump_registry(data))
    with pytest.raises(RegistryError, match=says):
        load_registry(registry_copy)
    result = CliRunner().invoke(app, ["registry", "validate", "--registry", str(registry_copy)])
    assert result.exit_code == 2 and says in result.output
    assert source.current() is good  # the running process keeps the last good version


@pytest.mark.asyncio(loop_scope="session")
async def test_a_case_runs_under_the_timescales_it_opened_with(
    time_skipping: WorkflowEnvironment, pki: DevPki, tmp_path: Path, registry_copy: Path
) -> None:
    _with_timescales(registry_copy, scale=60)  # hours instead of minutes
    before = load_registry(registry_copy)
    async with case_at_real_agencies(
        time_skipping, pki, tmp_path, registry_path=registry_copy, urgency=pb.URGENCY_GREEN
    ) as case:
        holder = await _holder_waiting(case.exchange())
        view_ = await case.handle.query(SharingCase.case_view)
        gate = view_.record.gate
        assert gate.timescales.policy_version == before.registry_version
        green = {(t.urgency, t.step): t for t in gate.timescales.timescales}
        assert green[("GREEN", "holder_responds")].minutes == 120
        assert [c.agency_id for c in gate.calendars] == [case.request.requesting_agency_id, SCHOOL]
        # 24/7 two hours from the consent lookup: the registry's, not the default 24
        # working hours.
        started = holder.entries[-1].at.ToDatetime(dt.UTC)
        assert holder.next_deadline.ToDatetime(dt.UTC) - started <= dt.timedelta(hours=2)

        # The partnership changes its timescales: this case keeps its own.
        _with_timescales(registry_copy, scale=600)
        await case.handle.execute_update(
            SharingCase.change_urgency,
            pb.UrgencyChange(actor=_requester(case),
                             urgency=pb.URGENCY_AMBER, reason="re-rated"),
        )  # fmt: skip
        after = await _holder_waiting(case.exchange(), urgency_changed=True)
        rerated = after.next_deadline.ToDatetime(dt.UTC) - started
        assert dt.timedelta(hours=1) < rerated <= dt.timedelta(hours=2)  # AMBER: 2 h of its own

    async with case_at_real_agencies(
        time_skipping, pki, tmp_path / "later", registry_path=registry_copy,
        urgency=pb.URGENCY_GREEN,
    ) as later:  # fmt: skip
        await _holder_waiting(later.exchange())
        gate = (await later.handle.query(SharingCase.case_view)).record.gate
        assert gate.timescales.policy_version == before.registry_version + 1
        green = {(t.urgency, t.step): t for t in gate.timescales.timescales}
        assert green[("GREEN", "holder_responds")].minutes == 1200


def _requester(case: Any) -> pb.Actor:
    request = case.request
    return pb.Actor(agency_id=request.requesting_agency_id, practitioner=request.requester)


async def _holder_waiting(exchange: Any, *, urgency_changed: bool = False) -> pb.HolderRecord:
    def waiting(record: pb.HolderRecord) -> bool:
        changed = any(e.event == "UrgencyChanged" for e in record.entries)
        return (
            record.state == pb.CASE_STATE_AWAITING_CONSENT_DECISION
            and record.HasField("next_deadline")
            and changed == urgency_changed
        )

    return await eventually(
        lambda: exchange.query(HolderExchange.holder_record),
        waiting,
        what="the holder waiting",
        retry_on=(Exception,),  # not started yet
        last=lambda record: [e.event for e in record.entries],
    )


@pytest.mark.asyncio(loop_scope="session")
async def test_a_green_case_nobody_acts_on_climbs_the_whole_ladder_live(
    dev_server: WorkflowEnvironment, pki: DevPki, tmp_path: Path, registry_copy: Path
) -> None:
    # The minute-scale test registry, scaled to seconds (GREEN holder_responds: 6 s, the
    # lead 3 s after, the operator 6 s after), on a real server in real time.
    _with_timescales(registry_copy, scale=0.05)
    async with case_at_real_agencies(
        dev_server, pki, tmp_path, registry_path=registry_copy, urgency=pb.URGENCY_GREEN
    ) as case:
        holder = pb.HolderRecord()
        for _ in range(600):
            await asyncio.sleep(0.1)
            try:
                holder = await case.exchange().query(HolderExchange.holder_record)
            except Exception:  # not started yet
                continue
            if len(holder.escalations) >= 3:
                break
        assert [e.level for e in holder.escalations] == LADDER
        assert [e.step for e in holder.escalations] == ["holder_responds"] * 3
        assert [a.level for a in case.operator.alerts] == ["partnership_operator"]
        notes = case.agencies[SCHOOL].store.notifications()
        assert len(notes) == 2  # the reminder and the lead's escalation reached the school
        # Never declined: still open, waiting on the holder, with its deadline passed.
        assert holder.state == pb.CASE_STATE_AWAITING_CONSENT_DECISION
        assert holder.outcome == pb.OUTCOME_UNSPECIFIED
        assert "DeclinedToShare" not in [e.event for e in holder.entries]
        for handle in (case.handle, case.exchange()):
            assert (await handle.describe()).status == WorkflowExecutionStatus.RUNNING
        query = view("deadline-passed").query(dt.datetime.now(dt.UTC))
        listed: list[str] = []
        for _ in range(100):  # visibility is eventually consistent
            listed = [w.id async for w in dev_server.client.list_workflows(query)]
            if case.exchange().id in listed:
                break
            await asyncio.sleep(0.1)
        assert case.exchange().id in listed
        await case.handle.terminate("test over")
