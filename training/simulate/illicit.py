"""Illicit behaviour: the patterns, their rates over time, and the events placed on rows.

Each event takes over one skeleton row (a network takes several), keeping its time, flow group
and port, and replaces the parties, route and goods lines with the pattern's. Events are planned
for the whole window before any chunk is generated, so chunking never changes what is hidden.

Rates are events per million shipments. Small worlds get a floor of one event per pattern per
half-year, so a 5,000-shipment test world still contains every pattern in every period.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date

import numpy as np

from training.simulate import ids, reference, text
from training.simulate.catalogue import AIR_VIA, GROUPS, PRODUCTS, SEA_ROUTES
from training.simulate.entities import Roster, foreign_company_name, mx_company_name
from training.simulate.pools import COUNTRY_INDEX, ROUTE_INDEX
from training.simulate.skeleton import SLOTS, Skeleton
from training.simulate.types import IntArray

G_SEA, G_LAND_SOUTH, G_LAND_NORTH, G_AIR, G_POSTAL = range(len(GROUPS))


@dataclass(frozen=True, slots=True)
class Line:
    """One goods line as declared."""

    hs_code: str
    description: str
    cas_numbers: tuple[str, ...]
    quantity: float
    unit: str
    gross_weight_kg: float
    declared_value_usd: float


@dataclass
class Event:
    """An illicit shipment: the row it takes over, what it carries and how it is declared.

    Party fields are indices into the roster; ``None`` keeps the licit value of the row.
    ``goods`` of ``None`` keeps the row's licit goods (concealment inside ordinary freight).
    """

    row: int
    pattern: str
    substances: tuple[str, ...]
    detection: float
    origin: int | None = None
    export: int | None = None
    route: int | None = None
    consignee: int | None = None
    shipper: int | None = None
    broker: int | None = None
    truck_carrier: int | None = None
    goods: list[Line] | None = None


@dataclass(frozen=True, slots=True)
class Pattern:
    name: str
    per_million: float
    groups: dict[int, float]
    detection: float
    summary: str


PATTERNS: tuple[Pattern, ...] = (
    Pattern(
        "open_declared_precursor",
        350,
        {G_SEA: 0.55, G_AIR: 0.3, G_POSTAL: 0.15},
        0.95,
        "watched precursor declared by name, HS and CAS to an unlicensed or new consignee",
    ),
    Pattern(
        "misdeclared_precursor",
        600,
        {G_SEA: 0.7, G_AIR: 0.18, G_POSTAL: 0.12},
        0.7,
        "precursor declared as calcium chloride, resin, vitamin C or antacid under the cover's HS",
    ),
    Pattern(
        "designer_precursor",
        200,
        {G_SEA: 0.6, G_AIR: 0.3, G_POSTAL: 0.1},
        0.45,
        "unscheduled designer analogue or pre-precursor under HS 'other' headings",
    ),
    Pattern(
        "tablet_press",
        150,
        {G_SEA: 0.7, G_AIR: 0.2, G_LAND_SOUTH: 0.1},
        0.85,
        "tablet press or punches and dies declared as other machinery",
    ),
    Pattern(
        "split_network",
        120,
        {G_SEA: 0.6, G_AIR: 0.3, G_POSTAL: 0.1},
        0.8,
        "complementary precursors split across consignees of one network over weeks",
    ),
    Pattern(
        "northbound_concealment",
        900,
        {G_LAND_NORTH: 1.0},
        0.55,
        "finished fentanyl concealed in ordinary northbound land freight",
    ),
)
PATTERN_NAMES: tuple[str, ...] = tuple(p.name for p in PATTERNS)

SUBSTITUTION_MULTIPLIER = 3.0
"""assumption: designer precursors triple once 4-piperidone is scheduled (ref §1a, 3 Dec 2024)."""
OPEN_DECLARED_AFTER_SCHEDULING = 0.6
"""assumption: open declarations drop when the piperidones can no longer be declared openly."""
INDIA_SHARE_START, INDIA_SHARE_END = 0.1, 0.4
"""assumption: India's share of illicit precursor origins rises linearly (ref §6: 'followed by
India', 'an emerging one')."""
LZC_SHARE_BEFORE, LZC_SHARE_AFTER = 0.4, 0.7
"""assumption: share of illicit sea events entering at Lázaro Cárdenas before and after
Manzanillo's enforcement rises (displacement)."""
CONCEALMENT_PORTS: dict[str, float] = {
    "MXTIJ": 0.3,
    "MXNOG": 0.3,
    "MXMXL": 0.1,
    "MXCJS": 0.1,
    "MXNLD": 0.1,
    "MXREX": 0.04,
    "MXPIE": 0.03,
    "MX5CL": 0.03,
}
"""assumption (unsourced): fentanyl crossings concentrate at the Arizona and California ports."""


