"""The column-wise bulk decisions (Scorer.decide_table, what ``centinela score`` writes) are the
per-record decisions (Scorer.decide) of the same chunks, row for row: scores, lanes, random
picks, propensities, thresholds, rules fired, watchlist hits and reasons, on a world whose
chunks hold RED, YELLOW, explored, rule-hit and watchlist-hit rows, and a last chunk too small
for the rules' numpy sift."""

from __future__ import annotations

from pathlib import Path

import polars as pl

from features.live import shipments_from_frames
from features.tables import stream_tables
from features.watchlist import load_watchlist
from scoring.registry import Registry
from scoring.rules import load_rules
from scoring.scorer import Scorer
from scoring.verdicts import LOW_RISK_ONLY
from server.settings import load_settings
from training.score_cli import _frame, _rows


def scorer(registry: Path) -> Scorer:
    watchlist = load_watchlist()
    return Scorer.create(
        Registry(registry).load(), watchlist, load_rules(None, watchlist), load_settings(None)
    )


def test_decide_table_decides_what_decide_decides(
    world: Path, registry: Path, tmp_path: Path
) -> None:
    # 6,000 shipments in chunks of 1,990: the last one (30 rows) is evaluated row by row.
    stream = stream_tables(world, tmp_path / "work", chunk_rows=1990)
    per_record, column_wise = scorer(registry), scorer(registry)  # each its own lane windows
    records_frames, table_frames = [], []
    for chunk, computed in column_wise.stream_features(stream):
        decided = column_wise.decide_table(chunk.shipments, chunk.goods, computed)
        scored = per_record.decide(
            shipments_from_frames(chunk.shipments, chunk.goods), computed, threads=0
        )
        assert len(decided) == len(scored) == chunk.shipments.height
        for row, s in enumerate(scored):
            d = decided.decisions[row]
            assert (decided.shipment_id[row], decided.port_of_entry[row]) == (
                s.shipment_id,
                s.port_of_entry,
            )
            assert decided.risk_score[row] == s.risk_score
            assert (d.lane, d.random_selection, d.propensity) == (
                s.lane,
                s.random_selection,
                s.propensity,
            )
            assert (d.red_threshold, d.yellow_threshold) == s.thresholds
            assert decided.rules_fired.get(row, ()) == s.rules_fired
            assert decided.watchlist_hits.get(row, ()) == s.watchlist_hits
            assert decided.reasons.get(row, LOW_RISK_ONLY) == s.reasons
        records_frames.append(_rows(scored, per_record))
        table_frames.append(_frame(decided, column_wise))
    assert len(table_frames) == 4
    expected, got = pl.concat(records_frames), pl.concat(table_frames)
    assert got.equals(expected)
    # The shortcuts are exercised: rows of every kind that needs more than the shared values.
    assert set(got["lane"]) == {"RED", "YELLOW", "GREEN"}
    assert got["random_selection"].sum() > 0
    assert (got["rules_fired"] != "").sum() > 0
    assert (got["watchlist_entries"] != "").sum() > 0
