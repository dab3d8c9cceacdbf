"""The frozen feature schema: every feature defined once, in order, with its type, its meaning and
the reason an inspector reads when it raised a shipment's score.

A feature is added here and nowhere else: a :class:`FeatureSpec` carries its name, its type, a
one-line meaning, and its reason text in Spanish and English (``tests/test_feature_definitions``
fails for a feature that lacks any of them). :mod:`scoring.reasons` turns that text into a
``Reason``; the kernels of :mod:`features.build` compute the value.

Every model bundle carries a copy of the schema (names, types, meanings: :func:`schema_document`);
:func:`schema_mismatch` compares a bundle's copy with the code's at load time so a model is never
fed features in a different order or meaning. Append features at the end and bump nothing else: a
new feature makes old bundles fail loudly.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from features.history import (
    NETWORK_KEYS,
    NETWORK_WINDOW_DAYS,
    OUTCOME_KEYS,
    VOLUME_KEYS,
    WINDOWS_DAYS,
    network_names,
    outcome_names,
    volume_names,
)
from features.vocab import country_letters

FeatureDtype = Literal["float64", "int32"]
ReasonText = Callable[[float], tuple[str, str]]
"""A feature's reason for a (non-null) value: (Spanish, English), neutral in wording."""


@dataclass(frozen=True, slots=True)
class FeatureSpec:
    """One feature: what a bundle stores of it, and how a reason reads its value."""

    name: str
    dtype: FeatureDtype
    categorical: bool
    meaning: str
    reason: ReasonText
    null_reason: tuple[str, str] | None = None
    """The reason when the value is null (NaN), for features whose null says something (never
    seen, never positive); None: a null value is no reason."""

    def reason_text(self, value: float) -> tuple[str, str] | None:
        """(Spanish, English) for ``value``; None when a null value is no reason."""
        return self.null_reason if math.isnan(value) else self.reason(value)

    def document(self) -> dict[str, Any]:
        """What a model bundle stores of the feature."""
        return {key: getattr(self, key) for key in _STORED_FIELDS}


# What a model bundle stores of each feature, in this order; the reason texts are the code's.
_STORED_FIELDS: tuple[str, ...] = ("name", "dtype", "categorical", "meaning")


# --------------------------------------------------------------------------- reason wording


def _count(value: float) -> str:
    """A count or an amount as reasons print it: whole, with thousands separators."""
    return f"{value:,.0f}"


def _country(code: float) -> str:
    """A country code (:data:`features.vocab.COUNTRY_CODES`) as its two letters."""
    return country_letters(int(code)) or "desconocido"


def _says(es: str, en: str, shown: Callable[[float], object] = _count) -> ReasonText:
    """A reason filling each ``{}`` of both texts with ``shown(value)``, a count unless told
    (``float``: the value itself, for a format spec such as ``{:.1%}``)."""

    def text(value: float) -> tuple[str, str]:
        filled = shown(value)
        return es.format(filled), en.format(filled)

    return text


def _times(log_ratio: float) -> float:
    """The ratio a log ratio stands for; ``inf`` past what a float holds (a declared weight of
    1e-300 kg must give a reason, not an OverflowError)."""
    return math.exp(log_ratio) if log_ratio < 709.0 else math.inf


def _either(yes: tuple[str, str], no: tuple[str, str]) -> ReasonText:
    """A reason for a 0/1 feature: ``yes`` for 1, ``no`` for 0."""
    return lambda value: yes if value else no


# --------------------------------------------------------------------------- history features


@dataclass(frozen=True, slots=True)
class _Entity:
    """How the schema and the reasons name an entity of :mod:`features.history`."""

    meaning: str  # in the schema's meanings
    es: str  # in a Spanish reason, with its article ("del remitente")
    en: str  # in an English reason ("shipper")
    absent_when_null: bool = False  # a null history means there is no such entity: no reason


