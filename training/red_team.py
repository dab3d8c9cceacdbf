"""The red team: every UN 1988 Table I precursor of a watchlist, written every way a shipper might
to slip it past a check, and how a scorer decides those shipments.

:func:`table_i_cases` writes each Table I substance's CAS numbers, names and HS codes with every
trick that applies: leading zeros, missing hyphens, stray spaces and newlines, full-width,
Arabic-Indic and Devanagari digits, dash look-alikes, zero-width characters and soft hyphens,
Cyrillic and Greek look-alike letters, full-width letters, odd spacing around hyphens, Spanish
and IUPAC synonyms (the entry's own), dotted, spaced and national-extension HS codes. Each case
is one shipment with one goods line that carries the substance in one way only, under a
chapter-29 HS code no entry is listed under and a description that names nothing. Every case
must come back RED from a rule that identifies the substance (:data:`IDENTITY_RULES`).
:func:`broken_cas_cases` are the other side: a Table I CAS number with a wrong check digit,
which must at least stay out of GREEN.

:func:`table_i_recall` decides cases with a scorer the way bulk scoring does
(``Scorer.score_tables`` over canonical tables of the cases) and counts what came back RED;
``tests/test_red_team.py`` sends the same cases through a real server.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Literal

import numpy as np
import polars as pl

from features.canonical import canonical_shipment
from features.errors import DataError
from features.live import goods_rows, shipment_row
from features.records import GoodsLine, Party, Shipment
from features.tables import GOODS_SCHEMA, INSPECTIONS_SCHEMA, SHIPMENTS_SCHEMA
from features.watchlist import Entry, Watchlist
from scoring.exams import ExamPlanner
from scoring.lanes import QUANTILE_LEVELS, Budget, LanePolicy
from scoring.lanes import log as lanes_log
from scoring.scorer import Scored, Scorer
from scoring.validation import validate_shipment
from training.evaluation_record import JsonRecord

TABLE_I = "un-1988-table-i"
"""The watchlist list id (``memberships[].list``) of the UN 1988 Convention's Table I."""
IDENTITY_RULES: frozenset[str] = frozenset(
    {
        "table-i-precursor",
        "table-i-precursor-named",
        "fentanyl-identified",
        "watched-cas-misdeclared",
    }
)
"""Rules that fire on the substance's identity (not on the consignee, route or model score)."""
MODEL_ONLY_RED_SHARE = Budget().red
"""The RED share a port has by default (2%): the model-only figure of :class:`TableIRecall`
counts the cases whose score alone is in the top share of the bundle's reference scores."""

ZERO_WIDTH = ("\u200b", "\u200c", "\u200d", "\u2060", "\ufeff", "\u00ad")
DASHES = ("\u2010", "\u2011", "\u2012", "\u2013", "\u2014", "\u2212", "\ufe63", "\uff0d")
# Latin letter -> a Cyrillic or Greek letter that looks the same.
HOMOGLYPHS = {
    "a": "\u0430",  # Cyrillic a
    "e": "\u0435",  # Cyrillic ie
    "o": "\u043e",  # Cyrillic o
    "p": "\u0440",  # Cyrillic er
    "c": "\u0441",  # Cyrillic es
    "x": "\u0445",  # Cyrillic ha
    "y": "\u0443",  # Cyrillic u
    "i": "\u0456",  # Cyrillic byelorussian-ukrainian i
    "v": "\u03bd",  # Greek nu
}


def _digits(text: str, zero: int) -> str:
    """``text`` with its ASCII digits written in the script whose zero is ``zero``."""
    return "".join(chr(zero + int(c)) if c.isdigit() else c for c in text)


CAS_TRICKS: dict[str, Callable[[str], str]] = {
    "leading zero": lambda c: "0" + c,
    "two leading zeros": lambda c: "00" + c,
    "no hyphens": lambda c: c.replace("-", ""),
    "spaces for hyphens": lambda c: c.replace("-", " "),
    "surrounding white space": lambda c: f"  {c}\n",
    "full-width digits": lambda c: _digits(c, 0xFF10),
    "Arabic-Indic digits": lambda c: _digits(c, 0x0660),
    "Devanagari digits": lambda c: _digits(c, 0x0966),
    "non-breaking hyphen": lambda c: c.replace("-", "\u2011"),
    "minus signs": lambda c: c.replace("-", "\u2212"),
    "full-width hyphen": lambda c: c.replace("-", "\uff0d"),
    "zero-width space": lambda c: c[:2] + "\u200b" + c[2:],
    "soft hyphen": lambda c: c.replace("-", "\u00ad-"),
    "BOM in front": lambda c: "\ufeff" + c,
}
"""A CAS number (``39742-60-4``) -> the same number written to evade an exact comparison."""


