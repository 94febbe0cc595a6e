"""The shipped workflow runner answers the SDK's payload-context questions as Temporal's own
sandboxed runner does, without re-entering the sandbox for each, and the workflow runs it
shares one import of SafeShare's modules across leave those modules as they found them."""

from __future__ import annotations

import json
import sys
from types import ModuleType

import pytest
from temporalio import workflow
from temporalio.api.common.v1 import Payloads
from temporalio.api.enums.v1 import CommandType
from temporalio.api.failure.v1 import Failure
from temporalio.client import WorkflowHistory
from temporalio.converter import DataConverter
from temporalio.worker import Replayer, WorkflowInstanceDetails
from temporalio.worker._command_aware_visitor import CommandInfo
from temporalio.worker.workflow_sandbox import SandboxedWorkflowRunner
from temporalio.worker.workflow_sandbox._runner import _fake_info

from tests.workflows.test_replay import HISTORIES, WORKFLOW_IDS
from workflows.consent_withdrawal import ConsentWithdrawalNotice
from workflows.disclosure_case import DisclosureCase
from workflows.holder_exchange import HolderExchange
from workflows.runner import PURE_MODULES, workflow_runner
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


def _passed_through(name: str) -> bool:
    return any(name == root or name.startswith(root + ".") for root in PURE_MODULES)


def _module_state() -> dict[str, str]:
    """What every passed-through module holds that a run could change: its mutable globals,
    the attributes of its module-level objects and its classes' mutable attributes, each as
    its ``repr``."""
    state: dict[str, str] = {}
    for name, module in sorted(sys.modules.items()):
        if not _passed_through(name):
            continue
        namespace = vars(module)
        for attr, value in namespace.items():
            if attr.startswith("__") or value is namespace:
                continue
            if isinstance(value, MUTABLE):
                state[f"{name}.{attr}"] = repr(value)
            elif isinstance(value, ModuleType) or (callable(value) and not isinstance(value, type)):
                continue
            elif not isinstance(value, type) and hasattr(value, "__dict__"):
                state[f"{name}.{attr}"] = repr(vars(value))  # a module-level object
            elif isinstance(value, type) and value.__module__ == name:
                for member, held in vars(value).items():
                    if not member.startswith("__") and isinstance(held, MUTABLE):
                        state[f"{name}.{attr}.{member}"] = repr(held)
    return state


MUTABLE = (dict, list, set, bytearray)


async def test_runs_leave_the_passed_through_modules_as_they_found_them() -> None:
    """The shipped runner shares one import of the workflow modules across runs (the sandbox
    no longer gives each run its own): replaying recorded cases of every kind must not change
    any module-level or class-level table, or one run could leak into the next."""
    before = _module_state()
    assert len(before) > 20, "the fingerprint covers the modules' tables"
    histories = HISTORIES[::3]
    replayer = Replayer(
        workflows=[SharingCase, HolderExchange, DisclosureCase, ConsentWithdrawalNotice],
        workflow_runner=workflow_runner(),
    )
    for path in histories:
        history = WorkflowHistory.from_json(WORKFLOW_IDS[path.name], json.loads(path.read_text()))
        result = await replayer.replay_workflow(history, raise_on_replay_failure=False)
        assert result.replay_failure is None, path.name
    after = _module_state()
    changed = sorted(
        key for key in before.keys() | after.keys() if before.get(key) != after.get(key)
    )
    assert not changed, f"module state changed by a workflow run: {changed}"
