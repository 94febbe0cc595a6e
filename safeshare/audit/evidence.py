"""Evidence before reading: ``report`` and ``replay`` verify what they read first.

An export folder is verified with the exporter's public key (``verify_export``); cases read
from the case archive are verified against its log and latest checkpoint with the archive's
key. A finding refuses the command (exit 1, naming it) unless the auditor asks to go on with
``--unverified``, and then every page says so. A history file that is not part of a signed
export (the replay corpus) can be read, but never as verified evidence: its pages say so too.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from safeshare.audit.export import MANIFEST
from safeshare.audit.signing import load_public_key
from safeshare.audit.verify import verify_export

UNVERIFIED_BANNER = "UNVERIFIED: this record was read from evidence that did not verify"


@dataclass
class Evidence:
    """What verification found about the sources of one command."""

    findings: list[str] = field(default_factory=list)
    unsigned: list[str] = field(default_factory=list)

    def banner(self, unverified: bool) -> str:
        """The warning every page carries, or "" for verified evidence."""
        if not (self.findings or self.unsigned or unverified):
            return ""
        reasons = self.findings + [f"{s}: not a signed export" for s in self.unsigned]
        detail = "; ".join(reasons) if reasons else "verification was skipped (--unverified)"
        return f"{UNVERIFIED_BANNER} ({detail})"


def check_paths(paths: Sequence[Path], public_key: Path | None, evidence: Evidence) -> None:
    """Verify each export folder among ``paths``; note files outside any signed export."""
    seen: set[Path] = set()
    for path in paths:
        folder = path if path.is_dir() else path.parent
        if folder in seen:
            continue
        seen.add(folder)
        if not (folder / MANIFEST).is_file():
            evidence.unsigned.append(str(path))
            continue
        if public_key is None:
            evidence.findings.append(f"{folder}: an export, and no --public-key to verify it")
            continue
        result = verify_export(folder, load_public_key(public_key))
        evidence.findings += [f"{folder}: {finding}" for finding in result.findings]


def check_archive(
    store: object, verifier: object, case_refs: Sequence[str], evidence: Evidence
) -> None:
    """Verify the archive's log and these cases' records in it."""
    from safeshare.archive.verify import verify_archive

    result = verify_archive(store, verifier)  # type: ignore[arg-type]
    ids = {f"case-{ref}" for ref in case_refs}
    for finding in result.findings:
        mine = finding.subject.split(".")[0] in ids
        if mine or not finding.subject.startswith("case-"):
            evidence.findings.append(
                f"archive: {finding.kind}: {finding.subject}: {finding.detail}"
            )
