"""Practitioners' user ids and roles in one canonical spelling, before any comparison.

"Never the proposer" and "an approver role" compare ids and roles the agencies' systems send;
compared as sent, ``gp-dsl`` could approve their own override as ``GP-DSL`` or ``"gp-dsl "``.
Every id and role is therefore put in one form first (Unicode NFKC, case-folded, trimmed) and
must then fit a closed charset; the record keeps the canonical form.
"""

from __future__ import annotations

import re
import unicodedata

from protos.sharing.v1 import case_pb2 as pb

MAX_LENGTH = 128
USER_ID = re.compile(r"[a-z0-9][a-z0-9._@-]*")
"""Letters, digits and ``. _ @ -`` after canonicalisation, starting with a letter or digit."""
ROLE = re.compile(r"[a-z][a-z0-9_]*")


def canonical_user_id(raw: str) -> str | None:
    """The canonical form of a user id, or None when it has none (outside the charset)."""
    value = unicodedata.normalize("NFKC", raw).casefold().strip()
    if len(value) > MAX_LENGTH or not USER_ID.fullmatch(value):
        return None
    return value


def canonical_role(raw: str) -> str | None:
    """The canonical form of a role ("Designated Safeguarding Lead" is
    ``designated_safeguarding_lead``), or None when it has none."""
    value = unicodedata.normalize("NFKC", raw).casefold().strip()
    value = re.sub(r"[\s-]+", "_", value)
    if len(value) > MAX_LENGTH or not ROLE.fullmatch(value):
        return None
    return value


def canonicalize(practitioner: pb.Practitioner) -> list[str]:
    """Put ``practitioner``'s user id and role in canonical form, in place.

    Returns:
        The fields (``user_id``, ``role``) that have no canonical form; those are left as sent.
    """
    bad = []
    if practitioner.user_id:  # a missing one is refused as required, elsewhere
        user_id = canonical_user_id(practitioner.user_id)
        if user_id is None:
            bad.append("user_id")
        else:
            practitioner.user_id = user_id
    if practitioner.role:
        role = canonical_role(practitioner.role)
        if role is None:
            bad.append("role")
        else:
            practitioner.role = role
    return bad
