"""The red team's decoy line: a clean, heavily traded watched chemical added to a shipment so that
its watched analogue's bad record is not read (issue 15).

The item history (``item_inspections``, ``item_positives``, ``item_positive_rate``,
``item_days_since_positive``) gives a shipment the record of the watched items its goods
identify. A shipper who knows it can add one line of a dual-use chemical that licit trade
carries every day (:data:`DECOYS`: aniline, piperidine, acetic acid), declared by its exact CAS
number, beside the analogue (:data:`ANALOGUES`: a designer precursor no licit trade carries),
hoping the shipment is read by the decoy's clean record instead of the analogue's findings.
:data:`DECOY_TRICKS` are the ways of making the decoy the stronger identification, or the first
on a tie.

Each :class:`DecoyCase` is one such shipment and the same shipment without the decoy line, both
declared after a common history (:func:`decoy_history`): every analogue found in each of its
earlier inspections, every decoy found clean in each of its own. :func:`decoy_check` decides
them with a scorer as bulk scoring does and says, per case, whether the decoy lowered the item
history's positive rate, or, by its clean record, the score (:attr:`DecoyScore.held`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

import polars as pl

from features.errors import DataError
from features.records import GoodsLine, Party, Shipment
from features.tables import INSPECTIONS_SCHEMA
from features.watchlist import Entry, Watchlist
from scoring.lanes import log as lanes_log
from scoring.scorer import Scored, Scorer
from training.evaluation_record import JsonRecord
from training.red_team import (
    BENIGN_DESCRIPTION,
    DECLARED_AT,
    canonical_tables,
    fresh_scorer,
    goods_line,
    plain_hs,
    quiet,
    red_team_shipment,
)

ANALOGUES: tuple[str, ...] = ("1-benzyl-4-piperidone", "benzylfentanyl", "depapd")
"""Watched designer precursors that no licit trade carries: the goods a decoy would hide."""
DECOYS: tuple[str, ...] = ("acetic-acid", "aniline", "piperidine")
"""Watched dual-use chemicals in heavy, clean licit trade: what a decoy line carries."""
FOUND = 3
"""Earlier shipments of each analogue, each found to carry contraband when inspected."""
CLEAN = 20
"""Earlier shipments of each decoy, each inspected and found clean."""
HISTORY_DAYS = 60
"""The history is declared this many days before the cases, and reported half-way."""

# (analogue, decoy, plain HS code) -> the analogue's line and the decoy's, or None when the
# trick cannot make the decoy win the identification.
_Trick = Callable[[Entry, Entry, str], tuple[GoodsLine, GoodsLine] | None]


def _cas_line(entry: Entry, hs: str) -> GoodsLine:
    """The entry's substance declared by its first CAS number (strength 1.0), described as
    nothing."""
    return goods_line(hs, BENIGN_DESCRIPTION, (entry.cas[0].number,))


def _stronger_decoy(analogue: Entry, decoy: Entry, hs: str) -> tuple[GoodsLine, GoodsLine]:
    """The analogue named only (strength 0.95), the decoy by its CAS number (1.0)."""
    return goods_line(hs, f"{analogue.name} 99%"), _cas_line(decoy, hs)


def _first_decoy(analogue: Entry, decoy: Entry, hs: str) -> tuple[GoodsLine, GoodsLine] | None:
    """Both by CAS number (1.0 each), the decoy's entry id first in sorted order."""
    if decoy.id >= analogue.id:
        return None
    return _cas_line(analogue, hs), _cas_line(decoy, hs)


DECOY_TRICKS: dict[str, _Trick] = {
    "decoy by CAS beside an analogue named only": _stronger_decoy,
    "decoy by CAS sorting before an analogue by CAS": _first_decoy,
}
"""Ways to make a decoy line the stronger identification of a shipment, or the first on a
tie; a trick that cannot (the analogue's id sorts first) makes no case."""


@dataclass(frozen=True, slots=True)
class DecoyCase:
    """One decoy: ``plain`` carries the analogue alone, ``decoyed`` the same line and the
    decoy's after it (ids ``RT-DECOY-<n>-PLAIN`` and ``-DECOYED``); both declared at
    :data:`~training.red_team.DECLARED_AT`, so neither is history for the other."""

    analogue: str
    decoy: str
    trick: str
    plain: Shipment
    decoyed: Shipment

    @property
    def label(self) -> str:
        return f"{self.analogue} + {self.decoy} / {self.trick}"


def _entries(watchlist: Watchlist, ids: Sequence[str]) -> list[Entry]:
    by_id = {e.id: e for e in watchlist.spec.entries}
    missing = [i for i in ids if i not in by_id or not by_id[i].cas]
    if missing:
        raise DataError(
            f"the decoy red team needs watchlist substances with a CAS number: {missing}"
        )
    return [by_id[i] for i in ids]


def decoy_cases(watchlist: Watchlist) -> list[DecoyCase]:
    """Every analogue of :data:`ANALOGUES` with every decoy of :data:`DECOYS` by every trick of
    :data:`DECOY_TRICKS` that applies, in that order; the same on every run."""
    hs = plain_hs(watchlist)
    out: list[DecoyCase] = []
    for analogue in _entries(watchlist, ANALOGUES):
        for decoy in _entries(watchlist, DECOYS):
            for trick, lines in DECOY_TRICKS.items():
                made = lines(analogue, decoy, hs)
                if made is None:
                    continue
                stem = f"RT-DECOY-{len(out) + 1:03d}"
                out.append(
                    DecoyCase(
                        analogue.id,
                        decoy.id,
                        trick,
                        red_team_shipment(f"{stem}-PLAIN", made[0]),
                        red_team_shipment(f"{stem}-DECOYED", *made),
                    )
                )
    return out


