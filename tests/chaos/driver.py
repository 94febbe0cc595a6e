"""Plays the chaos run's cases through the gateway as their agencies' systems would.

Every case is driven from the state it is seen in (not from what the last call returned), so a
reply lost to a fault is harmless: the next look at the case shows whether the command took.
Every loop is bounded by a deadline.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from functools import partial
from typing import TypeVar

import grpc

from protos.sharing.v1 import case_pb2 as pb
from protos.sharing.v1 import case_service_pb2 as service_pb
from safeshare.client import CaseClient, new_command_id
from safeshare.tls import TlsFiles
from tests.chaos import scenarios as sc

T = TypeVar("T")

TRANSIENT = {
    grpc.StatusCode.UNAVAILABLE,
    grpc.StatusCode.DEADLINE_EXCEEDED,
    grpc.StatusCode.CANCELLED,
}
"""Codes a fault may cause; the call is tried again."""
POLL_SECONDS = 1.0
"""Between two looks at a case: every GetCase is a query the hub worker answers."""


@dataclass
class CaseRun:
    """What happened to one case, as its agencies saw it."""

    spec: sc.CaseSpec
    case_refs: list[str] = field(default_factory=list)
    """The case ref of every successful submission (resubmissions included)."""
    created: list[bool] = field(default_factory=list)
    final_state: int = pb.CASE_STATE_UNSPECIFIED
    second_ack_code: str = ""
    """For DUPLICATE_ACK: the status code of the second acknowledgement."""
    gave_up: bool = False


@dataclass
class DriverStats:
    """Counts over the whole run."""

    codes: Counter[str] = field(default_factory=Counter)
    """Every non-OK status code the gateway answered, by name."""


class Agencies:
    """One Case API client per agency, as each agency's own system."""

    def __init__(self, clients: dict[str, CaseClient]) -> None:
        self.clients = clients

    @classmethod
    @contextlib.asynccontextmanager
    async def connect(cls, target: str, tls: dict[str, TlsFiles]) -> AsyncIterator[Agencies]:
        """Open a channel per agency."""
        async with contextlib.AsyncExitStack() as stack:
            clients = {
                agency: await stack.enter_async_context(
                    CaseClient.connect(target, files, call_timeout=15.0)
                )
                for agency, files in tls.items()
            }
            yield cls(clients)


