"""Generate the Grafana dashboard ``deploy/grafana/centinela.json`` from code.

    .venv/bin/python deploy/grafana/build_dashboard.py          # rewrite the JSON
    .venv/bin/python deploy/grafana/build_dashboard.py --check  # exit 1 when it is stale

One dashboard, four rows, for three audiences: operations (is it up, how fast, is it shedding
load), the ports (throughput, lanes against each port's budget, exams), analysts (drift of
scores and features against the training reference, labels coming back) and, for operations
and audit, the decision ledger's health. Every query names only metrics the server exports
(``tests/test_dashboard.py`` scrapes a real server to check), plus Prometheus's own ``up``.

The JSON is checked in so Grafana can provision it without Python; the test fails when it
differs from what this file writes.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import Any

OUT = Path(__file__).resolve().parent / "centinela.json"
UID = "centinela-ops"
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

Panel = dict[str, Any]


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
    return [target(expr, legend, chr(ord("A") + i)) for i, (expr, legend) in enumerate(pairs)]


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
) -> Panel:
    """A line chart. ``thresholds`` draw as dashed lines; series whose name matches the
    regex ``dashed`` (a budget beside its realised share) are drawn dashed too."""
    steps = [{"color": "green", "value": None}] + [
        {"color": color, "value": value} for value, color in thresholds
    ]
    custom: Panel = {
        "drawStyle": "line",
        "lineWidth": 1,
        "fillOpacity": 20 if stack else 0,
        "showPoints": "never",
        "spanNulls": False,
        "stacking": {"mode": "normal" if stack else "none", "group": "A"},
        "thresholdsStyle": {"mode": "dashed" if steps[1:] else "off"},
    }
    defaults: Panel = {
        "unit": unit,
        "custom": custom,
        "thresholds": {"mode": "absolute", "steps": steps},
    }
    if min_zero:
        defaults["min"] = 0
    overrides: list[Panel] = []
    if dashed is not None:
        overrides.append(
            {
                "matcher": {"id": "byRegexp", "options": dashed},
                "properties": [
                    {
                        "id": "custom.lineStyle",
                        "value": {"fill": "dash", "dash": [10, 10]},
                    },
                    {"id": "custom.lineWidth", "value": 2},
                ],
            }
        )
    return {
        "type": "timeseries",
        "title": title,
        "description": description,
        "datasource": DS,
        "targets": queries,
        "fieldConfig": {"defaults": defaults, "overrides": overrides},
        "options": {
            "legend": {"displayMode": "list", "placement": "bottom", "showLegend": True},
            "tooltip": {"mode": "multi", "sort": "desc"},
        },
    }


def stat(
    title: str,
    description: str,
    query: Panel,
    *,
    unit: str = "short",
    steps: Iterable[tuple[float | None, str]] = ((None, "green"),),
    mappings: list[Panel] | None = None,
    decimals: int | None = None,
) -> Panel:
    defaults: Panel = {
        "unit": unit,
        "thresholds": {
            "mode": "absolute",
            "steps": [{"color": color, "value": value} for value, color in steps],
        },
        "mappings": mappings or [],
    }
    if decimals is not None:
        defaults["decimals"] = decimals
    return {
        "type": "stat",
        "title": title,
        "description": description,
        "datasource": DS,
        "targets": [query],
        "fieldConfig": {"defaults": defaults, "overrides": []},
        "options": {
            "colorMode": "background",
            "graphMode": "none",
            "justifyMode": "auto",
            "reduceOptions": {"calcs": ["lastNotNull"], "fields": "", "values": False},
            "textMode": "value_and_name",
        },
    }


def bargauge(
    title: str,
    description: str,
    query: Panel,
    *,
    unit: str = "short",
    steps: Iterable[tuple[float | None, str]] = ((None, "green"),),
    max_value: float | None = None,
) -> Panel:
    defaults: Panel = {
        "unit": unit,
        "min": 0,
        "thresholds": {
            "mode": "absolute",
            "steps": [{"color": color, "value": value} for value, color in steps],
        },
    }
    if max_value is not None:
        defaults["max"] = max_value
    return {
        "type": "bargauge",
        "title": title,
        "description": description,
        "datasource": DS,
        "targets": [query],
        "fieldConfig": {"defaults": defaults, "overrides": []},
        "options": {
            "displayMode": "gradient",
            "orientation": "horizontal",
            "reduceOptions": {"calcs": ["lastNotNull"], "fields": "", "values": False},
            "showUnfilled": True,
        },
    }


def table(title: str, description: str, query: Panel, hide: Iterable[str] = ()) -> Panel:
    return {
        "type": "table",
        "title": title,
        "description": description,
        "datasource": DS,
        "targets": [query],
        "fieldConfig": {"defaults": {}, "overrides": []},
        "options": {"showHeader": True, "cellHeight": "sm"},
        "transformations": [
            {
                "id": "organize",
                "options": {"excludeByName": dict.fromkeys(hide, True)},
            }
        ],
    }


def quantiles(
    metric: str, by: str, matchers: str, qs: Iterable[float] = (0.5, 0.99)
) -> list[Panel]:
    """``histogram_quantile`` of a histogram's buckets, one query per quantile."""
    label = " ".join("{{" + b.strip() + "}}" for b in by.split(",") if b.strip() != "le")
    return targets(
        *(
            (
                f"histogram_quantile({q}, {summed(metric + '_bucket', by, matchers)})",
                f"p{round(q * 100)} {label}".strip(),
            )
            for q in qs
        )
    )


