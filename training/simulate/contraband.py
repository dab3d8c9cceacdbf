"""The goods lines illicit events declare: precursors by name or under a cover, and presses.

Each function draws from the generator it is given, in a fixed order, so an event's goods depend
only on the planner's seed. Lot sizes, covers and HS headings follow the reference notes (ref §4,
§6); ``docs/simulated-world.md`` gives the reasoning.
"""

from __future__ import annotations

import numpy as np

from features.records import GoodsLine
from training.simulate import reference, text
from training.simulate.catalogue import G_AIR, G_POSTAL, G_SEA, PRODUCTS
from training.simulate.sampling import pick

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


def lot_kg(rng: np.random.Generator, group: int) -> tuple[float, str]:
    """Lot sizes of ref §6: 25 kg drums, ~200 kg barrels, 1 kg bottles, 10 kg parcels, <1 kg."""
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
    rng: np.random.Generator, substance: str, group: int, cas_p: float, designer: bool = False
) -> GoodsLine:
    """``substance`` declared by name (a designer one sometimes as a pharmaceutical
    intermediate), with its CAS number with probability ``cas_p``."""
    sub = reference.SUBSTANCE_BY_ID[substance]
    kg, pack = lot_kg(rng, group)
    if designer and rng.random() < 0.4:
        desc = text.noisy(
            rng,
            f"pharmaceutical intermediate {sub.name_en}",
            f"intermedio farmacéutico {sub.name_es}",
        )
    else:
        desc = text.noisy(rng, sub.name_en, sub.name_es, sub.synonyms)
    if pack and rng.random() < 0.3:
        desc = f"{desc} {pack}"
    hs = pick(rng, {sub.national: 0.6, sub.hs + "00": 0.25, sub.hs: 0.15})
    cas = (sub.cas[int(rng.integers(0, len(sub.cas)))],) if sub.cas and rng.random() < cas_p else ()
    usd = kg * float(rng.lognormal(np.log(40.0), 0.6))
    return GoodsLine(hs, desc, cas, kg, "KGM", round(kg * 1.04, 2), round(usd, 2))


def covered_line(rng: np.random.Generator, substance: str, group: int) -> GoodsLine:
    """``substance`` declared as one of the ``COVERS``, now and then betrayed by its CAS number."""
    sub = reference.SUBSTANCE_BY_ID[substance]
    en, es, hs, cover_cas = COVERS[int(rng.integers(0, len(COVERS)))]
    kg, _ = lot_kg(rng, group)
    roll = rng.random()
    cas: tuple[str, ...] = ()
    if roll < 0.35 and cover_cas:
        cas = (cover_cas,)
    elif roll > 0.85 and sub.cas:
        cas = (sub.cas[0],)
    usd = kg * float(rng.lognormal(np.log(1.5), 0.4))
    return GoodsLine(
        hs, text.noisy(rng, en, es), cas, kg, "KGM", round(kg * 1.04, 2), round(usd, 2)
    )


def cover_goods(rng: np.random.Generator, group: int) -> GoodsLine:
    """An ordinary consumer-goods line shipped beside a covered precursor."""
    product = PRODUCTS[int(rng.integers(0, 7))]
    kg = float(product.kg * rng.lognormal(0, 0.4)) * (0.3 if group == G_SEA else 0.02)
    qty = max(1.0, round(kg / product.kg_per_unit)) if product.unit != "KGM" else round(kg, 2)
    return GoodsLine(
        product.hs,
        text.noisy(rng, product.en, product.es, packaged=product.unit == "KGM"),
        (),
        qty,
        product.unit,
        round(kg, 2),
        round(kg * product.usd_per_kg, 2),
    )


def press_line(rng: np.random.Generator, group: int) -> tuple[GoodsLine, bool]:
    """A press (whole machine) or its punches and dies; the flag says which."""
    dies = group in (G_AIR, G_POSTAL) or rng.random() < 0.25
    options = [c for c in MACHINE_COVERS if c[3] == dies]
    en, es, hs, _ = options[int(rng.integers(0, len(options)))]
    if dies:
        kg = float(np.round(rng.uniform(5, 60), 1))
        qty, unit = float(rng.integers(1, 20)), "SET"
    else:
        kg = float(np.round(rng.uniform(300, 2500), 0))
        qty, unit = float(rng.integers(1, 4)), "H87"
    usd = kg * float(rng.lognormal(np.log(12.0), 0.4))
    description = text.noisy(rng, en, es, packaged=False)
    return GoodsLine(hs, description, (), qty, unit, kg, round(usd, 2)), dies
