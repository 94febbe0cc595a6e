"""The access log: events come back as appended, and editing or deleting one in the file,
or forging a checkpoint, is found by verification with the verifier key alone."""

from __future__ import annotations

import datetime as dt
import sqlite3
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from safeshare.access.events import AccessEvent, Action, Channel, Outcome, Purpose
from safeshare.access.log import AccessLog, AccessLogError, verify_log
from safeshare.archive.checkpoint import VerifierKey

T0 = dt.datetime(2026, 12, 1, 9, 30, tzinfo=dt.UTC)
REF = "abcdefghijklmnopqrst"


def event(n: int, case_ref: str = REF, outcome: Outcome = Outcome.ALLOWED) -> AccessEvent:
    return AccessEvent(
        time=T0 + dt.timedelta(minutes=n),
        case_ref=case_ref,
        channel=Channel.CASE_API,
        action=Action.VIEW,
        outcome=outcome,
        agency_id="riverside-gp",
        user_id=f"practitioner-{n}",
        purpose=Purpose.CASE_WORK,
        reason="" if outcome is Outcome.ALLOWED else "not_a_party",
    )


@pytest.fixture
def log(tmp_path: Path) -> AccessLog:
    log = AccessLog(tmp_path / "access.db", Ed25519PrivateKey.generate())
    log.append([event(0), event(1, "zzzzzzzzzzzzzzzzzzzz")])
    log.append([event(2, outcome=Outcome.REFUSED)])
    log.append([event(3)])
    return log


def test_events_come_back_by_case_in_order_and_the_log_verifies(log: AccessLog) -> None:
    events = log.events(REF)
    assert [e.seq for e in events] == [0, 2, 3]
    assert events == [event(0), event(2, outcome=Outcome.REFUSED), event(3)]
    assert [e.seq for e in log.events(REF, after=0, limit=1)] == [2]
    assert verify_log(log.path, log.verifier).size == 4
    # The verifier key travels as text: an auditor checks with it alone.
    assert verify_log(log.path, VerifierKey.parse(log.verifier.encode())).checkpoints == 3


def _sql(log: AccessLog, statement: str, *args: object) -> None:
    with sqlite3.connect(log.path) as db:
        db.execute(statement, args)


def test_an_edited_event_is_found(log: AccessLog) -> None:
    edited = event(2, outcome=Outcome.ALLOWED).entry()  # a refusal rewritten as allowed
    _sql(log, "UPDATE events SET entry = ? WHERE seq = 2", edited)
    with pytest.raises(AccessLogError, match="do not match their signed checkpoint"):
        verify_log(log.path, log.verifier)


def test_a_deleted_event_is_found(log: AccessLog) -> None:
    _sql(log, "DELETE FROM events WHERE seq = 1")
    with pytest.raises(AccessLogError, match="entry 1 is missing"):
        verify_log(log.path, log.verifier)


def test_the_newest_event_deleted_with_its_checkpoint_is_found_by_a_kept_checkpoint(
    log: AccessLog,
) -> None:
    kept = log.latest_checkpoint()
    _sql(log, "DELETE FROM events WHERE seq = 3")
    _sql(log, "DELETE FROM checkpoints WHERE size = 4")
    assert verify_log(log.path, log.verifier).size == 3  # consistent on its own...
    with pytest.raises(AccessLogError, match="covers 4 entries; the log holds 3"):
        verify_log(log.path, log.verifier, trusted=kept)  # ...but not with what the auditor kept


def test_an_event_appended_without_a_checkpoint_or_a_forged_checkpoint_is_found(
    log: AccessLog,
) -> None:
    _sql(log, "INSERT INTO events (seq, case_ref, entry) VALUES (4, ?, ?)", REF, event(4).entry())
    with pytest.raises(AccessLogError, match="not covered by a checkpoint"):
        verify_log(log.path, log.verifier)
    forger = AccessLog(log.path, Ed25519PrivateKey.generate())  # signs with another key
    forger.append([event(5)])
    with pytest.raises(AccessLogError, match="checkpoint"):
        verify_log(log.path, log.verifier)


def test_a_log_without_its_key_reads_but_does_not_append(log: AccessLog) -> None:
    reader = AccessLog(log.path)
    assert len(reader.events()) == 4
    with pytest.raises(AccessLogError, match="signing key"):
        reader.append([event(9)])


def test_a_delayed_read_is_shown_to_its_own_agency_at_once_and_to_others_when_its_period_ends() -> (
    None
):
    delayed = AccessEvent(
        T0, REF, Channel.CASE_API, Action.VIEW, Outcome.ALLOWED, "northshire-police", "pc-9",
        Purpose.INVESTIGATION, disclose_after=T0 + dt.timedelta(days=28),
    )  # fmt: skip
    assert delayed.disclosed_to("northshire-police", T0)
    assert not delayed.disclosed_to("riverside-gp", T0 + dt.timedelta(days=27))
    assert delayed.disclosed_to("riverside-gp", T0 + dt.timedelta(days=28))
    assert event(0).disclosed_to("riverside-gp", T0)
    # The delay survives the log: stored, hashed and read back as it was.
    assert AccessEvent.from_entry(delayed.entry(), 0) == delayed


def test_the_frontier_gives_the_rfc_9162_root_at_every_size() -> None:
    from safeshare.access.log import Frontier
    from safeshare.archive import merkle

    leaves = [merkle.leaf_hash(str(n).encode()) for n in range(70)]
    frontier = Frontier()
    for size, leaf in enumerate(leaves, 1):
        frontier.append(leaf)
        assert frontier.root() == merkle.root(leaves[:size]), size
        again = Frontier.decode(size, frontier.encode())
        assert again.root() == frontier.root()
