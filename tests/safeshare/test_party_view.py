"""The one rule of what each party sees (safeshare.gateway.party_view), as a pure function:
examples for each role, and a property over generated cases: for any case and any party, no
free text of another holder survives, and a holder's own exchange reaches it whole."""

from __future__ import annotations

import string

from hypothesis import given, settings
from hypothesis import strategies as st

from protos.sharing.v1 import case_pb2 as pb
from protos.sharing.v1 import case_service_pb2 as service_pb
from safeshare.gateway import listing
from safeshare.gateway.party_view import (
    Party,
    Role,
    entries_for,
    entry_for,
    party_in,
    requester_basis,
    summary_for,
    view_for,
)
from workflows.domain.case_view import merge_case_view

CSC, SCHOOL, GP, POLICE = "northshire-csc", "oakfield-primary", "riverside-gp", "northshire-police"
REQUESTER = Party(CSC, Role.REQUESTER)


def case_of(*holders: pb.HolderRecord, passed: bool = True, **fields: object) -> pb.CaseView:
    request = pb.SharingRequest(
        requesting_agency_id=CSC,
        holding_agency_ids=[h.holding_agency_id for h in holders] or [SCHOOL],
        subjects=[pb.Subject(role=pb.SUBJECT_ROLE_CHILD, given_name="Testchild")],
    )
    record = pb.DecisionRecord(case_ref="c" * 20, request=request, holders=holders)
    record.gate.passed = passed
    return pb.CaseView(case_ref="c" * 20, record=record, **fields)  # type: ignore[arg-type]


def refused_with_views(holder: str, secret: str) -> pb.HolderRecord:
    """An exchange whose consent was refused, an override proposed and rejected."""
    record = pb.HolderRecord(
        holding_agency_id=holder,
        state=pb.CASE_STATE_CLOSED,
        outcome=pb.OUTCOME_NOT_SHARED,
        basis=f"Not shared by {holder}: override_rejected",
    )
    record.consent.status = pb.CONSENT_STATUS_REFUSED
    record.consent.views_expressed = f"{secret} views"
    record.consent.verification = f"{secret} verification"
    record.override_proposal.harm_statement = f"{secret} harm"
    record.override_proposal.actor.practitioner.user_id = f"{secret}-dsl"
    record.override_decision.reason = f"{secret} reason"
    record.override_decision.approve = False
    record.entries.add(event="OverrideProposed", agency_id=holder, user_id=f"{secret}-dsl")
    record.entries.add(
        event="OverrideRejected", agency_id=holder, user_id="cg-1", detail=f"role={secret}"
    )
    record.entries.add(event="ExchangeClosed", agency_id=holder, detail="outcome=not_shared")
    return record


# -- who is a party -------------------------------------------------------------------------------


def test_a_holder_is_a_party_only_once_the_gate_passed() -> None:
    school = pb.HolderRecord(holding_agency_id=SCHOOL)

    assert party_in(CSC, case_of(school, passed=False)) == REQUESTER
    assert party_in(SCHOOL, case_of(school, passed=False)) is None
    assert party_in(SCHOOL, case_of(school)) == Party(SCHOOL, Role.HOLDER)
    assert party_in(POLICE, case_of(school)) is None


# -- the requester --------------------------------------------------------------------------------


def test_the_requester_sees_outcome_and_codes_but_no_holder_free_text() -> None:
    case = case_of(refused_with_views(SCHOOL, "SCHOOLTEXT"), state=pb.CASE_STATE_CLOSED)
    case.record.outcome = pb.OUTCOME_NOT_SHARED
    case.record.basis = case.record.holders[0].basis

    seen = view_for(REQUESTER, case)

    assert "SCHOOLTEXT" not in str(seen)
    (holder,) = seen.record.holders
    assert not holder.HasField("consent") and not holder.HasField("override_proposal")
    assert holder.outcome == pb.OUTCOME_NOT_SHARED
    assert seen.record.basis == holder.basis == f"Not shared by {SCHOOL}: override_rejected"
    assert [(e.event, e.user_id, e.detail) for e in holder.entries] == [
        ("OverrideProposed", "", ""),
        ("OverrideRejected", "", ""),
        ("ExchangeClosed", "", "outcome=not_shared"),
    ]
    assert seen.record.request == case.record.request


