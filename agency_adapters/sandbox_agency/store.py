"""The sandbox agency's store: what it holds and what it received, in one SQLite file.

``SandboxStore`` is the one object the servicer, the seed and the tests are given: the agency's
holdings (``holdings.py``) and its inbox (``inbox.py``) over one database (``database.py``).
"""

from __future__ import annotations

from agency_adapters.sandbox_agency.holdings import Holdings
from agency_adapters.sandbox_agency.inbox import Inbox


class SandboxStore(Holdings, Inbox):
    """The sandbox agency's children, consents, records and received deliveries."""
