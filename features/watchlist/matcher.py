"""Find watched chemicals and equipment in goods lines: by CAS, by HS code and by name.

One immutable :class:`Watchlist` serves both the live path (:meth:`Watchlist.match_line`, one
goods line) and the bulk path (:meth:`Watchlist.match_goods`, a canonical goods table); the bulk
path calls the same per-line code, so both give identical hits.

Disguised writings
  Every input is read in the project's canonical form (:mod:`features.canonical`), so writings
  that differ only in script, invisible characters, dashes or spacing give the same hits: the
  HS code through ``canonical_hs`` (``2933.37``, ``２９３３ ３７``), declared CAS numbers through
  ``read_cas`` (``039742-60-4``, ``39742604``, Arabic-Indic digits) and descriptions through
  ``canonical_name`` (Cyrillic and Greek look-alike letters, zero-width characters, soft
  hyphens). ``matched_text`` is cut from that canonical text. A declared CAS number that is not
  a valid CAS number never hits; it is reported in :attr:`LineMatch.invalid_cas`.

How names are found
  Descriptions and names are normalised the same way (:mod:`features.watchlist.text`) and
  joined with single spaces; every name variant is a key ``" tok tok "`` in one Aho-Corasick
  automaton, so one pass over a description finds every whole-token occurrence of every name.
  Short abbreviations (NPP, PAA) are therefore only ever whole words. Overlaps resolve
  chemically: the longer name wins (``1-boc-4-piperidone`` is not also ``4-piperidone``), and a
  span inside a *not-name* (``1-methyl-4-piperidone``) counts for nothing.

How split words are found
  A watched word cut in two or three by spaces or hyphens ("piper idine", "4-anilinopiper
  idine") is joined back before the automaton runs, when the pieces joined are a watched word
  and the first piece alone is not a word of any name; the joined token spans the pieces and is
  an exact match.

How misspellings are found
  A token that is neither a watched-name token nor a protected ordinary word
  (:mod:`features.watchlist.lexicon`) is compared, with rapidfuzz, against the watched tokens
  that share its first letter (ph = f) and have a similar length; within a small edit distance
  it is replaced before the automaton runs. Corrections that change a chemical suffix class
  (-ol vs -ane) or only add or drop a leading part (dimethylformamide vs methylformamide,
  ethylamine vs methylamine) are refused: those are different substances, not typos.

Substituted derivatives
  IUPAC names put substituents before the parent and functional suffixes after it, so a
  watched name directly preceded by a substituent word ("1-methyl-4-piperidone",
  "N-methyl piperidine") or followed by a locant and a functional suffix
  ("piperidine-4-carboxylic acid") names a different substance and is not a hit, unless a
  longer watched name covers the whole phrase.

Evidence strength
  Every hit carries ``similarity`` (how closely the text matches the name) and ``strength``
  (how much the hit identifies the item: a CAS is near-certain, a broad HS line like 2933.39 is
  weak, an abbreviation is weaker than a full name, and a name in its benign context such as
  "aniline dye" on a textile line is weak). Hits at or above :data:`EVIDENCE_THRESHOLD` are
  identifications; weaker ones are context for the model.

Repeated descriptions, HS codes and whole lines are cached: manifests repeat them heavily.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, TypeVar

import ahocorasick
import polars as pl
from rapidfuzz import process
from rapidfuzz.distance import Levenshtein

from features.canonical import canonical_hs, canonical_name, canonical_text, read_cas
from features.errors import DataError
from features.watchlist.cas import find_cas
from features.watchlist.lexicon import PROTECTED_WORDS
from features.watchlist.match_types import MATCH_TYPES, MatchType
from features.watchlist.schema import Confidence, Entry, WatchlistSpec
from features.watchlist.text import normalize_name, normalize_token, tokenize_canonical

MismatchKind = Literal[
    "cas_under_other_hs",
    "cas_under_benign_description",
    "name_under_other_hs",
    "hs_specific_under_benign_description",
]

EVIDENCE_THRESHOLD = 0.5
"""Hits with at least this strength identify the item; weaker hits are context only."""

_NAME_STRENGTH = 0.95
_ABBREVIATION_STRENGTH = 0.8
_FUZZY_STRENGTH = 0.9
_BENIGN_FACTOR = 0.3
_CAS_STRENGTH: dict[Confidence, float] = {"H": 1.0, "M": 1.0, "L": 0.8}
_HS_SPECIFIC_STRENGTH: dict[Confidence, float] = {"H": 0.85, "M": 0.8, "L": 0.6}
_HS_BROAD_STRENGTH: dict[Confidence, float] = {"H": 0.15, "M": 0.15, "L": 0.1}
_DEFAULT_CHAPTERS = {"substance": frozenset({"28", "29", "38"}), "equipment": frozenset({"84"})}
_LEADING_LOCANTS = ("1", "n")
_MIN_FUZZY_LEN = 5
_MIN_FUZZY_SIMILARITY = 0.8
_CACHE_LIMIT = 100_000
_SUFFIX_CLASSES: tuple[tuple[str, str], ...] = (
    ("nitrile", "nitrile"),
    ("nitrilo", "nitrile"),
    ("amide", "amide"),
    ("amida", "amide"),
    ("amine", "amine"),
    ("amina", "amine"),
    ("ol", "ol"),
    ("one", "one"),
    ("ona", "one"),
    ("ine", "ine"),
    ("ina", "ine"),
    ("ane", "ane"),
    ("ano", "ane"),
    ("ene", "ene"),
    ("eno", "ene"),
    ("ide", "ide"),
    ("uro", "ide"),
    ("ate", "ate"),
    ("ato", "ate"),
    ("ite", "ite"),
    ("ito", "ite"),
    ("yl", "yl"),
    ("ilo", "yl"),
    ("ic", "ic"),
    ("ico", "ic"),
    ("al", "al"),
)

_SUBSTITUENT_WORDS = frozenset(
    {"metil", "etil", "propil", "butil", "bencil", "fenil", "acetil", "tosil", "boc", "cbz", "fmoc"}
)
_DERIVATIVE_SUFFIXES = frozenset(
    {
        "carboxylic",
        "carboxylate",
        "carboxamide",
        "carbonitrile",
        "carbaldehyde",
        "carboxaldehyde",
        "carboxilico",
        "carboxilato",
        "sulfonic",
        "sulfonate",
        "ol",
        "amine",
        "amina",
        "methanol",
        "ethanol",
        "ylmethanol",
        "acetic",
        "yl",
        "one",
        "ona",
    }
)

_ROLE_NAME = 0
_ROLE_ABBREVIATION = 1
_ROLE_NOT_NAME = 2


@dataclass(frozen=True, slots=True)
class Hit:
    """One piece of evidence that a goods line involves a watched item.

    ``matched_text`` is the span as written in the input, in canonical form (the canonical CAS
    number, the HS code as written less invisible characters, or the words of the description
    with look-alike letters folded); ``similarity`` is 1.0 for exact matches; ``strength`` is
    the evidence weight in [0, 1] described in the module docstring.
    """

    entry_id: str
    name: str
    match_type: MatchType
    matched_text: str
    similarity: float
    strength: float


@dataclass(frozen=True, slots=True)
class Mismatch:
    """A line whose parts disagree: e.g. a watched CAS under an unrelated HS chapter."""

    entry_id: str
    kind: MismatchKind
    detail: str


@dataclass(frozen=True, slots=True)
class LineMatch:
    """Everything the watchlist found on one goods line, strongest hits first.

    ``invalid_cas`` holds the declared CAS numbers (canonical text, in declared order, without
    repeats) that are not valid CAS numbers: the check digit fails or the text is not shaped
    like a CAS number. They never produce a hit; a broken identifier on a chemical line is a
    signal of its own. ``read_cas`` on one of them gives the reason.
    """

    hits: tuple[Hit, ...] = ()
    mismatches: tuple[Mismatch, ...] = ()
    invalid_cas: tuple[str, ...] = ()

    def identified(self, threshold: float = EVIDENCE_THRESHOLD) -> frozenset[str]:
        """Entry ids with at least one hit of ``threshold`` strength or more."""
        return frozenset(h.entry_id for h in self.hits if h.strength >= threshold)


def _empty_invalid_cas() -> pl.DataFrame:
    return pl.DataFrame(schema=INVALID_CAS_SCHEMA)


@dataclass(frozen=True, slots=True)
class GoodsMatches:
    """Bulk results: one row per hit, per mismatch and per invalid declared CAS number, keyed by
    shipment and line (``invalid_cas``: see ``INVALID_CAS_SCHEMA``)."""

    hits: pl.DataFrame
    mismatches: pl.DataFrame
    invalid_cas: pl.DataFrame = field(default_factory=_empty_invalid_cas)


HITS_SCHEMA: dict[str, pl.DataType] = {
    "shipment_id": pl.String(),
    "line_no": pl.Int32(),
    "entry_id": pl.String(),
    "name": pl.String(),
    "match_type": pl.String(),
    "matched_text": pl.String(),
    "similarity": pl.Float64(),
    "strength": pl.Float64(),
}

MISMATCHES_SCHEMA: dict[str, pl.DataType] = {
    "shipment_id": pl.String(),
    "line_no": pl.Int32(),
    "entry_id": pl.String(),
    "kind": pl.String(),
    "detail": pl.String(),
}

INVALID_CAS_SCHEMA: dict[str, pl.DataType] = {
    "shipment_id": pl.String(),
    "line_no": pl.Int32(),
    "cas": pl.String(),
    "status": pl.String(),
}
"""One row per declared CAS number that is not valid: its canonical text and ``read_cas``
status (``check_digit``: shaped like a CAS but the check digit fails; ``shape``: not a CAS)."""


@dataclass(frozen=True, slots=True)
class _Item:
    id: str
    name: str
    label: str
    chapters: frozenset[str]
    benign_chapters: frozenset[str]
    benign_words: frozenset[str]


@dataclass(frozen=True, slots=True)
class _NameHit:
    item: int
    fuzzy: bool
    abbreviation: bool
    text: str
    similarity: float


@dataclass(frozen=True, slots=True)
class _Scan:
    """What a description says on its own, before its HS code is known.

    ``text`` is the description in canonical form, the text hits' spans are cut from.
    """

    text: str
    names: tuple[_NameHit, ...]
    cas: tuple[tuple[int, str, Confidence], ...]
    tokens: frozenset[str]


_K = TypeVar("_K")
_V = TypeVar("_V")


class _BoundedCache(dict[_K, _V]):
    """A dict that empties itself when full: cheap, and manifests reuse recent keys."""

    def put(self, key: _K, value: _V) -> None:
        if len(self) >= _CACHE_LIMIT:
            self.clear()
        self[key] = value


def _common_prefix(a: str, b: str) -> int:
    n = 0
    for x, y in zip(a, b, strict=False):
        if x != y:
            break
        n += 1
    return n


def _suffix_class(token: str) -> str | None:
    for suffix, cls in _SUFFIX_CLASSES:
        if token.endswith(suffix):
            return cls
    return None


def _first_key(token: str) -> str:
    return "f" if token.startswith("ph") else token[0]


def _max_edits(length: int) -> int:
    if length < 8:
        return 1
    if length < 12:
        return 2
    return 3


_JOIN_GAP = re.compile(r"[\s._-]{1,3}")
_FUNCTION_WORDS = frozenset({"de", "del", "of", "and", "y", "for", "para", "con", "with"})


def _variants(tokens: tuple[str, ...], *, abbreviation: bool) -> set[tuple[str, ...]]:
    """Spelling variants a name is also written as: locant swaps and glued words.

    Gluing is limited to short names: for long systematic names it would invent tokens
    ("phenethylpiperidin") that shadow the fuzzy correction of real misspellings.
    """
    out = {tokens}
    if abbreviation:
        return out
    if len(tokens) > 2 and tokens[0] in _LEADING_LOCANTS and tokens[1].isalpha():
        rest = tokens[1:]
        out |= {rest, *((loc, *rest) for loc in _LEADING_LOCANTS)}
    glued: set[tuple[str, ...]] = set()
    for variant in out:
        if len(variant) > 3:
            continue
        joints = [
            i
            for i in range(len(variant) - 1)
            if variant[i].isalpha()
            and variant[i + 1].isalpha()
            and not {variant[i], variant[i + 1]} & _FUNCTION_WORDS
        ]
        if not joints:
            continue
        for mask in range(1, 1 << len(joints)):
            chosen = {joints[b] for b in range(len(joints)) if mask >> b & 1}
            merged: list[str] = []
            for i, tok in enumerate(variant):
                if i - 1 in chosen:
                    merged[-1] += tok
                else:
                    merged.append(tok)
            glued.add(tuple(merged))
    return out | glued


def _key(tokens: Iterable[str]) -> str:
    return " " + " ".join(tokens) + " "


def _hs_digits(code: str) -> str:
    return "".join(ch for ch in code if ch.isdigit())


_HsHits = tuple[tuple[int, str, Confidence], ...]
_LineKey = tuple[str, str, tuple[str, ...]]


@dataclass(frozen=True, eq=False)
class Watchlist:
    """A compiled, immutable watchlist. Build it with :meth:`from_spec` or ``load_watchlist``."""

    spec: WatchlistSpec
    _items: tuple[_Item, ...] = field(repr=False)
    _automaton: Any = field(repr=False)
    _cas_index: dict[str, tuple[int, Confidence]] = field(repr=False)
    _hs_index: dict[str, tuple[tuple[int, str, Confidence], ...]] = field(repr=False)
    _hs_lengths: tuple[int, ...] = field(repr=False)
    _vocabulary: frozenset[str] = field(repr=False)
    _protected: frozenset[str] = field(repr=False)
    _fuzzy_blocks: dict[tuple[str, int], tuple[str, ...]] = field(repr=False)
    _pattern_tokens: dict[str, int] = field(repr=False)
    _name_words: frozenset[str] = field(repr=False)
    _join_targets: frozenset[str] = field(repr=False)
    _join_heads: frozenset[str] = field(repr=False)
    _entries: dict[str, Entry] = field(repr=False)
    _scan_cache: _BoundedCache[str, _Scan] = field(default_factory=_BoundedCache, repr=False)
    _hs_cache: _BoundedCache[str, _HsHits] = field(default_factory=_BoundedCache, repr=False)
    _line_cache: _BoundedCache[_LineKey, LineMatch] = field(
        default_factory=_BoundedCache, repr=False
    )
    _fix_cache: _BoundedCache[str, tuple[str, int]] = field(
        default_factory=_BoundedCache, repr=False
    )

    # ------------------------------------------------------------------ construction

    @classmethod
    def from_spec(cls, spec: WatchlistSpec) -> Watchlist:
        """Compile a validated spec: name automaton, CAS index, HS index, fuzzy vocabulary."""
        items: list[_Item] = []
        patterns: dict[str, list[tuple[int, int]]] = {}
        vocabulary: set[str] = set()
        protected: set[str] = set(PROTECTED_WORDS)
        name_words: set[str] = set()
        join_targets: set[str] = set()
        cas_index: dict[str, tuple[int, Confidence]] = {}
        hs_index: dict[str, list[tuple[int, str, Confidence]]] = {}
        for index, entry in enumerate(spec.entries):
            items.append(_compile_item(entry))
            named = [(n, _ROLE_NAME) for n in (entry.name, *entry.synonyms)]
            named += [(n, _ROLE_ABBREVIATION) for n in entry.abbreviations]
            named += [(n, _ROLE_NOT_NAME) for n in entry.not_names]
            for name, role in named:
                tokens = normalize_name(name)
                for variant in _variants(tokens, abbreviation=role == _ROLE_ABBREVIATION):
                    roles = patterns.setdefault(_key(variant), [])
                    if (index, role) not in roles:
                        roles.append((index, role))
                    words = {t for t in variant if t.isalpha()}
                    if role == _ROLE_NAME:
                        vocabulary |= {t for t in words if len(t) >= _MIN_FUZZY_LEN}
                    if role != _ROLE_ABBREVIATION:
                        join_targets |= {t for t in words if len(t) >= _MIN_FUZZY_LEN}
                    name_words |= words
                    protected |= words
            protected |= {
                normalize_name(w)[0] for w in entry.benign_context.words if normalize_name(w)
            }
            for cas in entry.cas:
                cas_index[read_cas(cas.number).text] = (index, cas.confidence)
            for hs in entry.hs:
                hs_index.setdefault(hs.code, []).append((index, hs.specificity, hs.confidence))
        automaton = ahocorasick.Automaton()
        pattern_tokens: dict[str, int] = {}
        for key, roles in patterns.items():
            n_tokens = key.count(" ") - 1
            automaton.add_word(key, (len(key), n_tokens, tuple(roles)))
            pattern_tokens[key] = n_tokens
        automaton.make_automaton()
        blocks: dict[tuple[str, int], list[str]] = {}
        for word in sorted(vocabulary):
            blocks.setdefault((_first_key(word), len(word)), []).append(word)
        return cls(
            spec=spec,
            _items=tuple(items),
            _automaton=automaton,
            _cas_index=cas_index,
            _hs_index={k: tuple(v) for k, v in hs_index.items()},
            _hs_lengths=tuple(sorted({len(k) for k in hs_index}, reverse=True)),
            _vocabulary=frozenset(vocabulary),
            _protected=frozenset(protected - vocabulary),
            _fuzzy_blocks={k: tuple(v) for k, v in blocks.items()},
            _pattern_tokens=pattern_tokens,
            _name_words=frozenset(name_words),
            _join_targets=frozenset(join_targets),
            _join_heads=frozenset(w[:k] for w in join_targets for k in range(1, len(w))),
            _entries={entry.id: entry for entry in spec.entries},
        )

    # ------------------------------------------------------------------ public API

    @property
    def version(self) -> str:
        return self.spec.version

    @property
    def entry_ids(self) -> tuple[str, ...]:
        return tuple(item.id for item in self._items)

    def entry(self, entry_id: str) -> Entry:
        """The full data-file entry for ``entry_id`` (lists, dates, sources)."""
        return self._entries[entry_id]

    @property
    def route_families(self) -> dict[str, str]:
        """Entry id -> its synthesis route family."""
        return {entry_id: entry.route_family for entry_id, entry in self._entries.items()}

    def match_line(
        self, hs_code: str, description: str, cas_numbers: Sequence[str] = ()
    ) -> LineMatch:
        """Match one goods line: its HS code, free-text description and declared CAS numbers.

        Any writing of the three that is equivalent in canonical form gives the same hits (see
        "Disguised writings" in the module docstring); ``matched_text`` is cut from the canonical
        text.
        """
        key = (hs_code, description, tuple(cas_numbers))
        cached = self._line_cache.get(key)
        if cached is None:
            cached = self._match(hs_code or "", description or "", key[2])
            self._line_cache.put(key, cached)
        return cached

    def match_goods(self, goods: pl.DataFrame, *, min_strength: float = 0.0) -> pl.DataFrame:
        """One row per hit in a canonical goods table (see ``HITS_SCHEMA``)."""
        return self.match_goods_full(goods, min_strength=min_strength).hits

    def goods_mismatches(self, goods: pl.DataFrame) -> pl.DataFrame:
        """One row per mismatch signal in a canonical goods table (see ``MISMATCHES_SCHEMA``)."""
        return self.match_goods_full(goods).mismatches

    def match_goods_full(self, goods: pl.DataFrame, *, min_strength: float = 0.0) -> GoodsMatches:
        """Hits, mismatches and invalid declared CAS numbers of every line of a goods table."""
        required = ("shipment_id", "line_no", "hs_code", "description", "cas_numbers")
        missing = [c for c in required if c not in goods.columns]
        if missing:
            raise DataError(f"goods table lacks columns {missing} needed for watchlist matching")
        hit_cols: dict[str, list[Any]] = {name: [] for name in HITS_SCHEMA}
        mis_cols: dict[str, list[Any]] = {name: [] for name in MISMATCHES_SCHEMA}
        bad_cols: dict[str, list[Any]] = {name: [] for name in INVALID_CAS_SCHEMA}
        cache = self._line_cache
        empty: tuple[str, ...] = ()
        for shipment_id, line_no, hs, desc, cas in zip(
            goods.get_column("shipment_id").to_list(),
            goods.get_column("line_no").to_list(),
            goods.get_column("hs_code").to_list(),
            goods.get_column("description").to_list(),
            goods.get_column("cas_numbers").to_list(),
            strict=True,
        ):
            key = (hs, desc, tuple(cas) if cas else empty)
            found = cache.get(key)
            if found is None:
                found = self._match(hs or "", desc or "", key[2])
                cache.put(key, found)
            if not found.hits and not found.mismatches and not found.invalid_cas:
                continue
            for hit in found.hits:
                if hit.strength < min_strength:
                    continue
                hit_cols["shipment_id"].append(shipment_id)
                hit_cols["line_no"].append(line_no)
                hit_cols["entry_id"].append(hit.entry_id)
                hit_cols["name"].append(hit.name)
                hit_cols["match_type"].append(hit.match_type)
                hit_cols["matched_text"].append(hit.matched_text)
                hit_cols["similarity"].append(hit.similarity)
                hit_cols["strength"].append(hit.strength)
            for mismatch in found.mismatches:
                mis_cols["shipment_id"].append(shipment_id)
                mis_cols["line_no"].append(line_no)
                mis_cols["entry_id"].append(mismatch.entry_id)
                mis_cols["kind"].append(mismatch.kind)
                mis_cols["detail"].append(mismatch.detail)
            for number in found.invalid_cas:
                bad_cols["shipment_id"].append(shipment_id)
                bad_cols["line_no"].append(line_no)
                bad_cols["cas"].append(number)
                bad_cols["status"].append(read_cas(number).status)
        return GoodsMatches(
            hits=pl.DataFrame(hit_cols, schema=HITS_SCHEMA),
            mismatches=pl.DataFrame(mis_cols, schema=MISMATCHES_SCHEMA),
            invalid_cas=pl.DataFrame(bad_cols, schema=INVALID_CAS_SCHEMA),
        )

    def normalize(self, text: str) -> str:
        """The description as the name matcher sees it, split words joined, fuzzy corrections
        applied."""
        canon = canonical_name(text)
        tokens, _, _ = self._join_split_words(canon, *tokenize_canonical(canon))
        return " ".join(self._fix(t)[0] for t in tokens)

    # ------------------------------------------------------------------ per line

    def _match(self, hs_code: str, description: str, cas_numbers: tuple[str, ...]) -> LineMatch:
        scan = self._scan(description)
        hs_shown = canonical_text(hs_code)
        hs_digits = _hs_digits(canonical_hs(hs_code))
        chapter = hs_digits[:2] if len(hs_digits) >= 2 else ""
        hits: dict[tuple[int, str], Hit] = {}

        def add(
            item: int, match_type: MatchType, text: str, similarity: float, strength: float
        ) -> None:
            key = (item, match_type)
            old = hits.get(key)
            if old is None or (strength, similarity) > (old.strength, old.similarity):
                entry = self._items[item]
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
            found = self._cas_index.get(reading.text)
            if found is not None:
                add(found[0], "cas", reading.text, 1.0, _CAS_STRENGTH[found[1]])
                cas_items.setdefault(found[0], reading.text)
        for item, text, confidence in scan.cas:
            add(item, "cas", text, 1.0, _CAS_STRENGTH[confidence])
            cas_items.setdefault(item, text)

        named: set[int] = set()
        for name_hit in scan.names:
            it = self._items[name_hit.item]
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
        for item, specificity, confidence in self._hs_hits(hs_digits):
            if specificity == "specific":
                strength = _HS_SPECIFIC_STRENGTH[confidence]
                if strength >= EVIDENCE_THRESHOLD:
                    specific.add(item)
                add(item, "hs_specific", hs_shown, 1.0, strength)
            else:
                add(item, "hs_broad", hs_shown, 1.0, _HS_BROAD_STRENGTH[confidence])

        mismatches = self._mismatches(hs_shown, chapter, scan.text, cas_items, named, specific)
        ordered = sorted(
            hits.values(),
            key=lambda h: (-h.strength, MATCH_TYPES.index(h.match_type), h.entry_id),
        )
        return LineMatch(tuple(ordered), tuple(mismatches), tuple(invalid))

    def _mismatches(
        self,
        hs_code: str,
        chapter: str,
        description: str,
        cas_items: dict[int, str],
        named: set[int],
        specific: set[int],
    ) -> list[Mismatch]:
        out: list[Mismatch] = []
        shown = description if len(description) <= 60 else description[:57] + "..."
        for item, cas in cas_items.items():
            it = self._items[item]
            if chapter and chapter not in it.chapters:
                out.append(
                    Mismatch(
                        it.id,
                        "cas_under_other_hs",
                        f"CAS {cas} is {it.label}, but the line is declared under HS {hs_code} "
                        f"(chapter {chapter}); {it.label} belongs in chapter "
                        f"{'/'.join(sorted(it.chapters))}",
                    )
                )
            if item not in named:
                out.append(
                    Mismatch(
                        it.id,
                        "cas_under_benign_description",
                        f"CAS {cas} is {it.label}, but the description ({shown!r}) "
                        "does not name it",
                    )
                )
        for item in sorted(named):
            it = self._items[item]
            if chapter and chapter not in it.chapters:
                out.append(
                    Mismatch(
                        it.id,
                        "name_under_other_hs",
                        f"the description names {it.label}, but the line is declared under HS "
                        f"{hs_code} (chapter {chapter}); expected chapter "
                        f"{'/'.join(sorted(it.chapters))}",
                    )
                )
        for item in sorted(specific - named - set(cas_items)):
            it = self._items[item]
            out.append(
                Mismatch(
                    it.id,
                    "hs_specific_under_benign_description",
                    f"HS {hs_code} is specific to {it.label}, but the description ({shown!r}) "
                    "does not name it",
                )
            )
        return out

    def _hs_hits(self, digits: str) -> tuple[tuple[int, str, Confidence], ...]:
        cached = self._hs_cache.get(digits)
        if cached is not None:
            return cached
        best: dict[int, tuple[int, str, Confidence]] = {}
        for length in self._hs_lengths:
            if len(digits) < length:
                continue
            for item, specificity, confidence in self._hs_index.get(digits[:length], ()):
                best.setdefault(item, (item, specificity, confidence))
        result = tuple(best.values())
        self._hs_cache.put(digits, result)
        return result

    # ------------------------------------------------------------------ per description

    def _scan(self, description: str) -> _Scan:
        cached = self._scan_cache.get(description)
        if cached is None:
            cached = self._scan_uncached(description)
            self._scan_cache.put(description, cached)
        return cached

    def _scan_uncached(self, description: str) -> _Scan:
        canon = canonical_name(description)
        cas_hits = []
        for number, _, _ in find_cas(canon):
            found = self._cas_index.get(number)
            if found is not None:
                cas_hits.append((found[0], number, found[1]))
        raw = tokenize_canonical(canon)
        tokens, starts, ends = self._join_split_words(canon, *raw)
        if not tokens:
            return _Scan(canon, (), tuple(cas_hits), frozenset())
        kept, fixed = self._names(canon, tokens, starts, ends)
        # A name word followed by the rest of a glued name ("4-anilino-1-phenethyl
        # piperidine", "N-phenyl piperidin-4-amine") is joined in a second reading; the
        # stronger hit of the two readings per entry is kept.
        joined = self._join_split_words(canon, *raw, heads_in_names=True)
        if joined[0] != tokens:
            for item, hit in self._names(canon, *joined)[0].items():
                old = kept.get(item)
                if old is None or _rank(hit) > _rank(old):
                    kept[item] = hit
        return _Scan(canon, tuple(kept.values()), tuple(cas_hits), frozenset(fixed))

    def _names(
        self, canon: str, tokens: list[str], starts: list[int], ends: list[int]
    ) -> tuple[dict[int, _NameHit], list[str]]:
        """Name hits of one reading of a description's tokens, and the tokens as corrected."""
        fixed: list[str] = []
        edits: list[int] = []
        for token in tokens:
            word, distance = self._fix(token)
            fixed.append(word)
            edits.append(distance)
        text = _key(fixed)
        token_at: dict[int, int] = {}
        pos = 1
        for i, word in enumerate(fixed):
            token_at[pos] = i
            pos += len(word) + 1
        spans: list[tuple[int, int, int, int]] = []
        for end, (length, n_tokens, roles) in self._automaton.iter(text):
            first = token_at[end - length + 2]
            last = first + n_tokens - 1
            for item, role in roles:
                spans.append((first, last, item, role))
        kept: dict[int, _NameHit] = {}
        if not spans:
            return kept, fixed
        blocked = [(lo, hi) for lo, hi, _, role in spans if role == _ROLE_NOT_NAME]
        positive = [
            s
            for s in spans
            if s[3] != _ROLE_NOT_NAME and not any(lo <= s[0] and s[1] <= hi for lo, hi in blocked)
        ]
        survivors = [s for s in positive if not _overridden(s, positive)]
        covered = {i for first, last, _, _ in survivors for i in range(first, last + 1)}
        for first, last, item, role in survivors:
            if _substituted(fixed, first, last, covered):
                continue
            distance = sum(edits[first : last + 1])
            if distance:
                letters = sum(len(w) for w in fixed[first : last + 1])
                similarity = max(0.0, 1.0 - distance / max(letters, 1))
            else:
                similarity = 1.0
            hit = _NameHit(
                item,
                distance > 0,
                role == _ROLE_ABBREVIATION,
                canon[starts[first] : ends[last]],
                similarity,
            )
            old = kept.get(item)
            if old is None or _rank(hit) > _rank(old):
                kept[item] = hit
        return kept, fixed

    def _join_split_words(
        self,
        text: str,
        tokens: list[str],
        starts: list[int],
        ends: list[int],
        *,
        heads_in_names: bool = False,
    ) -> tuple[list[str], list[int], list[int]]:
        """Tokens with a watched word cut into 2-3 pieces joined back ("piper idine").

        Pieces are joined when they are letters, only spaces, hyphens, dots or underscores
        separate them, and what they spell is a word of a name or not-name. Unless
        ``heads_in_names``, the first piece must not itself be a word of any name (so
        "phenethyl piperidone" keeps its two words in the first reading).
        """
        n = len(tokens)
        if n < 2 or self._join_heads.isdisjoint(tokens[:-1]):
            return tokens, starts, ends
        out: tuple[list[str], list[int], list[int]] = ([], [], [])
        i = 0
        while i < n:
            width, word = 1, tokens[i]
            head = tokens[i]
            if head in self._join_heads and (heads_in_names or head not in self._name_words):
                for w in (3, 2):
                    joined = (
                        self._joined(text, tokens, starts, ends, i, i + w) if i + w <= n else None
                    )
                    if joined is not None:
                        width, word = w, joined
                        break
            out[0].append(word)
            out[1].append(starts[i])
            out[2].append(ends[i + width - 1])
            i += width
        return out

    def _joined(
        self, text: str, tokens: list[str], starts: list[int], ends: list[int], lo: int, hi: int
    ) -> str | None:
        """The watched word ``tokens[lo:hi]`` spell when joined, or ``None``.

        The pieces are tried as normalised and as written, since a piece alone may normalise
        differently from the glued word ("fenetil" reads "phenethyl", "fenetilpiperidina"
        does not)."""
        pieces = tokens[lo:hi]
        if not all(p.isalpha() for p in pieces):
            return None
        gaps = (text[ends[k] : starts[k + 1]] for k in range(lo, hi - 1))
        if not all(_JOIN_GAP.fullmatch(gap) is not None for gap in gaps):
            return None
        for word in (
            "".join(pieces),
            normalize_token("".join(text[starts[k] : ends[k]] for k in range(lo, hi))),
        ):
            if word in self._join_targets:
                return word
        return None

    def _fix(self, token: str) -> tuple[str, int]:
        """The watched token ``token`` is a misspelling of, with the edit distance; else itself."""
        if (
            len(token) < _MIN_FUZZY_LEN
            or token in self._vocabulary
            or token in self._protected
            or not token.isalpha()
        ):
            return token, 0
        cached = self._fix_cache.get(token)
        if cached is not None:
            return cached
        result = self._fix_uncached(token)
        self._fix_cache.put(token, result)
        return result

    def _fix_uncached(self, token: str) -> tuple[str, int]:
        limit = _max_edits(len(token))
        key = _first_key(token)
        candidates: list[str] = []
        for length in range(len(token) - limit, len(token) + limit + 1):
            candidates.extend(self._fuzzy_blocks.get((key, length), ()))
        if not candidates:
            return token, 0
        found = process.extract(
            token, candidates, scorer=Levenshtein.distance, score_cutoff=limit, limit=None
        )
        if not found:
            return token, 0
        word, distance = min(
            ((w, int(d)) for w, d, _ in found),
            key=lambda wd: (wd[1], -_common_prefix(token, wd[0]), abs(len(wd[0]) - len(token))),
        )
        if distance > _max_edits(len(word)):
            return token, 0
        if 1.0 - distance / max(len(word), len(token)) < _MIN_FUZZY_SIMILARITY:
            return token, 0
        if word.endswith(token) or token.endswith(word):
            return token, 0
        ours, theirs = _suffix_class(token), _suffix_class(word)
        if ours and theirs and ours != theirs:
            return token, 0
        return word, distance