_ENTITIES: Mapping[str, _Entity] = {
    "shipper": _Entity("shipper", "del remitente", "shipper"),
    "consignee": _Entity("consignee", "del consignatario", "consignee"),
    "broker": _Entity("customs broker", "del agente aduanal", "customs broker"),
    "route": _Entity("route (origin > port)", "de la ruta", "route"),
    "heading": _Entity("principal HS heading", "de la partida arancelaria", "HS heading"),
    "item": _Entity(
        "identified watched item", "de la sustancia vigilada", "watched item", absent_when_null=True
    ),
}


def _volume_specs(entity: str) -> list[FeatureSpec]:
    who = _ENTITIES[entity]
    age, *counts = volume_names(entity)
    first_seen = FeatureSpec(
        age,
        "float64",
        False,
        f"days since {who.meaning} first seen",
        _says(
            f"Historial {who.es}: visto por primera vez hace {{}} días",
            f"{who.en.capitalize()} first seen {{}} days ago",
        ),
        null_reason=(f"Primer embarque {who.es}", f"First shipment of this {who.en}"),
    )
    return [
        first_seen,
        *(
            FeatureSpec(
                name,
                "int32",
                False,
                f"{who.meaning}'s shipments in prior {days} days",
                _says(
                    f"{{}} embarque(s) {who.es} en los {days} días previos",
                    f"{{}} shipment(s) by this {who.en} in the prior {days} days",
                ),
            )
            for name, days in zip(counts, WINDOWS_DAYS, strict=True)
        ),
    ]


def _outcome_specs(entity: str) -> list[FeatureSpec]:
    who = _ENTITIES[entity]
    inspections, positives, rate, since = outcome_names(entity)
    return [
        FeatureSpec(
            inspections,
            "int32",
            False,
            f"{who.meaning}'s inspections reported",
            _says(
                f"{{}} inspección(es) previas {who.es}",
                f"{{}} earlier inspection(s) of this {who.en}",
            ),
        ),
        FeatureSpec(
            positives,
            "int32",
            False,
            f"{who.meaning}'s positive results reported",
            _says(
                f"{{}} hallazgo(s) previos {who.es}", f"{{}} earlier finding(s) for this {who.en}"
            ),
        ),
        FeatureSpec(
            rate,
            "float64",
            False,
            f"{who.meaning}'s positive rate, smoothed to prior",
            _says(
                f"Tasa histórica de hallazgos {who.es}: {{:.1%}}",
                f"Historical finding rate of this {who.en}: {{:.1%}}",
                float,
            ),
        ),
        FeatureSpec(
            since,
            "float64",
            False,
            f"days since {who.meaning}'s last positive",
            _says(
                f"Último hallazgo {who.es} hace {{}} días",
                f"Last finding for this {who.en} {{}} days ago",
            ),
            null_reason=None
            if who.absent_when_null
            else (f"Sin hallazgos previos {who.es}", f"No earlier findings for this {who.en}"),
        ),
    ]


def _network_specs(entity: str) -> list[FeatureSpec]:
    who = _ENTITIES[entity]
    days = NETWORK_WINDOW_DAYS
    families, complementary = network_names(entity)
    return [
        FeatureSpec(
            families,
            "int32",
            False,
            f"watched route families to this {who.meaning} in {days} days, incl. now",
            _says(
                f"{{}} ruta(s) de síntesis vigiladas recibidas {who.es} en {days} días",
                f"{{}} watched synthesis route(s) received by this {who.en} in {days} days",
            ),
        ),
        FeatureSpec(
            complementary,
            "int32",
            False,
            "1 when those families are complementary (precursor + reagent or press)",
            _either(
                (
                    f"Sustancias complementarias recibidas {who.es} en {days} días "
                    "(precursor y reactivo, o equipo de tableteo)",
                    f"Complementary items received by this {who.en} in {days} days "
                    "(precursor and reagent, or tableting equipment)",
                ),
                (
                    f"Sin sustancias complementarias {who.es} en {days} días",
                    f"No complementary items for this {who.en} in {days} days",
                ),
            ),
        ),
    ]


def _history_specs() -> list[FeatureSpec]:
    """The history features, in the order :func:`features.history.history_feature_names`
    gives them."""
    specs = [spec for entity in VOLUME_KEYS for spec in _volume_specs(entity)]
    specs += [spec for entity in OUTCOME_KEYS for spec in _outcome_specs(entity)]
    return specs + [spec for entity in NETWORK_KEYS for spec in _network_specs(entity)]


