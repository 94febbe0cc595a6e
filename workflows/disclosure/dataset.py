"""A disclosure kind's fixed dataset as the record items a recipient's system stores.

Deterministic and side-effect free.
"""

from __future__ import annotations

import datetime as dt

from temporalio import workflow

from workflows.domain.vocabulary import code, timestamp

with workflow.unsafe.imports_passed_through():
    from protos.sharing.v1 import case_pb2 as pb


def dataset_items(case_ref: str, disclosure: pb.Disclosure, at: dt.datetime) -> list[pb.RecordItem]:
    """The kind's fixed dataset as record items (facts, from the holder), so the recipient's
    system stores it like any delivered record, each item with its caveats."""
    items = []
    for name, category, content in _fields(disclosure):
        item = pb.RecordItem(
            item_id=f"{case_ref}.{name}", category=category, kind=pb.ITEM_KIND_FACT,
            source=disclosure.holding_agency_id, content=f"{name}: {content}",
        )  # fmt: skip
        item.recorded_at.CopyFrom(timestamp(at))
        items.append(item)
    return items


def _fields(disclosure: pb.Disclosure) -> list[tuple[str, pb.InformationCategory.ValueType, str]]:
    """The dataset's fields: (name, category, content as text)."""
    if disclosure.HasField("operation_encompass"):
        oe = disclosure.operation_encompass
        category = pb.INFORMATION_CATEGORY_POLICE_INCIDENTS
        return [
            ("police_reference", category, oe.police_reference),
            ("incident_at", category, oe.incident_at.ToDatetime(dt.UTC).isoformat()),
            ("incident_place", category, oe.incident_place),
            ("child_present", category, code(pb.ChildPresence, oe.child_present)),
            ("voice_of_the_child", category, oe.voice_of_the_child),
            ("circumstances", category, oe.circumstances),
        ]  # fmt: skip
    if disclosure.HasField("concern"):
        concern = disclosure.concern
        category = pb.INFORMATION_CATEGORY_WELFARE_CONCERNS
        return [
            ("urgency", category, code(pb.Urgency, concern.urgency)),
            ("concern", category, concern.concern),
            ("action_taken", category, concern.action_taken),
        ]
    if disclosure.HasField("child_protection_file"):
        cp = disclosure.child_protection_file
        category = pb.INFORMATION_CATEGORY_SOCIAL_CARE_INVOLVEMENT
        return [
            ("file_reference", category, cp.file_reference),
            ("starts_at_new_school_on", category, cp.starts_at_new_school_on),
            ("contents_summary", category, cp.contents_summary),
        ]
    return []
