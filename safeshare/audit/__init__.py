"""Auditors' tools: export case histories with a signed manifest, verify an export, replay
histories through the current workflow code, and report a case's decision record."""