def period_of(day: date) -> str:
    """Half-year label (``2024H2``): the unit the floor and the report use."""
    return f"{day.year}H{1 if day.month <= 6 else 2}"


@dataclass(frozen=True)
class TimeRules:
    """Everything in the window that depends on calendar time."""

    month_starts: list[date]
    enforcement_month: int

    @property
    def months(self) -> int:
        return len(self.month_starts) - 1

    def scheduled(self, month: int) -> bool:
        return self.month_starts[month] >= reference.SCHEDULING_4_PIPERIDONE

    def multiplier(self, pattern: str, month: int) -> float:
        if pattern == "designer_precursor" and self.scheduled(month):
            return SUBSTITUTION_MULTIPLIER
        if pattern == "open_declared_precursor" and self.scheduled(month):
            return OPEN_DECLARED_AFTER_SCHEDULING
        return 1.0

    def india_share(self, month: int) -> float:
        t = month / max(1, self.months - 1)
        return INDIA_SHARE_START + (INDIA_SHARE_END - INDIA_SHARE_START) * t

    def lzc_share(self, month: int) -> float:
        return LZC_SHARE_AFTER if month >= self.enforcement_month + 2 else LZC_SHARE_BEFORE


def enforcement_month(months: int) -> int:
    """assumption: Manzanillo's inspections intensify halfway through the window."""
    return months // 2


OPEN_SUBSTANCES_BEFORE: dict[str, float] = {
    "4-piperidone": 0.3,
    "boc-4-piperidone": 0.25,
    "piperidine": 0.1,
    "propionyl-chloride": 0.1,
    "phenethyl-bromide": 0.1,
    "methylamine": 0.1,
    "aniline": 0.05,
}
OPEN_SUBSTANCES_AFTER: dict[str, float] = {
    "piperidine": 0.2,
    "propionyl-chloride": 0.25,
    "phenethyl-bromide": 0.25,
    "methylamine": 0.15,
    "aniline": 0.15,
}
MISDECLARED_SUBSTANCES: dict[str, float] = {
    "npp": 0.14,
    "4-ap": 0.14,
    "boc-4-ap": 0.08,
    "anpp": 0.06,
    "norfentanyl": 0.04,
    "4-piperidone": 0.07,
    "boc-4-piperidone": 0.07,
    "p2p": 0.1,
    "paa": 0.12,
    "apaan": 0.08,
    "methylamine": 0.1,
}
DESIGNER_BEFORE: dict[str, float] = {
    "1-benzyl-4-piperidone": 0.35,
    "benzylfentanyl": 0.1,
    "depapd": 0.3,
    "bmk-glycidic-acid": 0.25,
}
DESIGNER_AFTER: dict[str, float] = {
    "1-benzyl-4-piperidone": 0.55,
    "benzylfentanyl": 0.15,
    "depapd": 0.3,
}
NETWORK_RECIPES: tuple[tuple[tuple[str, ...], ...], ...] = (
    (("npp",), ("aniline",), ("propionyl-chloride",)),
    (("4-ap",), ("phenethyl-bromide",), ("propionic-anhydride",)),
    (("4-piperidone",), ("phenethyl-bromide", "aniline"), ("propionyl-chloride",)),
    (("npp",), ("aniline", "propionic-anhydride")),
)
"""Complementary sets for the Siegfried, 4-AP and Gupta routes (ref §1–§2: NPP/4-AP/4-piperidone
with aniline, phenethyl bromide and propionyl chloride or anhydride)."""

COVERS: tuple[tuple[str, str, str, str], ...] = (
    ("calcium chloride", "cloruro de calcio", "28272001", "10043-52-4"),
    ("fuel resin", "resina combustible", "38249999", ""),
    ("epoxy resin", "resina epóxica", "39073099", ""),
    ("vitamin C", "vitamina C", "29362701", "50-81-7"),
    ("antacid", "antiácido", "30049099", ""),
)
"""Benign covers documented in ref §6 misdeclaration (calcium chloride 2019 LZC; 'resina
combustible' and the Vitamin C / antacid labels of the 2024 DOJ case)."""

MACHINE_COVERS: tuple[tuple[str, str, str, bool], ...] = (
    ("industrial mixer", "mezcladora industrial", "84743999", False),
    ("food processing machine", "máquina para procesar alimentos", "84388099", False),
    ("packing machine", "máquina empacadora", "84224099", False),
    ("capsule filling machine", "máquina llenadora de cápsulas", "84223001", False),
    ("steel moulds", "moldes de acero", "84807199", True),
    ("machine parts", "partes de maquinaria", "84799099", True),
)
"""Machinery covers for presses (ref §4: presses belong in 8479.89, dies probably 8207.30)."""