class CaseDriver:
    """Drives cases to their end through the gateway."""

    def __init__(self, agencies: Agencies, stats: DriverStats, case_seconds: float) -> None:
        self._agencies = agencies
        self._stats = stats
        self._case_seconds = case_seconds

    async def play(self, spec: sc.CaseSpec) -> CaseRun:
        """Submit ``spec`` and act as its practitioners until it closes or time runs out."""
        if spec.scenario in sc.DISCLOSURES:
            return await self._play_disclosure(spec)
        run = CaseRun(spec)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self._case_seconds
        requester = self._agencies.clients[spec.requester]
        holder = self._agencies.clients[spec.holder]
        request = sc.sharing_request(spec)
        submissions = 2 if spec.scenario is sc.Scenario.RESUBMITTED else 1
        for _ in range(submissions):
            submitted = await self._call(lambda: requester.submit(request), deadline)
            if submitted is None:
                run.gave_up = True
                return run
            run.case_refs.append(submitted.case_ref)
            run.created.append(submitted.created)
        ref = run.case_refs[0]
        acknowledged = False
        while loop.time() < deadline:
            view = await self._call(lambda: requester.get(ref), deadline, refused_ok=True)
            state = view.state if view is not None else pb.CASE_STATE_UNSPECIFIED
            run.final_state = state
            if state == pb.CASE_STATE_CLOSED:
                break
            action: Callable[[], Awaitable[object]] | None
            if spec.scenario is sc.Scenario.WITHDRAWN_RACING:
                withdrawn = view is not None and view.record.HasField("withdrawal")
                action = (
                    None
                    if withdrawn
                    else (lambda: requester.withdraw_request(ref, sc.withdrawal(spec)))
                )
            else:
                action = self._next_action(spec, state, requester, holder, ref, acknowledged)
            if action is None:
                await asyncio.sleep(POLL_SECONDS)
                continue
            done = await self._call(action, deadline, refused_ok=True)
            if state == pb.CASE_STATE_AWAITING_ACKNOWLEDGEMENT:
                # Refused (None) means a retry found the first try applied (its reply was
                # lost to a fault): acknowledged either way, and the repeat is still sent.
                acknowledged = True
                if spec.scenario is sc.Scenario.DUPLICATE_ACK and not run.second_ack_code:
                    run.second_ack_code = await self._second_ack(requester, spec, ref, deadline)
            elif done is None:
                await asyncio.sleep(POLL_SECONDS)
        else:
            run.gave_up = True
        if spec.scenario is sc.Scenario.RESUBMITTED:
            # Once more after the case has closed: still the same case.
            again = await self._call(lambda: requester.submit(request), deadline + 30)
            if again is not None:
                run.case_refs.append(again.case_ref)
                run.created.append(again.created)
        return run

    async def _play_disclosure(self, spec: sc.CaseSpec) -> CaseRun:
        """Open a disclosure as its holder, act as its approver and recipient until it closes
        (``spec.requester`` is the recipient). Submitted twice, as a holder's system retrying
        would: the same case."""
        run = CaseRun(spec)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self._case_seconds
        holder = self._agencies.clients[spec.holder]
        recipient = self._agencies.clients[spec.requester]
        disclosure = sc.disclosure(spec)
        for _ in range(2):
            submitted = await self._call(lambda: holder.submit_disclosure(disclosure), deadline)
            if submitted is None:
                run.gave_up = True
                return run
            run.case_refs.append(submitted.case_ref)
            run.created.append(submitted.created)
        ref = run.case_refs[0]
        acknowledged = False
        while loop.time() < deadline:
            view = await self._call(lambda: holder.get(ref), deadline, refused_ok=True)
            state = view.state if view is not None else pb.CASE_STATE_UNSPECIFIED
            run.final_state = state
            if state == pb.CASE_STATE_CLOSED:
                return run
            if state == pb.CASE_STATE_AWAITING_OVERRIDE_DECISION:
                decide = service_pb.DecideDisclosureRequest(
                    case_ref=ref, decision=sc.disclosure_rejection(spec),
                    command_id=new_command_id(),
                )  # fmt: skip
                # (CaseClient has no DecideDisclosure: its stub, with the client's retries.)
                stub = holder._stub.DecideDisclosure
                await self._call(partial(holder._call, stub, decide), deadline, refused_ok=True)
            elif state == pb.CASE_STATE_AWAITING_ACKNOWLEDGEMENT and not acknowledged:
                ack = sc.disclosure_acknowledgement(spec)
                await self._call(
                    partial(recipient.acknowledge, ref, ack), deadline, refused_ok=True
                )
                acknowledged = True
            else:
                await asyncio.sleep(POLL_SECONDS)
        run.gave_up = True
        return run

    def _next_action(
        self,
        spec: sc.CaseSpec,
        state: int,
        requester: CaseClient,
        holder: CaseClient,
        ref: str,
        acknowledged: bool,
    ) -> Callable[[], Awaitable[object]] | None:
        scenario = spec.scenario
        if state == pb.CASE_STATE_AWAITING_CONSENT_DECISION:
            if scenario is sc.Scenario.RED_UNJUSTIFIED:
                return lambda: holder.share_first(ref, sc.share_first(spec))
            if scenario in (sc.Scenario.OVERRIDE, sc.Scenario.OVERRIDE_REJECTED):
                return lambda: holder.propose_override(ref, sc.override_proposal(spec))
            if scenario is sc.Scenario.DECLINED:
                return lambda: holder.decline_to_share(ref, sc.decline(spec))
            if scenario is sc.Scenario.WITHDRAWN:
                return lambda: requester.withdraw_request(ref, sc.withdrawal(spec))
        if state == pb.CASE_STATE_AWAITING_OVERRIDE_DECISION:
            approve = scenario is sc.Scenario.OVERRIDE
            return lambda: holder.decide_override(ref, sc.override_decision(spec, approve))
        if state == pb.CASE_STATE_AWAITING_ACKNOWLEDGEMENT and not acknowledged:
            return lambda: requester.acknowledge(ref, sc.acknowledgement(spec))
        if (
            state == pb.CASE_STATE_AWAITING_ACKNOWLEDGEMENT
            and scenario is sc.Scenario.RED_UNJUSTIFIED
        ):
            return lambda: self._justify_once_the_ladder_fired(spec, holder, ref)
        return None

    async def _justify_once_the_ladder_fired(
        self, spec: sc.CaseSpec, holder: CaseClient, ref: str
    ) -> object:
        """The owed justification, only after the operator's rung of its ladder fired."""
        view = await holder.get(ref)
        [record] = [h for h in view.record.holders if h.holding_agency_id == spec.holder]
        rungs = {e.level for e in record.escalations if e.step == "override_decision"}
        if "partnership_operator" not in rungs:
            await asyncio.sleep(POLL_SECONDS)
            return view
        if not record.HasField("override_proposal"):
            return await holder.propose_override(ref, sc.override_proposal(spec))
        return await holder.decide_override(ref, sc.override_decision(spec, True))

    async def _second_ack(
        self, requester: CaseClient, spec: sc.CaseSpec, ref: str, deadline: float
    ) -> str:
        """The code of acknowledging again; transient codes (a fault) are tried again."""
        loop = asyncio.get_running_loop()
        code = "UNAVAILABLE"
        transient = {c.name for c in TRANSIENT} | {"INTERNAL"}
        while code in transient and loop.time() < deadline:
            code = await self._code_of(requester.acknowledge(ref, sc.acknowledgement(spec)))
            if code in transient:
                await asyncio.sleep(POLL_SECONDS)
        return code

    async def _code_of(self, call: Awaitable[object]) -> str:
        try:
            await call
        except grpc.aio.AioRpcError as err:
            self._stats.codes[err.code().name] += 1
            return str(err.code().name)
        return "OK"

    async def _call(
        self, call: Callable[[], Awaitable[T]], deadline: float, refused_ok: bool = False
    ) -> T | None:
        """``call()`` until it succeeds, is refused, or the deadline passes.

        Transient codes (and INTERNAL, counted: a fault can surface as one) are retried.
        A refusal (FAILED_PRECONDITION: the case moved on, e.g. a lost reply that did
        apply) returns None when ``refused_ok``.
        """
        loop = asyncio.get_running_loop()
        while loop.time() < deadline:
            try:
                return await call()
            except grpc.aio.AioRpcError as err:
                code = err.code()
                self._stats.codes[code.name] += 1
                if code in TRANSIENT or code is grpc.StatusCode.INTERNAL:
                    await asyncio.sleep(POLL_SECONDS)
                    continue
                if refused_ok and code is grpc.StatusCode.FAILED_PRECONDITION:
                    return None
                raise
        return None


async def play_all(
    driver: CaseDriver, specs: list[sc.CaseSpec], concurrency: int, submit_gap: float
) -> list[CaseRun]:
    """Play every case, ``concurrency`` at a time, starting one every ``submit_gap`` s."""
    gate = asyncio.Semaphore(concurrency)

    async def one(index: int, spec: sc.CaseSpec) -> CaseRun:
        await asyncio.sleep(index * submit_gap)
        async with gate:
            return await driver.play(spec)

    return list(await asyncio.gather(*(one(i, spec) for i, spec in enumerate(specs))))
