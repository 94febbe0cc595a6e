"""Who may decide: the approvers the partnership registry names for a holder.

An override (or a disclosure without consent) is decided only by a user the registry names
as one of the holder's approvers, when it names any; the registry is read through a hub
activity at the moment of the decision, so a change to the registry counts at once.

Side-effect free and without module state (a pure module the sandbox passes through).
"""

from __future__ import annotations

from temporalio import workflow
from temporalio.exceptions import ActivityError, ApplicationError

from workflows import agency_calls
from workflows.domain import practitioners
from workflows.domain.refusal import Rule

with workflow.unsafe.imports_passed_through():
    from activities.names import APPROVERS_OF


async def named(holder: str, user_id: str, *, deciding: str) -> bool:
    """Whether the registry names ``user_id`` (canonical) as one of ``holder``'s approvers
    (True when it names none); ``deciding`` says what for, in the activity's summary.

    Raises:
        ApplicationError: OutOfTurn, the registry could not be read (the caller may retry).
    """
    try:
        names = await agency_calls.hub(
            APPROVERS_OF, holder, list[str], summary=f"Who may decide {holder}'s {deciding}"
        )
    except ActivityError as err:
        raise ApplicationError(
            "the registry's approvers could not be read; try again", type=Rule.OUT_OF_TURN.value
        ) from err
    approvers = {practitioners.canonical_user_id(a) for a in names} - {None}
    return not approvers or user_id in approvers


def not_named(holder: str) -> ApplicationError:
    """The refusal of a decider the registry does not name."""
    return ApplicationError(
        f"not an approver the partnership registry names for {holder}",
        type=Rule.NOT_PERMITTED.value,
    )
