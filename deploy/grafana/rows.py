"""The dashboard's four rows, each a list of panel declarations (``panels.py`` builds them).

Every query names only metrics the server exports (``tests/test_dashboard.py`` scrapes a real
server to check), plus Prometheus's own ``up``.
"""

from __future__ import annotations

from deploy.grafana.panels import (
    HALF,
    INST,
    JOB,
    NOT_SCORE,
    PORT,
    RATE,
    SCORE,
    SERVER_ERROR_CODES,
    THIRD_LOW,
    THIRD_TALL,
    Panel,
    Row,
    age,
    bargauge,
    gauge,
    increases,
    max_by,
    per_second,
    port_gauges,
    quantiles,
    sel,
    stat,
    status,
    sum_by,
    summed,
    table,
    target,
    targets,
    timeseries,
)
from scoring.lanes import LANES

REQUESTS = "centinela_grpc_requests_total"
SHADOW_DECISIONS = "centinela_shadow_decisions_total"
PSI = "centinela_drift_psi"
# Population stability: under 0.1 stable, 0.1-0.25 a moderate shift, over 0.25 a major one.
PSI_STEPS = ((0.1, "orange"), (0.25, "red"))


def shadow_agreement() -> str:
    """Per port, the share of decisions whose lane the shadow model would have given too."""
    agreeing = [
        sel(SHADOW_DECISIONS, PORT, f'lane="{lane}", shadow_lane="{lane}"') for lane in LANES
    ]
    same = " or ".join(f"rate({selected}[{RATE}])" for selected in agreeing)
    return f"sum by (port) ({same}) / {summed(SHADOW_DECISIONS, 'port', PORT)}"


def lane_share_against_budget(lane: str) -> list[Panel]:
    """A lane's realised share beside its budget, per port."""
    named = {"realised": "centinela_lane_share", "budget": "centinela_lane_budget"}
    return port_gauges(named, f'lane="{lane}"')


# Operations: up, serving, traffic, errors, latency, load shedding, reloads, process.
SERVICE = Row(
    "Service: up, traffic, errors, latency (operations)",
    [
        status(
            "Scrape up",
            "Prometheus's own `up` for the Centinela scrape job: 0 means the process "
            "is down or its /metrics endpoint cannot be reached.",
            target(f"min({sel('up', JOB)})", "up"),
            off="DOWN",
            on="UP",
        ),
        status(
            "Model loaded",
            "1 while a model and watchlist are loaded (health SERVING); 0 while the "
            "server waits for a model (health NOT_SERVING). Lowest across instances.",
            target(f"min({sel('centinela_model_loaded')})", "serving"),
            off="NOT SERVING",
            on="SERVING",
        ),
        stat(
            "Requests per second",
            "gRPC requests of every method and status, all instances.",
            target(summed(REQUESTS), "req/s"),
            unit="reqps",
            decimals=1,
        ),
        stat(
            "Server error ratio",
            f"Share of requests answered {SERVER_ERROR_CODES.replace('|', ', ')}: "
            "failures of the server, not the caller's bad input (INVALID_ARGUMENT, "
            "NOT_FOUND, UNAUTHENTICATED) nor load shedding (RESOURCE_EXHAUSTED, its own "
            "panel). The error-ratio alert counts the same codes.",
            target(
                summed(REQUESTS, extra=f'code=~"{SERVER_ERROR_CODES}"') + " / " + summed(REQUESTS),
                "errors",
            ),
            unit="percentunit",
            steps=((None, "green"), (0.01, "orange"), (0.05, "red")),
            decimals=2,
        ),
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
        table(
            "Serving versions",
            "Model, watchlist and hard rules versions each instance serves.",
            target(
                max_by(
                    "instance, model_version, watchlist_version, rules_version",
                    "centinela_serving_info",
                    INST,
                ),
                instant=True,
            ),
            hide=("Time", "Value"),
        ),
        per_second(
            "Requests by method and status",
            "gRPC requests per second by method and the status code the caller got.",
            REQUESTS,
            "method, code",
            size=HALF,
        ),
        timeseries(
            "Latency by method (p50, p99)",
            "Receipt to reply, by method. A ScoreShipments stream counts once, for its whole life.",
            quantiles("centinela_grpc_request_duration_seconds", "le, method", INST),
            unit="s",
            size=HALF,
        ),
        timeseries(
            "Calls in flight and queued",
            "Scoring calls admitted (at most max_in_flight) and waiting for a slot (at "
            "most max_queued); beyond both calls are refused RESOURCE_EXHAUSTED.",
            targets(
                (sum_by("instance", "centinela_calls_in_flight"), "in flight {{instance}}"),
                (sum_by("instance", "centinela_calls_queued"), "queued {{instance}}"),
            ),
        ),
        per_second(
            "Calls refused for load",
            "RESOURCE_EXHAUSTED refusals per second by reason: overloaded (gate full), "
            "rate_limited (a caller over rate_limit_per_s), stream_too_long.",
            "centinela_rejected_calls_total",
            "reason",
        ),
        timeseries(
            "Batch size across calls (p50, p99)",
            "Shipments scored together per batch by the server's batcher; grows with "
            "concurrent load (batch_max_size caps it).",
            quantiles("centinela_batch_size", "le", INST),
        ),
        increases(
            "Reloads",
            "Model and watchlist reload attempts by result over the last hour; a "
            "failed reload keeps the versions already serving.",
            "centinela_reloads_total",
            "target, result",
            "1h",
            INST,
        ),
        timeseries(
            "Memory (resident)",
            "Resident memory of each server process.",
            targets((sel("process_resident_memory_bytes"), "{{instance}}")),
            unit="bytes",
        ),
        timeseries(
            "CPU",
            "CPU seconds per second used by each server process (1 = one core).",
            targets((f"rate({sel('process_cpu_seconds_total')}[{RATE}])", "{{instance}}")),
            unit="short",
        ),
    ],
)

