"""The whole decision policy at each port's capacity, beside the model alone.

The policy runs as the server would (:meth:`scoring.scorer.Scorer.score_tables`: the model, the
hard rules, each port's lane budget and exploration, from one fresh scorer over every shipment
in declared order, so history features and any state of the lanes see the whole past;
:func:`policy_decisions`). Per port and overall, :func:`policy_metrics` reports the RED budget,
the realised RED share, where each RED came from (:data:`RED_SOURCES`), precision and recall of
the RED lane and of RED+YELLOW against each label source, and beside them the model alone
opening the same number of each port's shipments (its top ``k`` by score, ``k`` the policy's
realised count) and opening exactly the port's capacity (``ceil(red × n)``).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

import numpy as np
import polars as pl

from scoring.lanes import Budget
from scoring.rules import RuleSet
from scoring.scorer import Scorer
from training.evaluation_metrics import budget_size, chosen_metrics, labels, ranking
from training.evaluation_record import (
    LANES,
    RED_SOURCES,
    BudgetMetrics,
    LabelSource,
    PolicyMetrics,
)


def policy_decisions(
    scorer: Scorer,
    rules: RuleSet,
    shipments: pl.DataFrame,
    goods: pl.DataFrame,
    inspections: pl.DataFrame,
) -> pl.DataFrame:
    """``shipment_id``, ``lane``, ``random_selection`` and ``red_by`` for every shipment, decided
    by ``scorer`` as the server would, in declared order (``declared_at``, then ``shipment_id``,
    as ``centinela score`` runs). ``rules`` are the scorer's hard rules: a RED whose fired rules
    include one with lane RED counts for ``rules`` (see :data:`RED_SOURCES`)."""
    red_rules = {rule.id for rule in rules.rules if rule.lane == "red"}
    scored = scorer.score_tables(shipments.sort("declared_at", "shipment_id"), goods, inspections)
    lanes = [s.lane.lower() for s in scored]
    return pl.DataFrame(
        {
            "shipment_id": [s.shipment_id for s in scored],
            "lane": lanes,
            "random_selection": [s.random_selection for s in scored],
            "red_by": [
                red_source(lane, s.random_selection, s.rules_fired, red_rules)
                for lane, s in zip(lanes, scored, strict=True)
            ],
        },
        schema={
            "shipment_id": pl.String(),
            "lane": pl.String(),
            "random_selection": pl.Boolean(),
            "red_by": pl.String(),
        },
    )


def red_source(
    lane: str, random_selection: bool, rules_fired: Iterable[str], red_rules: set[str]
) -> str | None:
    """Where a RED came from (:data:`RED_SOURCES`); None for any other lane."""
    if lane != "red":
        return None
    if any(rule in red_rules for rule in rules_fired):
        return "rules"
    return "exploration" if random_selection else "model"


def port_budget(budgets: Mapping[str, Budget], port: str) -> Budget:
    """The lane budget of ``port`` in the settings' ``lane_budgets``: its own, else ``default``."""
    return budgets.get(port) or budgets.get("default") or Budget()


def policy_metrics(
    frame: pl.DataFrame, label_sources: Sequence[LabelSource], budgets: Mapping[str, Budget]
) -> PolicyMetrics:
    """The policy's lanes in ``frame`` (columns ``lane`` and ``red_by``) against each label
    source, beside the model alone at each port's realised counts and at its capacity.

    ``frame`` may hold one port or several; the model alone always selects within each port
    (its top ``k`` of the port's shipments), as capacity is a port's.
    """
    n = frame.height
    lanes = frame["lane"].to_numpy()
    red, yellow = lanes == "red", lanes == "yellow"
    model_red, model_selected, model_capacity = (np.zeros(n, dtype=np.bool_) for _ in range(3))
    capacity, red_weight, yellow_weight = 0, 0.0, 0.0
    port_of = frame["port_of_entry"].to_numpy()
    ports = sorted(set(port_of.tolist()))
    for port in ports:
        rows = np.flatnonzero(port_of == port)
        budget = port_budget(budgets, port)
        order = rows[ranking(frame[rows], "model")]
        reds = int(red[rows].sum())
        model_red[order[:reds]] = True
        model_selected[order[: reds + int(yellow[rows].sum())]] = True
        k = budget_size(budget.red, len(rows))
        model_capacity[order[:k]] = True
        capacity += k
        red_weight += budget.red * len(rows)
        yellow_weight += budget.yellow * len(rows)
    inspected = frame["inspected"].to_numpy().astype(np.int64)

    def metrics(chosen: np.ndarray) -> dict[LabelSource, BudgetMetrics]:
        return {
            src: chosen_metrics(labels(frame, src), inspected, chosen, src) for src in label_sources
        }

    red_by = frame["red_by"].to_list()
    return PolicyMetrics(
        shipments=n,
        budget=(
            port_budget(budgets, ports[0]).model_dump(mode="json") if len(ports) == 1 else None
        ),
        red_budget=red_weight / n if n else 0.0,
        yellow_budget=yellow_weight / n if n else 0.0,
        capacity=capacity,
        lanes={lane: int((lanes == lane).sum()) for lane in LANES},
        red_by={source: red_by.count(source) for source in RED_SOURCES},
        red=metrics(red),
        selected=metrics(red | yellow),
        model_red=metrics(model_red),
        model_selected=metrics(model_selected),
        model_capacity=metrics(model_capacity),
    )
