"""The dashboard's vocabulary: PromQL selectors, and Grafana panels as functions of what differs
between them (title, description, queries, unit, thresholds) with the size each takes.

``rows.py`` declares every panel with these; ``build_dashboard.py`` lays them out. Each builder
writes the keys of Grafana's JSON model in one fixed order, so the dashboard's JSON only changes
when a declaration does.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, NamedTuple

DS = {"type": "prometheus", "uid": "${datasource}"}
RATE = "$__rate_interval"

# Label matchers every query carries: the scrape job and instances picked at the top.
JOB = 'job=~"$job"'
INST = f'{JOB}, instance=~"$instance"'
PORT = f'{INST}, port=~"$port"'
# The drift of the calibrated score is centinela_drift_psi{feature="risk_score"}.
SCORE = 'feature="risk_score"'
NOT_SCORE = 'feature!="risk_score"'

# Codes that mean the server failed the caller (not the caller's own mistake).
# The same codes as the error-ratio alert in deploy/prometheus/alerts.yaml; RESOURCE_EXHAUSTED
# (load shedding) has a panel of its own.
SERVER_ERROR_CODES = "INTERNAL|UNKNOWN|UNAVAILABLE|DATA_LOSS|DEADLINE_EXCEEDED"

DAY = 86_400  # seconds

Panel = dict[str, Any]
# Threshold steps as (from value, colour), the first from None (minus infinity).
Steps = Iterable[tuple[float | None, str]]

# Sizes (width, height) on Grafana's grid, 24 columns wide.
SIXTH = (4, 4)
THIRD_LOW = (8, 4)
THIRD = (8, 8)
THIRD_TALL = (8, 10)
HALF = (12, 8)


class Placed(NamedTuple):
    """A panel with its width and height; where it goes is the layout's business."""

    panel: Panel
    w: int
    h: int


class Row(NamedTuple):
    """A titled row of panels, laid out left to right, wrapping at 24 columns."""

    title: str
    panels: list[Placed]


# --- queries ------------------------------------------------------------------------------------


def sel(metric: str, matchers: str = INST, extra: str = "") -> str:
    """``metric{matchers, extra}``."""
    return f"{metric}{{{matchers}{', ' + extra if extra else ''}}}"


def summed(
    metric: str,
    by: str = "",
    matchers: str = INST,
    extra: str = "",
    fn: str = "rate",
    window: str = RATE,
) -> str:
    """``sum [by (by)] (fn(metric{...}[window]))``."""
    grouping = f" by ({by}) " if by else ""
    return f"sum{grouping}({fn}({sel(metric, matchers, extra)}[{window}]))"


def max_by(by: str, metric: str, matchers: str = PORT, extra: str = "") -> str:
    """``max by (by) (metric{...})``: a gauge per port (or other labels) across instances."""
    return f"max by ({by}) ({sel(metric, matchers, extra)})"


def sum_by(by: str, metric: str, matchers: str = INST) -> str:
    """``sum by (by) (metric{...})``."""
    return f"sum by ({by}) ({sel(metric, matchers)})"


def target(expr: str, legend: str = "", ref: str = "A", *, instant: bool = False) -> Panel:
    t: Panel = {
        "datasource": DS,
        "expr": expr,
        "legendFormat": legend or "__auto",
        "refId": ref,
        "range": not instant,
        "instant": instant,
    }
    if instant:
        t["format"] = "table"
    return t


def targets(*pairs: tuple[str, str]) -> list[Panel]:
    """One query per (expression, legend), lettered A, B, ..."""
    return [target(expr, legend, chr(ord("A") + i)) for i, (expr, legend) in enumerate(pairs)]


def legend(by: str) -> str:
    """The legend naming a series by the labels it is grouped ``by`` (``le`` aside)."""
    return " ".join("{{" + b.strip() + "}}" for b in by.split(",") if b.strip() != "le")


def port_gauges(named: dict[str, str], extra: str = "") -> list[Panel]:
    """Gauges side by side, each one series per port named ``{{port}} name``."""
    return targets(
        *((max_by("port", m, PORT, extra), "{{port}} " + name) for name, m in named.items())
    )


def quantiles(
    metric: str, by: str, matchers: str, qs: Iterable[float] = (0.5, 0.99)
) -> list[Panel]:
    """``histogram_quantile`` of a histogram's buckets, one query per quantile."""
    label = legend(by)
    return targets(
        *(
            (
                f"histogram_quantile({q}, {summed(metric + '_bucket', by, matchers)})",
                f"p{round(q * 100)} {label}".strip(),
            )
            for q in qs
        )
    )


# --- panels -------------------------------------------------------------------------------------

# The newest value of each series, for the single-figure panels.
LAST_VALUE = {"calcs": ["lastNotNull"], "fields": "", "values": False}


def _thresholds(steps: Steps) -> Panel:
    return {
        "mode": "absolute",
        "steps": [{"color": color, "value": value} for value, color in steps],
    }


def _panel(
    kind: str,
    title: str,
    description: str,
    queries: list[Panel],
    defaults: Panel,
    options: Panel,
    overrides: list[Panel] | None = None,
    **extra: Any,
) -> Panel:
    """What every panel has, in Grafana's order; ``extra`` keys come last."""
    return {
        "type": kind,
        "title": title,
        "description": description,
        "datasource": DS,
        "targets": queries,
        "fieldConfig": {"defaults": defaults, "overrides": overrides or []},
        "options": options,
        **extra,
    }


