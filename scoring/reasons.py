"""Plain reasons an inspector can act on, in Spanish and English, neutral in wording.

A reason says why a shipment was *selected*; it never accuses anyone. Model reasons come from
LightGBM's per-feature contributions (SHAP values); watchlist reasons from matcher evidence.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

from features.vocab import PORT_NAMES


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


def _country(code: float) -> str:
    c = int(code)
    if c < 0:
        return "desconocido"
    return chr(65 + c // 26) + chr(65 + c % 26)


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
        if template is None:
            continue
        es, en = template(values[name])
        reasons.append(Reason(f"MODEL_{name.upper()}", es, en, contribution))
    return reasons


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


def port_name(port: str) -> str:
    return PORT_NAMES.get(port, port)
