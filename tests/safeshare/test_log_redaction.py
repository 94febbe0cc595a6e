"""Logs carry ids and codes only: unlisted fields are masked, exception messages withheld."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator

import pytest
import structlog
import structlog.testing

from safeshare.log import ALLOWED_FIELDS, REDACTED, configure_logging

CANARY = "Okafor-Test ZZ99 9ZZ"


@pytest.fixture
def stream() -> Iterator[io.StringIO]:
    """Configure logging as the CLI does, into a buffer; restore the defaults after."""
    buffer = io.StringIO()
    configure_logging(json=True, component="test", stream=buffer)
    yield buffer
    structlog.contextvars.clear_contextvars()
    structlog.reset_defaults()
    logging.getLogger().handlers.clear()


def read(stream: io.StringIO) -> list[dict[str, object]]:
    return [json.loads(line) for line in stream.getvalue().splitlines()]


def test_unlisted_fields_are_masked_and_listed_ones_kept(
    stream: io.StringIO,
) -> None:
    log = structlog.get_logger("test")
    with structlog.contextvars.bound_contextvars(case_ref="ref-1", given_name=CANARY):
        log.info("consent_checked", agency_id="oakfield-primary", status="GIVEN", views=CANARY)
    [line] = read(stream)
    assert line["event"] == "consent_checked"
    assert (line["case_ref"], line["agency_id"], line["status"]) == (
        "ref-1",
        "oakfield-primary",
        "GIVEN",
    )
    assert line["component"] == "test"
    assert line["views"] == REDACTED
    assert line["given_name"] == REDACTED, "context-bound fields are filtered too"
    assert CANARY not in json.dumps(line)


def test_stdlib_extras_and_exception_messages_never_reach_the_log(
    stream: io.StringIO,
) -> None:
    try:
        raise ValueError(f"no record for {CANARY}")
    except ValueError:
        logging.getLogger("temporalio.worker").exception(
            "activity_failed", extra={"postcode": CANARY, "attempt": 3}
        )
        structlog.get_logger("test").exception("delivery_failed")
    lines = read(stream)
    assert len(lines) == 2
    for line in lines:
        assert CANARY not in json.dumps(line)
        assert "ValueError (message withheld)" in str(line["exception"])
        assert "test_log_redaction.py" in str(line["exception"]), "frames are kept"
    assert lines[0]["postcode"] == REDACTED
    assert lines[0]["attempt"] == 3


def test_the_allow_list_holds_only_ids_codes_and_counts() -> None:
    # A reviewer adding a field here must be adding an id, a code or a number.
    for personal in (
        "given_name",
        "family_name",
        "date_of_birth",
        "nhs_number",
        "postcode",
        "content",
        "views",
        "use",
        "feedback",
        "lawful_basis",
        "detail",
        "basis",
    ):
        assert personal not in ALLOWED_FIELDS


def test_a_logger_in_use_follows_a_later_configuration(stream: io.StringIO) -> None:
    log = structlog.get_logger("test.cached")
    log.info("first_line")  # cached on first use with the configuration of that moment
    later = io.StringIO()
    configure_logging(json=True, component="test", stream=later)
    log.info("second_line", agency_id="oakfield-primary")
    assert [line["event"] for line in read(later)] == ["second_line"]
    with structlog.testing.capture_logs() as captured:
        log.info("third_line")
    assert [entry["event"] for entry in captured] == ["third_line"]
