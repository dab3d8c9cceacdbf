"""The canonical form of identifiers (features/canonical.py), and the watchlist matcher's promise
built on it: every equivalent writing of a watched CAS number, name or HS code gives the same
hits as the plain writing. The property tests generate the writings issue 9's shippers use."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from features.canonical import (
    CasReading,
    canonical_code,
    canonical_hs,
    canonical_name,
    canonical_text,
    cas_check_digit,
    fold_confusables,
    read_cas,
)
from features.watchlist import LineMatch, Watchlist, load_watchlist
from features.watchlist import cas_check_digit as watchlist_check_digit

WATCHLIST: Watchlist = load_watchlist()

# ------------------------------------------------------------------ the writings

# Decimal digit forms: ASCII, full-width, Arabic-Indic, Extended Arabic-Indic (Persian),
# Devanagari, Bengali.
_DIGIT_BASES = (0x30, 0xFF10, 0x0660, 0x06F0, 0x0966, 0x09E6)
DIGIT_FORMS = {d: tuple(chr(base + d) for base in _DIGIT_BASES) for d in range(10)}
DASHES = ("-", "\u2010", "\u2011", "\u2012", "\u2013", "\u2014", "\u2212", "\ufe63", "\uff0d")
INVISIBLE = ("\u200b", "\u200c", "\u200d", "\u2060", "\ufeff", "\u00ad")
SPACES = (" ", "  ", "\t", "\n", "\u00a0", "\u2003", "\u3000")
# Latin letter -> letters of other scripts that imitate it. Greek letters chemistry writes on
# their own (alpha, beta, ...) are left out: a standalone one is kept on purpose.
HOMOGLYPHS: dict[str, str] = {
    "a": "\u0430",  # Cyrillic a
    "c": "\u0441",  # Cyrillic es
    "d": "\u0501",  # Cyrillic komi de
    "e": "\u0435",  # Cyrillic ie
    "h": "\u04bb",  # Cyrillic shha
    "i": "\u0456\u03b9",  # Cyrillic i, Greek iota
    "j": "\u0458",  # Cyrillic je
    "l": "\u04cf",  # Cyrillic palochka
    "o": "\u043e\u03bf",  # Cyrillic o, Greek omicron
    "p": "\u0440\u03c1",  # Cyrillic er, Greek rho
    "s": "\u0455",  # Cyrillic dze
    "u": "\u03c5",  # Greek upsilon
    "v": "\u03bd",  # Greek nu
    "x": "\u0445",  # Cyrillic ha
    "y": "\u0443",  # Cyrillic u
    "A": "\u0410",
    "B": "\u0412",
    "C": "\u0421",
    "E": "\u0415",
    "H": "\u041d\u0397",
    "I": "\u0406\u0399",
    "K": "\u041a\u039a",
    "M": "\u041c\u039c",
    "N": "\u039d",
    "O": "\u041e\u039f",
    "P": "\u0420\u03a1",
    "S": "\u0405",
    "T": "\u0422\u03a4",
    "X": "\u0425\u03a7",
    "Y": "\u03a5",
    "Z": "\u0396",
}

CAS_ENTRIES = [(e.id, c.number) for e in WATCHLIST.spec.entries for c in e.cas]
NAMED_ENTRIES = [e.id for e in WATCHLIST.spec.entries]
HS_ENTRIES = [(e.id, h.code) for e in WATCHLIST.spec.entries for h in e.hs]

PROPERTY = settings(
    max_examples=15,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow],
)


def _evidence(found: LineMatch) -> list[tuple[str, str, float, float]]:
    return [(h.entry_id, h.match_type, h.similarity, h.strength) for h in found.hits]


@st.composite
def _sprinkled(draw: st.DrawFn, parts: list[str]) -> str:
    """``parts`` joined, with invisible characters between some of them."""
    out: list[str] = []
    for part in parts:
        out.append(part)
        if draw(st.integers(0, 5)) == 0:
            out.append(draw(st.sampled_from(INVISIBLE)))
    return "".join(out)


@st.composite
def cas_writings(draw: st.DrawFn, number: str) -> str:
    """Any writing of CAS ``number`` that reads as the same number."""
    groups = number.split("-")
    groups[0] = "0" * draw(st.integers(0, 3)) + groups[0]
    parts: list[str] = []
    for g, group in enumerate(groups):
        for digit in group:
            parts.append(draw(st.sampled_from(DIGIT_FORMS[int(digit)])))
            if draw(st.integers(0, 7)) == 0:
                parts.append(" ")
        if g < 2:
            dash = draw(st.sampled_from(DASHES))
            parts.append(draw(st.sampled_from(["", " ", dash, f" {dash} ", f"{dash} "])))
    body = draw(_sprinkled(parts))
    return draw(st.sampled_from(SPACES)) + body + draw(st.sampled_from(("", *SPACES)))


@st.composite
def name_writings(draw: st.DrawFn, name: str) -> str:
    """``name`` with look-alike letters, invisible characters and changed dashes and spacing."""
    parts: list[str] = []
    for char in name:
        if char in HOMOGLYPHS and draw(st.booleans()):
            parts.append(draw(st.sampled_from(HOMOGLYPHS[char])))
        elif char == "-":
            dash = draw(st.sampled_from(DASHES))
            parts.append(draw(st.sampled_from([dash, f" {dash} ", f"{dash} ", f" {dash}", " "])))
        elif char == " ":
            parts.append(draw(st.sampled_from([" ", "  ", "\u00a0", "\u2003", " \u00ad"])))
        else:
            parts.append(char)
    return draw(_sprinkled(parts))


@st.composite
def hs_writings(draw: st.DrawFn, digits: str) -> str:
    """HS ``digits`` dotted, spaced or hyphenated, in any script's digits."""
    cuts = {4, 6, 8}
    separator = draw(st.sampled_from([".", " ", "-", ". ", "\uff0e", "\u2013", ""]))
    parts: list[str] = []
    for i, digit in enumerate(digits):
        if i in cuts and draw(st.booleans()):
            parts.append(separator)
        parts.append(draw(st.sampled_from(DIGIT_FORMS[int(digit)])))
    body = draw(_sprinkled(parts))
    return draw(st.sampled_from(("", *SPACES))) + body + draw(st.sampled_from(("", *SPACES)))


