"""The frozen feature schema: ordered, typed, each feature with a one-line meaning.

Every model bundle carries a copy of this schema; :func:`schema_mismatch` compares a bundle's copy
with the code's at load time so a model is never fed features in a different order or meaning.
Append features at the end and bump nothing else: a new feature makes old bundles fail loudly.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass
from typing import Any, Literal

from features.history import (
    NETWORK_KEYS,
    NETWORK_WINDOW_DAYS,
    OUTCOME_KEYS,
    VOLUME_KEYS,
    WINDOWS_DAYS,
    network_names,
)

FeatureDtype = Literal["float64", "int32"]


@dataclass(frozen=True, slots=True)
class FeatureSpec:
    name: str
    dtype: FeatureDtype
    categorical: bool
    meaning: str


_ENTITY_WORDS = {
    "shipper": "shipper",
    "consignee": "consignee",
    "broker": "customs broker",
    "route": "route (origin > port)",
    "heading": "principal HS heading",
}


def _history_specs() -> list[FeatureSpec]:
    specs = []
    for e in VOLUME_KEYS:
        who = _ENTITY_WORDS[e]
        specs.append(FeatureSpec(f"{e}_age_days", "float64", False, f"days since {who} first seen"))
        specs += [
            FeatureSpec(f"{e}_count_{d}d", "int32", False, f"{who}'s shipments in prior {d} days")
            for d in WINDOWS_DAYS
        ]
    for e in OUTCOME_KEYS:
        who = _ENTITY_WORDS[e]
        specs += [
            FeatureSpec(f"{e}_inspections", "int32", False, f"{who}'s inspections reported"),
            FeatureSpec(f"{e}_positives", "int32", False, f"{who}'s positive results reported"),
            FeatureSpec(
                f"{e}_positive_rate", "float64", False, f"{who}'s positive rate, smoothed to prior"
            ),
            FeatureSpec(
                f"{e}_days_since_positive", "float64", False, f"days since {who}'s last positive"
            ),
        ]
    for e in NETWORK_KEYS:
        who = _ENTITY_WORDS[e]
        families, complementary = network_names(e)
        specs += [
            FeatureSpec(
                families,
                "int32",
                False,
                f"watched route families to this {who} in {NETWORK_WINDOW_DAYS} days, incl. now",
            ),
            FeatureSpec(
                complementary,
                "int32",
                False,
                "1 when those families are complementary (precursor + reagent or press)",
            ),
        ]
    return specs


FEATURES: tuple[FeatureSpec, ...] = (
    FeatureSpec("port_code", "int32", True, "port of entry (code in features.vocab.PORTS)"),
    FeatureSpec("mode_code", "int32", True, "transport mode: sea, land, air, postal"),
    FeatureSpec("origin_code", "int32", True, "country of origin (two letters as 0..675)"),
    FeatureSpec("export_code", "int32", True, "country of export (two letters as 0..675)"),
    FeatureSpec("export_differs", "int32", False, "1 when export country differs from origin"),
    FeatureSpec("transshipment_count", "int32", False, "number of declared transshipment ports"),
    FeatureSpec("goods_line_count", "int32", False, "number of goods lines"),
    FeatureSpec("principal_hs_chapter", "int32", True, "HS chapter of the highest-value line"),
    FeatureSpec("principal_hs_heading", "int32", False, "HS heading (4 digits) of that line"),
    FeatureSpec("hs_chapter_count", "int32", False, "distinct HS chapters across lines"),
    FeatureSpec("chemical_line_share", "float64", False, "share of lines in HS 28, 29 or 38"),
    FeatureSpec("cas_line_count", "int32", False, "lines that declare at least one CAS number"),
    FeatureSpec("total_weight_kg", "float64", False, "sum of gross weights"),
    FeatureSpec("total_value_usd", "float64", False, "sum of declared values"),
    FeatureSpec("value_per_kg", "float64", False, "declared value per kilogram"),
    FeatureSpec("consignee_is_foreign", "int32", False, "1 when the consignee's country is not MX"),
    FeatureSpec("consignee_has_tax_id", "int32", False, "1 when the consignee declares a tax id"),
    FeatureSpec(
        "value_per_kg_log_ratio",
        "float64",
        False,
        "log value per kg minus the training median for the principal HS heading",
    ),
    FeatureSpec("watchlist_max_strength", "float64", False, "strongest watchlist evidence, 0..1"),
    FeatureSpec("watchlist_strength_sum", "float64", False, "sum over lines of line evidence"),
    FeatureSpec("watchlist_cas_lines", "int32", False, "lines naming a watched CAS number"),
    FeatureSpec(
        "watchlist_hs_specific_lines", "int32", False, "lines under a watched item's own HS code"
    ),
    FeatureSpec(
        "watchlist_hs_broad_lines", "int32", False, "lines under a broad HS line of a watched item"
    ),
    FeatureSpec("watchlist_name_lines", "int32", False, "lines naming a watched item"),
    FeatureSpec(
        "watchlist_identified_lines", "int32", False, "lines where a watched item is identified"
    ),
    FeatureSpec("watchlist_route_families", "int32", False, "distinct synthesis routes identified"),
    FeatureSpec(
        "watchlist_mismatches", "int32", False, "mismatch signals (e.g. a watched CAS, benign HS)"
    ),
    *_history_specs(),
    FeatureSpec(
        "invalid_cas_lines",
        "int32",
        False,
        "lines declaring a CAS number that is not valid (check digit or shape)",
    ),
)

FEATURE_NAMES: tuple[str, ...] = tuple(f.name for f in FEATURES)
CATEGORICAL_FEATURES: tuple[str, ...] = tuple(f.name for f in FEATURES if f.categorical)


def schema_document() -> list[dict[str, Any]]:
    """The schema as plain data, as stored in a model bundle."""
    return [asdict(f) for f in FEATURES]


def schema_fingerprint(document: list[dict[str, Any]] | None = None) -> str:
    doc = schema_document() if document is None else document
    return hashlib.sha256(json.dumps(doc, sort_keys=True).encode()).hexdigest()[:16]


def schema_mismatch(document: list[dict[str, Any]]) -> list[str]:
    """Differences between a stored schema and the code's, as readable lines (empty if equal)."""
    problems: list[str] = []
    stored = [d.get("name") for d in document]
    if stored != list(FEATURE_NAMES):
        missing = [n for n in FEATURE_NAMES if n not in stored]
        extra = [n for n in stored if n not in FEATURE_NAMES]
        if missing:
            problems.append(f"features the code computes but the bundle lacks: {missing}")
        if extra:
            problems.append(f"features the bundle expects but the code lacks: {extra}")
        if not missing and not extra:
            problems.append("same features in a different order")
        return problems
    for spec, doc in zip(FEATURES, document, strict=True):
        if doc.get("dtype") != spec.dtype or doc.get("categorical") != spec.categorical:
            problems.append(
                f"feature {spec.name!r}: bundle has {doc.get('dtype')}"
                f"{' categorical' if doc.get('categorical') else ''}, code has {spec.dtype}"
                f"{' categorical' if spec.categorical else ''}"
            )
    return problems
