"""The red team: every Table I precursor of the watchlist, written every way a shipper might to
slip it past a check, sent through a real server. Every variant must come back RED from a rule
that identifies the substance; a broken CAS alone must at least stay out of GREEN.

The tricks, each applied to CAS numbers, names and HS codes: leading zeros, missing hyphens,
stray spaces and newlines, full-width, Arabic-Indic and Devanagari digits, dash look-alikes,
zero-width characters and soft hyphens, Cyrillic and Greek look-alike letters, full-width
letters, odd spacing around hyphens, Spanish and IUPAC synonyms, dotted, spaced and
national-extension HS codes.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable, Iterator
from pathlib import Path

import polars as pl
import pytest

from features.canonical import read_cas
from features.records import GoodsLine, Party, Shipment
from features.tables import table_path
from features.watchlist import Entry, Watchlist, load_watchlist
from server.pb import risk_scoring_pb2 as pb
from server.pb import risk_scoring_pb2_grpc as pb_grpc
from tests.support import ServerThread, make_shipment, request_for

TABLE_I = "un-1988-table-i"
# Rules that fire on the substance's identity (not on the consignee, route or model score).
IDENTITY_RULES = {
    "table-i-precursor",
    "table-i-precursor-named",
    "fentanyl-identified",
    "watched-cas-misdeclared",
}
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


def _hs_tricks(code: str) -> dict[str, str]:
    return {
        "dotted": f"{code[:4]}.{code[4:]}",
        "spaced": f"{code[:4]} {code[4:]}",
        "national extension": code + "0000",
        "dotted national extension": f"{code[:4]}.{code[4:6]}.00.00",
        "full-width digits": _digits(code, 0xFF10),
        "Arabic-Indic digits": _digits(code, 0x0660),
        "zero-width inside": code[:3] + "\u200b" + code[3:],
    }


@dataclasses.dataclass(frozen=True)
class Variant:
    entry_id: str
    carries: str  # "cas", "name", "hs" or "broken-cas"
    trick: str
    line: GoodsLine

    @property
    def label(self) -> str:
        return f"{self.entry_id} / {self.carries} / {self.trick}"


def _table_i(watchlist: Watchlist) -> list[Entry]:
    return [
        e
        for e in watchlist.spec.entries
        if e.kind == "substance" and any(m.list == TABLE_I for m in e.memberships)
    ]


def _plain_hs(watchlist: Watchlist) -> str:
    """A chapter-29 HS code no watchlist entry is listed under: the identity must come from
    the CAS or the name, not from the code."""
    for code in ("292990", "294200", "291819", "293490"):
        if not watchlist.match_line(code, "industrial chemical intermediate").hits:
            return code
    raise AssertionError("every candidate HS code is on the watchlist")


def _names(entry: Entry) -> list[str]:
    """The entry's full names (name and synonyms: Spanish and IUPAC forms included) that,
    written plainly under a neutral HS code, identify it strongly enough for the named rule."""
    return [entry.name, *entry.synonyms]


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


def variants(watchlist: Watchlist) -> Iterator[Variant]:
    plain = _plain_hs(watchlist)
    benign = "industrial chemical intermediate, 25 kg drums"
    for entry in _table_i(watchlist):
        for cas in entry.cas:
            for trick, apply in CAS_TRICKS.items():
                yield Variant(entry.id, "cas", trick, _line(plain, benign, (apply(cas.number),)))
            head, _, check = cas.number.rpartition("-")
            broken = f"{head}-{(int(check) + 1) % 10}"
            yield Variant(
                entry.id, "broken-cas", "wrong check digit", _line(plain, benign, (broken,))
            )
        for name in _names(entry):
            exact = watchlist.match_line(plain, f"{name} 99%")
            if not any(
                h.entry_id == entry.id and h.match_type == "name_exact" and h.strength >= 0.9
                for h in exact.hits
            ):
                continue  # written plainly, this synonym is context only: no rule to evade
            for trick, apply in NAME_TRICKS.items():
                if apply(name) != name:
                    yield Variant(entry.id, "name", trick, _line(plain, f"{apply(name)} 99%"))
        for hs in entry.hs:
            if hs.specificity != "specific" or len(hs.code) != 6:
                continue
            for trick, code in _hs_tricks(hs.code).items():
                yield Variant(entry.id, "hs", trick, _line(code, benign))


ALL = list(variants(load_watchlist()))


def test_the_red_team_is_big_and_covers_every_table_i_entry() -> None:
    watchlist = load_watchlist()
    assert len(ALL) >= 150
    covered = {v.entry_id for v in ALL if v.carries != "broken-cas"}
    assert covered == {e.id for e in _table_i(watchlist)}
    assert {v.carries for v in ALL} == {"cas", "name", "hs", "broken-cas"}


def _established_consignee(world: Path) -> Party:
    """The busiest consignee of the test world that declares a tax id: old enough and clean
    enough that no new-consignee rule fires, so only the substance's identity can make RED."""
    ships = pl.read_parquet(table_path(world, "shipments"))
    row = (
        ships.filter(pl.col("consignee_tax_id").str.len_chars() > 0)
        .group_by("consignee_id", "consignee_name", "consignee_country", "consignee_tax_id")
        .len()
        .sort("len", descending=True)
        .row(0, named=True)
    )
    return Party(
        row["consignee_id"],
        row["consignee_name"],
        row["consignee_country"],
        row["consignee_tax_id"],
    )


