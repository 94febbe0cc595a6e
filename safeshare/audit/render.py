"""Case reports and summaries as Markdown and as self-contained HTML pages.

The HTML has its CSS inline and no external asset (no fonts, scripts or images), so a page
can be filed, mailed or opened offline exactly as it was produced.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from html import escape

from protos.sharing.v1 import case_pb2 as pb
from safeshare.access.events import AccessEvent
from safeshare.audit.report import CaseReport
from safeshare.audit.timeline import Step, enum_name

_CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI",sans-serif;margin:2rem auto;max-width:60rem;
color:#1b1f24;line-height:1.45;padding:0 1rem}
h1{font-size:1.5rem;margin-bottom:.25rem}.meta{color:#57606a;margin-top:0}
table{border-collapse:collapse;margin:1rem 0;width:100%}
th,td{border:1px solid #d0d7de;padding:.35rem .6rem;text-align:left;vertical-align:top}
th{background:#f6f8fa}
.timeline{list-style:none;margin:1.5rem 0;padding:0 0 0 2rem;border-left:3px solid #d0d7de}
.step{position:relative;margin:0 0 1.1rem;padding:.6rem .9rem;background:#f6f8fa;
border-radius:6px}
.step::before{content:"";position:absolute;left:-2.55rem;top:.85rem;width:.9rem;height:.9rem;
border-radius:50%;background:var(--dot,#8c959f);border:2px solid #fff}
.step h3{margin:0;font-size:1rem}.when{color:#57606a;font-size:.85rem}
.step dl{margin:.35rem 0 0;display:grid;grid-template-columns:5rem 1fr;gap:.1rem .6rem}
.step dt{color:#57606a}.step dd{margin:0}
.holder{font-size:.75rem;background:#ddf4ff;border-radius:1rem;padding:0 .5rem;margin-left:.4rem}
.request{--dot:#0969da}.gate{--dot:#8250df}.consent{--dot:#1f883d}.override{--dot:#bf8700}
.share,.delivery,.acknowledgement{--dot:#1a7f37}.decline{--dot:#cf222e}
.escalation{--dot:#d1242f;background:#ffebe9}.withdrawal,.urgency{--dot:#9a6700}
.close{--dot:#24292f}
"""


def _when(at: dt.datetime | None) -> str:
    return at.strftime("%Y-%m-%d %H:%M:%S UTC") if at else "time not recorded"


def _md_cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _headline(report: CaseReport) -> list[tuple[str, str]]:
    request = report.record.request
    return [
        ("Case", report.case_ref),
        ("Status", "closed" if report.closed else "open"),
        ("Outcome", report.outcome),
        ("Requested by", f"{request.requesting_agency_id} / {request.requester.user_id} "
                         f"({request.requester.role})"),
        ("Holders", ", ".join(request.holding_agency_ids)),
        ("Lawful basis", request.lawful_basis),
        ("Basis of the outcome", report.record.basis),
        ("Overrides used", str(report.overrides)),
        ("Missed deadlines", str(report.missed_deadlines)),
    ]  # fmt: skip


def _md_banner(banner: str) -> list[str]:
    return [f"> **{banner}**", ""] if banner else []


def _html_banner(banner: str) -> str:
    return (
        f'<p class="unverified" role="alert"><strong>{escape(banner)}</strong></p>'
        if banner
        else ""
    )


def case_markdown(report: CaseReport, banner: str = "") -> str:
    """The case's decision record as Markdown: a headline table, then the timeline (under
    ``banner`` when the evidence did not verify)."""
    lines = [
        *_md_banner(banner),
        f"# Decision record: case {report.case_ref}",
        "",
        "| | |",
        "|---|---|",
    ]
    lines += [f"| {name} | {_md_cell(value)} |" for name, value in _headline(report)]
    lines += ["", "## Timeline", ""]
    for step in report.steps:
        holder = f" — with {step.holder}" if step.holder else ""
        lines.append(f"### {_when(step.at)} · {step.title}{holder}")
        lines.append("")
        for label, value in (("Who", step.who), ("Why", step.why), ("Basis", step.basis)):
            if value:
                lines.append(f"- **{label}:** {value}")
        lines.append("")
    return "\n".join(lines)


def _page(title: str, body: str) -> str:
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{escape(title)}</title><style>{_CSS}</style></head>"
        f"<body>{body}</body></html>\n"
    )


def _step_html(step: Step) -> str:
    holder = f'<span class="holder">{escape(step.holder)}</span>' if step.holder else ""
    rows = "".join(
        f"<dt>{label}</dt><dd>{escape(value)}</dd>"
        for label, value in (("Who", step.who), ("Why", step.why), ("Basis", step.basis))
        if value
    )
    return (
        f'<li class="step {escape(step.kind)}" data-event="{escape(step.event)}">'
        f"<h3>{escape(step.title)}{holder}</h3>"
        f'<div class="when">{escape(_when(step.at))}</div><dl>{rows}</dl></li>'
    )


def case_html(report: CaseReport, access: Sequence[AccessEvent] = (), banner: str = "") -> str:
    """The case's decision record as one self-contained HTML page with a vertical timeline,
    and its access history (who read it, when, why; refused attempts) beneath; under
    ``banner`` when the evidence did not verify."""
    headline = "".join(
        f"<tr><th>{escape(name)}</th><td>{escape(value)}</td></tr>"
        for name, value in _headline(report)
    )
    steps = "".join(_step_html(step) for step in report.steps)
    body = (
        _html_banner(banner) + f"<h1>Decision record: case {escape(report.case_ref)}</h1>"
        f'<p class="meta">Read from the case\'s Temporal history. Times are workflow time.</p>'
        f"<table>{headline}</table><h2>Timeline</h2>"
        f'<ol class="timeline" id="timeline">{steps}</ol>'
        f"<h2>Access history</h2>{access_html(access)}"
    )
    return _page(f"Case {report.case_ref}", body)


