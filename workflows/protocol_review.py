"""The ProtocolReview workflow: the partnership's regular review of how the protocol works.

A Temporal Schedule starts it every month (``safeshare review schedule``); an operator can run
it at once (``safeshare review run``). It gathers the figures for the cases opened in the
period before it started (hub activity), then writes the report as Markdown and HTML.
"""

from dataclasses import dataclass
from datetime import timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy

with workflow.unsafe.imports_passed_through():
    from activities.names import GATHER_REVIEW_FIGURES, WRITE_REVIEW_REPORT
    from activities.review_figures import ReviewFigures, ReviewFiles, ReviewReport, ReviewWindow

REVIEW_RETRY = RetryPolicy(maximum_interval=timedelta(minutes=5), maximum_attempts=10)


@dataclass
class ReviewInput:
    """What to review and where to write the report."""

    reports_dir: str
    """The folder the hub worker writes the report to."""
    period_days: int = 31
    """The review covers cases opened this many days before the run."""
    period_start: str = ""
    """Instead of ``period_days``: cases opened from this time (ISO 8601 UTC)."""


@dataclass
class ReviewResult:
    """The report's files and the figures in it."""

    files: ReviewFiles
    figures: ReviewFigures


@workflow.defn
class ProtocolReview:
    """One protocol review: figures in, partnership report out."""

    @workflow.run
    async def run(self, review: ReviewInput) -> ReviewResult:
        """Gather the period's figures and write the report."""
        end = workflow.now()
        start = review.period_start or (end - timedelta(days=review.period_days)).isoformat()
        window = ReviewWindow(start=start, end=end.isoformat())
        workflow.set_current_details(f"Reviewing cases opened from {start[:10]} to {end:%Y-%m-%d}.")
        figures = await workflow.execute_activity(
            GATHER_REVIEW_FIGURES,
            window,
            result_type=ReviewFigures,
            start_to_close_timeout=timedelta(minutes=10),
            heartbeat_timeout=timedelta(minutes=1),
            retry_policy=REVIEW_RETRY,
            summary="Gather the review's figures from the registry and the cases",
        )
        files = await workflow.execute_activity(
            WRITE_REVIEW_REPORT,
            ReviewReport(figures=figures, reports_dir=review.reports_dir),
            result_type=ReviewFiles,
            start_to_close_timeout=timedelta(minutes=1),
            retry_policy=REVIEW_RETRY,
            summary="Write the partnership report (Markdown and HTML)",
        )
        workflow.set_current_details(f"Report written: {files.markdown}")
        return ReviewResult(files=files, figures=figures)