def decoy_history(watchlist: Watchlist) -> tuple[list[Shipment], pl.DataFrame]:
    """The history every case is declared after: :data:`FOUND` shipments of each analogue,
    each inspected and found positive, then :data:`CLEAN` of each decoy, each found clean, all
    declared :data:`HISTORY_DAYS` days before the cases (by CAS number, one line each) and
    reported half-way; and their ``inspections`` table. Each has parties of its own and comes
    by another route under another heading than the cases, so the cases share only their
    watched items with it."""
    hs = plain_hs(watchlist, besides=plain_hs(watchlist))
    declared = DECLARED_AT - timedelta(days=HISTORY_DAYS)
    reported = DECLARED_AT - timedelta(days=HISTORY_DAYS // 2)
    shipments: list[Shipment] = []
    positive: list[bool] = []
    for ids, count, found in ((ANALOGUES, FOUND, True), (DECOYS, CLEAN, False)):
        for entry in _entries(watchlist, ids):
            for n in range(count):
                shipment_id = f"RT-HISTORY-{entry.id.upper()}-{n + 1:03d}"
                shipments.append(_elsewhere(shipment_id, _cas_line(entry, hs), declared, n))
                positive.append(found)
    inspections = pl.DataFrame(
        {
            "shipment_id": [s.shipment_id for s in shipments],
            "inspected_at": [reported] * len(shipments),
            "reported_at": [reported] * len(shipments),
            "positive": positive,
            "substances": [[] for _ in shipments],
            "selection_probability": [1.0] * len(shipments),
            "random_selection": [False] * len(shipments),
        },
        schema=INSPECTIONS_SCHEMA,
    )
    return shipments, inspections


def _elsewhere(shipment_id: str, line: GoodsLine, day: datetime, n: int) -> Shipment:
    """A history shipment: ``line`` from India to Veracruz, ``n`` hours into ``day``, from a
    shipper to a consignee through a broker of its own (named after ``shipment_id``)."""
    shipment = red_team_shipment(shipment_id, line, declared_at=day + timedelta(hours=n))
    return replace(
        shipment,
        port_of_entry="MXVER",
        origin_country="IN",
        export_country="IN",
        transshipment_ports=(),
        shipper=Party(f"SHP-{shipment_id}", "Trading company", "IN"),
        consignee=Party(f"CNE-{shipment_id}", "Distribuidora", "MX"),
        broker_id=f"BRK-{shipment_id}",
    )


@dataclass(frozen=True, slots=True)
class DecoyScore(JsonRecord):
    """One case decided: the shipment without the decoy (``plain_*``) and with it
    (``decoyed_*``), by score and by the item history's smoothed positive rate; and
    ``unrecorded_score``, the shipment with the decoy scored after the same history less the
    decoys' own shipments: what it scores when the decoy has no clean record to lend.

    The plain shipment's score is for reading only: a second goods line moves other features
    (line count, value, weight, watchlist evidence) whatever the history says."""

    analogue: str
    decoy: str
    trick: str
    plain_score: float
    decoyed_score: float
    unrecorded_score: float
    plain_item_rate: float
    decoyed_item_rate: float

    @property
    def held(self) -> bool:
        """The decoy lowered neither the shipment's item record nor, by its own clean record,
        its score."""
        return (
            self.decoyed_item_rate >= self.plain_item_rate
            and self.decoyed_score >= self.unrecorded_score
        )


@dataclass(frozen=True, slots=True)
class DecoyCheck(JsonRecord):
    """How one scorer decided the decoy cases: ``held`` of ``cases`` kept their item record and
    score with the decoy (:attr:`DecoyScore.held`); ``evaded`` are the others, in case
    order."""

    cases: int
    held: int
    evaded: tuple[DecoyScore, ...]


def decoy_check(scorer: Scorer, cases: Sequence[DecoyCase], watchlist: Watchlist) -> DecoyCheck:
    """Decide ``cases`` after :func:`decoy_history` with ``scorer`` as bulk scoring does (the
    canonical tables of the history and the cases, ``Scorer.score_tables`` on a fresh lane
    policy: :func:`~training.red_team.fresh_scorer`), and once more after the history less
    the decoys' shipments; compare each case's shipment with the decoy to the one without.
    Raises :class:`~features.errors.DataError` for no cases."""
    if not cases:
        raise DataError("no decoy cases to decide")
    history, inspections = decoy_history(watchlist)
    analogues = len(ANALOGUES) * FOUND  # the history's first shipments; the decoys' follow
    plain, decoyed = _scored(scorer, cases, history, inspections)
    _, unrecorded = _scored(scorer, cases, history[:analogues], inspections.head(analogues))
    results = [
        DecoyScore(
            c.analogue,
            c.decoy,
            c.trick,
            p.risk_score,
            d.risk_score,
            u.risk_score,
            p.features["item_positive_rate"],
            d.features["item_positive_rate"],
        )
        for c, p, d, u in zip(cases, plain, decoyed, unrecorded, strict=True)
    ]
    evaded = tuple(r for r in results if not r.held)
    return DecoyCheck(cases=len(results), held=len(results) - len(evaded), evaded=evaded)


def _scored(
    scorer: Scorer,
    cases: Sequence[DecoyCase],
    history: Sequence[Shipment],
    inspections: pl.DataFrame,
) -> tuple[list[Scored], list[Scored]]:
    """The cases' shipments without and with the decoy, decided after ``history``."""
    targets = [s for c in cases for s in (c.plain, c.decoyed)]
    shipments, goods = canonical_tables([*history, *targets])
    with quiet(lanes_log):
        scored = fresh_scorer(scorer).score_tables(shipments, goods, inspections)[len(history) :]
    return scored[0::2], scored[1::2]
