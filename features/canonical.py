"""One canonical form for every identifier a shipment carries, defined here and nowhere else.

Shippers who misdeclare on purpose write identifiers in whatever form slips past a check:
full-width or Arabic-Indic digits, Cyrillic and Greek look-alike letters, zero-width characters,
soft hyphens, odd dashes, stray spaces and newlines, a CAS number with a leading zero or no
hyphens, an HS code with dots. Every reader of an identifier (validation, the watchlist matcher,
features, hard rules, the ledger) sees the form these functions return, so two writings of the
same identity are the same identity.

The layers, each built on the one before:

:func:`canonical_text`
    Unicode NFKC (full-width and mathematical letters and digits become ASCII, NBSP a space);
    decimal digits of any script become ASCII digits; every dash and minus variant becomes
    ``-``; format and other default-ignorable characters (zero-width space and joiners, soft
    hyphen, word joiner, BOM, bidirectional controls, variation selectors) are removed; control
    characters and runs of white space become one space; the ends are stripped.
:func:`fold_confusables`
    Letters of other scripts that look like Latin letters or digits (Cyrillic ``р``, Greek
    ``ο``) become the Latin letter they imitate, from the Unicode confusables data (UTS #39) as
    packaged by ``confusable-homoglyphs``. Standalone Greek letters (``α-PVP``) are chemistry,
    not disguise, and are kept.
:func:`canonical_code`
    Codes and ids (shipment, party and broker ids, countries, UN/LOCODEs, container ids):
    the two above, then upper case. Validation still rejects what is left that can only be an
    attack (white space or non-ASCII inside an id).
:func:`canonical_hs`
    HS codes: dots, spaces and hyphens between digits removed (``2933.37``, ``2933 37`` and
    ``2933-37`` are ``293337``); national extensions keep their digits (``2933370000``).
:func:`read_cas`
    CAS numbers: every equivalent writing (leading zeros, no hyphens, spaces, other scripts'
    digits and dashes) becomes ``NNNNNNN-NN-R``; a number whose check digit fails keeps its
    canonical shape and is marked invalid rather than rejected: a broken identifier on a
    chemical line is itself a signal.
"""

from __future__ import annotations

import json
import re
import unicodedata
from dataclasses import dataclass, replace
from functools import lru_cache
from importlib import resources
from typing import Literal

from features.records import GoodsLine, Party, Shipment

# Characters NFKC leaves alone that can only hide something: default-ignorable code points that
# are not in category Cf (which is removed as a whole).
_IGNORABLE = frozenset(
    [
        *(0x034F, 0x115F, 0x1160, 0x17B4, 0x17B5, 0x3164, 0xFFA0),
        *range(0x180B, 0x1810),
        *range(0xFE00, 0xFE10),
        *range(0xE0100, 0xE01F0),
    ]
)
# Dashes outside category Pd that are written for one: minus signs, hyphen bullet, modifier minus.
_EXTRA_DASHES = frozenset([0x2212, 0x2043, 0x02D7, 0x2796, 0xFE63, 0xFF0D, 0x2010, 0x2011])
_SPACES = re.compile(r"\s+")
# Greek letters chemistry uses as names (alpha-PVP, beta-keto): kept when they stand alone.
_GREEK_LOCANTS = frozenset("αβγδεωΑΒΓΔΕΩ")
# Where the confusables data picks a prototype that differs from the letter a reader sees.
_CONFUSABLE_OVERRIDES = {"Ι": "I", "І": "I", "Ӏ": "I", "ι": "i", "ӏ": "l", "Ɩ": "I"}


class _Translation(dict[int, str | None]):
    """``str.translate`` table filled on first sight of each code point."""

    def __missing__(self, code: int) -> str | None:
        char = chr(code)
        value: str | None
        if code in _IGNORABLE or unicodedata.category(char) == "Cf":
            value = None
        elif code in _EXTRA_DASHES or unicodedata.category(char) == "Pd":
            value = "-"
        elif unicodedata.category(char) == "Nd":
            value = str(unicodedata.decimal(char))
        elif unicodedata.category(char) in ("Cc", "Zl", "Zp"):
            value = " "
        else:
            value = char
        self[code] = value
        return value


_TRANSLATION = _Translation()


def canonical_text(value: str) -> str:
    """NFKC, ASCII digits and dashes, no invisible characters, single spaces, stripped."""
    if value.isascii() and value.isprintable():
        text = value
    else:
        text = unicodedata.normalize("NFKC", value).translate(_TRANSLATION)
        # NFKC can expose new compatibility forms after removals; once more is a fixed point.
        text = unicodedata.normalize("NFKC", text)
    if "  " in text or not text.isprintable() or text[:1].isspace() or text[-1:].isspace():
        text = _SPACES.sub(" ", text).strip()
    return text


