"""The shape every Case API request must have, whatever its RPC: one table of bounds and one
walk over the decoded message. Pure: no I/O, no gRPC.

Checked for every field of every request, before any handler reads it (``decoding``):

- **Characters.** No control characters (Unicode category Cc: NUL, BEL, ESC, DEL, the C1
  set ...) anywhere, except line breaks and tabs in free text (``TEXT_FIELDS``); no line or
  paragraph separators and no bidirectional overrides or isolates in a single-line field (a
  name, id, code or reference), where they would disguise what a reader sees.
- **Lengths.** Free text at most ``MAX_TEXT_LENGTH`` characters, names and places
  ``MAX_NAME_LENGTH``, page tokens ``MAX_PAGE_TOKEN_LENGTH``, every other string (ids, codes,
  references) ``MAX_ID_LENGTH``; bytes ``MAX_BYTES_LENGTH``.
- **Counts.** Subjects at most ``MAX_SUBJECTS``, holding agencies ``MAX_HOLDERS``, a list of
  enum values at most the number of values its enum defines, every other list ``MAX_ITEMS``.
- **Enums.** A number the contract does not define is "unknown value N" (proto3 accepts any
  number on the wire).
- **Timestamps** within what ``google.protobuf.Timestamp`` allows (years 1 to 9999).

The content rules of each RPC (what is required, what may be combined) come after, in
``validation`` and ``disclosure_validation``. Descriptions never quote a value.
"""

from __future__ import annotations

import unicodedata

from google.protobuf.descriptor import FieldDescriptor
from google.protobuf.message import Message

from safeshare.gateway.fields import (
    MAX_ID_LENGTH,
    MAX_TEXT_LENGTH,
    FieldViolation,
)
from safeshare.gateway.validation import (
    MAX_HOLDERS,
)

MAX_NAME_LENGTH = 200
"""Given and family names, and places (an incident's place)."""
MAX_PAGE_TOKEN_LENGTH = 4096
MAX_BYTES_LENGTH = 1024
MAX_SUBJECTS = 20
"""People a request or disclosure names: the child or children and family members."""
MAX_ITEMS = 20
"""Any other list (reasons, recipients, categories' necessities)."""

TEXT_FIELDS = frozenset(
    {
        "action_taken",
        "advice_sought",
        "alternatives_considered",
        "circumstances",
        "concern",
        "contents_summary",
        "explanation",
        "family_not_aware_reason",
        "feedback",
        "harm_statement",
        "lawful_basis",
        "legal_basis",
        "necessity",
        "necessity_and_proportionality",
        "not_telling_reason",
        "reason",
        "use",
        "verification",
        "views_expressed",
        "voice_of_the_child",
    }
)
"""Free text, by field name: line breaks and tabs allowed, at most ``MAX_TEXT_LENGTH``."""
NAME_FIELDS = frozenset({"given_name", "family_name", "incident_place"})
TOKEN_FIELDS = frozenset({"page_token"})
COUNTS = {"subjects": MAX_SUBJECTS, "holding_agency_ids": MAX_HOLDERS}
_TEXT_BREAKS = frozenset("\n\r\t")
_DISGUISES = frozenset(
    "\u2028\u2029"  # line and paragraph separators
    "\u202a\u202b\u202c\u202d\u202e"  # bidirectional embeddings and overrides
    "\u2066\u2067\u2068\u2069"  # bidirectional isolates
)
_TIMESTAMP = "google.protobuf.Timestamp"
_MIN_SECONDS, _MAX_SECONDS = -62_135_596_800, 253_402_300_799


def string_limit(name: str) -> int:
    """The most characters a string field called ``name`` may hold."""
    if name in TEXT_FIELDS:
        return MAX_TEXT_LENGTH
    if name in NAME_FIELDS:
        return MAX_NAME_LENGTH
    if name in TOKEN_FIELDS:
        return MAX_PAGE_TOKEN_LENGTH
    return MAX_ID_LENGTH


def count_limit(field: FieldDescriptor) -> int:
    """The most entries a repeated field may hold."""
    if field.name in COUNTS:
        return COUNTS[field.name]
    if field.enum_type is not None:
        return len(field.enum_type.values) - 1  # every defined value but UNSPECIFIED, once
    return MAX_ITEMS


def shape_violations(message: Message, path: str = "") -> list[FieldViolation]:
    """Every violation of the bounds above in ``message`` and the messages it holds."""
    found: list[FieldViolation] = []
    for field, value in message.ListFields():
        where = f"{path}.{field.name}" if path else field.name
        if field.is_repeated:
            limit = count_limit(field)
            if len(value) > limit:
                found.append(FieldViolation(where, f"at most {limit} entries"))
            for i, item in enumerate(value[: limit + 1]):
                found.extend(_value(field, item, f"{where}[{i}]"))
        else:
            found.extend(_value(field, value, where))
    return found


def _value(field: FieldDescriptor, value: object, where: str) -> list[FieldViolation]:
    if field.type == FieldDescriptor.TYPE_STRING:
        assert isinstance(value, str)
        problem = string_problem(field.name, value)
        return [FieldViolation(where, problem)] if problem else []
    if field.type == FieldDescriptor.TYPE_BYTES:
        assert isinstance(value, bytes)
        if len(value) > MAX_BYTES_LENGTH:
            return [FieldViolation(where, f"must be at most {MAX_BYTES_LENGTH} bytes")]
        return []
    if field.type == FieldDescriptor.TYPE_ENUM:
        assert isinstance(value, int) and field.enum_type is not None
        if value not in field.enum_type.values_by_number:
            return [FieldViolation(where, f"unknown value {value}")]
        return []
    if field.message_type is not None:
        assert isinstance(value, Message)
        if field.message_type.full_name == _TIMESTAMP:
            return _timestamp(value, where)
        return shape_violations(value, where)
    return []


def string_problem(name: str, value: str) -> str | None:
    """What is wrong with ``value`` in a string field called ``name``, or None."""
    limit = string_limit(name)
    if len(value) > limit:
        return f"must be at most {limit} characters"
    text = name in TEXT_FIELDS
    for char in value:
        if unicodedata.category(char) == "Cc" and not (text and char in _TEXT_BREAKS):
            return (
                "must not contain control characters (line breaks and tabs only in free text)"
                if text
                else "must not contain control characters or line breaks"
            )
        if not text and char in _DISGUISES:
            return "must not contain line separators or bidirectional controls"
    return None


def _timestamp(value: Message, where: str) -> list[FieldViolation]:
    seconds = getattr(value, "seconds", 0)
    nanos = getattr(value, "nanos", 0)
    if not _MIN_SECONDS <= seconds <= _MAX_SECONDS or not 0 <= nanos <= 999_999_999:
        return [FieldViolation(where, "must be a time between the years 1 and 9999")]
    return []
