"""The case archive: closed cases kept beyond Temporal's retention, with a transparency log.

- ``records``: what one archived workflow is (histories as stored, the encrypted result,
  non-personal index fields) and the log entry that commits to it;
- ``store``: the archive behind one interface; ``errors``: what its operations raise;
- ``url``: ``open_archive(url)``, one of two backends over the shared SQL (``sql_store``,
  ``schema``): ``sqlite`` (embedded default, ``.safeshare/archive.db``) and ``postgres``
  (psycopg 3);
- ``merkle`` and ``checkpoint``: RFC 9162 hashing and proofs, C2SP signed checkpoints;
- ``verify``: every digest, the tree and the checkpoints, as findings;
- ``archiver``: the sweep that copies closed cases from Temporal, checks and logs them
  (``record_builder``: the record of one closed workflow; ``metrics``: what it counts);
- ``reader``: one reader of closed cases (the archive first, then Temporal).
"""
