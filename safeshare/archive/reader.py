"""One reader of closed cases for every reader of them: GetCase, ``safeshare cases show``,
the audit tools and the protocol review.

A closed case is read from the archive when it is there (Temporal may have deleted it), and
from Temporal (its result, no worker needed) until the archiver has copied it. Either way the
view includes what happened after the case closed: a consent withdrawn after its exchange
closed (the ``ConsentWithdrawalNotice`` workflow's result) shows on that holder's record.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
from collections.abc import Iterator, Sequence, Set
from datetime import timedelta
from typing import cast

from google.protobuf import json_format
from google.protobuf import message as protobuf_message
from temporalio.api.common.v1 import Payload
from temporalio.client import Client, WorkflowExecutionStatus
from temporalio.service import RPCError, RPCStatusCode

from activities.review_figures import ArchivedCase, ArchiveSource
from protos.sharing.v1 import case_pb2 as pb
from safeshare.archive.errors import UnreadableRecord
from safeshare.archive.records import ARCHIVED, CASE, CONSENT_WITHDRAWAL
from safeshare.archive.store import ArchiveStore, StoredRecord
from safeshare.audit.export import ExportedHistory
from safeshare.audit.histories import HistoryFileError, child_executions, parse_history
from safeshare.codec.aes import DecryptionError
from workflows.domain.case_view import closed_case_view
from workflows.ids import case_workflow_id, consent_withdrawal_workflow_id


class CaseReader:
    """Closed cases, from the archive first, then from Temporal.

    Args:
        client: the Temporal client; its data converter decrypts the archived payloads too.
        archive: the case archive, or None to read Temporal only.
    """

    def __init__(self, client: Client, archive: ArchiveStore | None = None) -> None:
        self._client = client
        self._archive = archive

    @property
    def archive(self) -> ArchiveStore | None:
        """The archive this reader reads, if any."""
        return self._archive

    async def archived(self, case_ref: str) -> list[StoredRecord]:
        """The case's archived records (the case first, then its notices); [] if none.

        Raises:
            UnreadableRecord: a history's bytes no longer have the digest stored beside them.
        """
        if self._archive is None:
            return []
        records = await asyncio.to_thread(self._archive.records_of_case, case_ref)
        found = [r for r in records if r.status == ARCHIVED]
        for stored in found:
            _check_intact(stored)
        return sorted(found, key=lambda r: (r.record.kind != CASE, r.record.record_id))

    async def closed_case(
        self, case_ref: str, rpc_timeout: timedelta | None = None
    ) -> pb.CaseView | None:
        """The view of a closed case, or None while it is open.

        Raises:
            RPCError: Temporal has no such case (NOT_FOUND) and the archive has none either,
                or Temporal cannot be reached.
        """
        records = await self.archived(case_ref)
        if records and records[0].record.kind == CASE:
            with _reading(case_ref):
                record = cast(
                    pb.DecisionRecord,
                    await self._decode(records[0].record.result, pb.DecisionRecord),
                )
                notices = [
                    (_notice_holder(r.record.record_id),
                     await self._decode(r.record.result, pb.ConsentWithdrawal))
                    for r in records[1:]
                    if r.record.kind == CONSENT_WITHDRAWAL
                ]  # fmt: skip
            view = closed_case_view(case_ref, record)
            # 👉 A withdrawal recorded after the case was archived (perhaps after Temporal
            # deleted the case) is in Temporal until the archiver copies its notice too.
            archived = {holder for holder, _ in notices}
            notices += await self._temporal_notices(view, rpc_timeout, skip=archived)
            return with_notices(view, notices)
        handle = self._client.get_workflow_handle(
            case_workflow_id(case_ref), result_type=pb.DecisionRecord
        )
        described = await handle.describe(rpc_timeout=rpc_timeout)
        if described.status != WorkflowExecutionStatus.COMPLETED:
            return None
        record = await handle.result(rpc_timeout=rpc_timeout)
        view = closed_case_view(case_ref, record)
        return with_notices(view, await self._temporal_notices(view, rpc_timeout))

    async def _temporal_notices(
        self, view: pb.CaseView, rpc_timeout: timedelta | None, skip: Set[str] = frozenset()
    ) -> list[tuple[str, object]]:
        notices: list[tuple[str, object]] = []
        for holder in view.record.holders:
            if not holder.HasField("receipt") or holder.holding_agency_id in skip:
                continue  # nothing delivered (no withdrawal notice can exist), or archived
            handle = self._client.get_workflow_handle(
                consent_withdrawal_workflow_id(view.case_ref, holder.holding_agency_id),
                result_type=pb.ConsentWithdrawal,
            )
            try:
                described = await handle.describe(rpc_timeout=rpc_timeout)
            except RPCError as err:
                if err.status == RPCStatusCode.NOT_FOUND:
                    continue
                raise
            if described.status == WorkflowExecutionStatus.COMPLETED:
                notices.append(
                    (holder.holding_agency_id, await handle.result(rpc_timeout=rpc_timeout))
                )
        return notices

    async def histories(self, case_ref: str) -> list[ExportedHistory]:
        """The archived histories of a case, as ``HistoryFetcher.case`` gives them (the case,
        then its exchanges in the order it started them), then any notices; [] if not archived.
        """
        records = await self.archived(case_ref)
        if not records or records[0].record.kind != CASE:
            return []
        case = records[0].record
        by_id = {h.workflow_id: h for h in case.histories}
        with _reading(case_ref):
            root = by_id[case.record_id]
            ordered = [root] + [
                by_id[w] for w, _ in child_executions(parse_history(root.content)) if w in by_id
            ]
        ordered += [h for h in case.histories if h not in ordered]
        exported = [ExportedHistory(h.workflow_id, h.run_id, h.content) for h in ordered]
        for notice in records[1:]:
            exported += [
                ExportedHistory(h.workflow_id, h.run_id, h.content) for h in notice.record.histories
            ]
        return exported

    async def update_result(self, case_ref: str, workflow_id: str, update_id: str) -> object:
        """The result an update of ``workflow_id`` answered with, from the case's archived
        histories (the update-completed event Temporal recorded for ``update_id``); None when
        not archived, or the update did not complete with a result."""
        with _reading(case_ref):
            return await self._update_result(case_ref, workflow_id, update_id)

    async def _update_result(self, case_ref: str, workflow_id: str, update_id: str) -> object:
        for history in await self.histories(case_ref):
            if history.workflow_id != workflow_id:
                continue
            for event in parse_history(history.content):
                completed = event.get("workflowExecutionUpdateCompletedEventAttributes")
                if not isinstance(completed, dict):
                    continue
                if completed.get("meta", {}).get("updateId") != update_id:
                    continue
                payloads = completed.get("outcome", {}).get("success", {}).get("payloads", [])
                if not payloads:
                    return None
                payload = json_format.ParseDict(payloads[0], Payload())
                # The payload names its message type: a CommandResult, or an older record.
                return (await self._client.data_converter.decode([payload]))[0]
        return None

    async def opening_memo(self, case_ref: str) -> dict[str, object] | None:
        """The memo the case workflow was started with, from its archived history (each
        field decoded); None when the case is not archived.

        Raises:
            ArchiveUnavailable: the archive cannot be read.
            UnreadableRecord: the archived case is there but does not read.
        """
        with _reading(case_ref):
            return await self._opening_memo(case_ref)

    async def _opening_memo(self, case_ref: str) -> dict[str, object] | None:
        for history in await self.histories(case_ref):
            if history.workflow_id != case_workflow_id(case_ref):
                continue
            started = parse_history(history.content)[0].get(
                "workflowExecutionStartedEventAttributes", {}
            )
            fields = started.get("memo", {}).get("fields", {})
            keys = list(fields)
            payloads = [json_format.ParseDict(fields[k], Payload()) for k in keys]
            values = await self._client.data_converter.decode(payloads) if payloads else []
            return dict(zip(keys, values, strict=True))
        return None

    async def _decode(self, payload: bytes, message: type) -> object:
        decoded = await self._client.data_converter.decode([Payload.FromString(payload)], [message])
        return decoded[0]


_GARBLED = (
    HistoryFileError,
    ValueError,
    KeyError,
    TypeError,
    RuntimeError,
    protobuf_message.Error,
    DecryptionError,
)
"""What bytes that are not the history or record they were (altered, cut short, another
key's) raise on the way to a view: JSON and protobuf parse errors, a missing field, a payload
the codec refuses or the converter cannot read."""


@contextlib.contextmanager
def _reading(case_ref: str) -> Iterator[None]:
    """Raise ``UnreadableRecord`` for archived content that does not read."""
    try:
        yield
    except UnreadableRecord:
        raise
    except _GARBLED as err:
        # Ids and the exception's type only: its message may quote the content.
        raise UnreadableRecord(
            f"the archived record of case {case_ref} does not read ({type(err).__name__})"
        ) from None


def _check_intact(stored: StoredRecord) -> None:
    """Refuse a record whose history bytes no longer have the digest stored beside them (an
    edit of the database; ``safeshare archive verify`` checks every digest against the log)."""
    record = stored.record
    digests = {(w, r): digest for w, r, _, digest in record.history_digests}
    for history in record.histories:
        if digests.get((history.workflow_id, history.run_id), history.sha256) != history.sha256:
            raise UnreadableRecord(
                f"the archived record {record.record_id} was altered: a history does not "
                "have its digest"
            )


def with_notices(view: pb.CaseView, notices: Sequence[tuple[str, object]]) -> pb.CaseView:
    """The view with each post-close consent withdrawal on its holder's record."""
    for holding_agency_id, notice in notices:
        assert isinstance(notice, pb.ConsentWithdrawal)
        for holder in view.record.holders:
            if holder.holding_agency_id == holding_agency_id:
                holder.consent_withdrawal.CopyFrom(notice)
    return view


def _notice_holder(record_id: str) -> str:
    """The holder a notice's record id names (``case-<ref>.<holder>.consent-withdrawn``)."""
    return record_id.split(".")[1] if record_id.count(".") >= 2 else ""


def review_source(archive: ArchiveStore) -> ArchiveSource:
    """The protocol review's view of the archive: the archived cases opened in a window."""

    def opened_between(start: dt.datetime, end: dt.datetime) -> list[ArchivedCase]:
        low = start.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        high = end.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        found: list[ArchivedCase] = []
        for record_id, index, _ in archive.index(kind=CASE, status=ARCHIVED):
            if not low <= index.opened_at < high:
                continue
            stored = archive.get(record_id)
            if stored is not None and stored.record.result:
                found.append(ArchivedCase(
                    record_id, index.requesting_agency, index.purpose, index.outcome,
                    stored.record.result,
                ))  # fmt: skip
        return found

    return opened_between
