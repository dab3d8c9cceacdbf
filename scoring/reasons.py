"""Plain reasons an inspector can act on, in Spanish and English, neutral in wording.

A reason says why a shipment was *selected*; it never accuses anyone. Model reasons come from
LightGBM's per-feature contributions (SHAP values); watchlist reasons from matcher evidence.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Reason:
    code: str
    message_es: str
    message_en: str
    contribution: float = 0.0


Template = Callable[[float], tuple[str, str]]


def _n(v: float) -> str:
    return f"{v:,.0f}"


# One template per feature: (Spanish, English) given the feature's value.
_TEMPLATES: Mapping[str, Template] = {
    "port_code": lambda v: ("Perfil de riesgo del puerto de entrada", "Risk profile of the port"),
    "mode_code": lambda v: ("Modo de transporte", "Transport mode"),
    "origin_code": lambda v: (f"País de origen {_country(v)}", f"Country of origin {_country(v)}"),
    "export_code": lambda v: (
        f"País de exportación {_country(v)}",
        f"Country of export {_country(v)}",
    ),
    "export_differs": lambda v: (
        (
            "El país de exportación difiere del de origen",
            "Export country differs from country of origin",
        )
        if v
        else ("Origen y exportación coinciden", "Origin and export country are the same")
    ),
    "transshipment_count": lambda v: (
        f"{_n(v)} puerto(s) de transbordo declarados",
        f"{_n(v)} transshipment port(s) declared",
    ),
    "goods_line_count": lambda v: (f"{_n(v)} partida(s) de mercancía", f"{_n(v)} goods line(s)"),
    "principal_hs_chapter": lambda v: (
        f"Capítulo arancelario principal {int(v):02d}",
        f"Principal HS chapter {int(v):02d}",
    ),
    "principal_hs_heading": lambda v: (
        f"Partida arancelaria principal {int(v):04d}",
        f"Principal HS heading {int(v):04d}",
    ),
    "hs_chapter_count": lambda v: (
        f"{_n(v)} capítulo(s) arancelario(s) distintos",
        f"{_n(v)} distinct HS chapter(s)",
    ),
    "chemical_line_share": lambda v: (
        f"{v:.0%} de las partidas son químicos (cap. 28, 29, 38)",
        f"{v:.0%} of goods lines are chemicals (HS 28, 29, 38)",
    ),
    "cas_line_count": lambda v: (
        f"{_n(v)} partida(s) declaran número CAS",
        f"{_n(v)} line(s) declare a CAS number",
    ),
    "invalid_cas_lines": lambda v: (
        f"{_n(v)} partida(s) declaran un número CAS inválido",
        f"{_n(v)} line(s) declare an invalid CAS number",
    ),
    "total_weight_kg": lambda v: (f"Peso bruto total {_n(v)} kg", f"Total gross weight {_n(v)} kg"),
    "total_value_usd": lambda v: (
        f"Valor declarado total {_n(v)} USD",
        f"Total declared value {_n(v)} USD",
    ),
    "value_per_kg": lambda v: (
        f"Valor declarado de {v:,.2f} USD/kg",
        f"Declared value of {v:,.2f} USD/kg",
    ),
    "consignee_is_foreign": lambda v: (
        ("Consignatario con domicilio fuera de México", "Consignee address outside Mexico")
        if v
        else ("Consignatario con domicilio en México", "Consignee address in Mexico")
    ),
    "consignee_has_tax_id": lambda v: (
        ("Consignatario con RFC declarado", "Consignee tax id declared")
        if v
        else ("Consignatario sin RFC declarado", "No consignee tax id declared")
    ),
}


_WHO = {
    "shipper": ("del remitente", "shipper"),
    "consignee": ("del consignatario", "consignee"),
    "broker": ("del agente aduanal", "customs broker"),
    "route": ("de la ruta", "route"),
    "heading": ("de la partida arancelaria", "HS heading"),
}


def _phrase(es: str, en: str, raw: bool = False) -> Template:
    """A template filling ``{}`` in both languages with the value (a count unless ``raw``)."""

    def render(v: float) -> tuple[str, str]:
        return (es.format(v), en.format(v)) if raw else (es.format(_n(v)), en.format(_n(v)))

    return render


def _history_templates() -> dict[str, Template]:
    out: dict[str, Template] = {}
    for entity, (es, en) in _WHO.items():

        def age(v: float, es: str = es, en: str = en) -> tuple[str, str]:
            if math.isnan(v):
                return (f"Primer embarque {es}", f"First shipment of this {en}")
            return (
                f"Historial {es}: visto por primera vez hace {v:,.0f} días",
                f"{en.capitalize()} first seen {v:,.0f} days ago",
            )

        out[f"{entity}_age_days"] = age
        for days in (30, 90, 365):
            out[f"{entity}_count_{days}d"] = _phrase(
                f"{{}} embarque(s) {es} en los {days} días previos",
                f"{{}} shipment(s) by this {en} in the prior {days} days",
            )
        out[f"{entity}_inspections"] = _phrase(
            f"{{}} inspección(es) previas {es}", f"{{}} earlier inspection(s) of this {en}"
        )
        out[f"{entity}_positives"] = _phrase(
            f"{{}} hallazgo(s) previos {es}", f"{{}} earlier finding(s) for this {en}"
        )
        out[f"{entity}_positive_rate"] = _phrase(
            f"Tasa histórica de hallazgos {es}: {{:.1%}}",
            f"Historical finding rate of this {en}: {{:.1%}}",
            raw=True,
        )

        def since(v: float, es: str = es, en: str = en) -> tuple[str, str]:
            if math.isnan(v):
                return (f"Sin hallazgos previos {es}", f"No earlier findings for this {en}")
            return (
                f"Último hallazgo {es} hace {v:,.0f} días",
                f"Last finding for this {en} {v:,.0f} days ago",
            )

        out[f"{entity}_days_since_positive"] = since
        out[f"{entity}_route_families_90d"] = _phrase(
            f"{{}} ruta(s) de síntesis vigiladas recibidas {es} en 90 días",
            f"{{}} watched synthesis route(s) received by this {en} in 90 days",
        )

        def complementary(v: float, es: str = es, en: str = en) -> tuple[str, str]:
            if v:
                return (
                    f"Sustancias complementarias recibidas {es} en 90 días "
                    "(precursor y reactivo, o equipo de tableteo)",
                    f"Complementary items received by this {en} in 90 days "
                    "(precursor and reagent, or tableting equipment)",
                )
            return (
                f"Sin sustancias complementarias {es} en 90 días",
                f"No complementary items for this {en} in 90 days",
            )

        out[f"{entity}_complementary_90d"] = complementary
    return out


_WATCHLIST_TEMPLATES: dict[str, Template] = {
    "watchlist_max_strength": lambda v: (
        f"Evidencia de lista de vigilancia (fuerza {v:.2f})",
        f"Watchlist evidence (strength {v:.2f})",
    ),
    "watchlist_strength_sum": lambda v: (
        "Evidencia de lista de vigilancia en varias partidas",
        "Watchlist evidence across goods lines",
    ),
    "watchlist_cas_lines": lambda v: (
        f"{_n(v)} partida(s) con número CAS vigilado",
        f"{_n(v)} line(s) with a watched CAS",
    ),
    "watchlist_hs_specific_lines": lambda v: (
        f"{_n(v)} partida(s) con fracción arancelaria de sustancia vigilada",
        f"{_n(v)} line(s) under a watched substance's own HS code",
    ),
    "watchlist_hs_broad_lines": lambda v: (
        f"{_n(v)} partida(s) en fracción genérica de químicos vigilados",
        f"{_n(v)} line(s) under a broad HS line of watched chemicals",
    ),
    "watchlist_name_lines": lambda v: (
        f"{_n(v)} partida(s) nombran una sustancia vigilada",
        f"{_n(v)} line(s) name a watched substance",
    ),
    "watchlist_identified_lines": lambda v: (
        f"{_n(v)} partida(s) con sustancia vigilada identificada",
        f"{_n(v)} line(s) with a watched substance identified",
    ),
    "watchlist_route_families": lambda v: (
        f"{_n(v)} ruta(s) de síntesis distintas en la declaración",
        f"{_n(v)} distinct synthesis route(s) in the declaration",
    ),
    "watchlist_mismatches": lambda v: (
        f"{_n(v)} incongruencia(s) entre descripción, CAS y fracción",
        f"{_n(v)} mismatch(es) between description, CAS and HS code",
    ),
    "value_per_kg_log_ratio": lambda v: (
        f"Valor por kg {math.exp(v):.1f} veces la mediana de su partida arancelaria",
        f"Value per kg {math.exp(v):.1f} times the median of its HS heading",
    ),
}


def _country(code: float) -> str:
    c = int(code)
    if c < 0:
        return "desconocido"
    return chr(65 + c // 26) + chr(65 + c % 26)


_NAN_OK = ("_age_days", "_days_since_positive")
_TEMPLATES = {**_TEMPLATES, **_history_templates(), **_WATCHLIST_TEMPLATES}


def model_reasons(
    contributions: Mapping[str, float], values: Mapping[str, float], limit: int = 3
) -> list[Reason]:
    """The features that pushed the score up most, as plain reasons."""
    ranked = sorted(
        ((name, c) for name, c in contributions.items() if c > 0),
        key=lambda item: -item[1],
    )[:limit]
    reasons = []
    for name, contribution in ranked:
        template = _TEMPLATES.get(name)
        if template is None or (math.isnan(values[name]) and not name.endswith(_NAN_OK)):
            continue
        es, en = template(values[name])
        reasons.append(Reason(f"MODEL_{name.upper()}", es, en, contribution))
    return reasons


EXPLORATION_REASON = Reason(
    "RANDOM_SELECTION",
    "Seleccionado al azar para control de calidad del modelo; no indica riesgo",
    "Selected at random to keep the model honest; not an indication of risk",
)

LOW_RISK_REASON = Reason(
    "NO_RISK_FACTOR",
    "Ningún factor elevó el riesgo por encima del umbral del puerto",
    "No factor raised the risk above the port's threshold",
)

_MATCH_WORDS = {
    "cas": ("número CAS", "CAS number"),
    "hs_specific": ("fracción arancelaria específica", "specific HS code"),
    "hs_broad": ("fracción arancelaria genérica", "broad HS code"),
    "name_exact": ("nombre", "name"),
    "name_fuzzy": ("nombre aproximado", "approximate name"),
}


def watchlist_reason(name: str, match_type: str, goods_index: int, text: str) -> Reason:
    es_kind, en_kind = _MATCH_WORDS.get(match_type, (match_type, match_type))
    line = goods_index + 1
    return Reason(
        f"WATCHLIST_{match_type.upper()}",
        f"{name} identificado por {es_kind} «{text}» en la partida {line}",
        f"{name} identified by {en_kind} “{text}” in goods line {line}",
    )