def _homoglyphs(name: str) -> str:
    return "".join(HOMOGLYPHS.get(ch, ch) for ch in name)


def _first_homoglyph(name: str) -> str:
    for i, ch in enumerate(name):
        if ch in HOMOGLYPHS and HOMOGLYPHS[ch] != ch:
            return name[:i] + HOMOGLYPHS[ch] + name[i + 1 :]
    return name


def _zero_width(name: str) -> str:
    mid = len(name) // 2
    return name[:mid] + ZERO_WIDTH[len(name) % len(ZERO_WIDTH)] + name[mid:]


def _soft_hyphens(name: str) -> str:
    return "\u00ad".join(name[i : i + 4] for i in range(0, len(name), 4))


def _full_width(name: str) -> str:
    return "".join(chr(ord(c) + 0xFEE0) if "!" <= c <= "~" else c for c in name)


def _odd_spacing(name: str) -> str:
    return name.replace("-", " - ")


def _odd_dashes(name: str) -> str:
    return "".join(DASHES[i % len(DASHES)] if c == "-" else c for i, c in enumerate(name))


_MORPHEME = re.compile(r"(?<=[a-z]{4})(piperid|anilin|phenyl|propion|amino|ephedrin)", re.I)


def _split_words(name: str) -> str:
    """A compound word split before a chemical morpheme ("4-anilino piperidine")."""
    return _MORPHEME.sub(r" \1", name)


NAME_TRICKS: dict[str, Callable[[str], str]] = {
    "compound split by a space": _split_words,
    "one look-alike letter": _first_homoglyph,
    "look-alike letters throughout": _homoglyphs,
    "zero-width character": _zero_width,
    "soft hyphens": _soft_hyphens,
    "full-width letters": _full_width,
    "odd spacing around hyphens": _odd_spacing,
    "dash look-alikes": _odd_dashes,
    "upper case": str.upper,
}
"""A substance name -> the same name written to evade an exact comparison; a trick that leaves
a name unchanged makes no case for it."""

HS_TRICKS: dict[str, Callable[[str], str]] = {
    "dotted": lambda c: f"{c[:4]}.{c[4:]}",
    "spaced": lambda c: f"{c[:4]} {c[4:]}",
    "national extension": lambda c: c + "0000",
    "dotted national extension": lambda c: f"{c[:4]}.{c[4:6]}.00.00",
    "full-width digits": lambda c: _digits(c, 0xFF10),
    "Arabic-Indic digits": lambda c: _digits(c, 0x0660),
    "zero-width inside": lambda c: c[:3] + "\u200b" + c[3:],
}
"""A six-digit HS subheading (``293337``) -> the same code written to evade an exact
comparison."""

Field = Literal["cas", "name", "hs", "broken-cas"]
# Each field's part of a shipment id (shipment ids are codes: upper case, no spaces).
_ID_PART: dict[Field, str] = {"cas": "CAS", "name": "NAME", "hs": "HS", "broken-cas": "BADCAS"}
BENIGN_DESCRIPTION = "industrial chemical intermediate, 25 kg drums"
DECLARED_AT = datetime(2025, 6, 2, 14, 30, tzinfo=UTC)


@dataclass(frozen=True, slots=True)
class Case:
    """One red-team shipment: ``entry_id``'s substance carried in ``field`` written with
    ``trick`` (a key of :data:`CAS_TRICKS`, :data:`NAME_TRICKS` or :data:`HS_TRICKS`; "wrong
    check digit" for a broken CAS).

    The shipment is as a shipper would declare it (not canonical). Its id is unique among the
    cases of one watchlist and the same on every run; every case is declared at the same instant
    (:data:`DECLARED_AT`), so in bulk no case is history for another.
    """

    entry_id: str
    field: Field
    trick: str
    shipment: Shipment

    @property
    def label(self) -> str:
        return f"{self.entry_id} / {self.field} / {self.trick}"


def table_i_entries(watchlist: Watchlist) -> list[Entry]:
    """The watchlist's substances on Table I, in watchlist order."""
    return [
        e
        for e in watchlist.spec.entries
        if e.kind == "substance" and any(m.list == TABLE_I for m in e.memberships)
    ]


def _plain_hs(watchlist: Watchlist) -> str:
    """A chapter-29 HS code no watchlist entry is listed under: the identity of a CAS or name
    case must come from the CAS or the name, not from the code."""
    for code in ("292990", "294200", "291819", "293490"):
        if not watchlist.match_line(code, "industrial chemical intermediate").hits:
            return code
    raise DataError("every candidate chapter-29 HS code of the red team is on the watchlist")