ACCESS_COLUMNS = ("#", "when", "who", "agency", "what", "through", "why", "outcome", "disclosed")


def access_rows(events: Sequence[AccessEvent]) -> list[list[str]]:
    """The access history as table rows (codes and staff ids only)."""
    return [
        [
            str(e.seq),
            _when(e.time),
            e.user_id or "(unknown)",
            e.agency_id or "(partnership)",
            e.action.value,
            e.channel.value,
            e.purpose.value,
            e.outcome.value + (f": {e.reason}" if e.reason else ""),
            f"after {_when(e.disclose_after)}" if e.disclose_after else "at once",
        ]
        for e in events
    ]


def access_html(events: Sequence[AccessEvent]) -> str:
    """The access history as an HTML table (id ``access``), or a line saying there is none."""
    if not events:
        return '<p id="access">No access recorded.</p>'
    return _html_table(ACCESS_COLUMNS, access_rows(events)).replace(
        "<table>", '<table id="access">', 1
    )


# -- the summary over many cases ------------------------------------------------------------


@dataclass
class AgencyTally:
    """One agency's part in the cases summarised."""

    requested: int = 0
    asked: int = 0
    shared: int = 0
    not_shared: int = 0
    overrides: int = 0
    missed_deadlines: int = 0


_SHARED = {"SHARED_WITH_CONSENT", "SHARED_UNDER_OVERRIDE"}


def tally_by_agency(reports: Sequence[CaseReport]) -> dict[str, AgencyTally]:
    """Per agency: cases it requested, exchanges it held, what it shared, overrides, misses."""
    tallies: dict[str, AgencyTally] = defaultdict(AgencyTally)
    for report in reports:
        tallies[report.record.request.requesting_agency_id].requested += 1
        for holder in report.record.holders:
            tally = tallies[holder.holding_agency_id]
            tally.asked += 1
            outcome_name = enum_name(pb.Outcome, holder.outcome)
            tally.shared += outcome_name in _SHARED
            tally.not_shared += outcome_name == "NOT_SHARED"
            tally.overrides += holder.override_used
            tally.missed_deadlines += len(
                {(e.step, e.at.seconds) for e in holder.escalations if e.level == "reminder"}
            )
    return dict(sorted(tallies.items()))


_CASE_COLUMNS = ("case", "requested by", "holders", "outcome", "overrides", "missed deadlines",
                 "escalations")  # fmt: skip
_AGENCY_COLUMNS = ("agency", "requested", "asked to share", "shared", "not shared", "overrides",
                   "missed deadlines")  # fmt: skip


def _case_row(report: CaseReport) -> list[str]:
    request = report.record.request
    return [report.case_ref, request.requesting_agency_id, ", ".join(request.holding_agency_ids),
            report.outcome, str(report.overrides), str(report.missed_deadlines),
            str(report.escalations)]  # fmt: skip


def _agency_row(agency: str, t: AgencyTally) -> list[str]:
    return [agency, *(str(v) for v in (t.requested, t.asked, t.shared, t.not_shared, t.overrides,
                                        t.missed_deadlines))]  # fmt: skip


def _outcomes(reports: Sequence[CaseReport]) -> list[list[str]]:
    counts: dict[str, int] = defaultdict(int)
    for report in reports:
        counts[report.outcome] += 1
    return [[outcome, str(count)] for outcome, count in sorted(counts.items())]


def _md_table(columns: Sequence[str], rows: list[list[str]]) -> list[str]:
    return [
        "| " + " | ".join(columns) + " |",
        "|" + "---|" * len(columns),
        *("| " + " | ".join(_md_cell(c) for c in row) + " |" for row in rows),
        "",
    ]


def summary_markdown(reports: Sequence[CaseReport], banner: str = "") -> str:
    """Outcomes, overrides and missed deadlines over many cases, by case and by agency."""
    by_agency = tally_by_agency(reports)
    lines = [
        *_md_banner(banner),
        f"# Sharing cases: summary of {len(reports)} cases",
        "",
        "## Outcomes",
        "",
    ]
    lines += _md_table(("outcome", "cases"), _outcomes(reports))
    lines += ["## By agency", ""]
    lines += _md_table(_AGENCY_COLUMNS, [_agency_row(a, t) for a, t in by_agency.items()])
    lines += ["## Cases", ""]
    lines += _md_table(_CASE_COLUMNS, [_case_row(r) for r in reports])
    return "\n".join(lines)


def _html_table(columns: Sequence[str], rows: list[list[str]]) -> str:
    head = "".join(f"<th>{escape(c)}</th>" for c in columns)
    body = "".join("<tr>" + "".join(f"<td>{escape(c)}</td>" for c in row) + "</tr>" for row in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def summary_html(reports: Sequence[CaseReport], banner: str = "") -> str:
    """The summary as one self-contained HTML page."""
    by_agency = tally_by_agency(reports)
    body = (
        _html_banner(banner) + f"<h1>Sharing cases: summary of {len(reports)} cases</h1>"
        f"<h2>Outcomes</h2>{_html_table(('outcome', 'cases'), _outcomes(reports))}"
        "<h2>By agency</h2>"
        + _html_table(_AGENCY_COLUMNS, [_agency_row(a, t) for a, t in by_agency.items()])
        + "<h2>Cases</h2>"
        + _html_table(_CASE_COLUMNS, [_case_row(r) for r in reports])
    )
    return _page("Sharing cases: summary", body)
