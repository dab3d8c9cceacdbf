"""Bring your own data: an analyst's declaration table mapped onto the canonical tables.

The sample tables have the shape of the public customs import declarations dataset (the DATE
paper's): generated here with a fixed seed, never downloaded. Fraud is made likelier for a few
importers and for precursor HS codes from one origin, so a model has something to learn.
"""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from features.errors import ConfigError, DataError
from features.tables import scan_table, table_path
from tests.support import centinela
from training.mapping import (
    CACHE_DIR_NAME,
    EXTRAS_FILE,
    MappedData,
    apply_mapping,
    load_mapping,
    parse_mapping,
)

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "mappings"
EXAMPLE_MAPPING = EXAMPLE / "customs-declarations.yaml"

DATE_COLUMNS = (
    "Declaration ID",
    "Date",
    "Office ID",
    "Process Type",
    "Import Type",
    "Import Use",
    "Payment Type",
    "Mode of Transport",
    "Declarant ID",
    "Importer ID",
    "Seller ID",
    "Courier ID",
    "HS6 Code",
    "Country of Departure",
    "Country of Origin",
    "Tax Rate",
    "Tax Type",
    "Country of Origin Indicator",
    "Net Mass",
    "Item Price",
    "Fraud",
    "Critical Fraud",
)
HS_CODES = ("293339", "293337", "290243", "030490", "847130", "610910", "382499", "440890")
PRECURSOR_HS = ("293339", "293337")


def _ids(rng: np.random.Generator, prefix: str, count: int) -> list[str]:
    letters = np.array(list("ABCDEFGHJKLMNPQRSTUVWXYZ0123456789"))
    return [prefix + "".join(rng.choice(letters, 6)) for _ in range(count)]


def declarations(declarations: int = 320, seed: int = 5) -> pl.DataFrame:
    """Rows in the dataset's shape; about one declaration in five has two or three items."""
    rng = np.random.default_rng(seed)
    importers = _ids(rng, "I", 40)
    risky = set(importers[:5])
    sellers, declarants = _ids(rng, "S", 60), _ids(rng, "D", 12)
    start = date(2020, 1, 1)
    days = np.sort(rng.integers(0, 365, declarations))
    rows: list[dict[str, object]] = []
    for i in range(declarations):
        importer = str(rng.choice(importers))
        origin = str(
            rng.choice(["CN", "IN", "US", "DE", "KR", "VN"], p=[0.3, 0.15, 0.2, 0.1, 0.15, 0.1])
        )
        items = int(rng.choice([1, 2, 3], p=[0.8, 0.15, 0.05]))
        header = {
            "Declaration ID": str(97_000_000 + i * 7),
            "Date": (start + timedelta(days=int(days[i]))).isoformat(),
            "Office ID": str(rng.choice([30, 20, 40, 10])),
            "Process Type": str(rng.choice(["B", "A"])),
            "Import Type": str(rng.choice([11, 21])),
            "Import Use": str(rng.choice([21, 11])),
            "Payment Type": str(rng.choice([11, 13, 43])),
            "Mode of Transport": str(rng.choice([10, 40], p=[0.7, 0.3])),
            "Declarant ID": str(rng.choice(declarants)),
            "Importer ID": importer,
            "Seller ID": str(rng.choice(sellers)),
            "Courier ID": str(rng.choice(["", "", "", "DHL001"])),
            "Country of Departure": origin if rng.random() < 0.8 else "HK",
            "Country of Origin": origin,
        }
        for _ in range(items):
            hs = str(rng.choice(HS_CODES))
            p = 0.03 + (0.55 if importer in risky else 0) + (0.25 if hs in PRECURSOR_HS else 0)
            fraud = int(rng.random() < p)
            rows.append(
                {
                    **header,
                    # spreadsheets drop leading zeros and write floats: 30490, 293337.0
                    "HS6 Code": str(int(hs)) + (".0" if rng.random() < 0.2 else ""),
                    "Tax Rate": f"{rng.choice([0.0, 6.5, 8.0]):.1f}",
                    "Tax Type": str(rng.choice(["A", "C", "FEU1"])),
                    "Country of Origin Indicator": str(rng.choice(["E", "G", "B"])),
                    "Net Mass": f"{rng.lognormal(5, 1.2):.1f}",
                    "Item Price": f"{rng.lognormal(15, 1.0):.1f}",
                    "Fraud": str(fraud),
                    "Critical Fraud": str(int(fraud and rng.random() < 0.3)),
                }
            )
    return pl.DataFrame(rows, schema=dict.fromkeys(DATE_COLUMNS, pl.String))


