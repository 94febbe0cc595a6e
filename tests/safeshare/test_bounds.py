"""The shape every request must have (safeshare.gateway.bounds), as a pure function."""

from __future__ import annotations

from pathlib import Path

import pytest

from protos.sharing.v1 import case_pb2 as pb
from protos.sharing.v1 import case_service_pb2 as service_pb
from safeshare.gateway import bounds, commands
from safeshare.gateway.bounds import shape_violations
from tests.safeshare.test_gateway_validation import well_formed


def test_a_well_formed_request_has_its_shape() -> None:
    assert shape_violations(well_formed()) == []


@pytest.mark.parametrize("char", ["\x00", "\x07", "\x1b", "\x7f", "\x85", "\n", "\t", "\u202e"])
def test_a_name_holds_no_control_character_line_break_or_direction_override(char: str) -> None:
    call = well_formed()
    call.request.subjects[0].family_name = f"Ex{char}ample"
    found = shape_violations(call)
    assert [v.field for v in found] == ["request.subjects[0].family_name"]
    assert "Ex" not in found[0].description


def test_free_text_may_break_lines_but_holds_no_other_control_character() -> None:
    call = well_formed()
    call.request.categories[0].necessity = "first line\r\n\tsecond line"
    assert shape_violations(call) == []
    call.request.categories[0].necessity = "escape \x1b[2J"
    assert [v.field for v in shape_violations(call)] == ["request.categories[0].necessity"]


def test_every_string_and_list_is_bounded() -> None:
    call = well_formed()
    req = call.request
    req.lawful_basis = "x" * (bounds.MAX_TEXT_LENGTH + 1)
    req.subjects[0].given_name = "x" * (bounds.MAX_NAME_LENGTH + 1)
    req.request_id = "x" * (bounds.MAX_ID_LENGTH + 1)
    for _ in range(bounds.MAX_SUBJECTS):
        req.subjects.add(role=pb.SUBJECT_ROLE_CHILD)
    found = {v.field: v.description for v in shape_violations(call)}
    assert found == {
        "request.request_id": f"must be at most {bounds.MAX_ID_LENGTH} characters",
        "request.subjects": f"at most {bounds.MAX_SUBJECTS} entries",
        "request.subjects[0].given_name": f"must be at most {bounds.MAX_NAME_LENGTH} characters",
        "request.lawful_basis": f"must be at most {bounds.MAX_TEXT_LENGTH} characters",
    }


def test_unknown_enum_numbers_say_so_wherever_they_are() -> None:
    call = service_pb.ProposeOverrideRequest(
        proposal=pb.OverrideProposal(
            reason_code=pb.OverrideReason.ValueType(42),
            minimum_data_set=[pb.InformationCategory.ValueType(99)],
        )
    )
    assert [(v.field, v.description) for v in shape_violations(call)] == [
        ("proposal.reason_code", "unknown value 42"),
        ("proposal.minimum_data_set[0]", "unknown value 99"),
    ]


def test_a_timestamp_outside_what_the_type_allows_is_refused() -> None:
    call = well_formed()
    call.request.requester.training_valid_until.seconds = 2**62
    assert [v.field for v in shape_violations(call)] == ["request.requester.training_valid_until"]


def test_the_integrators_guide_states_the_bounds_the_gateway_enforces() -> None:
    guide = (Path(__file__).parents[2] / "docs" / "integrators-guide.md").read_text()
    table = guide[guide.index("### Bounds, characters and bad bytes") :]
    for row in (
        f"| {bounds.MAX_TEXT_LENGTH:,} characters;",
        f"| {bounds.MAX_NAME_LENGTH} characters, one line |",
        f"| {bounds.MAX_ID_LENGTH} characters, one line |",
        f"| {commands.MAX_COMMAND_ID_LENGTH} characters: letters, digits",
        f"| `pageToken` | {bounds.MAX_PAGE_TOKEN_LENGTH:,} characters |",
        f"| `subjects` | {bounds.MAX_SUBJECTS} |",
        f"| `holdingAgencyIds` | {bounds.COUNTS['holding_agency_ids']} |",
        f"| {bounds.MAX_ITEMS} |",
    ):
        assert row in table, row
