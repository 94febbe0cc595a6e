"""Files holding case data are the owner's alone: 0600 files in 0700 directories.

Every SafeShare process sets a private umask when it starts (``private_umask``), so whatever it
creates (audit reports and exports, the dev stack's Temporal database, the sandbox agencies'
stores, logs, claim checks) and whatever its children create (the Temporal dev server) is
unreadable to other accounts. ``tighten`` brings a tree created before that to the same modes.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

PRIVATE_UMASK = 0o077


def private_umask() -> None:
    """From now on this process and its children create 0600 files and 0700 directories."""
    os.umask(PRIVATE_UMASK)


def tighten(root: Path) -> None:
    """Remove group and other access from ``root`` and everything under it (symlinks are left
    alone: they may point outside)."""
    if not root.exists():
        return
    for path in [root, *root.rglob("*")]:
        mode = path.lstat().st_mode
        if stat.S_ISLNK(mode):
            continue
        if mode & (stat.S_IRWXG | stat.S_IRWXO):
            path.chmod(stat.S_IMODE(mode) & ~(stat.S_IRWXG | stat.S_IRWXO))
