"""Precision and recall of the matcher over a labelled corpus of goods lines.

The corpus (tests/data/watchlist_corpus.csv) holds positives written the ways declarations
write them (misspelled, Spanish, salts, abbreviations, buried in long text, CAS-only, HS-only)
and hard negatives from ordinary trade. A line's prediction is the set of entries identified
with at least EVIDENCE_THRESHOLD strength; scoring is per (line, entry) pair.
"""

from __future__ import annotations

import csv
from pathlib import Path

from features.watchlist import load_watchlist

CORPUS = Path(__file__).parent / "data" / "watchlist_corpus.csv"
MIN_PRECISION = 0.97
MIN_RECALL = 0.95


def test_corpus_precision_and_recall() -> None:
    watchlist = load_watchlist()
    with CORPUS.open(encoding="utf-8", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) >= 300
    assert set(watchlist.entry_ids) >= {e for r in rows for e in r["expected"].split(";") if e}
    tp = fp = fn = 0
    errors = []
    for row in rows:
        expected = {e for e in row["expected"].split(";") if e}
        cas = [c for c in row["cas"].split(";") if c]
        got = set(watchlist.match_line(row["hs"], row["description"], cas).identified())
        tp += len(expected & got)
        fp += len(got - expected)
        fn += len(expected - got)
        if got != expected:
            errors.append(f"{row['description']!r}: expected {sorted(expected)}, got {sorted(got)}")
    precision = tp / (tp + fp) if tp + fp else 1.0
    recall = tp / (tp + fn) if tp + fn else 1.0
    negatives = sum(1 for r in rows if not r["expected"])
    print(
        f"\nwatchlist corpus: {len(rows)} lines ({len(rows) - negatives} positive, {negatives} "
        f"negative): precision {precision:.3f}, recall {recall:.3f} (tp={tp} fp={fp} fn={fn})"
    )
    for line in errors:
        print("  ", line)
    assert precision >= MIN_PRECISION, errors
    assert recall >= MIN_RECALL, errors
