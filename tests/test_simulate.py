"""The simulated world: determinism, schemas, label bias, calibration, CLI and report."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from datetime import UTC, date, datetime
from pathlib import Path
from types import SimpleNamespace
from typing import cast

import numpy as np
import polars as pl
import pytest

from features.errors import InvalidInput
from features.tables import TABLES, check_schema, scan_table
from training.simulate import PATTERN_NAMES, WATCHLIST_IDS, simulate_world
from training.simulate.catalogue import G_LAND_NORTH, G_LAND_SOUTH
from training.simulate.chunk import new_trader
from training.simulate.entities import BEFORE_WINDOW
from training.simulate.ids import ISO6346_VALUES
from training.simulate.illicit import TimeRules
from training.simulate.inspection import (
    CAPACITY_RATE,
    RANDOM_SHARE,
    RULE_NEW_TRADER,
    selection_probability,
)
from training.simulate.licit import ChunkRows
from training.simulate.reference import SCHEDULING_4_PIPERIDONE, SOURCED_MODES
from training.simulate.report import calibration_report, illicit_table, port_share_table
from training.simulate.skeleton import add_months
from training.simulate.static import Static

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def small_world(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("small")
    simulate_world(out, shipments=4_000, months=24, seed=11, progress=False)
    return out


@pytest.fixture(scope="module")
def medium_world(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("medium")
    simulate_world(out, shipments=30_000, months=24, seed=3, progress=False)
    return out


def read(data_dir: Path, table: str) -> pl.DataFrame:
    return scan_table(data_dir, table).collect()


def iso6346_check_digit(code: str) -> int:
    """Check digit of a 10-character ISO 6346 prefix, one character at a time: the oracle for
    the simulator's vectorised container ids."""
    total = 0
    for position, char in enumerate(code[:10]):
        value = ISO6346_VALUES[char] if char.isalpha() else int(char)
        total += value * (1 << position)
    return total % 11 % 10


def test_same_seed_gives_identical_bytes(tmp_path: Path) -> None:
    first = simulate_world(tmp_path / "a", shipments=2_000, seed=5, progress=False)
    second = simulate_world(tmp_path / "b", shipments=2_000, seed=5, progress=False)
    for table in TABLES:
        assert first.paths[table].read_bytes() == second.paths[table].read_bytes(), table
    assert first.manifest.read_bytes() == second.manifest.read_bytes()


def test_different_seed_gives_different_files(tmp_path: Path) -> None:
    first = simulate_world(tmp_path / "a", shipments=2_000, seed=5, progress=False)
    second = simulate_world(tmp_path / "b", shipments=2_000, seed=6, progress=False)
    for table in ("shipments", "goods", "truth"):
        assert first.paths[table].read_bytes() != second.paths[table].read_bytes(), table


def test_tables_have_the_canonical_schemas(small_world: Path) -> None:
    for table, schema in TABLES.items():
        frame = pl.read_parquet(small_world / f"{table}.parquet")
        check_schema(frame, table)
        assert frame.columns == list(schema)


def test_manifest_records_parameters_and_counts(small_world: Path) -> None:
    manifest = json.loads((small_world / "manifest.json").read_text())
    assert manifest["parameters"] == manifest["parameters"] | {
        "shipments": 4_000,
        "months": 24,
        "start": "2024-01-01",
        "seed": 11,
    }
    assert manifest["simulator_version"]
    for table in TABLES:
        assert manifest["rows"][table] == read(small_world, table).height


def test_truth_has_one_row_per_shipment(small_world: Path) -> None:
    shipments, truth = read(small_world, "shipments"), read(small_world, "truth")
    assert truth["shipment_id"].to_list() == shipments["shipment_id"].to_list()
    assert truth["shipment_id"].n_unique() == truth.height == 4_000
    assert truth.filter(pl.col("illicit") != pl.col("pattern").is_not_null()).is_empty()
    illicit = truth.filter("illicit")
    assert illicit.filter(pl.col("substances").list.len() == 0).is_empty()
    used = set(truth["substances"].explode().drop_nulls().to_list())
    assert used <= set(WATCHLIST_IDS)