VERIFY_OK = [
    {
        "type": "value",
        "options": {
            "0": {"text": "FAILED", "color": "red", "index": 0},
            "1": {"text": "OK", "color": "green", "index": 1},
        },
    }
]
LOADED = [
    {
        "type": "value",
        "options": {
            "0": {"text": "NOT SERVING", "color": "red", "index": 0},
            "1": {"text": "SERVING", "color": "green", "index": 1},
        },
    }
]


def service_row() -> tuple[str, list[tuple[Panel, int, int]]]:
    """Operations: up, serving, traffic, errors, latency, load shedding, reloads, process."""
    return (
        "Service: up, traffic, errors, latency (operations)",
        [
            (
                stat(
                    "Scrape up",
                    "Prometheus's own `up` for the Centinela scrape job: 0 means the process "
                    "is down or its /metrics endpoint cannot be reached.",
                    target(f"min(up{{{JOB}}})", "up"),
                    steps=((None, "red"), (1, "green")),
                    mappings=[
                        {
                            "type": "value",
                            "options": {
                                "0": {"text": "DOWN", "color": "red", "index": 0},
                                "1": {"text": "UP", "color": "green", "index": 1},
                            },
                        }
                    ],
                ),
                4,
                4,
            ),
            (
                stat(
                    "Model loaded",
                    "1 while a model and watchlist are loaded (health SERVING); 0 while the "
                    "server waits for a model (health NOT_SERVING). Lowest across instances.",
                    target(f"min(centinela_model_loaded{{{INST}}})", "serving"),
                    steps=((None, "red"), (1, "green")),
                    mappings=LOADED,
                ),
                4,
                4,
            ),
            (
                stat(
                    "Requests per second",
                    "gRPC requests of every method and status, all instances.",
                    target(f"sum(rate(centinela_grpc_requests_total{{{INST}}}[{RATE}]))", "req/s"),
                    unit="reqps",
                    decimals=1,
                ),
                4,
                4,
            ),
            (
                stat(
                    "Server error ratio",
                    f"Share of requests answered {SERVER_ERROR_CODES.replace('|', ', ')}: "
                    "failures of the server, not the caller's bad input (INVALID_ARGUMENT, "
                    "NOT_FOUND, UNAUTHENTICATED) nor load shedding (RESOURCE_EXHAUSTED, its own "
                    "panel). The error-ratio alert counts the same codes.",
                    target(
                        summed(
                            "centinela_grpc_requests_total", extra=f'code=~"{SERVER_ERROR_CODES}"'
                        )
                        + " / "
                        + summed("centinela_grpc_requests_total"),
                        "errors",
                    ),
                    unit="percentunit",
                    steps=((None, "green"), (0.01, "orange"), (0.05, "red")),
                    decimals=2,
                ),
                4,
                4,
            ),
            (
                stat(
                    "p99 ScoreShipment",
                    "99th percentile of ScoreShipment latency, receipt to reply, all instances.",
                    target(
                        "histogram_quantile(0.99, "
                        + summed(
                            "centinela_grpc_request_duration_seconds_bucket",
                            "le",
                            extra='method="RiskScoring/ScoreShipment"',
                        )
                        + ")",
                        "p99",
                    ),
                    unit="s",
                    steps=((None, "green"), (0.25, "orange"), (1, "red")),
                ),
                4,
                4,
            ),
            (
                table(
                    "Serving versions",
                    "Model, watchlist and hard rules versions each instance serves.",
                    target(
                        f"max by (instance, model_version, watchlist_version, rules_version) "
                        f"(centinela_serving_info{{{INST}}})",
                        instant=True,
                    ),
                    hide=("Time", "Value"),
                ),
                4,
                4,
            ),
            (
                timeseries(
                    "Requests by method and status",
                    "gRPC requests per second by method and the status code the caller got.",
                    targets(
                        (
                            summed("centinela_grpc_requests_total", "method, code"),
                            "{{method}} {{code}}",
                        )
                    ),
                    unit="reqps",
                ),
                12,
                8,
            ),
            (
                timeseries(
                    "Latency by method (p50, p99)",
                    "Receipt to reply, by method. A ScoreShipments stream counts once, for its "
                    "whole life.",
                    quantiles("centinela_grpc_request_duration_seconds", "le, method", INST),
                    unit="s",
                ),
                12,
                8,
            ),
            (
                timeseries(
                    "Calls in flight and queued",
                    "Scoring calls admitted (at most max_in_flight) and waiting for a slot (at "
                    "most max_queued); beyond both calls are refused RESOURCE_EXHAUSTED.",
                    targets(
                        (
                            f"sum by (instance) (centinela_calls_in_flight{{{INST}}})",
                            "in flight {{instance}}",
                        ),
                        (
                            f"sum by (instance) (centinela_calls_queued{{{INST}}})",
                            "queued {{instance}}",
                        ),
                    ),
                ),
                8,
                8,
            ),
            (
                timeseries(
                    "Calls refused for load",
                    "RESOURCE_EXHAUSTED refusals per second by reason: overloaded (gate full), "
                    "rate_limited (a caller over rate_limit_per_s), stream_too_long.",
                    targets(
                        (
                            summed("centinela_rejected_calls_total", "reason"),
                            "{{reason}}",
                        )
                    ),
                    unit="reqps",
                ),
                8,
                8,
            ),
            (
                timeseries(
                    "Batch size across calls (p50, p99)",
                    "Shipments scored together per batch by the server's batcher; grows with "
                    "concurrent load (batch_max_size caps it).",
                    quantiles("centinela_batch_size", "le", INST),
                ),
                8,
                8,
            ),
            (
                timeseries(
                    "Reloads",
                    "Model and watchlist reload attempts by result over the last hour; a "
                    "failed reload keeps the versions already serving.",
                    targets(
                        (
                            summed(
                                "centinela_reloads_total",
                                "target, result",
                                fn="increase",
                                window="1h",
                            ),
                            "{{target}} {{result}}",
                        )
                    ),
                ),
                8,
                8,
            ),
            (
                timeseries(
                    "Memory (resident)",
                    "Resident memory of each server process.",
                    targets((f"process_resident_memory_bytes{{{INST}}}", "{{instance}}")),
                    unit="bytes",
                ),
                8,
                8,
            ),
            (
                timeseries(
                    "CPU",
                    "CPU seconds per second used by each server process (1 = one core).",
                    targets(
                        (f"rate(process_cpu_seconds_total{{{INST}}}[{RATE}])", "{{instance}}"),
                    ),
                    unit="short",
                ),
                8,
                8,
            ),
        ],
    )