# The ports: throughput, lanes held against each port's budget, exams, evidence.
PORTS = Row(
    "Ports: throughput, lanes against budgets, exams (port operations)",
    [
        per_second(
            "Decisions per second by port",
            "Decisions returned, by port of entry (UN/LOCODE).",
            "centinela_decisions_total",
            "port",
            PORT,
            size=HALF,
        ),
        per_second(
            "Lane mix by port",
            "Decisions per second by port and lane, stacked.",
            "centinela_decisions_total",
            "port, lane",
            PORT,
            stack=True,
            size=HALF,
        ),
        bargauge(
            "RED share of budget, by port",
            "Realised RED share over the port's rolling window divided by its RED "
            "budget: 1 is on budget. Well above 1 means hard rules alone exceed the "
            "port's capacity; well below, the window is still filling or thresholds lag.",
            target(
                max_by("port", "centinela_lane_share", PORT, 'lane="red"')
                + " / "
                + max_by("port", "centinela_lane_budget", PORT, 'lane="red"'),
                "{{port}}",
            ),
            unit="percentunit",
            steps=((None, "blue"), (0.5, "green"), (1.5, "orange"), (2, "red")),
            max_value=2,
        ),
        timeseries(
            "RED share against budget",
            "Realised share of each port's window sent RED (solid) beside its RED "
            "budget (dashed). Rules, exploration and the model all come out of it.",
            lane_share_against_budget("red"),
            unit="percentunit",
            dashed=".* budget$",
        ),
        timeseries(
            "YELLOW share against budget",
            "Realised share of each port's window sent YELLOW (solid) beside its "
            "YELLOW budget (dashed).",
            lane_share_against_budget("yellow"),
            unit="percentunit",
            dashed=".* budget$",
        ),
        timeseries(
            "What fills RED capacity",
            "Share of each port's window forced RED by hard rules, sent RED by random "
            "exploration, and how far rules alone exceed the RED capacity (0 within).",
            port_gauges(
                {
                    "rules": "centinela_lane_rule_red_share",
                    "exploration": "centinela_lane_explored_share",
                    "over capacity": "centinela_lane_over_capacity_share",
                }
            ),
            unit="percentunit",
        ),
        gauge(
            "Score thresholds",
            "The calibrated score a shipment must exceed at each port for RED and "
            "YELLOW, as last used; they follow the port's live score distribution.",
            "centinela_lane_threshold",
            "port, lane",
            unit="percentunit",
        ),
        increases(
            "Over-capacity events",
            "Rule-forced RED decisions made while a port's rules exceeded its RED "
            "capacity, over the last hour.",
            "centinela_lane_over_capacity_events_total",
            "port",
            "1h",
        ),
        per_second(
            "Exams recommended",
            "Exams recommended for RED and YELLOW decisions per second, by port and "
            "exam type (within each port's exam_capacity).",
            "centinela_exams_recommended_total",
            "port, exam",
            PORT,
            stack=True,
        ),
        timeseries(
            "Watchlist hits and invalid shipments",
            "Watchlist hits per second by match type (all ports), and shipments "
            "rejected by validation.",
            targets(
                (summed("centinela_watchlist_hits_total", "match_type"), "hits {{match_type}}"),
                (summed("centinela_invalid_shipments_total"), "invalid shipments"),
            ),
            unit="reqps",
        ),
        per_second(
            "Manifest streams",
            "ScoreShipments stream messages per second by outcome: scored, or error "
            "(a bad shipment answered with a Decision carrying its error).",
            "centinela_stream_messages_total",
            "outcome",
        ),
    ],
)

