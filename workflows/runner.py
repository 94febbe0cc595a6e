"""How workers run SafeShare's workflows: Temporal's sandbox, with the pure modules passed
through.

👉 The sandbox re-imports every workflow module for each new workflow run; profiling the hub
showed 71% of its CPU in re-importing these. They are deterministic and hold no mutable module
state (tables and pure functions only), so sharing one import across runs is safe.
"""

from __future__ import annotations

from temporalio.worker.workflow_sandbox import SandboxedWorkflowRunner, SandboxRestrictions

PURE_MODULES = (
    "workflows.domain",  # and every module in it (the sandbox matches by package)
    "workflows.ids",
    "workflows.search_attributes",
    "workflows.memo_view",
    "workflows.disclosure",  # the steps of a disclosure case
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


def workflow_runner() -> SandboxedWorkflowRunner:
    """The sandboxed runner for SafeShare's workers and replayers."""
    return SandboxedWorkflowRunner(
        restrictions=SandboxRestrictions.default.with_passthrough_modules(*PURE_MODULES)
    )
