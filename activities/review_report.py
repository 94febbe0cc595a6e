"""The partnership report of a protocol review, as Markdown and as HTML, from its figures.

Both renderings come from one list of sections, so they always say the same thing.
"""

from __future__ import annotations

import html
from dataclasses import dataclass

from activities.review_figures import NEAR_DAYS, ReviewFigures


@dataclass(frozen=True)
class Section:
    """One heading of the report: a sentence, and a table (empty rows: says so)."""

    title: str
    lead: str
    columns: tuple[str, ...]
    rows: list[tuple[str, ...]]
    empty: str = "None."


def _counts(counts: dict[str, int]) -> list[tuple[str, ...]]:
    return [(key, str(value)) for key, value in counts.items()]


def sections(figures: ReviewFigures) -> list[Section]:
    """The report's sections, in reading order."""
    window = f"{figures.window.start[:10]} to {figures.window.end[:10]}"
    missed = figures.deadlines_missed
    return [
        Section(
            "Signatories",
            f"Signatories of protocol {figures.protocol_version} (registry version "
            f"{figures.registry_version}) whose review date is within {NEAR_DAYS} days or past.",
            ("agency", "name", "signed version", "review date", "days left", "status"),
            [
                (
                    s.agency_id,
                    s.name,
                    s.signed_protocol_version,
                    s.review_date,
                    str(s.days_to_review),
                    s.status,
                )
                for s in figures.signatories
            ],
            "Every signatory is current for more than 60 days.",
        ),
        Section(
            "Contracted providers",
            "Providers bound by the protocol through their commissioner.",
            ("provider", "name", "commissioner", "commissioner name", "commissioner current"),
            [
                (
                    p.provider_id,
                    p.provider_name,
                    p.commissioner_id,
                    p.commissioner_name,
                    "yes" if p.commissioner_current else "NO",
                )
                for p in figures.providers
            ],
            "No contracted providers are registered.",
        ),
        Section(
            "Case volumes by requesting agency",
            f"{figures.cases_opened} cases opened from {window}"
            + (
                f" ({figures.undecodable_cases} could not be decoded with this hub's keys: "
                "counted here, left out of the training attestations)."
                if figures.undecodable_cases
                else "."
            ),
            ("requesting agency", "cases"),
            _counts(figures.cases_by_requesting_agency),
        ),
        Section(
            "Exchanges by holding agency",
            "One exchange per holding agency named in a request.",
            ("holding agency", "exchanges"),
            _counts(figures.exchanges_by_holding_agency),
        ),
        Section(
            "Case volumes by purpose", "", ("purpose", "cases"), _counts(figures.cases_by_purpose)
        ),
        Section(
            "Outcomes of cases",
            "Shared with consent, shared under an approved override, or not shared "
            "(OPEN: not yet closed).",
            ("outcome", "cases"),
            _counts(figures.case_outcomes),
        ),
        Section(
            "Outcomes of exchanges",
            f"{figures.overrides_used} exchanges shared under an override.",
            ("outcome", "exchanges"),
            _counts(figures.exchange_outcomes),
        ),
        Section(
            "Deadlines missed",
            f"{sum(missed.values())} deadlines missed, by step"
            + (
                f" ({figures.unreadable_records} exchange records could not be read)."
                if figures.unreadable_records
                else "."
            ),
            ("step", "missed"),
            _counts(missed),
            "No deadline was missed.",
        ),
        Section(
            "Acknowledgements outstanding",
            f"{figures.acknowledgements_outstanding} deliveries are waiting for the recipient "
            "to acknowledge them.",
            (),
            [],
            "",
        ),
        Section(
            "Access to cases by agency",
            f"{sum(figures.accesses_by_agency.values())} reads of case content from {window} "
            "(Case API, operators' and auditors' tools, the codec server), by the reader's "
            "agency; refused attempts are listed below.",
            ("agency", "reads"),
            _counts(figures.accesses_by_agency),
            "No case was read.",
        ),
        Section(
            "Access to cases by purpose",
            "",
            ("purpose", "reads"),
            _counts(figures.accesses_by_purpose),
            "No case was read.",
        ),
        Section(
            "Disclosures by kind",
            "Holders telling partners without a request, and whether each acknowledgement met "
            "its deadline (before the next school day, by urgency, five school days).",
            ("kind", "opened", "deadline met", "deadline missed", "open"),
            [
                (
                    kind,
                    str(opened),
                    *(
                        str(figures.disclosure_deadlines.get(kind, {}).get(k, 0))
                        for k in ("met", "missed", "open")
                    ),
                )
                for kind, opened in sorted(figures.disclosures_by_kind.items())
            ],
            "No disclosure was made.",
        ),
        Section(
            "Refused attempts to read a case",
            f"{len(figures.refused_accesses)} attempts refused (not a party, not an operator, "
            "a bad or expired sign-in).",
            ("when", "case", "agency", "who", "what", "reason"),
            [
                (r.at, r.case_ref, r.agency_id, r.user_id, r.action, r.reason)
                for r in figures.refused_accesses
            ],
            "No attempt was refused.",
        ),
        Section(
            "Training attestations",
            f"Requesting practitioners whose training lapses within {NEAR_DAYS} days or has "
            "lapsed.",
            ("agency", "practitioner", "valid until", "status"),
            [
                (t.agency_id, t.user_id, t.valid_until, "LAPSED" if t.lapsed else "lapses soon")
                for t in figures.training
            ],
            "Every requesting practitioner's training is current for more than 60 days.",
        ),
    ]


def title(figures: ReviewFigures) -> str:
    """The report's title."""
    return f"Information Sharing Protocol review, {figures.window.end[:10]}"


def render_markdown(figures: ReviewFigures) -> str:
    """The report as Markdown."""
    lines = [f"# {title(figures)}", ""]
    for section in sections(figures):
        lines += [f"## {section.title}", ""]
        if section.lead:
            lines += [section.lead, ""]
        if section.rows:
            lines.append("| " + " | ".join(section.columns) + " |")
            lines.append("|" + "---|" * len(section.columns))
            lines += ["| " + " | ".join(_md(cell) for cell in row) + " |" for row in section.rows]
            lines.append("")
        elif section.empty:
            lines += [section.empty, ""]
    return "\n".join(lines)


def _md(cell: str) -> str:
    return cell.replace("|", "\\|")


def render_html(figures: ReviewFigures) -> str:
    """The report as a standalone HTML page."""
    e = html.escape
    parts = [
        "<!doctype html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>{e(title(figures))}</title>",
        "<style>body{font-family:sans-serif;max-width:60em;margin:2em auto}"
        "table{border-collapse:collapse}td,th{border:1px solid #999;padding:.3em .6em}</style>",
        f"</head><body><h1>{e(title(figures))}</h1>",
    ]
    for section in sections(figures):
        parts.append(f"<h2>{e(section.title)}</h2>")
        if section.lead:
            parts.append(f"<p>{e(section.lead)}</p>")
        if section.rows:
            parts.append("<table><tr>" + "".join(f"<th>{e(c)}</th>" for c in section.columns))
            for row in section.rows:
                parts.append("<tr>" + "".join(f"<td>{e(cell)}</td>" for cell in row) + "</tr>")
            parts.append("</table>")
        elif section.empty:
            parts.append(f"<p>{e(section.empty)}</p>")
    parts.append("</body></html>")
    return "\n".join(parts) + "\n"