def test_outcomes_only_for_inspected_shipments(small_world: Path) -> None:
    shipments, inspections = read(small_world, "shipments"), read(small_world, "inspections")
    truth = read(small_world, "truth")
    assert 0 < inspections.height < shipments.height * 0.2
    assert inspections["shipment_id"].n_unique() == inspections.height
    joined = inspections.join(shipments, on="shipment_id", how="left").join(
        truth, on="shipment_id", how="left"
    )
    assert joined["declared_at"].null_count() == 0
    assert (joined["inspected_at"] > joined["declared_at"]).all()
    assert (joined["reported_at"] > joined["inspected_at"]).all()
    assert ((joined["selection_probability"] > 0) & (joined["selection_probability"] <= 1)).all()
    assert joined.filter(pl.col("positive") & ~pl.col("illicit")).is_empty()
    assert joined["random_selection"].any()
    assert not joined["random_selection"].all()
    positives = joined.filter("positive")
    assert positives.filter(pl.col("substances").list.len() == 0).is_empty()
    assert set(shipments.columns).isdisjoint({"illicit", "pattern"})


def test_inspections_miss_some_contraband(medium_world: Path) -> None:
    truth = read(medium_world, "truth").filter("illicit")
    inspected = truth.join(read(medium_world, "inspections"), on="shipment_id")
    assert inspected.height > 0
    assert inspected["positive"].sum() < inspected.height
    assert inspected.height < truth.height


def test_illicit_is_rare_yet_every_pattern_is_in_every_period(small_world: Path) -> None:
    truth = read(small_world, "truth")
    assert 0 < truth["illicit"].mean() < 0.01  # type: ignore[operator]
    table = illicit_table(small_world)
    assert set(table["pattern"].to_list()) == set(PATTERN_NAMES)
    assert table["period"].n_unique() == 4
    missing = table.filter(pl.col("illicit") == 0)
    assert missing.is_empty(), missing


def test_port_shares_match_the_reference_within_20_percent(medium_world: Path) -> None:
    table = port_share_table(medium_world).filter(pl.col("mode").is_in(list(SOURCED_MODES)))
    assert table.height == 10
    off = table.filter(pl.col("deviation").abs() > 0.2)
    assert off.is_empty(), off


def test_tactics_shift_after_scheduling(medium_world: Path) -> None:
    shipments = read(medium_world, "shipments").select("shipment_id", "declared_at")
    truth = read(medium_world, "truth").filter("illicit").join(shipments, on="shipment_id")
    cutoff = datetime.combine(SCHEDULING_4_PIPERIDONE, datetime.min.time(), tzinfo=UTC)
    after = truth.filter(pl.col("declared_at") >= cutoff)
    before = truth.filter(pl.col("declared_at") < cutoff)
    open_after = after.filter(pl.col("pattern") == "open_declared_precursor")
    assert not open_after["substances"].list.contains("4-piperidone").any()
    assert before.filter(pl.col("substances").list.contains("4-piperidone")).height > 0

    def designer_rate(frame: pl.DataFrame) -> float:
        return float(frame.select((pl.col("pattern") == "designer_precursor").mean()).item() or 0)

    assert designer_rate(after) > designer_rate(before)


def test_identifiers_are_well_formed(small_world: Path) -> None:
    shipments = read(small_world, "shipments")
    sea = shipments.filter(pl.col("mode") == "sea")
    for container in sea["container_id"].to_list():
        assert re.fullmatch(r"[A-Z]{3}U\d{7}", container), container
        assert iso6346_check_digit(container[:10]) == int(container[10])
    assert shipments.filter(pl.col("mode") != "sea")["container_id"].eq("").all()
    assert shipments["consignee_id"].str.contains(r"^CNE-\d{6}$").all()
    assert shipments["shipper_id"].str.contains(r"^SHR-\d{6}$").all()
    assert shipments["broker_id"].str.contains(r"^BRK-\d{6}$").all()
    mexican = shipments.filter(pl.col("consignee_country") == "MX")
    assert mexican["consignee_tax_id"].str.contains(r"^[A-Z]{3}\d{6}[A-Z0-9]{3}$").all()
    assert set(shipments["mode"].unique()) == {"sea", "land", "air", "postal"}
    goods = read(small_world, "goods")
    assert goods["hs_code"].str.contains(r"^\d{6}(\d{2}){0,2}$").all()


def test_simulate_world_rejects_bad_parameters(tmp_path: Path) -> None:
    with pytest.raises(InvalidInput, match="shipments: must be at least 1"):
        simulate_world(tmp_path, shipments=0, progress=False)
    with pytest.raises(InvalidInput, match="months: must be at least 1"):
        simulate_world(tmp_path, months=0, progress=False)
    for scale in (0.0, -1.0, float("nan"), 41.0):
        with pytest.raises(InvalidInput, match="illicit_scale: must be above 0 and at most 40"):
            simulate_world(tmp_path, illicit_scale=scale, progress=False)


