"""The archive in PostgreSQL (psycopg 3), for a partnership that runs one.

The writer's lock is a transaction-scoped advisory lock, so archivers on several machines
append leaves one at a time; readers never wait for it. A dropped connection is reopened on
the next call (the database restarted, or failed over).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import psycopg
import psycopg.errors

from safeshare.archive.errors import ArchiveFull, ArchiveUnavailable
from safeshare.archive.sql_store import SqlArchiveStore

CONNECT_TIMEOUT_SECONDS = 5
# Any constant shared by every writer of this archive: the log's append lock.
_WRITER_LOCK = 0x5AFE5A4E
# Who is connected is in the URL; logs and errors name only host and database.


class PostgresArchiveStore(SqlArchiveStore):
    """The archive in one PostgreSQL database."""

    blob_type = "BYTEA"

    def __init__(self, url: str) -> None:
        super().__init__()
        self.url = url
        self._connection: psycopg.Connection[Any] | None = None
        self._connect()

    def _where(self) -> str:
        info = psycopg.conninfo.conninfo_to_dict(self.url)
        return f"{info.get('host', '')}:{info.get('port', '')}/{info.get('dbname', '')}"

    def _connect(self) -> psycopg.Connection[Any]:
        if self._connection is None or self._connection.closed:
            try:
                self._connection = psycopg.connect(
                    self.url, connect_timeout=CONNECT_TIMEOUT_SECONDS
                )
            except psycopg.Error as err:
                self._connection = None
                raise ArchiveUnavailable(
                    f"cannot reach the archive database {self._where()}: {type(err).__name__}"
                ) from None
        return self._connection

    def _sql(self, statement: str) -> str:
        return statement.replace("?", "%s")

    @contextmanager
    def _transaction(self, exclusive: bool = False) -> Iterator[Any]:
        connection = self._connect()
        try:
            with connection.transaction(), connection.cursor() as cursor:
                if exclusive:
                    cursor.execute("SELECT pg_advisory_xact_lock(%s)", (_WRITER_LOCK,))
                yield cursor
        except psycopg.IntegrityError:
            raise
        except psycopg.errors.DiskFull:
            raise ArchiveFull(
                f"archive database {self._where()} is full (no space left on its disk): "
                "nothing written"
            ) from None
        except (psycopg.OperationalError, psycopg.InterfaceError) as err:
            self._drop()
            raise ArchiveUnavailable(
                f"archive database {self._where()} unavailable: {type(err).__name__}"
            ) from None

    def _drop(self) -> None:
        if self._connection is not None:
            with contextlib.suppress(psycopg.Error):
                self._connection.close()
        self._connection = None

    def close(self) -> None:
        self._drop()
