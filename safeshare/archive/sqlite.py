"""The archive in a SQLite file: the embedded default (``.safeshare/archive.db``).

WAL journal and ``synchronous=FULL``: a record confirmed archived survives a crash of the
archiver or the machine. The file is created 0600 (it holds encrypted histories, and index
fields that say which agencies shared about whom-not-named).
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from safeshare.archive.errors import ArchiveFull, ArchiveUnavailable
from safeshare.archive.sql_store import SqlArchiveStore

BUSY_TIMEOUT_SECONDS = 10.0


def sqlite_path(url: str) -> Path:
    """The file a ``sqlite:///path`` URL (or a plain path) names."""
    if url.startswith("sqlite:///"):
        return Path(url.removeprefix("sqlite://"))
    if url.startswith("sqlite://"):
        return Path(url.removeprefix("sqlite://"))
    if url.startswith("sqlite:"):
        return Path(url.removeprefix("sqlite:"))
    return Path(url)


class SqliteArchiveStore(SqlArchiveStore):
    """The archive in one SQLite file."""

    blob_type = "BLOB"

    def __init__(self, url: str) -> None:
        super().__init__()
        self.path = sqlite_path(url)
        self.url = f"sqlite:///{self.path.resolve()}"
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            if not self.path.exists():
                os.close(os.open(self.path, os.O_WRONLY | os.O_CREAT, 0o600))
            self._connection = sqlite3.connect(
                self.path, timeout=BUSY_TIMEOUT_SECONDS, isolation_level=None,
                check_same_thread=False,
            )  # fmt: skip
            self._connection.execute("PRAGMA journal_mode=WAL")
            self._connection.execute("PRAGMA synchronous=FULL")
        except (OSError, sqlite3.Error) as err:
            raise ArchiveUnavailable(f"cannot open the archive {self.path}: {err}") from None

    @contextmanager
    def _transaction(self, exclusive: bool = False) -> Iterator[Any]:
        cursor = self._connection.cursor()
        try:
            # 👉 IMMEDIATE takes the write lock at the start, so two archivers cannot both read
            # the log's size and append the same leaf index.
            cursor.execute("BEGIN IMMEDIATE" if exclusive else "BEGIN")
        except sqlite3.Error as err:
            raise ArchiveUnavailable(f"archive {self.path} unavailable: {err}") from None
        try:
            yield cursor
            cursor.execute("COMMIT")
        except sqlite3.IntegrityError:
            cursor.execute("ROLLBACK")
            raise
        except sqlite3.Error as err:
            if self._connection.in_transaction:
                cursor.execute("ROLLBACK")
            if getattr(err, "sqlite_errorcode", None) == sqlite3.SQLITE_FULL:
                raise ArchiveFull(
                    f"archive {self.path} is full (no space left on its disk): nothing written"
                ) from None
            raise ArchiveUnavailable(f"archive {self.path} unavailable: {err}") from None
        except BaseException:
            if self._connection.in_transaction:
                cursor.execute("ROLLBACK")
            raise
        finally:
            cursor.close()

    def _columns(self, cursor: Any, table: str) -> set[str]:
        cursor.execute(f"PRAGMA table_info({table})")
        return {str(row[1]) for row in cursor.fetchall()}

    def close(self) -> None:
        self._connection.close()
