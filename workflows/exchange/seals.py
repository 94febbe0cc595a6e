"""Who may drive an exchange: only its case starts it, and every decision must carry the
gateway's seal (``workflows.seal``), on the exchange's own update or, for what the case
forwards as a signal, on the case's.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from temporalio import workflow
from temporalio.exceptions import ApplicationError

from workflows import seal
from workflows.domain.refusal import Rule
from workflows.ids import case_workflow_id, holder_exchange_workflow_id

if TYPE_CHECKING:
    from workflows.exchange.state import ExchangeState


def require_case_parent(x: ExchangeState) -> None:
    """Only a case starts an exchange: Temporal sets the parent, a client cannot.

    The exchange trusts its input (the request, the gateway's key) because the case that
    started it checked the gateway's seal on the request and read the key in its gate.

    Raises:
        ApplicationError: ``NotStartedByCase``, non-retryable.
    """
    parent = workflow.info().parent
    own_id = holder_exchange_workflow_id(x.case_ref, x.holder)
    if (
        parent is None
        or parent.workflow_id != case_workflow_id(x.case_ref)
        or workflow.info().workflow_id != own_id
    ):
        raise ApplicationError(
            "an exchange is started by its case only", type="NotStartedByCase",
            non_retryable=True,
        )  # fmt: skip


def check(x: ExchangeState, command: Any) -> None:
    """Refuse the update in hand unless the gateway sealed ``command`` for this exchange.

    Raises:
        ApplicationError: NotPermitted, with why the seal does not hold.
    """
    # 👉 Validators run live only (never on replay): every live decision is checked.
    if not x.sealed:
        return
    update = workflow.current_update_info()
    try:
        seal.check(x.input.gateway_public_key, workflow.info().workflow_id, command,
                   update.id if update else "")  # fmt: skip
    except seal.SealError as err:
        raise ApplicationError(str(err), type=Rule.NOT_PERMITTED.value) from None


def forwarded_by_case(x: ExchangeState, command: Any) -> bool:
    """Whether a signal carries the gateway's seal on the case's own update (the case
    forwards its requester's commands; a signal from anyone else is ignored)."""
    # A signal handler also runs on replay: histories from a hub that ran without a key
    # (``unsealed_commands_accepted``; none is made now) replay as they ran. A live case
    # forwards only what its own validators checked.
    if not x.sealed or x.input.unsealed_commands_accepted:
        return True
    try:
        seal.check(x.input.gateway_public_key, case_workflow_id(x.case_ref), command)
    except seal.SealError:
        workflow.logger.warning("signal without the gateway's seal ignored")
        return False
    return True
