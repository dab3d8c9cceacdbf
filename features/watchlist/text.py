"""Text normalisation shared by the watchlist file's names and the goods descriptions.

Both sides go through the same function, so a name written once in the data file matches
every spelling that differs only in case, accents, punctuation, hyphens or spacing. Text is
first put in the project's canonical form (:func:`features.canonical.canonical_name`: NFKC,
invisible characters and soft hyphens removed, every dash a hyphen, Cyrillic and Greek
look-alike letters folded to the Latin letters they imitate), so a name written with Cyrillic
look-alikes or a zero-width space inside it is the same name; standalone Greek letters
(``α-phenylacetoacetonitrile``) are kept and read as ``alpha``. Letters and digits are split
into separate tokens ("4AP" and "4-AP" both become ``4 ap``) because declarations glue locants
and salt counts onto names ("2HCl", "piperidin4one"). A few chemical spelling variants that
carry no meaning (piperidinone/piperidone, phenylethyl/phenethyl, and their Spanish forms) are
folded into one canonical token.
"""

from __future__ import annotations

import re
import unicodedata

from features.canonical import canonical_name
from features.watchlist.cache import BoundedCache

# A word is letters with any combining marks inside it: a mark put on a letter to break the word
# ("pip\u0336eridine") stays in the word, and normalize_token drops it with the accents.
_MARKS = "\u0300-\u036f\u1ab0-\u1aff\u1dc0-\u1dff\u20d0-\u20ff\ufe20-\ufe2f"
_TOKEN = re.compile(rf"\d+|[^\W\d_]+(?:[{_MARKS}]+[^\W\d_]*)*")

CANONICAL_TOKENS: dict[str, str] = {
    "piperidinone": "piperidone",
    "piperidona": "piperidone",
    "piperidinona": "piperidone",
    "phenylethyl": "phenethyl",
    "fenetil": "phenethyl",
    "fenetilo": "phenethyl",
    "feniletil": "phenethyl",
    "feniletilo": "phenethyl",
    "propanoyl": "propionyl",
    "propanoic": "propionic",
    "sulphate": "sulfate",
    "terc": "tert",
    "α": "alpha",
    "alfa": "alpha",
    "β": "beta",
}

_token_cache: BoundedCache[str, str] = BoundedCache(limit=200_000)


def normalize_token(raw: str) -> str:
    """Lower-case, accent-free, canonical form of one token (letters only or digits only)."""
    cached = _token_cache.get(raw)
    if cached is not None:
        return cached
    token = raw.lower()
    if not token.isascii():
        decomposed = unicodedata.normalize("NFKD", token)
        token = "".join(ch for ch in decomposed if not unicodedata.combining(ch))
    token = CANONICAL_TOKENS.get(token, token)
    _token_cache.put(raw, token)
    return token


def tokenize(text: str) -> tuple[list[str], list[int], list[int]]:
    """Normalised tokens of ``text`` with the start and end offset of each.

    The offsets are into ``canonical_name(text)``, the text the tokens are read from; for text
    already in canonical form (plain ASCII with single spaces, for instance) that is ``text``.
    """
    return tokenize_canonical(canonical_name(text))


def tokenize_canonical(text: str) -> tuple[list[str], list[int], list[int]]:
    """:func:`tokenize` for text the caller has already put through ``canonical_name``: the
    offsets are into ``text`` itself."""
    tokens: list[str] = []
    starts: list[int] = []
    ends: list[int] = []
    for match in _TOKEN.finditer(text):
        tokens.append(normalize_token(match.group()))
        starts.append(match.start())
        ends.append(match.end())
    return tokens, starts, ends


def normalize_name(name: str) -> tuple[str, ...]:
    """The token sequence a watchlist name is matched as."""
    return tuple(tokenize(name)[0])


def normalize_text(text: str) -> str:
    """A description as one space-joined normalised string (for display and tests)."""
    return " ".join(tokenize(text)[0])
