"""The changes to HolderExchange, each behind its patch so recorded histories replay on the
branch they ran.

👉 Each ``workflow.patched`` call writes a marker and an upsert of ``TemporalChangeVersion``
(two events) into a new history. An exchange started with ``COMPACT_HISTORIES`` (or a newer
patch that implies it) takes every patch before it as applied without a marker of its own
(``ExchangeState.patched``); a patch added later is checked with ``workflow.patched`` itself:
histories recorded with compact histories predate it.
"""

from __future__ import annotations

from workflows import memo_view

SEALED_COMMANDS = "gateway-sealed-commands"
"""Commands must carry the gateway's seal; exchanges started before take the old branch (no
seal is checked)."""
LADDER_NEVER_FAILS = "ladder-never-fails"
"""Notifications name who they are for; refusals climb the ladder; no alert failure fails."""
CANONICAL_PRACTITIONERS = "canonical-practitioners"
"""User ids and roles are compared and recorded in canonical form."""
NAMED_APPROVERS = "named-approvers"
"""An override is decided only by an approver the registry names (when it names any)."""
CONSENT_INTEGRITY = "consent-integrity"
"""The holder's system's REFUSED/WITHDRAWN binds; a recorded "given" must be confirmed by it."""
CONSENT_NOTICE_RECORDED_FIRST = "consent-notice-recorded-first"
"""A consent withdrawal is recorded before it is pushed; a refused push is retried."""
WITHDRAWAL_KEEPS_SHARES = "withdrawal-keeps-shares"
"""A withdrawal lets an in-flight delivery land and an owed justification be decided."""
PER_CATEGORY_CONSENT = "per-category-consent"
"""What consent covers is delivered at once; every other category needs its own decision;
every delivered item carries its basis; the record shows each category asked."""
COMPACT_HISTORIES = "compact-histories"
"""Updates answer with a ``CommandResult`` (what changed), not the whole record; search
attributes are upserted once per workflow task and only where they changed; and every patch
above is taken as applied without a marker of its own."""
VIEW_IN_MEMO = memo_view.PATCH
"""The exchange keeps its record in its memo (``workflows.memo_view``); implies compact
histories (one marker, not two)."""
PROMPT_WITHDRAWAL = "prompt-withdrawal"
"""A withdrawal takes effect at once: it cancels the first consent lookup in flight (the
exchange closes as its view says, not when the holder's system answers), and it ends a failing
delivery's pause so the recipient is asked again now, not up to 30 minutes later. The newest
patch: it implies every one before it (one marker, not two)."""
