"""The steps of a disclosure case (``workflows.disclosure_case``), one module each.

- ``state``: what the disclosure's workflow knows, and what is made from it (the case view,
  the search attributes, the current details, the basis of every delivered item).
- ``dataset``: the kind's fixed dataset as the record items a recipient stores.
- ``approval``: an approver's decision on a disclosure without consent.
- ``delivery``: extraction at the holder, delivery to each recipient, its acknowledgement.

The escalation ladder, the record keeper, the agency calls and the registry's approvers are
the workflows' shared helpers (``workflows.ladder``, ``workflows.record_keeper``,
``workflows.agency_calls``, ``workflows.approvers``).
"""
