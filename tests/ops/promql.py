"""The metric names a PromQL expression reads, for checking dashboards and rules against what
the processes export.

A tokenizer, not a full parser: it removes what can hold identifiers that are not metric names
(string literals, label matchers ``{...}``, ranges and subqueries ``[...]``, label lists after
``by``/``without``/``on``/``ignoring``/``group_left``/``group_right``), then every identifier
left is a metric name unless it is a keyword or operator, or is called (a function or an
aggregation: followed by ``(``).
"""

from __future__ import annotations

import re

_STRING = re.compile(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'|`[^`]*`')
_MATCHERS = re.compile(r"\{[^{}]*\}")
_RANGES = re.compile(r"\[[^\[\]]*\]")
_LABEL_LISTS = re.compile(
    r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^()]*\)", re.IGNORECASE
)
# Not preceded by a word character or a dot (so 1e3, 0.5 and 5m are not names).
_IDENTIFIER = re.compile(r"(?<![\w.$])[a-zA-Z_:][a-zA-Z0-9_:]*")
_KEYWORDS = frozenset(
    {"and", "or", "unless", "bool", "offset", "by", "without", "on", "ignoring",
     "group_left", "group_right", "inf", "nan", "atan2"}
)  # fmt: skip


def metric_names(expr: str) -> set[str]:
    """The metric names ``expr`` selects."""
    text = _STRING.sub('""', expr)
    text = _MATCHERS.sub(" ", text)
    text = _RANGES.sub(" ", text)
    text = _LABEL_LISTS.sub(" ", text)
    # A grouping clause may also follow the aggregation's argument: sum(x) by (a).
    names = set()
    for match in _IDENTIFIER.finditer(text):
        word = match.group()
        if word.lower() in _KEYWORDS or text[match.end() :].lstrip().startswith("("):
            continue
        names.add(word)
    return names


def exported_names(exposition: str) -> set[str]:
    """Every metric name in a Prometheus text exposition (``_bucket``/``_sum``/``_count`` of a
    histogram are listed as the exposition writes them, and its base name too)."""
    names: set[str] = set()
    for line in exposition.splitlines():
        if line.startswith("# TYPE "):
            _, _, name, kind = line.split(maxsplit=3)
            names.add(name)
            if kind.strip() == "histogram":
                names.update(f"{name}_{suffix}" for suffix in ("bucket", "sum", "count"))
        elif line and not line.startswith("#"):
            names.add(re.split(r"[{\s]", line, maxsplit=1)[0])
    return names