def write_csv(directory: Path, frame: pl.DataFrame, name: str = "df_syn_eng.csv") -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    frame.write_csv(directory / name)
    return directory / name


def mapping_file(directory: Path, text: str) -> Path:
    path = directory / "mapping.yaml"
    path.write_text(text, encoding="utf-8")
    return path


MINIMAL = """
table: t.csv
columns:
  shipment_id: Declaration ID
  declared_at: Date
  hs_code: HS6 Code
  gross_weight_kg: Net Mass
  declared_value_usd: Item Price
label: {column: Fraud, positive: [1]}
"""


# --------------------------------------------------------------------------- the example


def test_the_example_mapping_validates_and_names_only_dataset_columns() -> None:
    spec = load_mapping(EXAMPLE_MAPPING)
    named = [*spec.columns.values(), spec.label.column, *spec.extras]
    assert set(named) <= set(DATE_COLUMNS)
    assert set(DATE_COLUMNS) - set(named) == set()


def test_train_and_evaluate_on_customs_declarations_through_the_cli(tmp_path: Path) -> None:
    data, registry = tmp_path / "data", tmp_path / "registry"
    write_csv(data, declarations())
    args = ("--data", str(data), "--mapping", str(EXAMPLE_MAPPING), "--registry", str(registry))

    trained = centinela("train", *args, "--json")
    assert trained.returncode == 0, trained.stderr
    result = json.loads(trained.stdout)
    assert result["version"] == "v0001"
    assert (registry / "v0001" / "model.txt").exists()
    assert "mapped " in trained.stderr
    assert "into " in trained.stderr

    cache = list((data / CACHE_DIR_NAME).iterdir())
    assert len(cache) == 1
    assert not (cache[0] / "truth.parquet").exists()
    assert (cache[0] / EXTRAS_FILE).exists()

    evaluated = centinela("evaluate", *args, "--json")
    assert evaluated.returncode == 0, evaluated.stderr
    assert "cached in" in evaluated.stderr
    figures = json.loads(evaluated.stdout)
    assert figures["window"]["labelSources"] == ["observed"]
    assert set(figures["budgets"]["0.1"]) == {"model", "random", "rules", "watchlist"}


def test_a_typo_in_the_mapping_fails_the_cli_naming_the_key(tmp_path: Path) -> None:
    write_csv(tmp_path, declarations(20), "t.csv")
    bad = mapping_file(tmp_path, MINIMAL.replace("label:", "lable: {}\nlabel:"))
    result = centinela("train", "--data", str(tmp_path), "--mapping", str(bad))
    assert result.returncode == 3
    assert "lable" in result.stderr
    assert "unknown key" in result.stderr
    assert not (tmp_path / CACHE_DIR_NAME).exists() or not any(
        (tmp_path / CACHE_DIR_NAME).iterdir()
    )


# --------------------------------------------------------------------------- the file format


def test_unknown_keys_are_rejected_by_path() -> None:
    text = MINIMAL.replace("label: {column: Fraud,", "tabel: x\nlabel: {colum: Fraud,")
    with pytest.raises(ConfigError) as caught:
        parse_mapping(__import__("yaml").safe_load(text))
    fields = {v.field for v in caught.value.violations}
    assert {"tabel", "label.colum", "label.column"} <= fields
    assert "tabel: unknown key" in caught.value.message


def test_unknown_canonical_fields_and_bad_defaults_are_named() -> None:
    text = MINIMAL + "defaults: {mode: boat, shiper_id: X}\nvalues: {declared_at: {a: b}}\n"
    text = text.replace("  hs_code:", "  shiper_id: Seller ID\n  hs_code:")
    with pytest.raises(ConfigError) as caught:
        parse_mapping(__import__("yaml").safe_load(text))
    by_field = {v.field: v.description for v in caught.value.violations}
    assert "not a canonical field" in by_field["columns.shiper_id"]
    assert "not a canonical field" in by_field["defaults.shiper_id"]
    assert "not one of sea, land, air, postal" in by_field["defaults.mode"]
    assert "do not apply" in by_field["values.declared_at"]


def test_duplicate_keys_are_rejected(tmp_path: Path) -> None:
    path = mapping_file(tmp_path, MINIMAL + "table: other.csv\n")
    with pytest.raises(ConfigError, match="duplicate key 'table'"):
        load_mapping(path)