# Analysts: drift of scores and features, and the labels coming back.
MODEL = Row(
    "Model: drift and labels (analysts)",
    [
        bargauge(
            "Largest drift now (PSI)",
            "The ten largest population stability indices, by port, of the calibrated "
            "score (feature risk_score) and the model's most important features: each "
            "port's last drift_window decisions against the model's training window. "
            "Under 0.1 stable, 0.1-0.25 a moderate shift, over 0.25 a major one (the "
            "alert fires after 30 minutes over 0.25).",
            target(f"topk(10, {max_by('port, feature', PSI)})", "{{port}} {{feature}}"),
            steps=((None, "green"), *PSI_STEPS),
            max_value=0.5,
            size=THIRD_TALL,
        ),
        gauge(
            "Score drift (PSI of the risk score)",
            "PSI of the calibrated risk score per port against the training window. "
            "Dashed lines at 0.1 and 0.25. A port appears once its window holds "
            "drift_min_decisions decisions.",
            PSI,
            extra=SCORE,
            thresholds=PSI_STEPS,
            size=THIRD_TALL,
        ),
        gauge(
            "Feature drift (PSI)",
            "PSI of the model's most important features per port against the "
            "training window: which inputs moved when the score drifts.",
            PSI,
            "port, feature",
            NOT_SCORE,
            thresholds=PSI_STEPS,
            size=THIRD_TALL,
        ),
        timeseries(
            "Risk score by port (p50, p90, p99)",
            "Quantiles of the calibrated risk score by port: a moving distribution is "
            "drift the lanes absorb by moving their thresholds.",
            quantiles("centinela_risk_score", "le, port", PORT, (0.5, 0.9, 0.99)),
            unit="percentunit",
        ),
        gauge(
            "Shipments whose shipper has no history",
            "Share of each port's drift window whose shipper was never seen before: "
            "new traffic the model knows least.",
            "centinela_drift_no_history_share",
            unit="percentunit",
        ),
        gauge(
            "Watchlist hit rate",
            "Share of each port's drift window with at least one watchlist hit.",
            "centinela_drift_watchlist_hit_rate",
            unit="percentunit",
        ),
        timeseries(
            "Decisions awaiting an outcome, by age",
            "RED and YELLOW decisions with no inspection outcome yet, by how long they "
            "have waited (stacked); after label_max_age_days they leave the count as "
            "expired. Labels that do not come back starve the next model.",
            targets((sum_by("age", "centinela_decisions_awaiting_outcome", PORT), "{{age}}")),
            stack=True,
        ),
        timeseries(
            "Outcome rate and positives among inspected",
            "Share of each port's decisions of the last label_window_days with an "
            "outcome, and the share of positives among the outcomes saying inspected.",
            port_gauges(
                {
                    "outcome rate": "centinela_outcome_rate",
                    "positive among inspected": "centinela_positive_share_inspected",
                }
            ),
            unit="percentunit",
        ),
        age(
            "Since the last outcome",
            "Time since any inspection outcome was recorded (the freshest instance); "
            "the alert fires after three days.",
            target(f"min({sel('centinela_seconds_since_last_outcome')})", "since last"),
            red_after_days=3,
        ),
        stat(
            "Outcomes recorded (24h)",
            "Inspection outcomes recorded over the last day (idempotent repeats of "
            "the same report are not counted).",
            target(summed("centinela_outcomes_total", fn="increase", window="24h"), "outcomes"),
            decimals=0,
        ),
        per_second(
            "Outcomes by result",
            "Inspection outcomes recorded per second, by result.",
            "centinela_outcomes_total",
            "result",
        ),
        increases(
            "Decisions expired without an outcome",
            "RED and YELLOW decisions per port that reached label_max_age_days with no "
            "outcome, over the last day.",
            "centinela_decisions_outcome_expired_total",
            "port",
            "1d",
        ),
        gauge(
            "Drift window size",
            "Decisions in each port's drift window (at most drift_window); PSI is "
            "exported once it holds drift_min_decisions.",
            "centinela_drift_window_decisions",
        ),
        timeseries(
            "Shadow model: lane agreement by port",
            "Share of each port's decisions whose lane the shadow model (setting "
            "shadow_model) would have given too: its score on the serving model's scale "
            "through the same lane policy, rules and exploration draw. 1 means the two "
            "models rank this traffic alike; empty without a shadow.",
            targets((shadow_agreement(), "{{port}}")),
            unit="percentunit",
            min_zero=False,
            size=HALF,
        ),
        timeseries(
            "Shadow model: score difference (p50, p99)",
            "Absolute difference between the serving and the shadow model's calibrated "
            "scores of the same decisions, by port; empty without a shadow.",
            quantiles("centinela_shadow_score_difference", "le, port", PORT),
            unit="percentunit",
            size=HALF,
        ),
    ],
)

