"""Command ids as update ids (safeshare.gateway.commands), as pure functions."""

from __future__ import annotations

from protos.sharing.v1 import case_pb2 as pb
from safeshare.gateway import commands
from workflows.commands import caller_key

KEY = b"k" * 32
WORKFLOW = "case-abcdefghijklmnopqrst.oakfield-primary"


def _decline(explanation: str = "already known") -> pb.DeclineDecision:
    return pb.DeclineDecision(
        actor=pb.Actor(agency_id="oakfield-primary", practitioner=pb.Practitioner(user_id="u")),
        reasons=["not_necessary"],
        explanation=explanation,
    )


def test_the_same_command_makes_the_same_update_id_and_other_content_another() -> None:
    first = commands.update_id(KEY, WORKFLOW, "cmd-1", _decline())
    assert first == commands.update_id(KEY, WORKFLOW, "cmd-1", _decline())
    other = commands.update_id(KEY, WORKFLOW, "cmd-1", _decline("another"))
    assert other != first
    assert caller_key(first) == caller_key(other) == "cmd-1"
    # Bound to the workflow too, and keyed: another key makes another digest.
    assert commands.update_id(KEY, WORKFLOW + "x", "cmd-1", _decline()) != first
    assert commands.update_id(b"j" * 32, WORKFLOW, "cmd-1", _decline()) != first


def test_the_update_id_holds_no_content_in_clear() -> None:
    update = commands.update_id(KEY, WORKFLOW, "cmd-1", _decline("Testchild Fictional"))
    assert "Testchild" not in update and "not_necessary" not in update


def test_a_seal_or_stamp_does_not_change_the_update_id() -> None:
    stamped = _decline()
    stamped.decided_at.seconds = 1_700_000_000
    stamped.gateway_seal.command_id = "forged"
    assert commands.update_id(KEY, WORKFLOW, "c", stamped) == commands.update_id(
        KEY, WORKFLOW, "c", _decline()
    )


def test_a_record_shows_the_commands_it_applied() -> None:
    update = commands.update_id(KEY, WORKFLOW, "cmd-1", _decline())
    record = pb.HolderRecord(holding_agency_id="oakfield-primary")
    record.decline.CopyFrom(_decline())
    record.decline.gateway_seal.command_id = update
    case = pb.DecisionRecord(holders=[record])
    assert commands.applied_in(case, update)
    assert not commands.applied_in(case, commands.update_id(KEY, WORKFLOW, "cmd-2", _decline()))


def test_command_ids_keep_to_their_charset() -> None:
    assert commands.command_id_problem("") is None
    assert commands.command_id_problem("0b7c3f0e-3d1b-4c1e-9d55-7c3c2b0e4a11") is None
    for bad in ("a b", "a~b", "x" * 65, "é", "a\n"):
        assert commands.command_id_problem(bad) == commands.COMMAND_ID_RULE, bad