def ports_row() -> tuple[str, list[tuple[Panel, int, int]]]:
    """The ports: throughput, lanes held against each port's budget, exams, evidence."""
    return (
        "Ports: throughput, lanes against budgets, exams (port operations)",
        [
            (
                timeseries(
                    "Decisions per second by port",
                    "Decisions returned, by port of entry (UN/LOCODE).",
                    targets(
                        (
                            summed("centinela_decisions_total", "port", PORT),
                            "{{port}}",
                        )
                    ),
                    unit="reqps",
                ),
                12,
                8,
            ),
            (
                timeseries(
                    "Lane mix by port",
                    "Decisions per second by port and lane, stacked.",
                    targets(
                        (
                            summed("centinela_decisions_total", "port, lane", PORT),
                            "{{port}} {{lane}}",
                        )
                    ),
                    unit="reqps",
                    stack=True,
                ),
                12,
                8,
            ),
            (
                bargauge(
                    "RED share of budget, by port",
                    "Realised RED share over the port's rolling window divided by its RED "
                    "budget: 1 is on budget. Well above 1 means hard rules alone exceed the "
                    "port's capacity; well below, the window is still filling or thresholds lag.",
                    target(
                        f'max by (port) (centinela_lane_share{{{PORT}, lane="red"}})'
                        f' / max by (port) (centinela_lane_budget{{{PORT}, lane="red"}})',
                        "{{port}}",
                    ),
                    unit="percentunit",
                    steps=((None, "blue"), (0.5, "green"), (1.5, "orange"), (2, "red")),
                    max_value=2,
                ),
                8,
                8,
            ),
            (
                timeseries(
                    "RED share against budget",
                    "Realised share of each port's window sent RED (solid) beside its RED "
                    "budget (dashed). Rules, exploration and the model all come out of it.",
                    targets(
                        (
                            f'max by (port) (centinela_lane_share{{{PORT}, lane="red"}})',
                            "{{port}} realised",
                        ),
                        (
                            f'max by (port) (centinela_lane_budget{{{PORT}, lane="red"}})',
                            "{{port}} budget",
                        ),
                    ),
                    unit="percentunit",
                    dashed=".* budget$",
                ),
                8,
                8,
            ),
            (
                timeseries(
                    "YELLOW share against budget",
                    "Realised share of each port's window sent YELLOW (solid) beside its "
                    "YELLOW budget (dashed).",
                    targets(
                        (
                            f'max by (port) (centinela_lane_share{{{PORT}, lane="yellow"}})',
                            "{{port}} realised",
                        ),
                        (
                            f'max by (port) (centinela_lane_budget{{{PORT}, lane="yellow"}})',
                            "{{port}} budget",
                        ),
                    ),
                    unit="percentunit",
                    dashed=".* budget$",
                ),
                8,
                8,
            ),
            (
                timeseries(
                    "What fills RED capacity",
                    "Share of each port's window forced RED by hard rules, sent RED by random "
                    "exploration, and how far rules alone exceed the RED capacity (0 within).",
                    targets(
                        (
                            f"max by (port) (centinela_lane_rule_red_share{{{PORT}}})",
                            "{{port}} rules",
                        ),
                        (
                            f"max by (port) (centinela_lane_explored_share{{{PORT}}})",
                            "{{port}} exploration",
                        ),
                        (
                            f"max by (port) (centinela_lane_over_capacity_share{{{PORT}}})",
                            "{{port}} over capacity",
                        ),
                    ),
                    unit="percentunit",
                ),
                8,
                8,
            ),
            (
                timeseries(
                    "Score thresholds",
                    "The calibrated score a shipment must exceed at each port for RED and "
                    "YELLOW, as last used; they follow the port's live score distribution.",
                    targets(
                        (
                            f"max by (port, lane) (centinela_lane_threshold{{{PORT}}})",
                            "{{port}} {{lane}}",
                        )
                    ),
                    unit="percentunit",
                ),
                8,
                8,
            ),
            (
                timeseries(
                    "Over-capacity events",
                    "Rule-forced RED decisions made while a port's rules exceeded its RED "
                    "capacity, over the last hour.",
                    targets(
                        (
                            summed(
                                "centinela_lane_over_capacity_events_total",
                                "port",
                                PORT,
                                fn="increase",
                                window="1h",
                            ),
                            "{{port}}",
                        )
                    ),
                ),
                8,
                8,
            ),
            (
                timeseries(
                    "Exams recommended",
                    "Exams recommended for RED and YELLOW decisions per second, by port and "
                    "exam type (within each port's exam_capacity).",
                    targets(
                        (
                            summed("centinela_exams_recommended_total", "port, exam", PORT),
                            "{{port}} {{exam}}",
                        )
                    ),
                    unit="reqps",
                    stack=True,
                ),
                8,
                8,
            ),
            (
                timeseries(
                    "Watchlist hits and invalid shipments",
                    "Watchlist hits per second by match type (all ports), and shipments "
                    "rejected by validation.",
                    targets(
                        (
                            summed("centinela_watchlist_hits_total", "match_type"),
                            "hits {{match_type}}",
                        ),
                        (
                            f"sum(rate(centinela_invalid_shipments_total{{{INST}}}[{RATE}]))",
                            "invalid shipments",
                        ),
                    ),
                    unit="reqps",
                ),
                8,
                8,
            ),
            (
                timeseries(
                    "Manifest streams",
                    "ScoreShipments stream messages per second by outcome: scored, or error "
                    "(a bad shipment answered with a Decision carrying its error).",
                    targets(
                        (
                            summed("centinela_stream_messages_total", "outcome"),
                            "{{outcome}}",
                        )
                    ),
                    unit="reqps",
                ),
                8,
                8,
            ),
        ],
    )