def test_illicit_scale_multiplies_the_smuggling_and_is_recorded(tmp_path: Path) -> None:
    """A denser world for tests: about ``scale`` times the illicit shipments of the same seed,
    the factor in its manifest; the licit traffic is drawn the same."""
    base = simulate_world(tmp_path / "1", shipments=20_000, months=6, seed=3, progress=False)
    dense = simulate_world(
        tmp_path / "20", shipments=20_000, months=6, seed=3, progress=False, illicit_scale=20
    )
    assert 10 * base.illicit < dense.illicit < 30 * base.illicit
    assert json.loads(dense.manifest.read_text())["parameters"]["illicit_scale"] == 20
    assert "illicit_scale" not in json.loads(base.manifest.read_text())["parameters"]


def test_a_short_window_still_works(tmp_path: Path) -> None:
    summary = simulate_world(
        tmp_path, shipments=300, months=1, start=date(2025, 3, 15), progress=False
    )
    assert summary.rows["shipments"] == 300
    assert summary.illicit >= 1


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    env = os.environ | {"COLUMNS": "200", "NO_COLOR": "1"}
    return subprocess.run(
        [sys.executable, "-m", "training.simulate.cli", *args],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_cli_writes_the_tables(tmp_path: Path) -> None:
    result = _cli("--out", str(tmp_path), "--shipments", "1500", "--months", "12", "--seed", "2")
    assert result.returncode == 0, result.stderr
    for table in TABLES:
        assert (tmp_path / f"{table}.parquet").exists()
    assert json.loads((tmp_path / "manifest.json").read_text())["parameters"]["seed"] == 2


@pytest.mark.parametrize(
    ("flag", "value"),
    [("--shipments", "0"), ("--months", "-1"), ("--start", "2024-13-01")],
)
def test_cli_rejects_a_bad_flag_naming_it(tmp_path: Path, flag: str, value: str) -> None:
    result = _cli("--out", str(tmp_path), flag, value)
    assert result.returncode == 3
    assert flag in result.stderr
    assert not (tmp_path / "shipments.parquet").exists()


def test_report_writes_markdown_and_plots(small_world: Path, tmp_path: Path) -> None:
    path = calibration_report(small_world, tmp_path)
    assert path == tmp_path / "report.md"
    text = path.read_text()
    for heading in ("port", "HS chapter", "Illicit", "inspection", "Observed"):
        assert heading in text
    pngs = sorted(p.name for p in tmp_path.glob("*.png"))
    assert len(pngs) >= 4
    for png in pngs:
        assert (tmp_path / png).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def shift_dates(data_dir: Path) -> dict[str, datetime]:
    """The manifest's tactic shifts by the first word of their name."""
    manifest = json.loads((data_dir / "manifest.json").read_text())
    return {
        shift["name"].split()[0]: datetime.fromisoformat(shift["date"]).replace(tzinfo=UTC)
        for shift in manifest["tactic_shifts"]
    }


def test_a_tactic_shift_falls_inside_the_unseen_window(
    small_world: Path, medium_world: Path
) -> None:
    # centinela train keeps the newest 15% of shipments unseen; the evaluation of that window
    # must have a shift inside it to compare before and after, whatever the world's size.
    for world in (small_world, medium_world):
        declared = read(world, "shipments")["declared_at"].sort()
        unseen_from = declared[int(len(declared) * 0.85)]
        inside = [d for d in shift_dates(world).values() if unseen_from < d <= declared[-1]]
        assert inside, (world, unseen_from)


def test_displacement_and_rising_second_origin(medium_world: Path) -> None:
    shipments = read(medium_world, "shipments")
    truth = read(medium_world, "truth").filter("illicit").join(shipments, on="shipment_id")
    sea = truth.filter(pl.col("mode") == "sea")
    # The displacement comes late in the window (inside the unseen 15%), months after the
    # enforcement rise at the midpoint.
    displaced = shift_dates(medium_world)["illicit"]
    midpoint = datetime(2025, 1, 1, tzinfo=UTC)
    assert shift_dates(medium_world)["Manzanillo"] == midpoint < displaced
    early, late = (
        sea.filter(pl.col("declared_at") < displaced),
        sea.filter(pl.col("declared_at") >= displaced),
    )

    def share(frame: pl.DataFrame, column: str, value: str) -> float:
        return float(frame.select((pl.col(column) == value).mean()).item() or 0)

    assert share(late, "port_of_entry", "MXLZC") > share(early, "port_of_entry", "MXLZC") + 0.1
    precursors = truth.filter(pl.col("mode") != "land")
    first = precursors.filter(pl.col("declared_at") < midpoint)
    second = precursors.filter(pl.col("declared_at") >= midpoint)
    assert share(second, "origin_country", "IN") > share(first, "origin_country", "IN")

    inspected = shipments.join(read(medium_world, "inspections"), on="shipment_id", how="left")
    zlo = inspected.filter(pl.col("port_of_entry") == "MXZLO")
    rate = zlo.group_by(late=pl.col("declared_at") >= midpoint).agg(
        pl.col("inspected_at").is_not_null().mean()
    )
    before, after = (
        rate.filter(pl.col("late") == flag)["inspected_at"].item() for flag in (False, True)
    )
    assert after > before * 1.5


def test_substance_ids_exist_in_the_watchlist() -> None:
    watchlist = REPO / "features" / "watchlist" / "watchlist.yaml"
    if not watchlist.exists():
        pytest.skip("watchlist data file not present")
    known = set(re.findall(r"^\s*-?\s*id:\s*(\S+)", watchlist.read_text(), re.MULTILINE))
    assert set(WATCHLIST_IDS) <= known, sorted(set(WATCHLIST_IDS) - known)


def test_new_traders_northbound_are_targeted_by_the_legacy_policy() -> None:
    north = np.array([G_LAND_NORTH, G_LAND_NORTH])
    no = np.zeros(2, dtype=bool)
    q, propensity = selection_probability(north, no, no, no, no, no, np.array([True, False]))
    assert q.tolist() == [RULE_NEW_TRADER, CAPACITY_RATE[G_LAND_NORTH]]
    assert propensity[0] == pytest.approx(1 - (1 - RANDOM_SHARE) * (1 - RULE_NEW_TRADER))


def test_northbound_new_traders_include_licit_ones(medium_world: Path) -> None:
    # The rule picks new US buyers, licit new entrants and shells alike: being picked by it,
    # or being a new consignee, is not a label.
    shipments = read(medium_world, "shipments").join(
        read(medium_world, "inspections"), on="shipment_id"
    )
    truth = read(medium_world, "truth")
    picked = shipments.filter(
        (pl.col("mode") == "land")
        & (pl.col("consignee_country") == "US")
        & (pl.col("selection_probability") > CAPACITY_RATE[G_LAND_NORTH] + RANDOM_SHARE)
    ).join(truth, on="shipment_id")
    assert picked.height > 0
    assert not picked["illicit"].all()


def northbound_with_exporter_age(data_dir: Path) -> pl.DataFrame:
    """Northbound loads with the age in days of the Mexican exporter's RFC (its founding date)
    at declaration, their inspection if any, and the truth."""
    shipments = read(data_dir, "shipments").filter(
        (pl.col("mode") == "land") & (pl.col("consignee_country") == "US")
    )
    founded = pl.col("shipper_tax_id").str.slice(3, 6).str.to_date("%y%m%d")
    return (
        shipments.with_columns(rfc_age=(pl.col("declared_at").dt.date() - founded).dt.total_days())
        .join(read(data_dir, "inspections"), on="shipment_id", how="left")
        .join(read(data_dir, "truth"), on="shipment_id")
    )


def test_young_exporter_rfcs_include_licit_ones(medium_world: Path) -> None:
    # Licit Mexican exporters also start trading inside the window with a recently founded
    # RFC, so a young exporter RFC is a risk indicator, not a label.
    young = northbound_with_exporter_age(medium_world).filter(pl.col("rfc_age") < 365)
    assert young.filter(~pl.col("illicit")).height > 0
    assert young.filter(pl.col("illicit")).height > 0


def test_the_new_trader_rule_reads_the_exporter_as_well_as_the_buyer() -> None:
    # Rows: new buyer, new exporter at an established buyer, both established, a new exporter
    # past its third month, and a new exporter southbound (the rule is northbound only).
    static = SimpleNamespace(
        consignee_entry_month=np.array([BEFORE_WINDOW, 4]),
        shipper_entry_month=np.array([BEFORE_WINDOW, 5]),
    )
    rows = SimpleNamespace(
        group=np.array([G_LAND_NORTH] * 4 + [G_LAND_SOUTH]),
        month=np.array([6, 6, 6, 8, 6]),
        consignee=np.array([1, 0, 0, 0, 0]),
        shipper=np.array([0, 1, 0, 1, 1]),
    )
    flags = new_trader(cast(Static, static), cast(ChunkRows, rows))
    assert flags.tolist() == [True, True, False, False, False]


@pytest.mark.parametrize("months", [12, 18, 24, 36, 48])
def test_displacement_is_late_and_after_enforcement(months: int) -> None:
    starts = [add_months(date(2024, 1, 1), i) for i in range(months + 1)]
    rules = TimeRules.for_window(starts)
    assert rules.enforcement_month == months // 2 < rules.displacement_month < months
    assert rules.displacement_month / months >= 0.85
    before, after = rules.lzc_share(rules.displacement_month - 1), rules.lzc_share(months - 1)
    assert after > before