# Operations and audit: the decision ledger's size, commit latency and verification.
LEDGER = Row(
    "Ledger health (operations, audit)",
    [
        status(
            "Last verification",
            "Result of the last verification of the ledger's MAC chain and checkpoints.",
            target(f"min({sel('centinela_ledger_last_verify_ok')})", "verify"),
            off="FAILED",
            on="OK",
        ),
        age(
            "Since last verification",
            "Time since the ledger was last verified.",
            target(f"time() - max({sel('centinela_ledger_last_verify_timestamp_seconds')})", "age"),
            red_after_days=7,
        ),
        stat(
            "Rows",
            "Rows in the ledger (decisions and outcomes).",
            target(f"max({sel('centinela_ledger_rows')})", "rows"),
            decimals=0,
        ),
        stat(
            "Size on disk",
            "Bytes of the ledger file with its write-ahead log.",
            target(f"max({sel('centinela_ledger_bytes')})", "bytes"),
            unit="bytes",
        ),
        timeseries(
            "Rows written per second",
            "Growth of the ledger.",
            targets((f"deriv({sel('centinela_ledger_rows')}[15m])", "{{instance}}")),
            size=THIRD_LOW,
        ),
        timeseries(
            "Commit latency (p50, p99)",
            "Time to commit one group of rows durably (synchronous=FULL) before the "
            "replies go out; the alert fires on a p99 over 0.25 s.",
            quantiles("centinela_ledger_commit_seconds", "le", INST),
            unit="s",
            thresholds=((0.25, "red"),),
            size=HALF,
        ),
        timeseries(
            "Rows per commit (p50, p99)",
            "Rows committed together in one group commit.",
            quantiles("centinela_ledger_group_size", "le", INST),
            size=HALF,
        ),
        timeseries(
            "Replicas: follow lag",
            "Where replicas share a PostgreSQL ledger: seconds since each replica's history "
            "last caught up with the rows the others committed (about "
            "ledger_follow_interval_s when healthy; it grows while the database cannot be "
            "read). Empty with a SQLite ledger.",
            targets((sel("centinela_ledger_follow_lag_seconds"), "{{instance}}")),
            unit="s",
            thresholds=((2.0, "red"),),
            size=HALF,
        ),
        timeseries(
            "Replicas: delay of followed rows (p50, p99)",
            "Seconds from another replica's commit of a row (its recorded_at) to its being "
            "in this replica's history features.",
            quantiles("centinela_ledger_follow_delay_seconds", "le", INST),
            unit="s",
            size=HALF,
        ),
        stat(
            "Replicas: rows waiting",
            "Most rows of the shared ledger any replica's last poll found not yet applied.",
            target(f"max({sel('centinela_ledger_follow_lag_rows')})", "rows"),
            decimals=0,
        ),
    ],
)

ROWS = (SERVICE, PORTS, MODEL, LEDGER)
