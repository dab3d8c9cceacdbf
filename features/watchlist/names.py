"""Watched names in free-text descriptions: one Aho-Corasick pass, split words, misspellings.

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
  See :mod:`features.watchlist.spelling`: a token within a small edit distance of a watched
  word is replaced by it before the automaton runs, and the hit is a fuzzy one.

Substituted derivatives
  IUPAC names put substituents before the parent and functional suffixes after it, so a
  watched name directly preceded by a substituent word ("1-methyl-4-piperidone",
  "N-methyl piperidine") or followed by a locant and a functional suffix
  ("piperidine-4-carboxylic acid") names a different substance and is not a hit, unless a
  longer watched name covers the whole phrase.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import ahocorasick

from features.watchlist.lexicon import PROTECTED_WORDS
from features.watchlist.schema import Entry
from features.watchlist.spelling import MIN_FUZZY_LEN, Speller
from features.watchlist.text import normalize_name, normalize_token, tokenize_canonical

_ROLE_NAME = 0
_ROLE_ABBREVIATION = 1
_ROLE_NOT_NAME = 2

_LEADING_LOCANTS = ("1", "n")
_JOIN_GAP = re.compile(r"[\s._-]{1,3}")
_FUNCTION_WORDS = frozenset({"de", "del", "of", "and", "y", "for", "para", "con", "with"})
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

_Span = tuple[int, int, int, int]  # first token, last token, entry index, role


@dataclass(frozen=True, slots=True)
class NameHit:
    """A watched name found in a description: the entry's index, how it was found, and the
    span of canonical text it covers."""

    item: int
    fuzzy: bool
    abbreviation: bool
    text: str
    similarity: float


def _rank(hit: NameHit) -> tuple[bool, bool, float, int]:
    return (not hit.abbreviation, not hit.fuzzy, hit.similarity, len(hit.text))


def _keep_stronger(kept: dict[int, NameHit], hit: NameHit) -> None:
    """Keep ``hit`` as its entry's name hit unless one kept already ranks at least as high."""
    old = kept.get(hit.item)
    if old is None or _rank(hit) > _rank(old):
        kept[hit.item] = hit


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


class NameIndex:
    """Every name, synonym, abbreviation and not-name of a watchlist, compiled for search."""

    __slots__ = ("_automaton", "_join_heads", "_join_targets", "_name_words", "_speller")

    def __init__(self, entries: Sequence[Entry]) -> None:
        """Compile the names of ``entries``; a hit's ``item`` is its entry's index there."""
        patterns: dict[str, list[tuple[int, int]]] = {}
        vocabulary: set[str] = set()
        protected: set[str] = set(PROTECTED_WORDS)
        name_words: set[str] = set()
        join_targets: set[str] = set()
        for index, entry in enumerate(entries):
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
                        vocabulary |= {t for t in words if len(t) >= MIN_FUZZY_LEN}
                    if role != _ROLE_ABBREVIATION:
                        join_targets |= {t for t in words if len(t) >= MIN_FUZZY_LEN}
                    name_words |= words
                    protected |= words
            protected |= {
                normalize_name(w)[0] for w in entry.benign_context.words if normalize_name(w)
            }
        automaton = ahocorasick.Automaton()
        for key, roles in patterns.items():
            automaton.add_word(key, (len(key), key.count(" ") - 1, tuple(roles)))
        automaton.make_automaton()
        self._automaton = automaton
        self._speller = Speller(vocabulary, protected)
        self._name_words = frozenset(name_words)
        self._join_targets = frozenset(join_targets)
        self._join_heads = frozenset(w[:k] for w in join_targets for k in range(1, len(w)))

    def find(self, canon: str) -> tuple[tuple[NameHit, ...], frozenset[str]]:
        """The name hits of a description in canonical form, the strongest per entry, and its
        tokens as corrected."""
        raw = tokenize_canonical(canon)
        tokens, starts, ends = self._join_split_words(canon, *raw)
        if not tokens:
            return (), frozenset()
        kept, fixed = self._names(canon, tokens, starts, ends)
        # A name word followed by the rest of a glued name ("4-anilino-1-phenethyl
        # piperidine", "N-phenyl piperidin-4-amine") is joined in a second reading; the
        # stronger hit of the two readings per entry is kept.
        joined = self._join_split_words(canon, *raw, heads_in_names=True)
        if joined[0] != tokens:
            for hit in self._names(canon, *joined)[0].values():
                _keep_stronger(kept, hit)
        return tuple(kept.values()), frozenset(fixed)

    def _names(
        self, canon: str, tokens: list[str], starts: list[int], ends: list[int]
    ) -> tuple[dict[int, NameHit], list[str]]:
        """Name hits of one reading of a description's tokens, and the tokens as corrected."""
        fixed: list[str] = []
        edits: list[int] = []
        fix = self._speller.fix
        for token in tokens:
            word, distance = fix(token)
            fixed.append(word)
            edits.append(distance)
        text = _key(fixed)
        token_at: dict[int, int] = {}
        pos = 1
        for i, word in enumerate(fixed):
            token_at[pos] = i
            pos += len(word) + 1
        spans: list[_Span] = []
        for end, (length, n_tokens, roles) in self._automaton.iter(text):
            first = token_at[end - length + 2]
            last = first + n_tokens - 1
            for item, role in roles:
                spans.append((first, last, item, role))
        kept: dict[int, NameHit] = {}
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
            hit = NameHit(
                item,
                distance > 0,
                role == _ROLE_ABBREVIATION,
                canon[starts[first] : ends[last]],
                similarity,
            )
            _keep_stronger(kept, hit)
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


def _overridden(span: _Span, spans: list[_Span]) -> bool:
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