# ------------------------------------------------------------------ canonical_text


@pytest.mark.parametrize(
    ("written", "canonical"),
    [
        ("N-phenethyl-4-piperidone", "N-phenethyl-4-piperidone"),  # ASCII: unchanged
        ("\uff2e\uff30\uff30 \uff19\uff19%", "NPP 99%"),  # full-width letters and digits
        ("\u0663\u0669\u0667\u0664\u0662", "39742"),  # Arabic-Indic digits
        ("\u0969\u096f\u096d", "397"),  # Devanagari digits
        ("\U0001d40d\U0001d40f\U0001d40f", "NPP"),  # mathematical bold
        ("a\u2010b\u2011c\u2012d\u2013e\u2014f\u2212g\ufe63h\uff0di", "a-b-c-d-e-f-g-h-i"),
        ("pi\u200bpe\u200cri\u200ddi\u2060ne\ufeff", "piperidine"),  # zero-width characters
        ("piperi\u00addine", "piperidine"),  # soft hyphen
        ("\u202enpp\u202c", "npp"),  # bidirectional override
        ("npp\ufe0f", "npp"),  # variation selector
        ("  one\t\ttwo\n\nthree\u00a0\u00a0four\r\n", "one two three four"),
        ("x\x00y", "x y"),  # control characters are spaces
        ("", ""),
        ("   ", ""),
    ],
)
def test_canonical_text(written: str, canonical: str) -> None:
    assert canonical_text(written) == canonical


def test_canonical_text_keeps_meaning() -> None:
    # accents and case are meaning (a matcher may fold them; the canonical form does not)
    assert canonical_text("Ácido fenilacético") == "Ácido fenilacético"
    assert canonical_text("e\u0301") == "\u00e9"  # composed, not removed
    assert canonical_text("\u03b1-PVP") == "\u03b1-PVP"


# ------------------------------------------------------------------ look-alike letters


@pytest.mark.parametrize(("latin", "glyphs"), sorted(HOMOGLYPHS.items()))
def test_every_homoglyph_folds_to_its_latin_letter(latin: str, glyphs: str) -> None:
    for glyph in glyphs:
        assert fold_confusables(glyph) == latin, (latin, glyph, hex(ord(glyph)))
        assert fold_confusables(f"x{glyph}x") == f"x{latin}x"