def _overridden(span: tuple[int, int, int, int], spans: list[tuple[int, int, int, int]]) -> bool:
    """Whether a longer name of another entry covers ``span``, or overlaps it from the left.

    The longer name is the more specific substance; in a partial overlap the earlier name wins
    because chemical prefixes qualify what follows ("pseudo ephedrine sulphate").
    """
    first, last, item, _ = span
    for o_first, o_last, o_item, _ in spans:
        if o_item == item or (o_first, o_last) == (first, last):
            continue
        if o_first <= first and last <= o_last:
            return True
        if o_first < first <= o_last < last:
            return True
    return False


def _substituted(tokens: list[str], first: int, last: int, covered: set[int]) -> bool:
    """Whether the name at tokens[first..last] is the parent of a substituted derivative."""
    before = first - 1
    if before >= 0 and before not in covered:
        word = tokens[before]
        if (word.endswith("yl") and len(word) > 3) or word in _SUBSTITUENT_WORDS:
            return True
    after = last + 1
    while after < len(tokens) and tokens[after].isdigit():
        after += 1
    return after > last + 1 and after < len(tokens) and tokens[after] in _DERIVATIVE_SUFFIXES


def _rank(hit: _NameHit) -> tuple[bool, bool, float, int]:
    return (not hit.abbreviation, not hit.fuzzy, hit.similarity, len(hit.text))


def _compile_item(entry: Entry) -> _Item:
    chapters = frozenset(hs.code[:2] for hs in entry.hs) or _DEFAULT_CHAPTERS[entry.kind]
    short = entry.abbreviations[0] if entry.abbreviations else None
    label = f"{short} ({entry.name})" if short and short not in entry.name else entry.name
    words = frozenset(t for w in entry.benign_context.words for t in normalize_name(w))
    return _Item(
        id=entry.id,
        name=entry.name,
        label=label,
        chapters=chapters,
        benign_chapters=frozenset(entry.benign_context.hs_chapters),
        benign_words=words,
    )
