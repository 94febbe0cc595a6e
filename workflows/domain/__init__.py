"""The domain of a sharing case, one concept per module: plain, deterministic Python.

No Temporal or gRPC import and no I/O, so every rule is tested directly and the workflow
sandbox shares one import of the whole package across runs (``workflows.runner``). The
workflows drive it; the gateway and the adapters only translate.

- ``vocabulary``: the states, whose move it is, urgency, outcomes, steps, bases, actors, and
  the one rule for the names of protobuf enum values.
- ``refusal``: why a command is refused, with the fields at fault.
- ``exchange``: one holder's exchange, the state machine every decision goes through
  (``Exchange.check`` is every Update's validator).
- ``exchange_checks``: the check of each command ``Exchange.check`` dispatches to.
- ``exchange_commands``: the commands that move an exchange, people's and systems'.
- ``consent``: whether a consent record covers a request; what a consent decision must hold.
- ``override``: what an override proposal and a RED share-first must hold; who approves.
- ``acknowledgement``: what a recipient's acknowledgement must hold.
- ``deadlines``: working calendars, timescales by urgency, deadlines and the escalation ladder.
- ``disclosure``: a disclosure made without a request, its kinds and its state machine.
- ``decision_record``: the record's words for how an exchange ended and what it waits for.
- ``case_view``: one view of a case from its case workflow and its exchanges.
- ``practitioners``: practitioners' ids and roles in one canonical spelling.
"""
