"""The access history: who read which case, when, why, and who was refused.

Every read of case content (the Case API, the operators' CLI, the audit tools, the codec server
behind the Temporal UI) and every refused attempt becomes an ``AccessEvent``, appended to an
``AccessLog``: an append-only log of the archive's design (an RFC 9162 Merkle tree with signed
C2SP checkpoints), so that losing or rewriting an event is found by verification.
"""