def test_the_requesters_basis_is_rebuilt_from_codes() -> None:
    shared = pb.HolderRecord(
        holding_agency_id=SCHOOL,
        outcome=pb.OUTCOME_SHARED_WITH_CONSENT,
        basis="Shared by oakfield-primary with consent (given by father, verified by phone).",
    )
    overridden = pb.HolderRecord(
        holding_agency_id=GP,
        outcome=pb.OUTCOME_SHARED_UNDER_OVERRIDE,
        basis="Shared by riverside-gp under an approved override (X; secret legal words).",
    )
    overridden.override_proposal.reason_code = pb.OVERRIDE_REASON_SIGNIFICANT_HARM
    declined = pb.HolderRecord(
        holding_agency_id=GP, outcome=pb.OUTCOME_NOT_SHARED, basis="Not shared: declined:x"
    )
    declined.decline.reasons.append("family told us in confidence")
    nothing = pb.HolderRecord(holding_agency_id=GP, outcome=pb.OUTCOME_NOT_SHARED, basis="x")
    nothing.entries.add(event="NothingToShare", detail="consent_lookup_refused:their-own-code")

    assert requester_basis(shared) == f"Shared by {SCHOOL} with consent."
    assert requester_basis(overridden) == (
        f"Shared by {GP} under an approved override (OVERRIDE_REASON_SIGNIFICANT_HARM)."
    )
    assert requester_basis(declined) == f"Not shared by {GP}: declined"
    assert requester_basis(nothing) == f"Not shared by {GP}: consent_lookup_refused"
    assert requester_basis(pb.HolderRecord(holding_agency_id=GP)) == ""


def test_the_requester_sees_its_delivery_and_its_own_acknowledgement() -> None:
    holder = pb.HolderRecord(holding_agency_id=SCHOOL, state=pb.CASE_STATE_CLOSED)
    holder.receipt.delivery_id = "d-1"
    holder.shared_items.add(item_id="i-1", holding_agency_id=SCHOOL)
    holder.acknowledgement.use = "strategy discussion"
    holder.consent_withdrawal.withdrawn_by_relationship = "mother"
    holder.consent_withdrawal.reason = "secret reason"
    holder.consent_withdrawal.recipient_notified = True
    holder.entries.add(event="RecordsDelivered", agency_id=CSC, detail="delivery_id=d-1")
    holder.entries.add(event="Acknowledged", agency_id=CSC, user_id="csc-sw-1")

    (seen,) = view_for(REQUESTER, case_of(holder)).record.holders

    assert seen.receipt == holder.receipt and list(seen.shared_items) == list(holder.shared_items)
    assert seen.acknowledgement == holder.acknowledgement
    assert seen.consent_withdrawal.recipient_notified
    assert "mother" not in str(seen) and "secret reason" not in str(seen)
    assert [(e.user_id, e.detail) for e in seen.entries] == [
        ("", "delivery_id=d-1"),
        ("csc-sw-1", ""),
    ]


# -- a holder ---------------------------------------------------------------------------------------


def test_a_holder_sees_its_own_exchange_whole_and_no_other() -> None:
    school, gp = refused_with_views(SCHOOL, "SCHOOLTEXT"), refused_with_views(GP, "GPTEXT")
    gp.state, gp.waiting_on = pb.CASE_STATE_AWAITING_OVERRIDE_DECISION, pb.WAITING_ON_APPROVER
    gp.next_deadline.seconds = 100
    school.state, school.waiting_on = pb.CASE_STATE_AWAITING_CONSENT_DECISION, pb.WAITING_ON_HOLDER
    case = case_of(school, gp, state=pb.CASE_STATE_EXCHANGING, waiting_on=pb.WAITING_ON_APPROVER)
    case.next_deadline.seconds = 100

    seen = view_for(Party(SCHOOL, Role.HOLDER), case)

    assert list(seen.record.holders) == [school]
    assert "GPTEXT" not in str(seen)
    assert (seen.state, seen.waiting_on) == (
        pb.CASE_STATE_AWAITING_CONSENT_DECISION,
        pb.WAITING_ON_HOLDER,
    )
    assert not seen.HasField("next_deadline")