def model_row() -> tuple[str, list[tuple[Panel, int, int]]]:
    """Analysts: drift of scores and features, and the labels coming back."""
    psi = "centinela_drift_psi"
    return (
        "Model: drift and labels (analysts)",
        [
            (
                bargauge(
                    "Largest drift now (PSI)",
                    "The ten largest population stability indices, by port, of the calibrated "
                    "score (feature risk_score) and the model's most important features: each "
                    "port's last drift_window decisions against the model's training window. "
                    "Under 0.1 stable, 0.1-0.25 a moderate shift, over 0.25 a major one (the "
                    "alert fires after 30 minutes over 0.25).",
                    target(
                        f"topk(10, max by (port, feature) ({sel(psi, PORT)}))",
                        "{{port}} {{feature}}",
                    ),
                    steps=((None, "green"), (0.1, "orange"), (0.25, "red")),
                    max_value=0.5,
                ),
                8,
                10,
            ),
            (
                timeseries(
                    "Score drift (PSI of the risk score)",
                    "PSI of the calibrated risk score per port against the training window. "
                    "Dashed lines at 0.1 and 0.25. A port appears once its window holds "
                    "drift_min_decisions decisions.",
                    targets(
                        (
                            f"max by (port) ({sel(psi, PORT, SCORE)})",
                            "{{port}}",
                        )
                    ),
                    thresholds=((0.1, "orange"), (0.25, "red")),
                ),
                8,
                10,
            ),
            (
                timeseries(
                    "Feature drift (PSI)",
                    "PSI of the model's most important features per port against the "
                    "training window: which inputs moved when the score drifts.",
                    targets(
                        (
                            f"max by (port, feature) ({sel(psi, PORT, NOT_SCORE)})",
                            "{{port}} {{feature}}",
                        )
                    ),
                    thresholds=((0.1, "orange"), (0.25, "red")),
                ),
                8,
                10,
            ),
            (
                timeseries(
                    "Risk score by port (p50, p90, p99)",
                    "Quantiles of the calibrated risk score by port: a moving distribution is "
                    "drift the lanes absorb by moving their thresholds.",
                    quantiles("centinela_risk_score", "le, port", PORT, (0.5, 0.9, 0.99)),
                    unit="percentunit",
                ),
                8,
                8,
            ),
            (
                timeseries(
                    "Shipments whose shipper has no history",
                    "Share of each port's drift window whose shipper was never seen before: "
                    "new traffic the model knows least.",
                    targets(
                        (
                            f"max by (port) ({sel('centinela_drift_no_history_share', PORT)})",
                            "{{port}}",
                        )
                    ),
                    unit="percentunit",
                ),
                8,
                8,
            ),
            (
                timeseries(
                    "Watchlist hit rate",
                    "Share of each port's drift window with at least one watchlist hit.",
                    targets(
                        (
                            f"max by (port) ({sel('centinela_drift_watchlist_hit_rate', PORT)})",
                            "{{port}}",
                        )
                    ),
                    unit="percentunit",
                ),
                8,
                8,
            ),
            (
                timeseries(
                    "Decisions awaiting an outcome, by age",
                    "RED and YELLOW decisions with no inspection outcome yet, by how long they "
                    "have waited (stacked); after label_max_age_days they leave the count as "
                    "expired. Labels that do not come back starve the next model.",
                    targets(
                        (
                            f"sum by (age) ({sel('centinela_decisions_awaiting_outcome', PORT)})",
                            "{{age}}",
                        )
                    ),
                    stack=True,
                ),
                8,
                8,
            ),
            (
                timeseries(
                    "Outcome rate and positives among inspected",
                    "Share of each port's decisions of the last label_window_days with an "
                    "outcome, and the share of positives among the outcomes saying inspected.",
                    targets(
                        (
                            f"max by (port) ({sel('centinela_outcome_rate', PORT)})",
                            "{{port}} outcome rate",
                        ),
                        (
                            f"max by (port) ({sel('centinela_positive_share_inspected', PORT)})",
                            "{{port}} positive among inspected",
                        ),
                    ),
                    unit="percentunit",
                ),
                8,
                8,
            ),
            (
                stat(
                    "Since the last outcome",
                    "Time since any inspection outcome was recorded (the freshest instance); "
                    "the alert fires after three days.",
                    target(f"min({sel('centinela_seconds_since_last_outcome')})", "since last"),
                    unit="s",
                    steps=((None, "green"), (86_400, "orange"), (3 * 86_400, "red")),
                ),
                4,
                4,
            ),
            (
                stat(
                    "Outcomes recorded (24h)",
                    "Inspection outcomes recorded over the last day (idempotent repeats of "
                    "the same report are not counted).",
                    target(
                        summed("centinela_outcomes_total", fn="increase", window="24h"),
                        "outcomes",
                    ),
                    decimals=0,
                ),
                4,
                4,
            ),
            (
                timeseries(
                    "Outcomes by result",
                    "Inspection outcomes recorded per second, by result.",
                    targets((summed("centinela_outcomes_total", "result"), "{{result}}")),
                    unit="reqps",
                ),
                8,
                8,
            ),
            (
                timeseries(
                    "Decisions expired without an outcome",
                    "RED and YELLOW decisions per port that reached label_max_age_days with no "
                    "outcome, over the last day.",
                    targets(
                        (
                            summed(
                                "centinela_decisions_outcome_expired_total",
                                "port",
                                PORT,
                                fn="increase",
                                window="1d",
                            ),
                            "{{port}}",
                        )
                    ),
                ),
                8,
                8,
            ),
            (
                timeseries(
                    "Drift window size",
                    "Decisions in each port's drift window (at most drift_window); PSI is "
                    "exported once it holds drift_min_decisions.",
                    targets(
                        (
                            f"max by (port) ({sel('centinela_drift_window_decisions', PORT)})",
                            "{{port}}",
                        )
                    ),
                ),
                8,
                8,
            ),
        ],
    )