def _pick(rng: np.random.Generator, weights: dict[str, float]) -> str:
    keys = list(weights)
    p = np.array([weights[k] for k in keys])
    return keys[int(rng.choice(len(keys), p=p / p.sum()))]


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
            return _pick(self.rng, CONCEALMENT_PORTS)
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
            if month - m <= 2 and self.roster.consignees.countries[idx] == country
        ]
        if recent and self.rng.random() < 0.35:
            return recent[int(self.rng.integers(0, len(recent)))]
        start = self.rules.month_starts[month]
        if country == "MX":
            name = mx_company_name(self.rng, None)
            founded = ids_founded(self.rng, start)
            tax = ids.rfc(self.rng, name, founded)
        else:
            name = foreign_company_name(self.rng, country)
            tax = ids.foreign_tax_id(self.rng, country)
        index = self.roster.consignees.add(name, country, tax)
        self.roster.consignee_entry_month.append(month)
        self.shells.append((index, month))
        return index

    def existing(self, group: str) -> int:
        members = self.roster.consignee_groups[group].members
        return int(members[int(self.rng.integers(0, len(members)))])

    def broker(self, row: int) -> int:
        if self.rng.random() < 0.5:
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
            return self.shell(month, _pick(self.rng, {"GT": 0.7, "NI": 0.3}))
        if self.rng.random() < shell_p:
            return self.shell(month)
        return self.existing(groups[int(self.rng.integers(0, len(groups)))])

    # --- goods -----------------------------------------------------------------------------

    def lot_kg(self, group: int) -> tuple[float, str]:
        """Lot sizes of ref §6: 25 kg drums, ~200 kg barrels, 1 kg bottles, 10 kg parcels, <1 kg."""
        rng = self.rng
        if group == G_SEA:
            if rng.random() < 0.6:
                return 25.0 * int(rng.integers(20, 721)), "en tambores de 25 kg"
            return 200.0 * int(rng.integers(5, 41)), "en tambores de 200 kg"
        if group == G_AIR:
            if rng.random() < 0.5:
                return float(rng.integers(5, 80)), "frascos de 1 kg"
            return 25.0 * int(rng.integers(1, 9)), "in 25 kg drums"
        if group == G_POSTAL:
            return float(np.round(rng.uniform(0.2, 20.0), 2)), ""
        return 25.0 * int(rng.integers(4, 80)), "en tambores de 25 kg"

    def chemical_line(
        self, substance: str, group: int, cas_p: float, designer: bool = False
    ) -> Line:
        sub = reference.SUBSTANCE_BY_ID[substance]
        kg, pack = self.lot_kg(group)
        if designer and self.rng.random() < 0.4:
            desc = text.noisy(
                self.rng,
                f"pharmaceutical intermediate {sub.name_en}",
                f"intermedio farmacéutico {sub.name_es}",
            )
        else:
            desc = text.noisy(self.rng, sub.name_en, sub.name_es, sub.synonyms)
        if pack and self.rng.random() < 0.3:
            desc = f"{desc} {pack}"
        hs = _pick(self.rng, {sub.national: 0.6, sub.hs + "00": 0.25, sub.hs: 0.15})
        cas = (
            (sub.cas[int(self.rng.integers(0, len(sub.cas)))],)
            if sub.cas and self.rng.random() < cas_p
            else ()
        )
        usd = kg * float(self.rng.lognormal(np.log(40.0), 0.6))
        return Line(hs, desc, cas, kg, "KGM", round(kg * 1.04, 2), round(usd, 2))

    def covered_line(self, substance: str, group: int) -> Line:
        sub = reference.SUBSTANCE_BY_ID[substance]
        en, es, hs, cover_cas = COVERS[int(self.rng.integers(0, len(COVERS)))]
        kg, _ = self.lot_kg(group)
        roll = self.rng.random()
        cas: tuple[str, ...] = ()
        if roll < 0.35 and cover_cas:
            cas = (cover_cas,)
        elif roll > 0.85 and sub.cas:
            cas = (sub.cas[0],)
        usd = kg * float(self.rng.lognormal(np.log(1.5), 0.4))
        return Line(
            hs, text.noisy(self.rng, en, es), cas, kg, "KGM", round(kg * 1.04, 2), round(usd, 2)
        )

    def cover_goods(self, group: int) -> Line:
        product = PRODUCTS[int(self.rng.integers(0, 7))]
        kg = float(product.kg * self.rng.lognormal(0, 0.4)) * (0.3 if group == G_SEA else 0.02)
        qty = max(1.0, round(kg / product.kg_per_unit)) if product.unit != "KGM" else round(kg, 2)
        return Line(
            product.hs,
            text.noisy(self.rng, product.en, product.es, packaged=product.unit == "KGM"),
            (),
            qty,
            product.unit,
            round(kg, 2),
            round(kg * product.usd_per_kg, 2),
        )

    def press_line(self, group: int) -> tuple[Line, bool]:
        """A press (whole machine) or its punches and dies; the flag says which."""
        dies = group in (G_AIR, G_POSTAL) or self.rng.random() < 0.25
        options = [c for c in MACHINE_COVERS if c[3] == dies]
        en, es, hs, _ = options[int(self.rng.integers(0, len(options)))]
        if dies:
            kg = float(np.round(self.rng.uniform(5, 60), 1))
            qty, unit = float(self.rng.integers(1, 20)), "SET"
        else:
            kg = float(np.round(self.rng.uniform(300, 2500), 0))
            qty, unit = float(self.rng.integers(1, 4)), "H87"
        usd = kg * float(self.rng.lognormal(np.log(12.0), 0.4))
        description = text.noisy(self.rng, en, es, packaged=False)
        return Line(hs, description, (), qty, unit, kg, round(usd, 2)), dies

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
        substance = _pick(self.rng, substances)
        event = self.base(pattern, row, month, self.origin_for(month))
        event.consignee = self.consignee_for(
            row, month, 0.6, ("sector:consumer", "sector:food", "sector:auto")
        )
        event.substances = (substance,)
        event.goods = [self.chemical_line(substance, int(self.skeleton.group[row]), 0.8)]
        return [event]

    def misdeclared(self, pattern: Pattern, month: int) -> list[Event]:
        row = self._row(pattern, month)
        if row is None:
            return []
        substance = _pick(self.rng, MISDECLARED_SUBSTANCES)
        group = int(self.skeleton.group[row])
        origin = "ES" if group == G_AIR and self.rng.random() < 0.05 else self.origin_for(month)
        event = self.base(pattern, row, month, origin)
        event.consignee = self.consignee_for(
            row, month, 0.5, ("sector:chemicals", "sector:pharma", "sector:plastics", "forwarder")
        )
        event.substances = (substance,)
        event.goods = [self.covered_line(substance, group)]
        if self.rng.random() < 0.3:
            event.goods.insert(int(self.rng.integers(0, 2)), self.cover_goods(group))
        return [event]

    def designer(self, pattern: Pattern, month: int) -> list[Event]:
        row = self._row(pattern, month)
        if row is None:
            return []
        substance = _pick(
            self.rng, DESIGNER_AFTER if self.rules.scheduled(month) else DESIGNER_BEFORE
        )
        event = self.base(pattern, row, month, self.origin_for(month))
        event.consignee = self.consignee_for(
            row, month, 0.4, ("sector:chemicals", "sector:pharma", "forwarder")
        )
        event.substances = (substance,)
        event.goods = [
            self.chemical_line(substance, int(self.skeleton.group[row]), 0.6, designer=True)
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
        line, dies = self.press_line(group)
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
                    lines.append(self.covered_line(substance, group))
                else:
                    lines.append(self.chemical_line(substance, group, 0.7, designer=key))
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
            name = mx_company_name(self.rng, None)
            tax = ids.rfc(self.rng, name, ids_founded(self.rng, self.rules.month_starts[month]))
            event.shipper = self.roster.shippers.add(name, "MX", tax)
        if self.rng.random() < 0.5:
            n = len(self.roster.truck_carriers)
            event.truck_carrier = int(self.rng.integers(n // 2, n))
        return [event]

    def _row(self, pattern: Pattern, month: int) -> int | None:
        groups = list(pattern.groups)
        p = np.array([pattern.groups[g] for g in groups])
        group = groups[int(self.rng.choice(len(groups), p=p / p.sum()))]
        return self.take_row(month, group, self.port_for(group, month))


def ids_founded(rng: np.random.Generator, start: date) -> tuple[int, int, int]:
    """Founding date of a shell: zero to four months before it is first used."""
    total = start.year * 12 + start.month - 1 - int(rng.integers(0, 5))
    return total // 12, total % 12 + 1, int(rng.integers(1, 29))


def plan_events(
    rng: np.random.Generator, skeleton: Skeleton, roster: Roster, rules: TimeRules
) -> list[Event]:
    """Every illicit event of the window, at least one per pattern per half-year."""
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
                    pattern.per_million * 1e-6 * counts[m] * rules.multiplier(pattern.name, m)
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
