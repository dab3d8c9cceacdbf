"""Plain reasons an inspector can act on, in Spanish and English, neutral in wording.

A reason says why a shipment was *selected*; it never accuses anyone. Model reasons come from
LightGBM's per-feature contributions (SHAP values), worded by each feature's own reason text
(:class:`features.schema.FeatureSpec`); watchlist reasons from matcher evidence, worded by the
match type's words (:data:`features.watchlist.match_types.MATCH_TYPE_INFO`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from features.schema import SPECS_BY_NAME
from features.watchlist.match_types import MATCH_TYPE_INFO


@dataclass(frozen=True, slots=True)
class Reason:
    code: str
    message_es: str
    message_en: str
    contribution: float = 0.0


def model_reasons(
    contributions: Mapping[str, float], values: Mapping[str, float], limit: int = 3
) -> list[Reason]:
    """The features that pushed the score up most, as plain reasons.

    Of the ``limit`` strongest, a feature the schema does not know and a null value that says
    nothing (:meth:`~features.schema.FeatureSpec.reason_text`) give no reason.
    """
    ranked = sorted(
        ((name, c) for name, c in contributions.items() if c > 0),
        key=lambda item: -item[1],
    )[:limit]
    reasons = []
    for name, contribution in ranked:
        spec = SPECS_BY_NAME.get(name)
        text = None if spec is None else spec.reason_text(values[name])
        if text is not None:
            es, en = text
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


# How a reason names each match type's identifier: (Spanish, English).
_MATCH_WORDS: Mapping[str, tuple[str, str]] = {
    match_type: (info.words_es, info.words_en) for match_type, info in MATCH_TYPE_INFO.items()
}


def watchlist_reason(name: str, match_type: str, goods_index: int, text: str) -> Reason:
    """A watchlist hit on goods line ``goods_index`` (from 0) as a reason; a match type the
    vocabulary does not know is named as it is."""
    es_kind, en_kind = _MATCH_WORDS.get(match_type, (match_type, match_type))
    line = goods_index + 1
    return Reason(
        f"WATCHLIST_{match_type.upper()}",
        f"{name} identificado por {es_kind} «{text}» en la partida {line}",
        f"{name} identified by {en_kind} “{text}” in goods line {line}",
    )