def ledger_row() -> tuple[str, list[tuple[Panel, int, int]]]:
    """Operations and audit: the decision ledger's size, commit latency and verification."""
    return (
        "Ledger health (operations, audit)",
        [
            (
                stat(
                    "Last verification",
                    "Result of the last verification of the ledger's MAC chain and checkpoints.",
                    target(f"min(centinela_ledger_last_verify_ok{{{INST}}})", "verify"),
                    steps=((None, "red"), (1, "green")),
                    mappings=VERIFY_OK,
                ),
                4,
                4,
            ),
            (
                stat(
                    "Since last verification",
                    "Time since the ledger was last verified.",
                    target(
                        f"time() - max(centinela_ledger_last_verify_timestamp_seconds{{{INST}}})",
                        "age",
                    ),
                    unit="s",
                    steps=((None, "green"), (86_400, "orange"), (7 * 86_400, "red")),
                ),
                4,
                4,
            ),
            (
                stat(
                    "Rows",
                    "Rows in the ledger (decisions and outcomes).",
                    target(f"max(centinela_ledger_rows{{{INST}}})", "rows"),
                    decimals=0,
                ),
                4,
                4,
            ),
            (
                stat(
                    "Size on disk",
                    "Bytes of the ledger file with its write-ahead log.",
                    target(f"max(centinela_ledger_bytes{{{INST}}})", "bytes"),
                    unit="bytes",
                ),
                4,
                4,
            ),
            (
                timeseries(
                    "Rows written per second",
                    "Growth of the ledger.",
                    targets((f"deriv(centinela_ledger_rows{{{INST}}}[15m])", "{{instance}}")),
                ),
                8,
                4,
            ),
            (
                timeseries(
                    "Commit latency (p50, p99)",
                    "Time to commit one group of rows durably (synchronous=FULL) before the "
                    "replies go out; the alert fires on a p99 over 0.25 s.",
                    quantiles("centinela_ledger_commit_seconds", "le", INST),
                    unit="s",
                    thresholds=((0.25, "red"),),
                ),
                12,
                8,
            ),
            (
                timeseries(
                    "Rows per commit (p50, p99)",
                    "Rows committed together in one group commit.",
                    quantiles("centinela_ledger_group_size", "le", INST),
                ),
                12,
                8,
            ),
        ],
    )