def test_fold_confusables() -> None:
    assert fold_confusables("\u0440\u0456\u0440\u0435r\u0456d\u0456n\u0435") == "piperidine"
    assert fold_confusables("\u039d\u03a1\u03a1") == "NPP"
    assert fold_confusables("plain ASCII stays") == "plain ASCII stays"
    # standalone Greek letters are chemistry, not disguise; inside a Latin word they are folded
    assert fold_confusables("\u03b1-PVP") == "\u03b1-PVP"
    assert fold_confusables("\u03b2-keto") == "\u03b2-keto"
    assert fold_confusables("\u03b1phenyl") == "aphenyl"
    # letters with no Latin look-alike stay as written
    assert fold_confusables("\u043f\u0436") == "\u043f\u0436"
    assert fold_confusables("\u00e1cido") == "\u00e1cido"


def test_canonical_name_and_code() -> None:
    assert canonical_name(" 4-\u0430nilino\u200bpi\u0440eridine ") == "4-anilinopiperidine"
    assert canonical_name("Fenetil") == "Fenetil"  # case kept
    assert canonical_code(" mx\u200bzlo ") == "MXZLO"
    assert canonical_code("\u041c\u0425") == "MX"  # Cyrillic look-alikes of a country code
    assert canonical_code("msku\u00a01234567") == "MSKU 1234567"  # validation rejects the space


# ------------------------------------------------------------------ HS codes


@pytest.mark.parametrize(
    ("written", "canonical"),
    [
        ("2933.37", "293337"),
        ("2933 37", "293337"),
        ("2933-37", "293337"),
        ("2933.37.00", "29333700"),
        ("2933370000", "2933370000"),  # national extensions keep their digits
        (" 29.33.37 ", "293337"),
        ("2933 . 37", "293337"),
        ("\uff12\uff19\uff13\uff13\uff0e\uff13\uff17", "293337"),
        ("\u0662\u0669\u0663\u0663\u2013\u0663\u0667", "293337"),
        ("29\u200b33.37", "293337"),
    ],
)
def test_canonical_hs(written: str, canonical: str) -> None:
    assert canonical_hs(written) == canonical


# ------------------------------------------------------------------ CAS numbers


def test_cas_check_digit_worked_example() -> None:
    # 39742-60-4: from the right 0*1 + 6*2 + 2*3 + 4*4 + 7*5 + 9*6 + 3*7 = 144 -> 4
    assert cas_check_digit("3974260") == 4
    assert cas_check_digit("39742-60") == 4
    assert cas_check_digit("6253") == 3  # aniline 62-53-3
    assert watchlist_check_digit is cas_check_digit  # one definition


@pytest.mark.parametrize(
    ("written", "reading"),
    [
        ("39742-60-4", CasReading("39742-60-4", "valid")),
        ("039742-60-4", CasReading("39742-60-4", "valid")),
        ("0000039742-60-4", CasReading("39742-60-4", "valid")),
        ("39742604", CasReading("39742-60-4", "valid")),
        ("39742-604", CasReading("39742-60-4", "valid")),
        (" 39742 60 4 ", CasReading("39742-60-4", "valid")),
        ("39742 - 60 - 4", CasReading("39742-60-4", "valid")),
        ("39742\u201360\u20144", CasReading("39742-60-4", "valid")),
        ("\uff13\uff19\uff17\uff14\uff12\uff0d\uff16\uff10\uff0d\uff14",
         CasReading("39742-60-4", "valid")),
        ("\u0663\u0669\u0667\u0664\u0662-\u0666\u0660-\u0664", CasReading("39742-60-4", "valid")),
        ("3974\u200b2-60\u00ad-4", CasReading("39742-60-4", "valid")),
        ("62-53-3", CasReading("62-53-3", "valid")),
        ("39742-60-5", CasReading("39742-60-5", "check_digit")),
        ("039742605", CasReading("39742-60-5", "check_digit")),
        ("1-23-4", CasReading("1-23-4", "shape")),
        ("12345678-90-1", CasReading("12345678-90-1", "shape")),
        ("3974-260-4", CasReading("3974-260-4", "shape")),
        ("cas tbd", CasReading("CAS TBD", "shape")),
        ("", CasReading("", "shape")),
    ],
)  # fmt: skip
def test_read_cas(written: str, reading: CasReading) -> None:
    got = read_cas(written)
    assert got == reading
    assert got.valid is (reading.status == "valid")


# ------------------------------------------------------------------ properties of the form

_TRICKY = (
    "\u03b1\u03b2\u03b3\u03b4\u03b5\u03c9\u0391\u0392|\u0417"
    + "".join(HOMOGLYPHS.values())
    + "".join(DASHES)
    + "".join(INVISIBLE)
    + "".join(SPACES)
    + "\uff10\uff11\u0663\u0969\ufb01\u00b7.,()"
)
_TEXT = st.lists(st.sampled_from([*_TRICKY, *"abcxyzABC019 -"]), max_size=12).map("".join)


