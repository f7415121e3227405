"""Which metric names a PromQL expression reads, and which names an exporter offers.

Enough of PromQL's lexical structure to find the series selectors in the expressions our
dashboards and rules use: strings, label matchers, ranges, grouping clauses and Grafana
variables are removed first, then every identifier that is not a function call or a
keyword is a metric name.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

_STRING = re.compile(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'|`[^`]*`')
_VARIABLE = re.compile(r"\$\{[^}]*\}|\$\w+")
_MATCHERS = re.compile(r"\{[^{}]*\}")
_RANGE = re.compile(r"\[[^\[\]]*\]")
_GROUPING = re.compile(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^()]*\)")
# An identifier not glued to a number or another name, and not followed by "(" (a call).
_IDENT = re.compile(r"(?<![\w.:])([a-zA-Z_:][a-zA-Z0-9_:]*)(?![\w:])(?!\s*\()")
_KEYWORDS = frozenset({
    "and", "or", "unless", "bool", "offset", "by", "without", "on", "ignoring",
    "group_left", "group_right", "inf", "nan", "start", "end", "atan2",
})
_LABEL_VALUES = re.compile(r"^\s*label_values\s*\((.*),\s*[a-zA-Z_]\w*\s*\)\s*$", re.S)

# Families in the text exposition format, by type: the sample names each one produces.
_SUFFIXES = {
    "counter": ("_total", "_created"),
    "histogram": ("_bucket", "_sum", "_count", "_created"),
    "summary": ("", "_sum", "_count", "_created"),
    "gauge": ("",),
    "untyped": ("",),
    "info": ("_info",),
}


def metric_names(expr: str) -> set[str]:
    """Metric names selected anywhere in a PromQL expression."""
    text = _STRING.sub('""', expr)
    text = _VARIABLE.sub("1", text)
    text = _MATCHERS.sub("", text)
    text = _RANGE.sub("", text)
    while True:  # grouping clauses never nest, but `sum by (a) (x) / on (b) y` has several
        stripped = _GROUPING.sub("", text)
        if stripped == text:
            break
        text = stripped
    return {m for m in _IDENT.findall(text) if m.lower() not in _KEYWORDS}


def template_query_expr(query: str) -> str:
    """The PromQL inside a Grafana variable query (`label_values(expr, label)`)."""
    found = _LABEL_VALUES.match(query)
    return found.group(1) if found else query


def sample_names(family: str, kind: str) -> set[str]:
    """Sample names a family of this type exposes (`rigserve_requests` counter -> `_total`)."""
    if kind not in _SUFFIXES:
        raise ValueError(f"unknown metric type {kind!r}; known: {sorted(_SUFFIXES)}")
    base = family.removesuffix("_total") if kind == "counter" else family
    return {base + suffix for suffix in _SUFFIXES[kind]}


def exposed_names(exposition: str) -> set[str]:
    """Every sample name a /metrics page offers, including families with no samples yet
    (a labelled histogram nobody observed still has its `# TYPE` line)."""
    names: set[str] = set()
    for line in exposition.splitlines():
        if line.startswith("# TYPE "):
            _, _, family, kind = line.split(maxsplit=3)
            names |= sample_names(family, kind.strip())
        elif line and not line.startswith("#"):
            names.add(re.split(r"[{\s]", line, maxsplit=1)[0])
    return names


def contract_names(contracts_md: str) -> set[str]:
    """Sample names of the metrics table in docs/contracts.md (`| `name` | type | labels |`)."""
    names: set[str] = set()
    for family, kind in re.findall(r"^\|\s*`(rigserve_\w+)`\s*\|\s*(\w+)", contracts_md, re.M):
        names |= sample_names(family, kind)
    return names


def unknown_names(exprs: Iterable[str], known: set[str]) -> dict[str, set[str]]:
    """Expression -> the metric names in it that are not in `known` (empty when all are)."""
    missing = {expr: metric_names(expr) - known for expr in exprs}
    return {expr: names for expr, names in missing.items() if names}
