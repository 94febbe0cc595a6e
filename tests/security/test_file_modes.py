"""Files holding case data are 0600 in 0700 directories, whatever the caller's umask.

`safeshare audit report` writes decrypted decision records (harm statements included); it
wrote them world-readable (0644 under the usual umask 022). Run as a user would, in a
subprocess with umask 022.
"""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from pathlib import Path

from safeshare.files import tighten

ROOT = Path(__file__).resolve().parents[2]
CORPUS = ROOT / "tests" / "histories"


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_audit_report_files_are_private(tmp_path: Path) -> None:
    case_id = json.loads((CORPUS / "workflow-ids.json").read_text())["consent-covers.case.json"]
    out = tmp_path / "reports" / "today"
    env = {k: v for k, v in os.environ.items() if not k.startswith("SAFESHARE_KEYS")}
    result = subprocess.run(
        [sys.executable, "-m", "safeshare", "audit", "report", str(CORPUS),
         "--case", case_id, "--out", str(out)],
        cwd=ROOT, capture_output=True, text=True, timeout=120, env=env,
        preexec_fn=lambda: os.umask(0o022),
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    written = sorted(out.iterdir())
    assert written, "the report wrote nothing"
    for path in written:
        assert _mode(path) == 0o600, f"{path.name} is {_mode(path):o}"
    for folder in (out, out.parent):
        assert _mode(folder) == 0o700, f"{folder} is {_mode(folder):o}"


def test_a_data_folder_made_earlier_is_tightened(tmp_path: Path) -> None:
    data = tmp_path / "data"
    (data / "agencies").mkdir(parents=True)
    db = data / "agencies" / "gp.db"
    db.write_bytes(b"sqlite")
    for path, mode in ((data, 0o755), (data / "agencies", 0o755), (db, 0o644)):
        path.chmod(mode)
    tighten(data)
    assert (_mode(data), _mode(data / "agencies"), _mode(db)) == (0o700, 0o700, 0o600)
