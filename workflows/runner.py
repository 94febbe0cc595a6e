"""How workers run SafeShare's workflows: Temporal's sandbox, with the pure modules passed
through, and the payload contexts answered without re-entering the sandbox.

👉 The sandbox re-imports every workflow module for each new workflow run; profiling the hub
showed 71% of its CPU in re-importing these. They are deterministic and hold no mutable module
state (tables and pure functions only), so sharing one import across runs is safe.

👉 The SDK asks the workflow instance which serialization context each payload of an
activation or completion belongs to (the workflow, an activity, a child), several times per
payload (decode, encode, external storage). The sandbox answers each question by compiling and
``exec``-ing a snippet under its importer, about 0.2 ms, against 2 µs for the answer itself:
with a view published in the memo as many small parts, that was the largest cost of replaying
a case. The answer only reads the instance's own state (its info and pending commands) and
builds the SDK's context values, importing nothing and calling nothing the sandbox restricts,
so ``workflow_runner`` asks the sandboxed instance directly.
"""

from __future__ import annotations

from typing import Any

from temporalio.converter import SerializationContext
from temporalio.converter._extstore import StorageDriverStoreContext
from temporalio.worker import WorkflowInstance, WorkflowInstanceDetails
from temporalio.worker._command_aware_visitor import CommandInfo
from temporalio.worker.workflow_sandbox import SandboxedWorkflowRunner, SandboxRestrictions
from temporalio.worker.workflow_sandbox._runner import _Instance

PURE_MODULES = (
    "workflows.domain",  # and every module in it (the sandbox matches by package)
    "workflows.ids",
    "workflows.search_attributes",
    "workflows.memo_view",
    "workflows.disclosure",  # the steps of a disclosure case
    "workflows.sharing",
    "workflows.names",
    "workflows.seal",
    "workflows.commands",
    "workflows.ed25519",
    "workflows.agency_calls",
    "workflows.approvers",
    "workflows.ladder",
    "workflows.record_keeper",
    "workflows.exchange",
    "activities.agency",
    "activities.names",
    "protos",
)


class _DirectContextInstance(_Instance):
    """The SDK's sandboxed instance, asked for payload contexts without an ``exec``."""

    def _sandboxed(self) -> Any:
        return self.globals_and_locals["__temporal_in_sandbox"]

    def get_serialization_context(
        self, command_info: CommandInfo | None
    ) -> SerializationContext | None:
        return self._sandboxed().get_serialization_context(command_info)

    def get_external_store_context(
        self, command_info: CommandInfo | None
    ) -> StorageDriverStoreContext:
        return self._sandboxed().get_external_store_context(command_info)


class SafeShareSandboxRunner(SandboxedWorkflowRunner):
    """Temporal's sandboxed runner whose instances answer payload contexts directly."""

    def create_instance(self, det: WorkflowInstanceDetails) -> WorkflowInstance:
        """A sandboxed instance, as the SDK's runner makes it (``_DirectContextInstance``)."""
        return _DirectContextInstance(det, self.runner_class, self.restrictions)


def workflow_runner() -> SandboxedWorkflowRunner:
    """The sandboxed runner for SafeShare's workers and replayers."""
    return SafeShareSandboxRunner(
        restrictions=SandboxRestrictions.default.with_passthrough_modules(*PURE_MODULES)
    )