def _shipment(i: int, variant: Variant, consignee: Party) -> Shipment:
    return make_shipment(f"RT-{i:05d}", consignee=consignee, goods=(variant.line,))


def test_every_evasion_variant_is_caught(server: ServerThread, world: Path) -> None:
    consignee = _established_consignee(world)
    stub = pb_grpc.RiskScoringStub(server.channel)
    shipments = [_shipment(i, v, consignee) for i, v in enumerate(ALL)]
    decisions = list(stub.ScoreShipments(iter(request_for(s) for s in shipments), timeout=120))
    assert len(decisions) == len(ALL)
    evaded = []
    for variant, decision in zip(ALL, decisions, strict=True):
        assert not decision.HasField("error"), f"{variant.label}: {decision.error.message}"
        codes = {r.code for r in decision.reasons}
        if variant.carries == "broken-cas":
            caught = decision.lane != pb.LANE_GREEN and "RULE_DECLARED_CAS_INVALID" in codes
        else:
            caught = decision.lane == pb.LANE_RED and bool(
                codes & {f"RULE_{r.upper().replace('-', '_')}" for r in IDENTITY_RULES}
            )
        if not caught:
            evaded.append(f"{variant.label}: {pb.Lane.Name(decision.lane)} {sorted(codes)}")
    assert evaded == [], f"{len(evaded)} of {len(ALL)} variants evaded:\n" + "\n".join(evaded)


def test_the_plain_shipment_of_the_established_consignee_is_not_red_by_rule(
    server: ServerThread, world: Path
) -> None:
    """Control: without the substance the same shipment fires no identity rule, so the
    suite's REDs come from the identity and not from the consignee or the route."""
    consignee = _established_consignee(world)
    plain = _line(_plain_hs(load_watchlist()), "industrial chemical intermediate, 25 kg drums")
    shipment = make_shipment("RT-CONTROL", consignee=consignee, goods=(plain,))
    decision = pb_grpc.RiskScoringStub(server.channel).ScoreShipment(request_for(shipment))
    assert not {r.code for r in decision.reasons} & {
        "RULE_TABLE_I_PRECURSOR",
        "RULE_TABLE_I_PRECURSOR_NAMED",
        "RULE_DECLARED_CAS_INVALID",
    }


@pytest.mark.parametrize("trick", sorted(CAS_TRICKS))
def test_each_cas_trick_reads_as_the_same_cas(trick: str) -> None:
    assert read_cas(CAS_TRICKS[trick]("39742-60-4")).text == "39742-60-4"
