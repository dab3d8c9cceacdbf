"""Chemistry-aware precursor watchlists: the data file, its validation, and the matcher.

Public API::

    load_watchlist(path=None) -> Watchlist         # None: the packaged watchlist.yaml
    Watchlist.version
    Watchlist.match_line(hs_code, description, cas_numbers)
        -> LineMatch(hits, mismatches, invalid_cas)  # any equivalent writing, same hits
    Watchlist.match_goods(goods) -> pl.DataFrame   # one row per hit
    Watchlist.goods_mismatches(goods) -> pl.DataFrame
    Watchlist.match_goods_full(goods) -> GoodsMatches(hits, mismatches, invalid_cas)
"""

from features.watchlist.cas import (
    cas_check_digit,
    cas_problem,
    find_cas,
    invalid_cas_reason,
    is_valid_cas,
    normalize_cas,
)
from features.watchlist.match_types import MATCH_TYPES, MatchType
from features.watchlist.matcher import Watchlist
from features.watchlist.mismatches import Mismatch, MismatchKind
from features.watchlist.results import (
    EVIDENCE_THRESHOLD,
    HITS_SCHEMA,
    INVALID_CAS_SCHEMA,
    MISMATCHES_SCHEMA,
    GoodsMatches,
    Hit,
    LineMatch,
)
from features.watchlist.schema import (
    KNOWN_MISATTRIBUTIONS,
    Entry,
    WatchlistSpec,
    parse_watchlist,
    parse_watchlist_text,
    read_watchlist_file,
)
from features.watchlist.store import load_watchlist

__all__ = [
    "EVIDENCE_THRESHOLD",
    "HITS_SCHEMA",
    "INVALID_CAS_SCHEMA",
    "KNOWN_MISATTRIBUTIONS",
    "MATCH_TYPES",
    "MISMATCHES_SCHEMA",
    "Entry",
    "GoodsMatches",
    "Hit",
    "LineMatch",
    "MatchType",
    "Mismatch",
    "MismatchKind",
    "Watchlist",
    "WatchlistSpec",
    "cas_check_digit",
    "cas_problem",
    "find_cas",
    "invalid_cas_reason",
    "is_valid_cas",
    "load_watchlist",
    "normalize_cas",
    "parse_watchlist",
    "parse_watchlist_text",
    "read_watchlist_file",
]