def test_a_holder_sees_its_own_outcome_not_the_combined_one() -> None:
    school = pb.HolderRecord(
        holding_agency_id=SCHOOL, outcome=pb.OUTCOME_SHARED_WITH_CONSENT, basis="school's"
    )
    gp = pb.HolderRecord(holding_agency_id=GP, outcome=pb.OUTCOME_NOT_SHARED, basis="gp's")
    case = case_of(school, gp, state=pb.CASE_STATE_CLOSED)
    case.record.outcome, case.record.basis = pb.OUTCOME_PARTLY_SHARED, "school's gp's"
    case.record.entries.add(event="CaseClosed", detail="outcome=partly_shared")

    seen = view_for(Party(SCHOOL, Role.HOLDER), case)
    alone = view_for(Party(SCHOOL, Role.HOLDER), case_of(school, state=pb.CASE_STATE_CLOSED))

    assert (seen.record.outcome, seen.record.basis) == (pb.OUTCOME_SHARED_WITH_CONSENT, "school's")
    assert [(e.event, e.detail) for e in seen.record.entries] == [("CaseClosed", "")]
    closed = pb.DecisionEntry(event="CaseClosed", detail="outcome=shared_with_consent")
    assert entry_for(Party(SCHOOL, Role.HOLDER), alone.record.request, "", closed) == closed
    assert entry_for(Party(SCHOOL, Role.HOLDER), case.record.request, GP, closed) is None


# -- ListCases --------------------------------------------------------------------------------------


def test_a_listed_case_reaches_a_holder_only_past_the_gate() -> None:
    def summary(**fields: object) -> service_pb.CaseSummary:
        return service_pb.CaseSummary(
            requesting_agency_id=CSC,
            holding_agency_ids=[SCHOOL],
            **fields,  # type: ignore[arg-type]
        )

    rejected = summary(state=pb.CASE_STATE_CLOSED, outcome=pb.OUTCOME_REJECTED_BY_PROTOCOL_GATE)
    checking = summary(state=pb.CASE_STATE_REQUESTED)
    passed = summary(state=pb.CASE_STATE_EXCHANGING)
    both = service_pb.CaseSummary(
        requesting_agency_id=CSC,
        holding_agency_ids=[SCHOOL, GP],
        state=pb.CASE_STATE_CLOSED,
        outcome=pb.OUTCOME_PARTLY_SHARED,
    )
    gps = service_pb.CaseSummary(
        requesting_agency_id=CSC, holding_agency_ids=[GP], holding_agency_id=GP
    )

    assert summary_for(CSC, rejected) == rejected
    assert summary_for(SCHOOL, rejected) is None and summary_for(SCHOOL, checking) is None
    assert summary_for(SCHOOL, passed) == passed
    assert summary_for(SCHOOL, both).outcome == pb.OUTCOME_UNSPECIFIED  # type: ignore[union-attr]
    assert summary_for(SCHOOL, gps) is None and summary_for(POLICE, passed) is None


def test_the_listing_query_keeps_a_holder_to_cases_past_the_gate() -> None:
    cases = listing.build_query(service_pb.ListCasesRequest(), SCHOOL).query
    exchanges = listing.build_query(
        service_pb.ListCasesRequest(waiting_on=pb.WAITING_ON_HOLDER), SCHOOL
    ).query

    assert (
        "(RequestingAgency = 'oakfield-primary' OR (HoldingAgency = 'oakfield-primary' AND "
        "(CaseState IN ('EXCHANGING') OR Outcome IN ('SHARED_WITH_CONSENT', 'NOT_SHARED', "
        "'SHARED_UNDER_OVERRIDE', 'WITHDRAWN', 'PARTLY_SHARED'))))"
    ) in cases
    assert "REJECTED_BY_PROTOCOL_GATE" not in cases
    assert "(RequestingAgency = 'oakfield-primary' OR (HoldingAgency = 'oakfield-primary'))" in (
        exchanges
    )


# -- the property -----------------------------------------------------------------------------------

HOLDERS = (SCHOOL, GP, POLICE)
_CODE = st.text(alphabet=string.ascii_lowercase + "_=:", min_size=1, max_size=12)
# Events whose detail the workflows write from codes only; any other may carry free text.
_CODE_DETAIL_EVENTS = (
    "RecordsDelivered",
    "DeliveryFailing",
    "Acknowledged",
    "RequestWithdrawn",
    "UrgencyChanged",
    "ConsentWithdrawn",
    "ConsentWithdrawalDelivered",
    "ExchangeClosed",
)
_FREE_DETAIL_EVENTS = (
    "ConsentChecked",
    "ConsentRecorded",
    "OverrideProposed",
    "OverrideApproved",
    "OverrideRejected",
    "SharedFirst",
    "DeclinedToShare",
    "NothingToShare",
    "DeadlineMissed",
    "SomethingNew",
)


