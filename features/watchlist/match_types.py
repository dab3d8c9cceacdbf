"""The watchlist's match types: one vocabulary for the matcher, the features, rules and reasons.

Each way a goods line can be tied to a watchlist entry is named here once, with everything the
layers above say about it: which evidence feature counts it, how rules rank it when they pick the
evidence to cite, and the words an inspector reads in a reason. The declaration order is the
matcher's tie-break order among equally strong hits.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

MatchType = Literal["cas", "hs_specific", "hs_broad", "name_exact", "name_fuzzy"]


@dataclass(frozen=True, slots=True)
class MatchTypeInfo:
    """What the rest of the service says about one match type."""

    feature: str
    """The evidence feature that counts goods lines matched this way."""
    evidence_rank: int
    """Rules cite the lowest rank first: the most specific identification an inspector can check."""
    words_es: str
    words_en: str
    """How a reason names the identifier: "identified by {words} «text»"."""


MATCH_TYPE_INFO: Mapping[MatchType, MatchTypeInfo] = {
    "cas": MatchTypeInfo("watchlist_cas_lines", 0, "número CAS", "CAS number"),
    "hs_specific": MatchTypeInfo(
        "watchlist_hs_specific_lines", 1, "fracción arancelaria específica", "specific HS code"
    ),
    "hs_broad": MatchTypeInfo(
        "watchlist_hs_broad_lines", 4, "fracción arancelaria genérica", "broad HS code"
    ),
    "name_exact": MatchTypeInfo("watchlist_name_lines", 2, "nombre", "name"),
    "name_fuzzy": MatchTypeInfo("watchlist_name_lines", 3, "nombre aproximado", "approximate name"),
}
MATCH_TYPES: tuple[MatchType, ...] = tuple(MATCH_TYPE_INFO)