@settings(max_examples=400, deadline=None, derandomize=True)
@given(_TEXT)
def test_canonical_forms_are_idempotent(text: str) -> None:
    once = canonical_text(text)
    assert canonical_text(once) == once
    name = canonical_name(text)
    assert canonical_name(name) == name
    assert canonical_code(canonical_code(text)) == canonical_code(text)
    assert canonical_hs(canonical_hs(text)) == canonical_hs(text)
    assert name.isprintable()
    assert name == name.strip()
    assert "  " not in name


@settings(max_examples=200, deadline=None, derandomize=True)
@given(st.integers(10, 9_999_999), st.integers(0, 99))
def test_read_cas_of_canonical_text_is_a_fixed_point(head: int, mid: int) -> None:
    body = f"{head}{mid:02d}"
    number = f"{head}-{mid:02d}-{cas_check_digit(body)}"
    assert read_cas(number) == CasReading(number, "valid")
    wrong = f"{head}-{mid:02d}-{(cas_check_digit(body) + 1) % 10}"
    assert read_cas(wrong) == CasReading(wrong, "check_digit")
    assert read_cas(read_cas(wrong).text) == read_cas(wrong)


# ------------------------------------------------------------------ the matcher, any writing


def test_the_watchlist_gives_the_properties_something_to_check() -> None:
    assert len(CAS_ENTRIES) >= 40
    assert len(HS_ENTRIES) >= 40
    assert len({entry for entry, _ in CAS_ENTRIES}) >= 35


@pytest.mark.parametrize(("entry_id", "number"), CAS_ENTRIES)
@PROPERTY
@given(data=st.data())
def test_any_writing_of_a_watched_cas_matches_its_entry(
    entry_id: str, number: str, data: st.DataObject
) -> None:
    written = data.draw(cas_writings(number), label="written")
    assert read_cas(written) == CasReading(number, "valid")
    found = WATCHLIST.match_line("", "", [written])
    assert [(h.entry_id, h.match_type, h.matched_text) for h in found.hits] == [
        (entry_id, "cas", number)
    ]
    assert found.invalid_cas == ()


@pytest.mark.parametrize(("entry_id", "number"), CAS_ENTRIES)
@PROPERTY
@given(data=st.data())
def test_any_writing_of_a_broken_cas_is_reported_and_never_hits(
    entry_id: str, number: str, data: st.DataObject
) -> None:
    head, mid, check = number.split("-")
    wrong = f"{head}-{mid}-{(int(check) + data.draw(st.integers(1, 9))) % 10}"
    written = data.draw(cas_writings(wrong), label="written")
    found = WATCHLIST.match_line("", "", [written])
    assert found.hits == ()
    assert found.invalid_cas == (wrong,)


@pytest.mark.parametrize("entry_id", NAMED_ENTRIES)
@settings(max_examples=25, deadline=None, derandomize=True)
@given(data=st.data())
def test_any_writing_of_a_name_matches_as_the_plain_name(
    entry_id: str, data: st.DataObject
) -> None:
    entry = WATCHLIST.entry(entry_id)
    name = data.draw(st.sampled_from([entry.name, *entry.synonyms, *entry.abbreviations]))
    written = data.draw(name_writings(name), label="written")
    plain = WATCHLIST.match_line("", f"{name}, 25 kg", ())
    found = WATCHLIST.match_line("", f"{written}, 25 kg", ())
    assert entry_id in plain.identified()
    assert _evidence(found) == _evidence(plain)


@pytest.mark.parametrize(("entry_id", "code"), HS_ENTRIES)
@PROPERTY
@given(data=st.data())
def test_any_writing_of_an_hs_code_gives_the_same_hs_hits(
    entry_id: str, code: str, data: st.DataObject
) -> None:
    extension = data.draw(st.text("0123456789", max_size=10 - len(code)), label="extension")
    written = data.draw(hs_writings(code + extension), label="written")
    plain = WATCHLIST.match_line(code + extension, "goods", ())
    found = WATCHLIST.match_line(written, "goods", ())
    assert _evidence(found) == _evidence(plain)
    hs_hits = {h.entry_id for h in found.hits if h.match_type.startswith("hs_")}
    assert entry_id in hs_hits
    if not extension:
        own = next(h for h in WATCHLIST.entry(entry_id).hs if h.code == code)
        assert (entry_id, f"hs_{own.specificity}") in {
            (h.entry_id, h.match_type) for h in found.hits
        }
