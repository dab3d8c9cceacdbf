"""One goods line's evidence: its hits from every source, weighed by strength.

A line's hits come from its declared CAS numbers, from what its description says (CAS numbers
and names, found once per description: :class:`Scan`) and from its HS code. Each hit's
``strength`` is how much it identifies the item (see "Evidence strength" in
:mod:`features.watchlist.matcher`): a CAS is near-certain, a specific HS line strong, a broad one
weak, an abbreviation weaker than a full name, a fuzzy name as weak as it is dissimilar, and a
name in its entry's benign context (an HS chapter or a word) weak. The line's mismatches
(:mod:`features.watchlist.mismatches`) are judged from the same evidence.
"""

from __future__ import annotations

from dataclasses import dataclass

from features.canonical import canonical_hs, canonical_text, read_cas
from features.watchlist.codes import CasHit, CodeIndex, hs_digits
from features.watchlist.items import Item
from features.watchlist.match_types import MATCH_TYPES, MatchType
from features.watchlist.mismatches import line_mismatches
from features.watchlist.names import NameHit
from features.watchlist.results import EVIDENCE_THRESHOLD, Hit, LineMatch
from features.watchlist.schema import Confidence

_NAME_STRENGTH = 0.95
_ABBREVIATION_STRENGTH = 0.8
_FUZZY_STRENGTH = 0.9
_BENIGN_FACTOR = 0.3
_CAS_STRENGTH: dict[Confidence, float] = {"H": 1.0, "M": 1.0, "L": 0.8}
_HS_SPECIFIC_STRENGTH: dict[Confidence, float] = {"H": 0.85, "M": 0.8, "L": 0.6}
_HS_BROAD_STRENGTH: dict[Confidence, float] = {"H": 0.15, "M": 0.15, "L": 0.1}


@dataclass(frozen=True, slots=True)
class Scan:
    """What a description says on its own, before its HS code is known.

    ``text`` is the description in canonical form, the text hits' spans are cut from;
    ``tokens`` its tokens as the name search corrected them.
    """

    text: str
    names: tuple[NameHit, ...]
    cas: tuple[CasHit, ...]
    tokens: frozenset[str]


def line_match(
    items: tuple[Item, ...],
    codes: CodeIndex,
    scan: Scan,
    hs_code: str,
    cas_numbers: tuple[str, ...],
) -> LineMatch:
    """Every hit of one goods line, strongest first (the strongest per entry and match type),
    its mismatches, and its declared CAS numbers that are not valid."""
    hs_shown = canonical_text(hs_code)
    digits = hs_digits(canonical_hs(hs_code))
    chapter = digits[:2] if len(digits) >= 2 else ""
    hits: dict[tuple[int, str], Hit] = {}

    def add(
        item: int, match_type: MatchType, text: str, similarity: float, strength: float
    ) -> None:
        key = (item, match_type)
        old = hits.get(key)
        if old is None or (strength, similarity) > (old.strength, old.similarity):
            entry = items[item]
            hits[key] = Hit(
                entry.id, entry.name, match_type, text, round(similarity, 4), round(strength, 4)
            )

    cas_items: dict[int, str] = {}
    invalid: dict[str, None] = {}
    for raw in cas_numbers:
        reading = read_cas(raw)
        if not reading.text:
            continue
        if not reading.valid:
            invalid[reading.text] = None
            continue
        found = codes.cas(reading.text)
        if found is not None:
            add(found[0], "cas", reading.text, 1.0, _CAS_STRENGTH[found[1]])
            cas_items.setdefault(found[0], reading.text)
    for item, text, confidence in scan.cas:
        add(item, "cas", text, 1.0, _CAS_STRENGTH[confidence])
        cas_items.setdefault(item, text)

    named: set[int] = set()
    for name_hit in scan.names:
        it = items[name_hit.item]
        strength = _ABBREVIATION_STRENGTH if name_hit.abbreviation else _NAME_STRENGTH
        if name_hit.fuzzy:
            strength = _FUZZY_STRENGTH * name_hit.similarity
        benign = chapter in it.benign_chapters or not it.benign_words.isdisjoint(scan.tokens)
        if benign:
            strength *= _BENIGN_FACTOR
        elif strength >= EVIDENCE_THRESHOLD:
            named.add(name_hit.item)
        add(
            name_hit.item,
            "name_fuzzy" if name_hit.fuzzy else "name_exact",
            name_hit.text,
            name_hit.similarity,
            strength,
        )

    specific: set[int] = set()
    for item, specificity, confidence in codes.hs_hits(digits):
        if specificity == "specific":
            strength = _HS_SPECIFIC_STRENGTH[confidence]
            if strength >= EVIDENCE_THRESHOLD:
                specific.add(item)
            add(item, "hs_specific", hs_shown, 1.0, strength)
        else:
            add(item, "hs_broad", hs_shown, 1.0, _HS_BROAD_STRENGTH[confidence])

    mismatches = line_mismatches(items, hs_shown, chapter, scan.text, cas_items, named, specific)
    ordered = sorted(
        hits.values(),
        key=lambda h: (-h.strength, MATCH_TYPES.index(h.match_type), h.entry_id),
    )
    return LineMatch(tuple(ordered), tuple(mismatches), tuple(invalid))