def _line(hs: str, description: str, cas: tuple[str, ...] = ()) -> GoodsLine:
    return GoodsLine(
        hs_code=hs,
        description=description,
        cas_numbers=cas,
        quantity=20,
        unit="DRUM",
        gross_weight_kg=520.0,
        declared_value_usd=18_000.0,
    )


def _shipment(shipment_id: str, line: GoodsLine) -> Shipment:
    """A valid sea shipment from China to Manzanillo, declared at :data:`DECLARED_AT`, whose one
    goods line is ``line``."""
    return Shipment(
        shipment_id,
        DECLARED_AT,
        "MXZLO",
        "sea",
        "CN",
        "CN",
        shipper=Party("SHP-CN-RT01", "Ningbo Hengda Chemical Trading Co.", "CN"),
        consignee=Party("CNE-MX-RT01", "Insumos Químicos del Bajío", "MX", "IQB200315KX2"),
        goods=(line,),
        transshipment_ports=("KRPUS",),
        carrier="Pacific Orient Lines",
        conveyance_id="IMO9811000",
        container_id="MSCU1234565",
        broker_id="BRK-0042",
    )


def control_shipment(watchlist: Watchlist) -> Shipment:
    """The red team's shipment without any substance: a plain line under :func:`_plain_hs`."""
    return _shipment("RT-CONTROL", _line(_plain_hs(watchlist), BENIGN_DESCRIPTION))


def _strong_names(entry: Entry, watchlist: Watchlist, hs: str) -> list[str]:
    """The entry's full names (name and synonyms: Spanish and IUPAC forms included) that,
    written plainly under ``hs``, identify it strongly enough for the named rule; a synonym
    that is only context gives no rule to evade."""
    names = []
    for name in (entry.name, *entry.synonyms):
        exact = watchlist.match_line(hs, f"{name} 99%")
        if any(
            h.entry_id == entry.id and h.match_type == "name_exact" and h.strength >= 0.9
            for h in exact.hits
        ):
            names.append(name)
    return names


_Lines = Iterator[tuple[Field, str, GoodsLine]]


def _entry_lines(entry: Entry, watchlist: Watchlist, plain: str) -> _Lines:
    """(field, trick, goods line) of every trick that applies to the entry's CAS numbers,
    strong names and six-digit specific HS codes; ``plain`` is the HS code of CAS and name
    lines."""
    for cas in entry.cas:
        for trick, apply in CAS_TRICKS.items():
            yield "cas", trick, _line(plain, BENIGN_DESCRIPTION, (apply(cas.number),))
    for name in _strong_names(entry, watchlist, plain):
        for trick, apply in NAME_TRICKS.items():
            if apply(name) != name:
                yield "name", trick, _line(plain, f"{apply(name)} 99%")
    for hs in entry.hs:
        if hs.specificity == "specific" and len(hs.code) == 6:
            for trick, apply in HS_TRICKS.items():
                yield "hs", trick, _line(apply(hs.code), BENIGN_DESCRIPTION)


def _broken_lines(entry: Entry, watchlist: Watchlist, plain: str) -> _Lines:
    """Each of the entry's CAS numbers with its check digit off by one, under ``plain``."""
    for cas in entry.cas:
        head, _, check = cas.number.rpartition("-")
        broken = f"{head}-{(int(check) + 1) % 10}"
        yield "broken-cas", "wrong check digit", _line(plain, BENIGN_DESCRIPTION, (broken,))


def _cases(
    watchlist: Watchlist,
    lines: Callable[[Entry, Watchlist, str], _Lines],
) -> list[Case]:
    """A case of every line ``lines`` gives for every Table I entry, with its shipment id:
    ``RT-<ENTRY>-<FIELD>-<n>``, ``n`` counting the entry's cases of that field from 1."""
    out: list[Case] = []
    plain = _plain_hs(watchlist)
    for entry in table_i_entries(watchlist):
        counts: dict[Field, int] = {}
        for field, trick, line in lines(entry, watchlist, plain):
            counts[field] = n = counts.get(field, 0) + 1
            shipment_id = f"RT-{entry.id.upper()}-{_ID_PART[field]}-{n:03d}"
            out.append(Case(entry.id, field, trick, _shipment(shipment_id, line)))
    return out


def table_i_cases(watchlist: Watchlist) -> list[Case]:
    """Every Table I substance of ``watchlist`` written with every trick that applies to its CAS
    numbers, names and HS codes (fields ``cas``, ``name``, ``hs``): each must come back RED
    from an identity rule. Empty when the watchlist has no Table I substance."""
    return _cases(watchlist, _entry_lines)