# --------------------------------------------------------------------------- the schema

FEATURES: tuple[FeatureSpec, ...] = (
    FeatureSpec(
        "port_code",
        "int32",
        True,
        "port of entry (code in features.vocab.PORTS)",
        _says("Perfil de riesgo del puerto de entrada", "Risk profile of the port"),
    ),
    FeatureSpec(
        "mode_code",
        "int32",
        True,
        "transport mode: sea, land, air, postal",
        _says("Modo de transporte", "Transport mode"),
    ),
    FeatureSpec(
        "origin_code",
        "int32",
        True,
        "country of origin (two letters as 0..675)",
        _says("País de origen {}", "Country of origin {}", _country),
    ),
    FeatureSpec(
        "export_code",
        "int32",
        True,
        "country of export (two letters as 0..675)",
        _says("País de exportación {}", "Country of export {}", _country),
    ),
    FeatureSpec(
        "export_differs",
        "int32",
        False,
        "1 when export country differs from origin",
        _either(
            (
                "El país de exportación difiere del de origen",
                "Export country differs from country of origin",
            ),
            ("Origen y exportación coinciden", "Origin and export country are the same"),
        ),
    ),
    FeatureSpec(
        "transshipment_count",
        "int32",
        False,
        "number of declared transshipment ports",
        _says("{} puerto(s) de transbordo declarados", "{} transshipment port(s) declared"),
    ),
    FeatureSpec(
        "goods_line_count",
        "int32",
        False,
        "number of goods lines",
        _says("{} partida(s) de mercancía", "{} goods line(s)"),
    ),
    FeatureSpec(
        "principal_hs_chapter",
        "int32",
        True,
        "HS chapter of the highest-value line",
        _says("Capítulo arancelario principal {:02d}", "Principal HS chapter {:02d}", int),
    ),
    FeatureSpec(
        "principal_hs_heading",
        "int32",
        False,
        "HS heading (4 digits) of that line",
        _says("Partida arancelaria principal {:04d}", "Principal HS heading {:04d}", int),
    ),
    FeatureSpec(
        "hs_chapter_count",
        "int32",
        False,
        "distinct HS chapters across lines",
        _says("{} capítulo(s) arancelario(s) distintos", "{} distinct HS chapter(s)"),
    ),
    FeatureSpec(
        "chemical_line_share",
        "float64",
        False,
        "share of lines in HS 28, 29 or 38",
        _says(
            "{:.0%} de las partidas son químicos (cap. 28, 29, 38)",
            "{:.0%} of goods lines are chemicals (HS 28, 29, 38)",
            float,
        ),
    ),
    FeatureSpec(
        "cas_line_count",
        "int32",
        False,
        "lines that declare at least one CAS number",
        _says("{} partida(s) declaran número CAS", "{} line(s) declare a CAS number"),
    ),
    FeatureSpec(
        "total_weight_kg",
        "float64",
        False,
        "sum of gross weights",
        _says("Peso bruto total {} kg", "Total gross weight {} kg"),
    ),
    FeatureSpec(
        "total_value_usd",
        "float64",
        False,
        "sum of declared values",
        _says("Valor declarado total {} USD", "Total declared value {} USD"),
    ),
    FeatureSpec(
        "value_per_kg",
        "float64",
        False,
        "declared value per kilogram",
        _says("Valor declarado de {:,.2f} USD/kg", "Declared value of {:,.2f} USD/kg", float),
    ),
    FeatureSpec(
        "consignee_is_foreign",
        "int32",
        False,
        "1 when the consignee's country is not MX",
        _either(
            ("Consignatario con domicilio fuera de México", "Consignee address outside Mexico"),
            ("Consignatario con domicilio en México", "Consignee address in Mexico"),
        ),
    ),
    FeatureSpec(
        "consignee_has_tax_id",
        "int32",
        False,
        "1 when the consignee declares a tax id",
        _either(
            ("Consignatario con RFC declarado", "Consignee tax id declared"),
            ("Consignatario sin RFC declarado", "No consignee tax id declared"),
        ),
    ),
    *(
        FeatureSpec(
            f"{party}_rfc_days_since_founding",
            "float64",
            False,
            f"days since the founding date in the {party}'s Mexican RFC (null: not an RFC)",
            _says(
                f"RFC {es}: empresa constituida hace {{}} días",
                f"{party.capitalize()}'s RFC: company founded {{}} days ago",
            ),
        )
        for party, es in (("shipper", "del remitente"), ("consignee", "del consignatario"))
    ),
    FeatureSpec(
        "value_per_kg_log_ratio",
        "float64",
        False,
        "log value per kg minus the training median for the principal HS heading",
        _says(
            "Valor por kg {:.1f} veces la mediana de su partida arancelaria",
            "Value per kg {:.1f} times the median of its HS heading",
            _times,
        ),
    ),
    FeatureSpec(
        "watchlist_max_strength",
        "float64",
        False,
        "strongest watchlist evidence, 0..1",
        _says(
            "Evidencia de lista de vigilancia (fuerza {:.2f})",
            "Watchlist evidence (strength {:.2f})",
            float,
        ),
    ),
    FeatureSpec(
        "watchlist_strength_sum",
        "float64",
        False,
        "sum over lines of line evidence",
        _says(
            "Evidencia de lista de vigilancia en varias partidas",
            "Watchlist evidence across goods lines",
        ),
    ),
    FeatureSpec(
        "watchlist_cas_lines",
        "int32",
        False,
        "lines naming a watched CAS number",
        _says("{} partida(s) con número CAS vigilado", "{} line(s) with a watched CAS"),
    ),
    FeatureSpec(
        "watchlist_hs_specific_lines",
        "int32",
        False,
        "lines under a watched item's own HS code",
        _says(
            "{} partida(s) con fracción arancelaria de sustancia vigilada",
            "{} line(s) under a watched substance's own HS code",
        ),
    ),
    FeatureSpec(
        "watchlist_hs_broad_lines",
        "int32",
        False,
        "lines under a broad HS line of a watched item",
        _says(
            "{} partida(s) en fracción genérica de químicos vigilados",
            "{} line(s) under a broad HS line of watched chemicals",
        ),
    ),
    FeatureSpec(
        "watchlist_name_lines",
        "int32",
        False,
        "lines naming a watched item",
        _says(
            "{} partida(s) nombran una sustancia vigilada", "{} line(s) name a watched substance"
        ),
    ),
    FeatureSpec(
        "watchlist_identified_lines",
        "int32",
        False,
        "lines where a watched item is identified",
        _says(
            "{} partida(s) con sustancia vigilada identificada",
            "{} line(s) with a watched substance identified",
        ),
    ),
    FeatureSpec(
        "watchlist_route_families",
        "int32",
        False,
        "distinct synthesis routes identified",
        _says(
            "{} ruta(s) de síntesis distintas en la declaración",
            "{} distinct synthesis route(s) in the declaration",
        ),
    ),
    FeatureSpec(
        "watchlist_mismatches",
        "int32",
        False,
        "mismatch signals (e.g. a watched CAS, benign HS)",
        _says(
            "{} incongruencia(s) entre descripción, CAS y fracción",
            "{} mismatch(es) between description, CAS and HS code",
        ),
    ),
    *_history_specs(),
    FeatureSpec(
        "invalid_cas_lines",
        "int32",
        False,
        "lines declaring a CAS number that is not valid (check digit or shape)",
        _says(
            "{} partida(s) declaran un número CAS inválido",
            "{} line(s) declare an invalid CAS number",
        ),
    ),
)

FEATURE_NAMES: tuple[str, ...] = tuple(f.name for f in FEATURES)
CATEGORICAL_FEATURES: tuple[str, ...] = tuple(f.name for f in FEATURES if f.categorical)
SPECS_BY_NAME: Mapping[str, FeatureSpec] = {f.name: f for f in FEATURES}


def schema_document() -> list[dict[str, Any]]:
    """The schema as plain data, as stored in a model bundle."""
    return [f.document() for f in FEATURES]


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
