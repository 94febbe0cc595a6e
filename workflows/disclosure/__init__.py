"""The steps of a disclosure case (``workflows.disclosure_case``), one module each.

- ``state``: what the disclosure's workflow knows, and the views made from it (the case view,
  the search attributes, the current details, the basis of every delivered item).
- ``dataset``: the kind's fixed dataset as the record items a recipient stores.
- ``ladder``: a missed deadline's reminder, safeguarding lead and partnership operator.
- ``approval``: an approver's decision on a disclosure without consent.
- ``delivery``: extraction at the holder, delivery to each recipient, its acknowledgement.
"""