def broken_cas_cases(watchlist: Watchlist) -> list[Case]:
    """Every CAS number of a Table I substance with a wrong check digit (field ``broken-cas``):
    not an identification, but each must stay out of GREEN as an invalid CAS."""
    return _cases(watchlist, _broken_lines)


# --------------------------------------------------------------------------- recall


@dataclass(frozen=True, slots=True)
class Miss(JsonRecord):
    """A case that did not come back RED, and the lane it got."""

    entry_id: str
    field: Field
    trick: str
    lane: str
    shipment_id: str


@dataclass(frozen=True, slots=True)
class TableIRecall(JsonRecord):
    """How one scorer (bundle, watchlist, rules) decided the red team's cases.

    ``red`` cases came back RED, ``identity_red`` of them with an identity rule among the rules
    that fired; ``misses`` are the others, in case order. ``model_red`` is what the calibrated
    score alone would send RED: cases scored at or above the bundle's reference score quantile
    at ``1 - model_red_share`` for their port ("default" for a port without its own).
    """

    cases: int
    red: int
    identity_red: int
    misses: tuple[Miss, ...]
    model_red: int
    model_red_share: float = MODEL_ONLY_RED_SHARE

    @property
    def all_red(self) -> bool:
        return self.red == self.cases


def _tables(cases: Sequence[Case]) -> tuple[pl.DataFrame, pl.DataFrame]:
    """The cases' shipments in canonical form, validated as the server admits them, as the
    canonical ``shipments`` and ``goods`` tables."""
    shipments = [validate_shipment(canonical_shipment(c.shipment)) for c in cases]
    ids = [s.shipment_id for s in shipments]
    if len(set(ids)) != len(ids):
        repeated = sorted({i for i in ids if ids.count(i) > 1})
        raise DataError(f"red-team cases repeat shipment ids: {', '.join(repeated[:5])}")
    return (
        pl.DataFrame([shipment_row(s) for s in shipments], schema=SHIPMENTS_SCHEMA),
        pl.DataFrame([row for s in shipments for row in goods_rows(s)], schema=GOODS_SCHEMA),
    )


def _model_red(scorer: Scorer, scored: Sequence[Scored], share: float) -> int:
    """How many of ``scored`` the bundle's reference distribution puts in the top ``share`` of
    their port, by score alone."""
    quantiles = scorer.bundle.meta.score_quantiles
    at = {
        port: float(
            np.interp(1.0 - share, QUANTILE_LEVELS, quantiles.get(port, quantiles["default"]))
        )
        for port in {s.port_of_entry for s in scored}
    }
    return sum(s.risk_score >= at[s.port_of_entry] for s in scored)


def table_i_recall(scorer: Scorer, cases: Sequence[Case]) -> TableIRecall:
    """Decide ``cases`` with ``scorer``'s bundle, watchlist and rules as bulk scoring does
    (canonical tables of the cases, no history, ``Scorer.score_tables``) and count what came
    back RED.

    The decisions run on a fresh lane policy and exam planner with the scorer's budgets, seed
    and exam capacity, so the serving scorer's windows are untouched and a run gives the same
    answer every time. Raises :class:`~features.errors.InvalidInput` for a case the server would
    reject and :class:`~features.errors.DataError` for no cases or repeated shipment ids.
    """
    if not cases:
        raise DataError(
            "no red-team cases to decide (table_i_cases gives none for a watchlist without a "
            f"{TABLE_I} substance)"
        )
    fresh = replace(
        scorer,
        policy=LanePolicy(
            scorer.bundle.meta.score_quantiles, scorer.policy.budgets, scorer.policy.seed
        ),
        exams=ExamPlanner(scorer.exams.capacity, scorer.exams.window),
    )
    shipments, goods = _tables(cases)
    with _quiet(lanes_log):  # rules alone fill the cases' one port: said once, not per case
        scored = fresh.score_tables(shipments, goods, pl.DataFrame(schema=INSPECTIONS_SCHEMA))
    misses = tuple(
        Miss(c.entry_id, c.field, c.trick, s.lane, s.shipment_id)
        for c, s in zip(cases, scored, strict=True)
        if s.lane != "red"
    )
    return TableIRecall(
        cases=len(cases),
        red=len(cases) - len(misses),
        identity_red=sum(
            s.lane == "red" and bool(IDENTITY_RULES & set(s.rules_fired)) for s in scored
        ),
        misses=misses,
        model_red=_model_red(fresh, scored, MODEL_ONLY_RED_SHARE),
    )


@contextmanager
def _quiet(logger: logging.Logger) -> Iterator[None]:
    """``logger`` says only errors meanwhile."""
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        logger.setLevel(level)
