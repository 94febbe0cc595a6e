"""The pieces of a sharing case (``workflows.sharing_case``) that are not its run or handlers.

- ``view``: the case view, its memo part, an update's answer, the operators' search
  attributes and current details.
"""
