"""The domain stays plain Python: no module in workflows/domain imports Temporal, gRPC or
anything that does I/O, so the workflow sandbox may share one import of it across runs
(``workflows.runner`` passes the package through) and its rules are tested directly."""

from __future__ import annotations

import ast
from pathlib import Path

import workflows.domain
from workflows.runner import PURE_MODULES

DOMAIN = Path(workflows.domain.__file__).parent
ALLOWED_ROOTS = {
    "__future__", "bisect", "collections", "dataclasses", "datetime", "enum", "re",
    "typing", "unicodedata", "google", "protos", "workflows",
}  # fmt: skip


def _imports(path: Path) -> set[str]:
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
    return found


def test_the_domain_imports_only_the_standard_library_protobuf_and_itself() -> None:
    modules = sorted(DOMAIN.glob("*.py"))
    assert len(modules) > 10
    for path in modules:
        imported = _imports(path)
        outside = {name for name in imported if name.split(".")[0] not in ALLOWED_ROOTS}
        assert not outside, f"{path.name} imports {outside}"
        ours = {name for name in imported if name.startswith("workflows")}
        assert all(name.startswith("workflows.domain") for name in ours), path.name
        google = {name for name in imported if name.startswith("google")}
        assert all(name.startswith("google.protobuf") for name in google), path.name


def test_the_runner_passes_the_whole_domain_through_the_sandbox() -> None:
    # The whole package, or the domain by name: the sandbox matches passthrough by package.
    assert any(root in ("workflows", "workflows.domain") for root in PURE_MODULES)