@lru_cache(maxsize=1)
def _confusables() -> dict[str, str]:
    """Non-ASCII character -> the ASCII letter or digit it imitates (UTS #39 confusables)."""
    data = json.loads(
        resources.files("confusable_homoglyphs").joinpath("confusables.json").read_text("utf-8")
    )
    table: dict[str, str] = {}
    for char, glyphs in data.items():
        if len(char) != 1 or char.isascii():
            continue
        ascii_alnum = [g["c"] for g in glyphs if len(g["c"]) == 1 and g["c"].isascii()]
        ascii_alnum = [c for c in ascii_alnum if c.isalnum()]
        if not ascii_alnum:
            continue
        same_case = [c for c in ascii_alnum if c.isalpha() and c.isupper() == char.isupper()]
        letters = [c for c in ascii_alnum if c.isalpha()]
        table[char] = (same_case or letters or ascii_alnum)[0]
    table.update(_CONFUSABLE_OVERRIDES)
    return table


def fold_confusables(text: str) -> str:
    """Latin look-alikes of other scripts' letters replaced by the Latin letters themselves."""
    if text.isascii():
        return text
    table = _confusables()
    out: list[str] = []
    for i, char in enumerate(text):
        if char.isascii():
            out.append(char)
            continue
        if char in _GREEK_LOCANTS and not _letter_at(text, i - 1) and not _letter_at(text, i + 1):
            out.append(char)
            continue
        out.append(table.get(char, char))
    return "".join(out)


def _letter_at(text: str, i: int) -> bool:
    return 0 <= i < len(text) and text[i].isalpha()


def canonical_name(value: str) -> str:
    """A free-text name or description as every matcher reads it (case is kept)."""
    return fold_confusables(canonical_text(value))


def canonical_code(value: str) -> str:
    """An id or code: canonical text, look-alikes folded, upper case."""
    text = fold_confusables(canonical_text(value)).upper()
    # Upper case can make a new look-alike (Greek beta inside a word becomes capital beta, which
    # imitates B): fold once more, so a canonical code is its own canonical code.
    return text if text.isascii() else fold_confusables(text).upper()


_HS_SEPARATORS = re.compile(r"(?<=\d)[.\s-]+(?=\d)")


def canonical_hs(value: str) -> str:
    """An HS code with the separators between its digits removed (``2933.37`` -> ``293337``)."""
    text = canonical_code(value)
    return _HS_SEPARATORS.sub("", text)


CasStatus = Literal["valid", "check_digit", "shape"]


@dataclass(frozen=True, slots=True)
class CasReading:
    """A declared CAS number as read: its canonical ``text`` and whether it is a valid CAS.

    ``status`` is ``valid``; ``check_digit`` (shaped like a CAS, but the check digit fails:
    a typo or a fabrication); or ``shape`` (not a CAS number at all).
    """

    text: str
    status: CasStatus

    @property
    def valid(self) -> bool:
        return self.status == "valid"


_CAS_DIGITS = re.compile(r"^0*(\d{2,7})-?(\d{2})-?(\d)$")


def cas_check_digit(body: str) -> int:
    """The check digit for ``body``, the CAS digits without the check digit (hyphens allowed)."""
    digits = body.replace("-", "")
    return sum(int(d) * pos for pos, d in enumerate(reversed(digits), start=1)) % 10


def read_cas(value: str) -> CasReading:
    """Read a declared CAS number in any equivalent writing (see the module docstring)."""
    text = canonical_code(value)
    compact = re.sub(r"[\s.]", "", text)
    match = _CAS_DIGITS.match(compact)
    if match is None:
        return CasReading(text, "shape")
    head, mid, check = match.groups()
    canonical = f"{head}-{mid}-{check}"
    if cas_check_digit(head + mid) != int(check):
        return CasReading(canonical, "check_digit")
    return CasReading(canonical, "valid")


def canonical_goods_line(line: GoodsLine) -> GoodsLine:
    """A goods line with its HS code, CAS numbers, unit and description in canonical form."""
    return replace(
        line,
        hs_code=canonical_hs(line.hs_code),
        description=canonical_text(line.description),
        cas_numbers=tuple(read_cas(cas).text for cas in line.cas_numbers),
        unit=canonical_code(line.unit),
    )


def canonical_party(party: Party) -> Party:
    return Party(
        id=canonical_code(party.id),
        name=canonical_text(party.name),
        country=canonical_code(party.country),
        tax_id=canonical_code(party.tax_id),
    )


def canonical_shipment(shipment: Shipment) -> Shipment:
    """``shipment`` with every identifier in canonical form and free text cleaned.

    Codes and ids go through :func:`canonical_code`, HS codes :func:`canonical_hs`, CAS numbers
    :func:`read_cas`; names and descriptions :func:`canonical_text` (look-alike letters stay in
    the text as declared and are folded where names are matched). Idempotent.
    """
    s = shipment
    return replace(
        s,
        shipment_id=canonical_code(s.shipment_id),
        port_of_entry=canonical_code(s.port_of_entry),
        origin_country=canonical_code(s.origin_country),
        export_country=canonical_code(s.export_country),
        transshipment_ports=tuple(canonical_code(p) for p in s.transshipment_ports),
        carrier=canonical_text(s.carrier),
        conveyance_id=canonical_code(s.conveyance_id),
        container_id=canonical_code(s.container_id),
        shipper=canonical_party(s.shipper),
        consignee=canonical_party(s.consignee),
        broker_id=canonical_code(s.broker_id),
        goods=tuple(canonical_goods_line(g) for g in s.goods),
    )
