"""Tools for the partnership's operators: saved views of the Temporal UI, the terminal view of
cases, the protocol review, metrics and the administration of the partnership registry."""
