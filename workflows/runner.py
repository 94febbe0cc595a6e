"""How workers run SafeShare's workflows: Temporal's sandbox, with SafeShare's own modules
passed through, and the payload contexts answered without re-entering the sandbox.

👉 The sandbox re-imports, for each new workflow run, every module it does not pass through,
and always the module that defines the workflow class: profiling the hub showed 71% of its CPU
in re-importing the pure helpers, and after those were passed through, replaying a case spent
a third of its time re-importing the workflow classes themselves (``@workflow.defn`` checking
every member, each run) and going through the sandbox's restricted-module proxies on every
``datetime`` or ``asyncio`` access in them. Every module of ``workflows`` (the workflow classes
too), the two pure ``activities`` modules and the generated ``protos`` are deterministic and
hold no mutable module state (tables, classes and pure functions only), so sharing one import
across runs is safe, and the sandbox is left to give each run its own instance.

👉 What the sandbox no longer checks for these modules is checked elsewhere, on the same code:

- every recorded history in ``tests/histories`` also replays under Temporal's stock sandbox with
  none of SafeShare's modules passed through (``strict_runner``), where a call to the clock,
  randomness, I/O or threads from workflow code fails the replay (tests/workflows/test_replay.py);
- the same replays leave the module state of every passed-through module as they found it
  (tests/workflows/test_runner.py), so one run cannot leak into the next;
- the chaos suite's checker replays with the SDK's default runner, independently of this one.

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
    "workflows",  # and every module in it (the sandbox matches by package): the workflow
    # classes, their steps (workflows.exchange, .disclosure, .sharing) and the domain
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


def strict_runner() -> SandboxedWorkflowRunner:
    """Temporal's stock sandbox with its default restrictions and none of SafeShare's modules
    passed through: slower, and the check that the workflow code never needs the passthrough
    to be deterministic (the replay tests run every recorded history under it too)."""
    return SandboxedWorkflowRunner(restrictions=SandboxRestrictions.default)