def test_a_missing_source_column_is_named_with_the_available_ones(tmp_path: Path) -> None:
    write_csv(tmp_path, declarations(10).drop("Net Mass"), "t.csv")
    path = mapping_file(tmp_path, MINIMAL)
    with pytest.raises(ConfigError) as caught:
        apply_mapping(tmp_path, path, tmp_path / "out")
    (violation,) = caught.value.violations
    assert violation.field == "columns.gross_weight_kg"
    assert "no column 'Net Mass' in t.csv" in violation.description
    assert "available: 'Declaration ID', 'Date'" in violation.description
    assert not (tmp_path / "out").exists()


# --------------------------------------------------------------------------- conversion


def test_unconvertible_rows_are_dropped_and_reported(tmp_path: Path) -> None:
    frame = declarations(200).with_row_index("i")
    frame = frame.with_columns(
        pl.when(pl.col("i").is_in([3, 50, 51]))
        .then(pl.lit("2020-13-45"))
        .otherwise("Date")
        .alias("Date"),
        pl.when(pl.col("i") == 7).then(pl.lit("heavy")).otherwise("Net Mass").alias("Net Mass"),
    ).drop("i")
    write_csv(tmp_path, frame, "t.csv")
    result = apply_mapping(
        tmp_path,
        mapping_file(tmp_path, MINIMAL + "max_invalid_share: 0.05\n"),
        tmp_path / "out",
    )
    reasons = {d.field: d for d in result.dropped}
    assert reasons["declared_at"].rows == 3
    assert reasons["declared_at"].example_rows == (4, 51, 52)
    assert reasons["declared_at"].example_values == ("2020-13-45",)
    assert reasons["gross_weight_kg"].rows == 1
    assert reasons["gross_weight_kg"].example_rows == (8,)
    assert result.rows_invalid == 4
    assert result.rows_read == frame.height
    assert result.rows_mapped == frame.height - result.rows_dropped
    assert result.rows_dropped >= 4
    summary = result.summary()
    assert "declared_at (column 'Date'): not a date/time in ISO 8601: 3 rows (rows 4, 51, 52" in (
        summary
    )
    shipments = pl.read_parquet(table_path(tmp_path / "out", "shipments"))
    assert shipments.height == result.shipments


def test_too_many_invalid_rows_fail_and_write_nothing(tmp_path: Path) -> None:
    frame = declarations(50).with_columns(pl.lit("01/02/2020").alias("Date"))
    write_csv(tmp_path, frame, "t.csv")
    with pytest.raises(DataError) as caught:
        apply_mapping(tmp_path, mapping_file(tmp_path, MINIMAL), tmp_path / "out")
    assert f"{frame.height} of {frame.height} rows (100.0%) cannot be converted" in str(
        caught.value
    )
    assert "'01/02/2020'" in str(caught.value)
    assert not (tmp_path / "out").exists()


def test_a_date_format_reads_local_dates(tmp_path: Path) -> None:
    frame = declarations(20).with_columns(pl.lit("02/01/2020 23:30").alias("Date"))
    write_csv(tmp_path, frame, "t.csv")
    text = MINIMAL + 'date_format: "%d/%m/%Y %H:%M"\ntimezone: America/Mexico_City\n'
    apply_mapping(tmp_path, mapping_file(tmp_path, text), tmp_path / "out")
    declared = pl.read_parquet(table_path(tmp_path / "out", "shipments"))["declared_at"]
    assert declared.unique().to_list() == [datetime(2020, 1, 3, 5, 30, tzinfo=UTC)]


def test_rows_of_one_declaration_become_its_goods_lines(tmp_path: Path) -> None:
    base = dict.fromkeys(DATE_COLUMNS, "") | {
        "Date": "2020-03-01",
        "Net Mass": "10",
        "Item Price": "100",
        "Fraud": "0",
    }
    rows = [
        base | {"Declaration ID": "A", "HS6 Code": "293337.0", "Fraud": "0"},
        base | {"Declaration ID": "B", "HS6 Code": "29333", "Net Mass": "5"},
        base | {"Declaration ID": "A", "HS6 Code": "2933.39", "Fraud": "1"},
        base | {"Declaration ID": "A", "HS6 Code": "847130", "Fraud": ""},
    ]
    write_csv(tmp_path, pl.DataFrame(rows), "t.csv")
    result = apply_mapping(tmp_path, mapping_file(tmp_path, MINIMAL), tmp_path / "out")
    assert (result.shipments, result.goods_lines, result.inspections, result.positives) == (
        2,
        4,
        2,
        1,
    )
    goods = scan_table(tmp_path / "out", "goods").collect()
    assert goods.select("shipment_id", "line_no", "hs_code").rows() == [
        ("A", 0, "293337"),
        ("A", 1, "293339"),
        ("A", 2, "847130"),
        ("B", 0, "029333"),
    ]
    inspections = scan_table(tmp_path / "out", "inspections").collect()
    assert dict(inspections.select("shipment_id", "positive").rows()) == {"A": True, "B": False}
    assert inspections["selection_probability"].to_list() == [1.0, 1.0]
    assert inspections["random_selection"].to_list() == [False, False]
    shipments = scan_table(tmp_path / "out", "shipments").collect()
    assert (inspections["inspected_at"] == shipments["declared_at"]).all()