def variables() -> list[Panel]:
    def query_var(name: str, label: str, query: str) -> Panel:
        return {
            "type": "query",
            "name": name,
            "label": label,
            "datasource": DS,
            "query": {"query": query, "refId": f"{name}-var"},
            "definition": query,
            "refresh": 2,
            "sort": 1,
            "multi": True,
            "includeAll": True,
            "allValue": ".*",
            "current": {"selected": True, "text": ["All"], "value": ["$__all"]},
            "hide": 0,
        }

    return [
        {
            "type": "datasource",
            "name": "datasource",
            "label": "Prometheus",
            "query": "prometheus",
            "current": {},
            "hide": 0,
            "refresh": 1,
        },
        query_var("job", "Job", "label_values(centinela_model_loaded, job)"),
        query_var(
            "instance", "Instance", 'label_values(centinela_model_loaded{job=~"$job"}, instance)'
        ),
        query_var("port", "Port", 'label_values(centinela_lane_budget{job=~"$job"}, port)'),
    ]


def build() -> dict[str, Any]:
    panels: list[Panel] = []
    y = 0
    next_id = 1
    for title, row in (service_row(), ports_row(), model_row(), ledger_row()):
        panels.append(
            {
                "type": "row",
                "id": next_id,
                "title": title,
                "collapsed": False,
                "gridPos": {"h": 1, "w": 24, "x": 0, "y": y},
                "panels": [],
            }
        )
        next_id += 1
        y += 1
        x, line_h = 0, 0
        for panel, w, h in row:
            if x + w > 24:
                x, y, line_h = 0, y + line_h, 0
            panels.append({"id": next_id, "gridPos": {"h": h, "w": w, "x": x, "y": y}, **panel})
            next_id += 1
            x += w
            line_h = max(line_h, h)
        y += line_h
    return {
        "uid": UID,
        "title": "Centinela",
        "description": "Centinela cargo risk scoring: service, ports and lanes, model drift "
        "and labels, ledger health. Generated by deploy/grafana/build_dashboard.py; edit that, "
        "not this file.",
        "tags": ["centinela", "grpc"],
        "editable": True,
        "graphTooltip": 1,
        "timezone": "utc",
        "refresh": "30s",
        "time": {"from": "now-6h", "to": "now"},
        "timepicker": {},
        "schemaVersion": 39,
        "version": 1,
        "links": [],
        "annotations": {
            "list": [
                {
                    "builtIn": 1,
                    "datasource": {"type": "grafana", "uid": "-- Grafana --"},
                    "enable": True,
                    "hide": True,
                    "iconColor": "rgba(0, 211, 255, 1)",
                    "name": "Annotations & Alerts",
                    "type": "dashboard",
                },
                {
                    "datasource": DS,
                    "enable": True,
                    "iconColor": "purple",
                    "name": "Reloads",
                    "expr": f'changes(centinela_reloads_total{{{INST}, result="ok"}}[2m]) > 0',
                    "step": "60s",
                    "titleFormat": "{{target}} reloaded",
                    "textFormat": "{{instance}}",
                },
            ]
        },
        "templating": {"list": variables()},
        "panels": panels,
    }


def render() -> str:
    return json.dumps(build(), indent=2, ensure_ascii=False) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=OUT, help="Where to write the JSON.")
    parser.add_argument(
        "--check",
        action="store_true",
        help="Exit 1 if the file differs from what would be written.",
    )
    args = parser.parse_args(argv)
    text = render()
    if args.check:
        current = args.out.read_text(encoding="utf-8") if args.out.exists() else ""
        if current != text:
            print(f"{args.out} is stale: run {Path(__file__).name}", file=sys.stderr)
            return 1
        return 0
    args.out.write_text(text, encoding="utf-8")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
