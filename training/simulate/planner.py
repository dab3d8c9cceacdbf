"""The illicit planner: places every illicit event on skeleton rows and creates its parties.

:func:`plan_events` draws how many events each pattern of :mod:`training.simulate.illicit` has
in each month (its rate, times the tactic shifts of :class:`TimeRules`, with a floor of one per
half-year) and lets the :class:`Planner` make them: a free row of the right flow group and port,
rogue shippers, shell consignees, complicit brokers, and goods lines from
:mod:`training.simulate.contraband`. Everything is planned for the whole window before any chunk
is generated, so chunking never changes what is hidden.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from training.simulate import ids
from training.simulate.catalogue import (
    AIR_VIA,
    G_AIR,
    G_LAND_NORTH,
    G_LAND_SOUTH,
    G_POSTAL,
    G_SEA,
    SEA_ROUTES,
)
from training.simulate.contraband import chemical_line, cover_goods, covered_line, press_line
from training.simulate.entities import Roster
from training.simulate.illicit import (
    CONCEALMENT_PORTS,
    DESIGNER_AFTER,
    DESIGNER_BEFORE,
    MISDECLARED_SUBSTANCES,
    NETWORK_RECIPES,
    OPEN_SUBSTANCES_AFTER,
    OPEN_SUBSTANCES_BEFORE,
    PATTERNS,
    Event,
    Pattern,
    TimeRules,
    period_of,
)
from training.simulate.names import foreign_company_name, founded_before, mx_company_name
from training.simulate.pools import COUNTRY_INDEX, ROUTE_INDEX
from training.simulate.sampling import pick
from training.simulate.skeleton import SLOTS, Skeleton
from training.simulate.types import IntArray

SHELL_FOUNDED_MONTHS = 4
"""assumption: a shell company is founded zero to four months before its first shipment."""
COMPLICIT_BROKER_SHARE = 0.5
"""assumption: share of illicit events cleared by one of the complicit brokers."""


def _pick_route(
    rng: np.random.Generator, options: tuple[tuple[tuple[str, ...], float], ...]
) -> int:
    p = np.array([w for _, w in options])
    return ROUTE_INDEX[options[int(rng.choice(len(options), p=p / p.sum()))][0]]


@dataclass
class Planner:
    """Places events on skeleton rows and creates the parties they need."""

    rng: np.random.Generator
    skeleton: Skeleton
    roster: Roster
    rules: TimeRules
    used: set[int] = field(default_factory=set)
    shells: list[tuple[int, int]] = field(default_factory=list)
    rogue: dict[str, list[int]] = field(default_factory=dict)
    order: IntArray = field(init=False)
    keys: IntArray = field(init=False)

    def __post_init__(self) -> None:
        sk = self.skeleton
        self.keys = (sk.month * len(SLOTS) + sk.slot) * 2 + sk.transit.astype(np.int64)
        self.order = np.argsort(self.keys, kind="stable")
        self.keys = self.keys[self.order]

    # --- rows ------------------------------------------------------------------------------

    def _rows_for(self, month: int, slots: list[int]) -> IntArray:
        parts = []
        for slot in slots:
            lo_key = (month * len(SLOTS) + slot) * 2
            lo = int(np.searchsorted(self.keys, lo_key, side="left"))
            hi = int(np.searchsorted(self.keys, lo_key + 2, side="left"))
            parts.append(self.order[lo:hi])
        return np.concatenate(parts) if parts else np.zeros(0, dtype=np.int64)

    def take_row(self, month: int, group: int, port: str | None) -> int | None:
        """A free row of ``month`` in ``group`` at ``port``; any port, then any row, if none."""
        candidates = [
            i for i, s in enumerate(SLOTS) if s.group == group and (port is None or s.port == port)
        ]
        for slots in (candidates, [i for i, s in enumerate(SLOTS) if s.group == group]):
            rows = self._rows_for(month, slots)
            for _ in range(8):
                if len(rows) == 0:
                    break
                row = int(rows[int(self.rng.integers(0, len(rows)))])
                if row not in self.used:
                    self.used.add(row)
                    return row
        return None

    def port_for(self, group: int, month: int) -> str | None:
        if group == G_SEA:
            return "MXLZC" if self.rng.random() < self.rules.lzc_share(month) else "MXZLO"
        if group == G_LAND_NORTH:
            return pick(self.rng, CONCEALMENT_PORTS)
        return None

    # --- parties ---------------------------------------------------------------------------

    def origin_for(self, month: int, press: bool = False) -> str:
        india = 0.1 if press else self.rules.india_share(month)
        return "IN" if self.rng.random() < india else "CN"

    def rogue_shipper(self, country: str) -> int:
        pool = self.rogue.setdefault(country, [])
        if not pool or self.rng.random() < 0.25:
            name = foreign_company_name(self.rng, country).replace(" Trading", " Biotech")
            pool.append(
                self.roster.shippers.add(name, country, ids.foreign_tax_id(self.rng, country))
            )
        if self.rng.random() < 0.3:
            group = self.roster.shipper_groups.get(f"country:{country}")
            if group is not None:
                return int(group.members[int(self.rng.integers(0, len(group.members)))])
        return pool[int(self.rng.integers(0, len(pool)))]

    def shell(self, month: int, country: str = "MX") -> int:
        """A short-lived consignee: reused for a few weeks, then a new one appears."""
        recent = [
            idx
            for idx, m in self.shells
            if 0 <= month - m <= 2 and self.roster.consignees.countries[idx] == country
        ]
        if recent and self.rng.random() < 0.35:
            return recent[int(self.rng.integers(0, len(recent)))]
        if country == "MX":
            name, tax = self.new_mx_company(month)
        else:
            name = foreign_company_name(self.rng, country)
            tax = ids.foreign_tax_id(self.rng, country)
        index = self.roster.consignees.add(name, country, tax, entry_month=month)
        self.shells.append((index, month))
        return index

    def new_mx_company(self, month: int) -> tuple[str, str]:
        """Name and RFC of a Mexican company founded shortly before ``month``."""
        name = mx_company_name(self.rng, None)
        start = self.rules.month_starts[month]
        founded = founded_before(self.rng, start.year, start.month, SHELL_FOUNDED_MONTHS)
        return name, ids.rfc(self.rng, name, founded)

    def existing(self, group: str) -> int:
        members = self.roster.consignee_groups[group].members
        return int(members[int(self.rng.integers(0, len(members)))])

    def broker(self, row: int) -> int:
        if self.rng.random() < COMPLICIT_BROKER_SHARE:
            pool = self.roster.complicit_brokers
        else:
            pool = self.roster.port_brokers[SLOTS[int(self.skeleton.slot[row])].port]
        return int(pool[int(self.rng.integers(0, len(pool)))])

    def route_for(self, group: int, origin: str) -> int:
        if group == G_SEA:
            return _pick_route(self.rng, SEA_ROUTES[origin])
        if group in (G_AIR, G_POSTAL) and origin in AIR_VIA and group == G_AIR:
            return _pick_route(self.rng, AIR_VIA[origin])
        return ROUTE_INDEX[()]

    def consignee_for(self, row: int, month: int, shell_p: float, groups: tuple[str, ...]) -> int:
        if self.skeleton.transit[row]:
            return self.shell(month, pick(self.rng, {"GT": 0.7, "NI": 0.3}))
        if self.rng.random() < shell_p:
            return self.shell(month)
        return self.existing(groups[int(self.rng.integers(0, len(groups)))])

    # --- patterns --------------------------------------------------------------------------

    def base(self, pattern: Pattern, row: int, month: int, origin: str) -> Event:
        group = int(self.skeleton.group[row])
        export = origin
        if group in (G_AIR, G_POSTAL) and origin == "CN" and self.rng.random() < 0.3:
            export = "HK"
        return Event(
            row=row,
            pattern=pattern.name,
            substances=(),
            detection=pattern.detection,
            origin=COUNTRY_INDEX[origin],
            export=COUNTRY_INDEX[export],
            route=self.route_for(group, export),
            shipper=self.rogue_shipper(export),
            broker=self.broker(row),
        )

    def open_declared(self, pattern: Pattern, month: int) -> list[Event]:
        row = self._row(pattern, month)
        if row is None:
            return []
        substances = (
            OPEN_SUBSTANCES_AFTER if self.rules.scheduled(month) else OPEN_SUBSTANCES_BEFORE
        )
        substance = pick(self.rng, substances)
        event = self.base(pattern, row, month, self.origin_for(month))
        event.consignee = self.consignee_for(
            row, month, 0.6, ("sector:consumer", "sector:food", "sector:auto")
        )
        event.substances = (substance,)
        event.goods = [chemical_line(self.rng, substance, int(self.skeleton.group[row]), 0.8)]
        return [event]

    def misdeclared(self, pattern: Pattern, month: int) -> list[Event]:
        row = self._row(pattern, month)
        if row is None:
            return []
        substance = pick(self.rng, MISDECLARED_SUBSTANCES)
        group = int(self.skeleton.group[row])
        origin = "ES" if group == G_AIR and self.rng.random() < 0.05 else self.origin_for(month)
        event = self.base(pattern, row, month, origin)
        event.consignee = self.consignee_for(
            row, month, 0.5, ("sector:chemicals", "sector:pharma", "sector:plastics", "forwarder")
        )
        event.substances = (substance,)
        event.goods = [covered_line(self.rng, substance, group)]
        if self.rng.random() < 0.3:
            event.goods.insert(int(self.rng.integers(0, 2)), cover_goods(self.rng, group))
        return [event]

    def designer(self, pattern: Pattern, month: int) -> list[Event]:
        row = self._row(pattern, month)
        if row is None:
            return []
        substance = pick(
            self.rng, DESIGNER_AFTER if self.rules.scheduled(month) else DESIGNER_BEFORE
        )
        event = self.base(pattern, row, month, self.origin_for(month))
        event.consignee = self.consignee_for(
            row, month, 0.4, ("sector:chemicals", "sector:pharma", "forwarder")
        )
        event.substances = (substance,)
        event.goods = [
            chemical_line(self.rng, substance, int(self.skeleton.group[row]), 0.6, designer=True)
        ]
        return [event]

    def press(self, pattern: Pattern, month: int) -> list[Event]:
        row = self._row(pattern, month)
        if row is None:
            return []
        group = int(self.skeleton.group[row])
        origin = self.origin_for(month, press=True)
        event = self.base(pattern, row, month, origin)
        if group == G_LAND_SOUTH:
            event.origin = COUNTRY_INDEX[origin]
            event.export = COUNTRY_INDEX["US"]
            event.route = ROUTE_INDEX[("CNSHA", "USLGB")]
        event.consignee = self.consignee_for(row, month, 0.5, ("sector:machinery", "sector:pharma"))
        line, dies = press_line(self.rng, group)
        event.substances = ("tablet-tooling",) if dies else ("tablet-press",)
        event.goods = [line]
        return [event]

    def network(self, pattern: Pattern, month: int) -> list[Event]:
        recipe = NETWORK_RECIPES[int(self.rng.integers(0, len(NETWORK_RECIPES)))]
        if self.rules.scheduled(month):
            recipe = tuple(
                tuple("1-benzyl-4-piperidone" if s == "4-piperidone" else s for s in leg)
                for leg in recipe
            )
        origin = self.origin_for(month)
        consignees = [
            self.shell(month) for _ in range(min(len(recipe), int(self.rng.integers(2, 4))))
        ]
        broker: int | None = None
        events: list[Event] = []
        for leg_index, leg in enumerate(recipe):
            leg_month = min(
                self.rules.months - 1, month + int(leg_index * self.rng.uniform(0.2, 0.8))
            )
            row = self._row(pattern, leg_month)
            if row is None:
                continue
            group = int(self.skeleton.group[row])
            event = self.base(pattern, row, leg_month, origin)
            broker = event.broker if broker is None else broker
            event.broker = broker
            event.consignee = consignees[leg_index % len(consignees)]
            event.substances = leg
            lines = []
            for substance in leg:
                key = substance in {"npp", "4-ap", "4-piperidone", "1-benzyl-4-piperidone"}
                if key and self.rng.random() < 0.6:
                    lines.append(covered_line(self.rng, substance, group))
                else:
                    lines.append(chemical_line(self.rng, substance, group, 0.7, designer=key))
            event.goods = lines
            events.append(event)
        return events

    def concealment(self, pattern: Pattern, month: int) -> list[Event]:
        row = self._row(pattern, month)
        if row is None:
            return []
        event = Event(
            row=row, pattern=pattern.name, substances=("fentanyl",), detection=pattern.detection
        )
        event.origin = COUNTRY_INDEX["MX"]
        event.export = COUNTRY_INDEX["MX"]
        event.route = ROUTE_INDEX[()]
        if self.rng.random() < 0.5:
            event.consignee = self.shell(month, "US")
        if self.rng.random() < 0.4:
            name, tax = self.new_mx_company(month)
            event.shipper = self.roster.shippers.add(name, "MX", tax, entry_month=month)
        if self.rng.random() < 0.5:
            n = len(self.roster.truck_carriers)
            event.truck_carrier = int(self.rng.integers(n // 2, n))
        if self.rng.random() < COMPLICIT_BROKER_SHARE:
            event.broker = self.border_broker(row)
        return [event]

    def border_broker(self, row: int) -> int | None:
        """A complicit broker licensed at the row's crossing; ``None`` (the row's own licit
        broker) where no complicit broker works there."""
        port = SLOTS[int(self.skeleton.slot[row])].port
        pool = np.intersect1d(self.roster.complicit_brokers, self.roster.port_brokers[port])
        return int(pool[int(self.rng.integers(0, len(pool)))]) if len(pool) else None

    def _row(self, pattern: Pattern, month: int) -> int | None:
        groups = list(pattern.groups)
        p = np.array([pattern.groups[g] for g in groups])
        group = groups[int(self.rng.choice(len(groups), p=p / p.sum()))]
        return self.take_row(month, group, self.port_for(group, month))


def plan_events(
    rng: np.random.Generator,
    skeleton: Skeleton,
    roster: Roster,
    rules: TimeRules,
    illicit_scale: float = 1.0,
) -> list[Event]:
    """Every illicit event of the window, at least one per pattern per half-year;
    ``illicit_scale`` multiplies every pattern's rate (1: the sourced rates)."""
    planner = Planner(rng, skeleton, roster, rules)
    makers: dict[str, Callable[[Pattern, int], list[Event]]] = {
        "open_declared_precursor": planner.open_declared,
        "misdeclared_precursor": planner.misdeclared,
        "designer_precursor": planner.designer,
        "tablet_press": planner.press,
        "split_network": planner.network,
        "northbound_concealment": planner.concealment,
    }
    counts = skeleton.month_counts
    periods: dict[str, list[int]] = {}
    for month in range(rules.months):
        periods.setdefault(period_of(rules.month_starts[month]), []).append(month)
    events: list[Event] = []
    for pattern in PATTERNS:
        for period in sorted(periods):
            months = periods[period]
            expected = np.array(
                [
                    pattern.per_million
                    * 1e-6
                    * illicit_scale
                    * counts[m]
                    * rules.multiplier(pattern.name, m)
                    for m in months
                ]
            )
            n = max(1, int(rng.poisson(expected.sum())))
            per_month = rng.multinomial(n, expected / expected.sum())
            for m, k in zip(months, per_month, strict=True):
                for _ in range(int(k)):
                    events.extend(makers[pattern.name](pattern, m))
    events.sort(key=lambda e: e.row)
    return events
