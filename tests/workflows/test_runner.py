"""The shipped workflow runner answers the SDK's payload-context questions as Temporal's own
sandboxed runner does, without re-entering the sandbox for each."""

from __future__ import annotations

import pytest
from temporalio import workflow
from temporalio.api.common.v1 import Payloads
from temporalio.api.enums.v1 import CommandType
from temporalio.api.failure.v1 import Failure
from temporalio.converter import DataConverter
from temporalio.worker import WorkflowInstanceDetails
from temporalio.worker._command_aware_visitor import CommandInfo
from temporalio.worker.workflow_sandbox import SandboxedWorkflowRunner
from temporalio.worker.workflow_sandbox._runner import _fake_info

from workflows.holder_exchange import HolderExchange
from workflows.runner import workflow_runner
from workflows.sharing_case import SharingCase

COMMANDS = (
    None,
    CommandInfo(CommandType.COMMAND_TYPE_SCHEDULE_ACTIVITY_TASK, 1),
    CommandInfo(CommandType.COMMAND_TYPE_START_CHILD_WORKFLOW_EXECUTION, 1),
    CommandInfo(CommandType.COMMAND_TYPE_SIGNAL_EXTERNAL_WORKFLOW_EXECUTION, 1),
)


def _details(cls: type) -> WorkflowInstanceDetails:
    converter = DataConverter.default
    return WorkflowInstanceDetails(
        payload_converter_factory=converter._new_payload_converter,
        failure_converter_class=converter.failure_converter_class,
        interceptor_classes=[],
        defn=workflow._Definition.must_from_class(cls),
        info=_fake_info,
        randomness_seed=-1,
        extern_functions={},
        disable_eager_activity_execution=False,
        worker_level_failure_exception_types=[],
        patch_activation_callback=None,
        last_completion_result=Payloads(),
        last_failure=Failure(),
    )


@pytest.mark.parametrize("cls", [SharingCase, HolderExchange])
async def test_payload_contexts_are_the_sandbox_s_own(cls: type) -> None:
    shipped = workflow_runner()
    stock = SandboxedWorkflowRunner(restrictions=shipped.restrictions)
    ours = shipped.create_instance(_details(cls))
    theirs = stock.create_instance(_details(cls))
    assert type(ours) is not type(theirs), "the shipped runner makes its own instances"
    for command in COMMANDS:
        assert ours.get_serialization_context(command) == theirs.get_serialization_context(command)
        assert ours.get_external_store_context(command) == theirs.get_external_store_context(
            command
        )
    assert ours.get_serialization_context(None) is not None