@st.composite
def holder_records(draw: st.DrawFn, holder: str) -> pb.HolderRecord:
    """One holder's exchange, every free-text field (and its practitioners' ids) a token that
    names the holder."""
    n = iter(range(1_000))

    def secret() -> str:
        return f"SECRET[{holder}]{next(n)}" + draw(st.text(string.ascii_letters, max_size=6))

    record = pb.HolderRecord(
        holding_agency_id=holder,
        state=draw(st.sampled_from(pb.CaseState.values())),
        waiting_on=draw(st.sampled_from(pb.WaitingOn.values())),
        outcome=draw(st.sampled_from(pb.Outcome.values())),
        basis=draw(st.sampled_from(["", f"Shared by {holder} (verified by {secret()})"])),
    )
    if draw(st.booleans()):
        record.consent.CopyFrom(
            pb.ConsentRecord(
                status=draw(st.sampled_from(pb.ConsentStatus.values())),
                given_by_relationship=secret(),
                verification=secret(),
                views_expressed=secret(),
            )
        )
    if draw(st.booleans()):
        decision = record.consent_decision
        decision.actor.practitioner.user_id = secret()
        decision.actor.practitioner.role = secret()
        decision.not_sought.explanation = secret()
    if draw(st.booleans()):
        proposal = record.override_proposal
        proposal.actor.practitioner.user_id = secret()
        for name in (
            "harm_statement",
            "legal_basis",
            "necessity_and_proportionality",
            "alternatives_considered",
            "advice_sought",
            "not_telling_reason",
        ):
            setattr(proposal, name, secret())
    if draw(st.booleans()):
        record.override_decision.reason = secret()
        record.override_decision.approve = draw(st.booleans())
        record.override_decision.actor.practitioner.user_id = secret()
    if draw(st.booleans()):
        record.share_first.harm_statement = secret()
    if draw(st.booleans()):
        record.decline.reasons.append(secret())
        record.decline.explanation = secret()
    if draw(st.booleans()):
        record.consent_withdrawal.withdrawn_by_relationship = secret()
        record.consent_withdrawal.reason = secret()
        record.consent_withdrawal.actor.practitioner.user_id = secret()
    if draw(st.booleans()):
        record.receipt.delivery_id = draw(_CODE)
    if draw(st.booleans()):
        record.acknowledgement.use = "the requester's own words"
    for _ in range(draw(st.integers(0, 5))):
        if draw(st.booleans()):
            event, detail = draw(st.sampled_from(_CODE_DETAIL_EVENTS)), draw(_CODE)
        else:
            event, detail = draw(st.sampled_from(_FREE_DETAIL_EVENTS)), f"role={secret()}"
        by_requester = draw(st.booleans())
        record.entries.add(
            event=event,
            agency_id=CSC if by_requester else holder,
            user_id="csc-practitioner" if by_requester else secret(),
            detail=detail,
        )
    return record


@st.composite
def cases(draw: st.DrawFn) -> pb.CaseView:
    holders = draw(st.lists(st.sampled_from(HOLDERS), min_size=1, max_size=3, unique=True))
    records = [draw(holder_records(h)) for h in holders]
    present = [r for r in records if draw(st.booleans())]  # an exchange may not have started
    case = case_of(*present, state=draw(st.sampled_from(pb.CaseState.values())))
    del case.record.request.holding_agency_ids[:]
    case.record.request.holding_agency_ids.extend(holders)
    case.record.outcome = draw(st.sampled_from(pb.Outcome.values()))
    case.record.basis = " ".join(r.basis for r in present)
    case.record.entries.add(event="CaseClosed", detail="outcome=partly_shared")
    return case


@settings(max_examples=300, deadline=None)
@given(cases())
def test_no_party_ever_sees_another_holders_free_text(case: pb.CaseView) -> None:
    for agency in (CSC, *case.record.request.holding_agency_ids):
        party = party_in(agency, case)
        assert party is not None
        # What GetCase sends, and what WatchCase sends of each source's entries.
        request = case.record.request
        watched = [entries_for(party, request, "", case.record.entries)] + [
            entries_for(party, request, h.holding_agency_id, h.entries) for h in case.record.holders
        ]
        seen = str(view_for(party, case)) + str(watched)
        others = [h for h in HOLDERS if h != agency]
        assert not [h for h in others if f"SECRET[{h}]" in seen], (agency, seen)
        if party.role is Role.HOLDER:
            own = [h for h in case.record.holders if h.holding_agency_id == agency]
            assert [h for h in view_for(party, case).record.holders] == own


