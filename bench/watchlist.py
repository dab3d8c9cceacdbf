"""Benchmark: bulk watchlist matching, against a naive fuzzy baseline in the same run.

Run ``python -m bench.watchlist [--lines N] [--baseline-sample N] [--seed N]``. The goods mix
imitates real manifests: mostly ordinary trade descriptions drawn with a heavy-tailed
(Zipf-like) frequency so that a few descriptions repeat thousands of times, a share of unique
noisy lines (order numbers, sizes, typos) that defeat any cache, and a small share of
precursor lines, some misspelled or in Spanish. The baseline is what a first attempt looks like:
per line, ``rapidfuzz.fuzz.partial_ratio`` against every watchlist name, run over a sample and
scaled to lines per second. Not a test: figures go to stdout.
"""

from __future__ import annotations

import argparse
import random
import time

import polars as pl
from rapidfuzz import fuzz

from features.tables import GOODS_SCHEMA
from features.watchlist import Watchlist, load_watchlist
from features.watchlist.text import normalize_text

ORDINARY = [
    ("610910", "cotton t-shirts assorted sizes"),
    ("852872", "LED TV 55 inch smart"),
    ("870830", "brake pads for passenger cars"),
    ("030617", "frozen shrimp 20 kg cartons"),
    ("690721", "ceramic floor tiles 60x60"),
    ("720839", "hot rolled steel coils"),
    ("851713", "mobile phones and accessories"),
    ("950300", "plastic toys assorted"),
    ("640399", "leather shoes men"),
    ("401110", "car tires 205/55R16"),
    ("847130", "laptop computers"),
    ("940542", "LED lamps and fixtures"),
    ("392321", "polyethylene bags"),
    ("731815", "steel bolts and nuts"),
    ("841510", "air conditioner split type"),
    ("940171", "office chairs"),
    ("630260", "cotton bath towels"),
    ("340111", "toilet soap"),
    ("210690", "food supplement powder"),
    ("854449", "copper electric cable"),
    ("282720", "calcium chloride 94% flakes"),
    ("283620", "soda ash dense"),
    ("281511", "caustic soda flakes"),
    ("310210", "urea fertilizer granular"),
    ("290511", "methanol in bulk"),
    ("390110", "LDPE granules film grade"),
    ("293339", "2-aminopyridine 99%"),
    ("293339", "niacinamide USP"),
    ("291521", "glacial acetic acid 99.8% in IBC"),
    ("292141", "aniline oil 99.9%"),
    ("291814", "citric acid anhydrous"),
    ("300490", "paracetamol 500 mg tablets"),
    ("847989", "industrial mixer stainless steel"),
    ("842230", "bottle filling machine"),
    ("520852", "cotton fabric dyed with aniline dyes"),
    ("290110", "hexane"),
    ("290230", "toluene 99.5%"),
    ("291412", "methyl ethyl ketone"),
    ("382499", "chemical preparations n.e.s."),
    ("294200", "pharmaceutical intermediate"),
]
WORDS = [
    "kg",
    "drum",
    "bag",
    "pallet",
    "carton",
    "lot",
    "po",
    "order",
    "ref",
    "net",
    "gross",
    "white",
    "powder",
    "liquid",
    "grade",
]
PRECURSORS = [
    ("293337", "N-phenethyl-4-piperidone 99%", []),
    ("282720", "calcium chloride", ["39742-60-4"]),
    ("", "fenetil piperidona 25 kg", []),
    ("293339", "4-anilinopiperidine dihydrochloride", ["99918-43-1"]),
    ("300490", "antacid tablets", ["79099-07-3"]),
    ("", "1-boc-4-piperidone 20 kg", []),
    ("291634", "phenylacetic acid 25 kg drums", []),
    ("", "pseudoefedrine hcl", []),
    ("847989", "TDP-5 tablet press", []),
    ("", "metilamina 40%", []),
]