def _dashed(regex: str) -> Panel:
    """An override drawing the series whose name matches ``regex`` dashed and thicker."""
    return {
        "matcher": {"id": "byRegexp", "options": regex},
        "properties": [
            {"id": "custom.lineStyle", "value": {"fill": "dash", "dash": [10, 10]}},
            {"id": "custom.lineWidth", "value": 2},
        ],
    }


def timeseries(
    title: str,
    description: str,
    queries: list[Panel],
    *,
    unit: str = "short",
    stack: bool = False,
    min_zero: bool = True,
    thresholds: Iterable[tuple[float, str]] = (),
    dashed: str | None = None,
    size: tuple[int, int] = THIRD,
) -> Placed:
    """A line chart. ``thresholds`` draw as dashed lines; series whose name matches the
    regex ``dashed`` (a budget beside its realised share) are drawn dashed too."""
    steps = [(None, "green"), *thresholds]
    custom: Panel = {
        "drawStyle": "line",
        "lineWidth": 1,
        "fillOpacity": 20 if stack else 0,
        "showPoints": "never",
        "spanNulls": False,
        "stacking": {"mode": "normal" if stack else "none", "group": "A"},
        "thresholdsStyle": {"mode": "dashed" if steps[1:] else "off"},
    }
    defaults: Panel = {"unit": unit, "custom": custom, "thresholds": _thresholds(steps)}
    if min_zero:
        defaults["min"] = 0
    options = {
        "legend": {"displayMode": "list", "placement": "bottom", "showLegend": True},
        "tooltip": {"mode": "multi", "sort": "desc"},
    }
    overrides = [] if dashed is None else [_dashed(dashed)]
    return Placed(
        _panel("timeseries", title, description, queries, defaults, options, overrides), *size
    )


def stat(
    title: str,
    description: str,
    query: Panel,
    *,
    unit: str = "short",
    steps: Steps = ((None, "green"),),
    mappings: list[Panel] | None = None,
    decimals: int | None = None,
    size: tuple[int, int] = SIXTH,
) -> Placed:
    """One figure on a background coloured by ``steps``."""
    defaults: Panel = {"unit": unit, "thresholds": _thresholds(steps), "mappings": mappings or []}
    if decimals is not None:
        defaults["decimals"] = decimals
    options = {
        "colorMode": "background",
        "graphMode": "none",
        "justifyMode": "auto",
        "reduceOptions": LAST_VALUE,
        "textMode": "value_and_name",
    }
    return Placed(_panel("stat", title, description, [query], defaults, options), *size)


def status(title: str, description: str, query: Panel, *, off: str, on: str) -> Placed:
    """A 0/1 gauge as a word: ``off`` on red at 0, ``on`` on green at 1."""
    words = {
        "0": {"text": off, "color": "red", "index": 0},
        "1": {"text": on, "color": "green", "index": 1},
    }
    return stat(
        title,
        description,
        query,
        steps=((None, "red"), (1, "green")),
        mappings=[{"type": "value", "options": words}],
    )


def age(title: str, description: str, query: Panel, *, red_after_days: int) -> Placed:
    """Seconds since something last happened: orange after a day, red after ``red_after_days``."""
    steps = ((None, "green"), (DAY, "orange"), (red_after_days * DAY, "red"))
    return stat(title, description, query, unit="s", steps=steps)


def bargauge(
    title: str,
    description: str,
    query: Panel,
    *,
    steps: Steps,
    max_value: float,
    unit: str = "short",
    size: tuple[int, int] = THIRD,
) -> Placed:
    """Horizontal bars from 0 to ``max_value``, one a series, coloured by ``steps``."""
    defaults = {"unit": unit, "min": 0, "thresholds": _thresholds(steps), "max": max_value}
    options = {
        "displayMode": "gradient",
        "orientation": "horizontal",
        "reduceOptions": LAST_VALUE,
        "showUnfilled": True,
    }
    return Placed(_panel("bargauge", title, description, [query], defaults, options), *size)


def table(
    title: str,
    description: str,
    query: Panel,
    hide: Iterable[str] = (),
    size: tuple[int, int] = SIXTH,
) -> Placed:
    """The query's labels as a table, without the columns named in ``hide``."""
    options = {"showHeader": True, "cellHeight": "sm"}
    organize = {"id": "organize", "options": {"excludeByName": dict.fromkeys(hide, True)}}
    panel = _panel("table", title, description, [query], {}, options, transformations=[organize])
    return Placed(panel, *size)


# --- the common charts: one query, one series per label value -----------------------------------


def per_second(
    title: str,
    description: str,
    metric: str,
    by: str,
    matchers: str = INST,
    *,
    stack: bool = False,
    size: tuple[int, int] = THIRD,
) -> Placed:
    """A counter's rate per second, summed ``by`` labels."""
    queries = targets((summed(metric, by, matchers), legend(by)))
    return timeseries(title, description, queries, unit="reqps", stack=stack, size=size)


def increases(
    title: str, description: str, metric: str, by: str, window: str, matchers: str = PORT
) -> Placed:
    """How much a counter grew over the last ``window``, summed ``by`` labels."""
    queries = targets((summed(metric, by, matchers, fn="increase", window=window), legend(by)))
    return timeseries(title, description, queries)


def gauge(
    title: str,
    description: str,
    metric: str,
    by: str = "port",
    extra: str = "",
    *,
    unit: str = "short",
    thresholds: Iterable[tuple[float, str]] = (),
    size: tuple[int, int] = THIRD,
) -> Placed:
    """A gauge's highest value across instances, per port (or ``by`` other labels)."""
    queries = targets((max_by(by, metric, PORT, extra), legend(by)))
    return timeseries(title, description, queries, unit=unit, thresholds=thresholds, size=size)