# -- CLOSED only with its outcome ------------------------------------------------------------


def _closed_exchange(holder: str, outcome: pb.Outcome.ValueType) -> pb.HolderRecord:
    return pb.HolderRecord(
        holding_agency_id=holder, state=pb.CASE_STATE_CLOSED, outcome=outcome, basis="b"
    )


def _as_read(agency: str, case: pb.CaseView, holders: list[pb.HolderRecord]) -> pb.CaseView:
    """What GetCase answers ``agency``: every holder's record merged in, then its part."""
    merged = merge_case_view(case, holders)
    party = party_in(agency, merged)
    assert party is not None
    return view_for(party, merged)


def test_a_case_whose_only_exchange_closed_is_not_closed_until_the_case_is() -> None:
    # The exchange has closed, the case workflow has not yet recorded the case's outcome.
    exchange = _closed_exchange(SCHOOL, pb.OUTCOME_SHARED_WITH_CONSENT)
    case = case_of(state=pb.CASE_STATE_EXCHANGING)
    for agency in (CSC, SCHOOL):
        seen = _as_read(agency, case, [exchange])
        assert seen.state != pb.CASE_STATE_CLOSED or seen.record.outcome, (agency, seen)
    assert _as_read(CSC, case, [exchange]).state == pb.CASE_STATE_EXCHANGING
    # The holder's own part is over: it reads its own exchange's outcome with CLOSED.
    own = _as_read(SCHOOL, case, [exchange])
    assert (own.state, own.record.outcome) == (
        pb.CASE_STATE_CLOSED,
        pb.OUTCOME_SHARED_WITH_CONSENT,
    )


def test_a_holder_whose_exchange_closed_first_reads_its_own_outcome() -> None:
    mine = _closed_exchange(SCHOOL, pb.OUTCOME_NOT_SHARED)
    other = pb.HolderRecord(holding_agency_id=GP, state=pb.CASE_STATE_AWAITING_CONSENT_DECISION)
    case = case_of(mine, other, state=pb.CASE_STATE_EXCHANGING)
    seen = _as_read(SCHOOL, case, [mine, other])
    assert (seen.state, seen.record.outcome) == (pb.CASE_STATE_CLOSED, pb.OUTCOME_NOT_SHARED)
    assert _as_read(CSC, case, [mine, other]).state != pb.CASE_STATE_CLOSED


_CLOSED_OUTCOMES = [o for o in pb.Outcome.values() if o != pb.OUTCOME_UNSPECIFIED]


@st.composite
def consistent_cases(draw: st.DrawFn) -> tuple[pb.CaseView, list[pb.HolderRecord]]:
    """A case as the workflows publish it: whatever is CLOSED carries its outcome, and the
    case closes only after all of its exchanges."""
    holders = draw(st.lists(st.sampled_from(HOLDERS), min_size=1, max_size=3, unique=True))
    records = []
    for holder in holders:
        state = draw(st.sampled_from([s for s in pb.CaseState.values() if s]))
        record = pb.HolderRecord(holding_agency_id=holder, state=state)
        if state == pb.CASE_STATE_CLOSED:
            record.outcome = draw(st.sampled_from(_CLOSED_OUTCOMES))
        records.append(record)
    all_closed = all(r.state == pb.CASE_STATE_CLOSED for r in records)
    case_closed = all_closed and draw(st.booleans())
    case = case_of(state=pb.CASE_STATE_CLOSED if case_closed else pb.CASE_STATE_EXCHANGING)
    del case.record.request.holding_agency_ids[:]
    case.record.request.holding_agency_ids.extend(holders)
    if case_closed:
        case.record.outcome = draw(st.sampled_from(_CLOSED_OUTCOMES))
        case.record.holders.extend(records)
    present = [r for r in records if draw(st.booleans()) or case_closed]
    return case, present


@settings(max_examples=300, deadline=None)
@given(consistent_cases())
def test_no_party_ever_reads_closed_without_an_outcome(
    found: tuple[pb.CaseView, list[pb.HolderRecord]],
) -> None:
    case, holders = found
    for agency in (CSC, *case.record.request.holding_agency_ids):
        seen = _as_read(agency, case, holders)
        if seen.state == pb.CASE_STATE_CLOSED:
            assert seen.record.outcome != pb.OUTCOME_UNSPECIFIED, (agency, seen)