def _typo(rng: random.Random, text: str) -> str:
    chars = list(text)
    i = rng.randrange(len(chars))
    chars[i] = rng.choice("aeioulnrst")
    return "".join(chars)


def build_goods(lines: int, seed: int) -> pl.DataFrame:
    """A goods table of ``lines`` rows: ~90% repeated ordinary, ~8% unique noisy, ~2% precursors."""
    rng = random.Random(seed)
    weights = [1.0 / (rank + 1) for rank in range(len(ORDINARY))]
    hs_codes: list[str] = []
    descriptions: list[str] = []
    cas_numbers: list[list[str]] = []
    for _ in range(lines):
        roll = rng.random()
        if roll < 0.02:
            hs, desc, cas = rng.choice(PRECURSORS)
        elif roll < 0.10:
            hs, base = rng.choice(ORDINARY)
            extra = " ".join(rng.choice(WORDS) for _ in range(3))
            desc = f"{_typo(rng, base)} {extra} {rng.randrange(10**6):06d}"
            cas = []
        else:
            hs, desc = rng.choices(ORDINARY, weights)[0]
            cas = []
        hs_codes.append(hs)
        descriptions.append(desc)
        cas_numbers.append(list(cas))
    return pl.DataFrame(
        {
            "shipment_id": [f"S{i // 4:08d}" for i in range(lines)],
            "line_no": [i % 4 for i in range(lines)],
            "hs_code": hs_codes,
            "description": descriptions,
            "cas_numbers": cas_numbers,
            "quantity": [1.0] * lines,
            "unit": ["kg"] * lines,
            "gross_weight_kg": [1.0] * lines,
            "declared_value_usd": [1.0] * lines,
        },
        schema=GOODS_SCHEMA,
    )


def naive_baseline(watchlist: Watchlist, descriptions: list[str]) -> tuple[float, int]:
    """Lines/second and hit count of partial_ratio against every name, one line at a time."""
    names = [
        normalize_text(n)
        for e in watchlist.spec.entries
        for n in (e.name, *e.synonyms, *e.abbreviations)
    ]
    start = time.perf_counter()
    hits = 0
    for desc in descriptions:
        text = normalize_text(desc)
        hits += sum(1 for name in names if fuzz.partial_ratio(name, text) >= 90)
    elapsed = time.perf_counter() - start
    return len(descriptions) / elapsed, hits


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lines", type=int, default=200_000)
    parser.add_argument("--baseline-sample", type=int, default=2_000)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()

    goods = build_goods(args.lines, args.seed)
    unique = goods.select("description").n_unique()
    print(f"goods lines: {goods.height:,} ({unique:,} distinct descriptions)")

    start = time.perf_counter()
    watchlist = load_watchlist()
    build = time.perf_counter() - start
    print(f"watchlist {watchlist.version}: loaded and compiled in {build * 1000:.0f} ms")

    start = time.perf_counter()
    result = watchlist.match_goods_full(goods)
    cold = time.perf_counter() - start
    start = time.perf_counter()
    watchlist.match_goods_full(goods)
    warm = time.perf_counter() - start
    strong = result.hits.filter(pl.col("strength") >= 0.5).height
    ours = goods.height / cold
    print(
        f"matcher  (cold caches): {ours:>12,.0f} lines/s  ({cold:.2f} s; {result.hits.height:,} "
        f"hits, {strong:,} at strength >= 0.5, {result.mismatches.height:,} mismatches)"
    )
    print(f"matcher  (warm caches): {goods.height / warm:>12,.0f} lines/s  ({warm:.2f} s)")

    sample = goods.get_column("description").head(args.baseline_sample).to_list()
    base_rate, base_hits = naive_baseline(watchlist, sample)
    print(
        f"baseline (partial_ratio x every name, {len(sample):,}-line sample): "
        f"{base_rate:>10,.0f} lines/s  ({base_hits:,} name hits at >= 90)"
    )
    print(f"speed-up over baseline (cold): {ours / base_rate:,.0f}x")


if __name__ == "__main__":
    main()
