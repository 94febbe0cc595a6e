"""A workflow's refusal reaches the caller as the fields it names: the domain's field
violations travel as the ``ApplicationError``'s details through Temporal's converter, and the
gateway sends them on as ``google.rpc.BadRequest`` field violations, path for path."""

from __future__ import annotations

from dataclasses import dataclass

import grpc
from google.rpc import error_details_pb2, status_pb2
from temporalio.api.failure.v1 import Failure
from temporalio.client import WorkflowUpdateFailedError
from temporalio.converter import DataConverter
from temporalio.exceptions import ApplicationError

from protos.sharing.v1 import case_pb2 as pb
from safeshare.gateway.errors import rich_status
from safeshare.gateway.refusals import _refusal
from workflows.commands import refused
from workflows.domain.exchange import Exchange
from workflows.domain.exchange_commands import ConsentChecked, ProposeOverride
from workflows.domain.vocabulary import Actor, Urgency

HOLDER = "oakfield-primary"


@dataclass(frozen=True)
class _Rpc:
    """A decision RPC as the refusal mapping sees it: the command's field in the request."""

    field: str
    fallback_field: str = ""


ASKED = frozenset({pb.INFORMATION_CATEGORY_EDUCATION_ATTENDANCE})


def _through_temporal(error: ApplicationError) -> ApplicationError:
    """``error`` as the gateway's client decodes it from the update's failure."""
    converter = DataConverter.default
    failure = Failure()
    converter.failure_converter.to_failure(error, converter.payload_converter, failure)
    decoded = converter.failure_converter.from_failure(failure, converter.payload_converter)
    assert isinstance(decoded, ApplicationError)
    return decoded


def _answer(
    error: ApplicationError, field: str
) -> tuple[grpc.StatusCode, str, list[tuple[str, str]]]:
    """The status code, message and field violations the caller of a decision RPC gets."""
    command = _Rpc(field)
    gateway_error = _refusal(WorkflowUpdateFailedError(_through_temporal(error)), command)
    assert gateway_error is not None
    status = rich_status(gateway_error)
    details = dict(status.trailing_metadata)["grpc-status-details-bin"]
    bad_request = error_details_pb2.BadRequest()
    assert status_pb2.Status.FromString(details).details[0].Unpack(bad_request)
    violations = [(v.field, v.description) for v in bad_request.field_violations]
    return status.code, status.details, violations


def test_an_override_missing_two_fields_and_asking_too_much_is_refused_field_by_field() -> None:
    exchange = Exchange(holder=HOLDER, recipient="northshire-csc", urgency=Urgency.AMBER)
    exchange.apply(ConsentChecked(covers=False))
    proposal = pb.OverrideProposal(
        actor=pb.Actor(practitioner=pb.Practitioner(user_id="t-1", role="teacher")),
        consent_state_overridden=pb.CONSENT_STATUS_REFUSED,
        harm_statement="",
        legal_basis="Children Act 1989 s.47",
        necessity_and_proportionality="only the attendance record",
        alternatives_considered="",
        advice_sought="the DSL",
        reason_code=pb.OVERRIDE_REASON_SIGNIFICANT_HARM,
        minimum_data_set=[pb.INFORMATION_CATEGORY_HEALTH_SUMMARY],
        not_telling_reason="telling would put the child at risk",
    )
    refusal = exchange.check(ProposeOverride(Actor(HOLDER, "t-1", "teacher"), proposal, ASKED))
    assert refusal is not None

    code, message, violations = _answer(refused(refusal), "proposal")

    assert code == grpc.StatusCode.INVALID_ARGUMENT
    assert violations == [
        ("proposal.harm_statement", "required"),
        ("proposal.alternatives_considered", "required"),
        ("proposal.minimum_data_set", "only categories the request asked for"),
    ]
    assert message == (
        "required: proposal.harm_statement, proposal.alternatives_considered, "
        "proposal.minimum_data_set (only categories the request asked for)"
    )


def test_a_refusal_that_names_no_field_is_reported_on_the_commands_fallback_field() -> None:
    error = ApplicationError("urgency unchanged", type="Invalid")
    code, message, violations = _answer(error, "change")
    assert (code, message) == (grpc.StatusCode.INVALID_ARGUMENT, "urgency unchanged")
    assert violations == [("change", "urgency unchanged")]
