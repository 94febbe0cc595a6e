"""The sandbox store's errors: what it refuses to store, and a subject it will not match."""

from __future__ import annotations


class StoreError(Exception):
    """The sandbox store refused a write."""


class DuplicateItemError(StoreError):
    """A delivery names the same item id twice."""


class SubjectMismatch(Exception):
    """A subject's NHS number is known here, but the name or date of birth is another child's."""