def test_identifiers_are_read_in_the_canonical_form_live_scoring_uses(tmp_path: Path) -> None:
    """The same identity written differently is the same identity in analysts' tables too."""
    base = dict.fromkeys(DATE_COLUMNS, "") | {"Date": "2020-03-01", "Net Mass": "10"}
    rows = [
        base
        | {
            "Declaration ID": "a\u200b-1",
            "HS6 Code": "\uff12\uff19\uff13\uff13.\uff13\uff17",
            "Importer ID": " imp\u2011\u0441\u0435 ",
            "Item Price": "039742604; \u0663\u0669\u0667\u0664\u0662-\u0666\u0660-\u0664",
        },
        base | {"Declaration ID": "A-1", "HS6 Code": "2933 37", "Importer ID": "IMP-CE"},
    ]
    write_csv(tmp_path, pl.DataFrame(rows), "t.csv")
    text = MINIMAL.replace("  declared_value_usd: Item Price\n", "  cas_numbers: Item Price\n")
    text = text.replace("columns:\n", "columns:\n  consignee_id: Importer ID\n")
    apply_mapping(tmp_path, mapping_file(tmp_path, text), tmp_path / "out")
    shipments = scan_table(tmp_path / "out", "shipments").collect()
    assert shipments.select("shipment_id", "consignee_id").rows() == [("A-1", "IMP-CE")]
    goods = scan_table(tmp_path / "out", "goods").collect()
    assert goods["hs_code"].to_list() == ["293337", "293337"]
    assert goods["cas_numbers"].to_list() == [["39742-60-4", "39742-60-4"], []]


def test_without_an_id_column_each_row_is_a_shipment(tmp_path: Path) -> None:
    write_csv(tmp_path, declarations(5), "t.csv")
    text = MINIMAL.replace("  shipment_id: Declaration ID\n", "")
    result = apply_mapping(tmp_path, mapping_file(tmp_path, text), tmp_path / "out")
    shipments = scan_table(tmp_path / "out", "shipments").collect()
    assert shipments["shipment_id"].to_list()[:2] == ["ROW-000000001", "ROW-000000002"]
    assert result.shipments == result.rows_read


def test_parquet_input_with_native_types_trains(tmp_path: Path) -> None:
    frame = declarations().with_columns(
        pl.col("Date").str.to_date(),
        pl.col("HS6 Code").cast(pl.Float64),
        pl.col("Net Mass", "Item Price").cast(pl.Float64),
        pl.col("Fraud", "Critical Fraud", "Mode of Transport").cast(pl.Int64),
    )
    data = tmp_path / "data"
    data.mkdir()
    frame.write_parquet(data / "declarations.parquet")
    text = EXAMPLE_MAPPING.read_text(encoding="utf-8").replace(
        "table: df_syn_eng.csv", "table: declarations.parquet"
    )
    result = apply_mapping(data, mapping_file(tmp_path, text), tmp_path / "out")
    assert isinstance(result, MappedData)
    assert result.rows_dropped == 0
    goods = scan_table(tmp_path / "out", "goods").collect()
    assert set(goods["hs_code"]) <= set(HS_CODES)
    assert "030490" in set(goods["hs_code"])
    shipments = scan_table(tmp_path / "out", "shipments").collect()
    first = frame["Date"].min()
    assert isinstance(first, date)
    assert shipments["declared_at"].min() == datetime.combine(first, datetime.min.time(), UTC)
    assert set(shipments["mode"]) == {"sea", "air"}
    assert set(shipments["consignee_country"]) == {"KR"}
    value = goods["declared_value_usd"].sum()
    assert value == pytest.approx(float(frame["Item Price"].sum()) * 0.00087)
    extras = pl.read_parquet(tmp_path / "out" / EXTRAS_FILE)
    assert extras.columns[:2] == ["shipment_id", "line_no"]
    assert extras.height == goods.height

    from training.train import train

    trained = train(tmp_path / "out", tmp_path / "registry", seed=1)
    assert trained.path.exists()
