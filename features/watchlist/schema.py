"""The watchlist file's schema and every check a file must pass before it is used.

Parsing is strict because analysts edit the file by hand and a silently ignored typo (an unknown
key, a CAS with a slipped digit, a date that does not exist) would quietly blind the matcher.
Each entry is validated on its own so that one run reports every problem, each named by the
entry's index and id and the field path, e.g. ``entries[3] (norfentanyl).cas[0].number``.

Beyond the shape, the file is checked against mistakes known to circulate in public datasets
(reference §8): CAS numbers attached to the wrong substance and wrong formulas.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from features.errors import ConfigError, FieldViolation
from features.watchlist.cas import cas_problem
from features.watchlist.text import normalize_name
from features.yamlfiles import load_strict

Confidence = Literal["H", "M", "L"]
Specificity = Literal["specific", "broad"]
Kind = Literal["substance", "equipment"]
ListName = Literal[
    "un-1988-table-i",
    "un-1988-table-ii",
    "dea-list-i",
    "dea-schedule-ii-immediate-precursor",
    "dea-special-surveillance",
    "dea-regulated-equipment",
    "eu-category-1",
]

UNSOURCED = "unsourced"
_SLUG = r"^[a-z0-9]+(-[a-z0-9]+)*$"
_HS_DOTTED = re.compile(r"^\d{4}(\.\d{2}){1,3}$|^\d{4}\.\d{2}\.\d{4}$")
_HS_PLAIN = re.compile(r"^\d{6,10}$")
_FORMULA = re.compile(r"([A-Z][a-z]?)(\d*)")

ATOMIC_MASS: dict[str, float] = {
    "H": 1.008,
    "B": 10.81,
    "C": 12.011,
    "N": 14.007,
    "O": 15.999,
    "F": 18.998,
    "Na": 22.990,
    "P": 30.974,
    "S": 32.06,
    "Cl": 35.45,
    "K": 39.098,
    "Br": 79.904,
    "I": 126.904,
}


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=True)


class _Sourced(_Strict):
    confidence: Confidence
    source: str = Field(min_length=1)
    note: str | None = None

    @model_validator(mode="after")
    def _source_matches_confidence(self) -> _Sourced:
        unsourced = self.source.lower() == UNSOURCED
        if self.confidence == "L" and not unsourced:
            raise ValueError("confidence L means no source was found: write source: unsourced")
        if self.confidence != "L" and unsourced:
            raise ValueError(f"confidence {self.confidence} needs a source; unsourced items are L")
        return self


class CasNumber(_Sourced):
    """One registry number of the substance: free base, a salt, a hydrate or an ester."""

    number: str
    form: str = Field(default="base", min_length=1)

    @field_validator("number", mode="before")
    @classmethod
    def _valid_cas(cls, value: object) -> object:
        if not isinstance(value, str):
            raise ValueError(f"write CAS numbers as text, got {value!r}")
        problem = cas_problem(value.strip())
        if problem:
            raise ValueError(problem)
        return value


class HsCode(_Sourced):
    """A tariff code the item is declared under, stored as digits only."""

    code: str
    specificity: Specificity

    @field_validator("code", mode="before")
    @classmethod
    def _normalise_code(cls, value: object) -> object:
        if isinstance(value, float):
            raise ValueError(f'HS code {value!r} was read as a number: quote it, e.g. "2933.37"')
        if isinstance(value, int):
            value = str(value)
        if not isinstance(value, str):
            raise ValueError(f"HS code must be text, got {value!r}")
        text = value.strip()
        if not (_HS_PLAIN.match(text) or _HS_DOTTED.match(text)):
            raise ValueError(
                f"HS code {text!r} must be 6 to 10 digits, optionally dotted like 2933.37 or "
                "2933.39.90"
            )
        digits = text.replace(".", "")
        if not 6 <= len(digits) <= 10:
            raise ValueError(f"HS code {text!r} has {len(digits)} digits; 6 to 10 are allowed")
        return digits


class Membership(_Sourced):
    """Membership of a control or surveillance list, with the dates known for it."""

    list: ListName
    year: int | None = Field(default=None, ge=1961, le=2100)
    decided: date | None = None
    effective: date | None = None
    decision: str | None = None
    code: str | None = None

    @model_validator(mode="after")
    def _dates_agree(self) -> Membership:
        if self.decided and self.effective and self.decided > self.effective:
            raise ValueError(f"decided {self.decided} is after effective {self.effective}")
        if self.year is not None and self.effective and self.effective.year != self.year:
            raise ValueError(f"year {self.year} disagrees with effective date {self.effective}")
        return self


class BenignContext(_Strict):
    """Where a name is usually innocent: these HS chapters, or descriptions with these words."""

    hs_chapters: list[str] = Field(default_factory=list)
    words: list[str] = Field(default_factory=list)

    @field_validator("hs_chapters")
    @classmethod
    def _chapters(cls, value: list[str]) -> list[str]:
        for chapter in value:
            if not (len(chapter) == 2 and chapter.isdigit() and chapter != "00"):
                raise ValueError(f"HS chapter {chapter!r} must be two digits, 01 to 99")
        return value


class Entry(_Strict):
    """One watched substance or piece of equipment."""

    id: Annotated[str, Field(pattern=_SLUG, max_length=64)]
    name: str = Field(min_length=1)
    kind: Kind
    route_family: Annotated[str, Field(pattern=_SLUG)]
    synonyms: list[str] = Field(default_factory=list)
    abbreviations: list[str] = Field(default_factory=list)
    not_names: list[str] = Field(default_factory=list)
    benign_context: BenignContext = Field(default_factory=BenignContext)
    formula: str | None = None
    mw: float | None = Field(default=None, gt=0)
    cas: list[CasNumber] = Field(default_factory=list)
    hs: list[HsCode] = Field(default_factory=list)
    memberships: list[Membership] = Field(default_factory=list)
    sources: list[str] = Field(min_length=1)
    notes: str | None = None

    @field_validator("synonyms", "abbreviations", "not_names")
    @classmethod
    def _names_have_letters(cls, value: list[str]) -> list[str]:
        for name in value:
            if not normalize_name(name):
                raise ValueError(f"name {name!r} has no letters or digits")
        return value

    @field_validator("formula")
    @classmethod
    def _formula_parses(cls, value: str | None) -> str | None:
        if value is not None:
            formula_mass(value)
        return value

    def all_names(self) -> list[str]:
        return [self.name, *self.synonyms, *self.abbreviations]


class WatchlistSpec(_Strict):
    """A whole validated watchlist file."""

    version: Annotated[str, Field(pattern=r"^\d{4}\.\d{1,2}\.\d+$")]
    entries: list[Entry]


def formula_mass(formula: str) -> float:
    """Molecular weight of a Hill-style formula like C13H17NO; raises ValueError if unreadable."""
    pos = 0
    total = 0.0
    for match in _FORMULA.finditer(formula):
        if match.start() != pos or not match.group(0):
            break
        element, count = match.group(1), match.group(2)
        if element not in ATOMIC_MASS:
            raise ValueError(f"formula {formula!r}: unknown element {element!r}")
        total += ATOMIC_MASS[element] * (int(count) if count else 1)
        pos = match.end()
    if pos != len(formula) or not formula:
        raise ValueError(f"formula {formula!r} is not a formula like C13H17NO")
    return total


# --------------------------------------------------------------------------- known mistakes


@dataclass(frozen=True, slots=True)
class Misattribution:
    """A CAS number or formula that public datasets attach to the wrong substance.

    ``belongs_to`` names the substance the value really identifies (any name of it); the value is
    rejected on every entry that does not carry one of those names. ``never_for`` lists
    substances the value is known to be wrongly given for, when the true owner is unknown.
    """

    value: str
    field: Literal["cas", "formula"]
    explanation: str
    belongs_to: frozenset[tuple[str, ...]] = frozenset()
    never_for: frozenset[tuple[str, ...]] = frozenset()


def _names(*names: str) -> frozenset[tuple[str, ...]]:
    return frozenset(normalize_name(n) for n in names)


KNOWN_MISATTRIBUTIONS: tuple[Misattribution, ...] = (
    Misattribution(
        "3612-20-2",
        "cas",
        "3612-20-2 is 1-benzyl-4-piperidone; scraper code mislabels it as a 4-piperidone salt",
        belongs_to=_names("1-benzyl-4-piperidone", "N-benzyl-4-piperidone"),
    ),
    Misattribution(
        "16648-44-5",
        "cas",
        "16648-44-5 is MAPA (methyl alpha-phenylacetoacetate), an isomer of BMK methyl "
        "glycidate; a public scraper labels it BMK glycidate",
        belongs_to=_names("MAPA", "methyl alpha-phenylacetoacetate"),
    ),
    Misattribution(
        "122-90-7",
        "cas",
        "122-90-7 is not propionic anhydride (that is 123-62-6); one scraper repo gives it",
        never_for=_names("propionic anhydride", "propanoic anhydride"),
    ),
    Misattribution(
        "C11H13NO",
        "formula",
        "C11H13NO is a wrong formula for NPP seen in a public dataset; NPP is C13H17NO",
        never_for=_names("NPP", "N-phenethyl-4-piperidone", "1-phenethyl-4-piperidone"),
    ),
)


def _misattribution_problem(entry: Entry, value: str, field: str) -> str | None:
    names = {normalize_name(n) for n in entry.all_names()}
    for known in KNOWN_MISATTRIBUTIONS:
        if known.field != field or known.value != value:
            continue
        if known.belongs_to and not (names & known.belongs_to):
            return known.explanation
        if names & known.never_for:
            return known.explanation
    return None


# --------------------------------------------------------------------------- loading


def _entry_label(index: int, raw: object) -> str:
    entry_id = raw.get("id") if isinstance(raw, Mapping) else None
    return f"entries[{index}] ({entry_id})" if isinstance(entry_id, str) else f"entries[{index}]"


def _loc_path(prefix: str, loc: Iterable[int | str]) -> str:
    path = prefix
    for part in loc:
        path += f"[{part}]" if isinstance(part, int) else f".{part}"
    return path


def _describe(error: Mapping[str, Any]) -> str:
    kind = error.get("type", "")
    if kind == "extra_forbidden":
        return "unknown key"
    if kind == "missing":
        return "required field is missing"
    message = str(error.get("msg", "invalid"))
    return message.removeprefix("Value error, ")


def _violations(prefix: str, error: ValidationError) -> list[FieldViolation]:
    return [FieldViolation(_loc_path(prefix, e["loc"]), _describe(e)) for e in error.errors()]


def _cross_checks(parsed: list[tuple[int, Entry]]) -> list[FieldViolation]:
    violations: list[FieldViolation] = []
    cas_owner: dict[str, str] = {}
    name_owner: dict[tuple[str, ...], str] = {}
    for index, entry in parsed:
        label = f"entries[{index}] ({entry.id})"
        for i, cas in enumerate(entry.cas):
            where = f"{label}.cas[{i}]"
            owner = cas_owner.get(cas.number)
            if owner is not None:
                violations.append(
                    FieldViolation(where, f"CAS {cas.number} is already listed under {owner}")
                )
            else:
                cas_owner[cas.number] = label
            problem = _misattribution_problem(entry, cas.number, "cas")
            if problem:
                violations.append(FieldViolation(where, f"known misattribution: {problem}"))
        if entry.kind == "equipment" and entry.cas:
            violations.append(FieldViolation(f"{label}.cas", "equipment has no CAS numbers"))
        if entry.formula and entry.mw is not None:
            computed = formula_mass(entry.formula)
            if abs(computed - entry.mw) > 0.1:
                violations.append(
                    FieldViolation(
                        f"{label}.mw",
                        f"formula {entry.formula} weighs {computed:.2f} g/mol "
                        f"but mw says {entry.mw}",
                    )
                )
        if entry.formula:
            problem = _misattribution_problem(entry, entry.formula, "formula")
            if problem:
                violations.append(
                    FieldViolation(f"{label}.formula", f"known misattribution: {problem}")
                )
        seen_codes: set[str] = set()
        for i, hs in enumerate(entry.hs):
            if hs.code in seen_codes:
                violations.append(
                    FieldViolation(f"{label}.hs[{i}]", f"HS code {hs.code} listed twice")
                )
            seen_codes.add(hs.code)
        for field, names in (
            ("name", [entry.name]),
            ("synonyms", entry.synonyms),
            ("abbreviations", entry.abbreviations),
        ):
            for i, name in enumerate(names):
                key = normalize_name(name)
                owner = name_owner.setdefault(key, label)
                if owner != label:
                    where = f"{label}.{field}" if field == "name" else f"{label}.{field}[{i}]"
                    violations.append(
                        FieldViolation(
                            where,
                            f"name {name!r} also names {owner}; a name must identify one entry",
                        )
                    )
    return violations


def parse_watchlist(data: object) -> WatchlistSpec:
    """Validate already-parsed YAML data; raise :class:`ConfigError` naming every bad field."""
    if not isinstance(data, Mapping):
        raise ConfigError(
            "watchlist is invalid",
            [FieldViolation("(file)", "top level must be a mapping with version and entries")],
        )
    violations: list[FieldViolation] = []
    for key in data:
        if key not in ("version", "entries"):
            violations.append(FieldViolation(str(key), "unknown key"))
    version = data.get("version")
    try:
        WatchlistSpec.model_validate({"version": version, "entries": []})
    except ValidationError as error:
        violations.extend(_violations("", error))
    raw_entries = data.get("entries")
    parsed: list[tuple[int, Entry]] = []
    if not isinstance(raw_entries, list):
        violations.append(FieldViolation("entries", "must be a list of entries"))
        raw_entries = []
    first_at: dict[str, int] = {}
    for index, raw in enumerate(raw_entries):
        label = _entry_label(index, raw)
        entry_id = raw.get("id") if isinstance(raw, Mapping) else None
        if isinstance(entry_id, str):
            if entry_id in first_at:
                violations.append(
                    FieldViolation(
                        f"{label}.id",
                        f"duplicate id {entry_id!r}, first at entries[{first_at[entry_id]}]",
                    )
                )
            first_at.setdefault(entry_id, index)
        try:
            parsed.append((index, Entry.model_validate(raw)))
        except ValidationError as error:
            violations.extend(_violations(label, error))
    violations.extend(_cross_checks(parsed))
    violations = [FieldViolation(v.field.lstrip("."), v.description) for v in violations]
    if violations:
        raise ConfigError(f"watchlist is invalid ({len(violations)} problems)", violations)
    return WatchlistSpec(version=str(version), entries=[e for _, e in parsed])


def parse_watchlist_text(text: str, origin: str = "<watchlist>") -> WatchlistSpec:
    """Parse and validate watchlist YAML text; ``origin`` names it in error messages."""
    try:
        data = load_strict(text)
    except RecursionError:
        raise ConfigError(
            f"{origin}: not valid YAML", [FieldViolation(origin, "nested too deeply")]
        ) from None
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        position = getattr(error, "position", None)  # a ReaderError: a character YAML refuses
        if mark is not None:
            where = f"{origin}:{mark.line + 1}"
        elif isinstance(position, int):
            line = text.count("\n", 0, position) + 1
            where = f"{origin}:{line}"
        else:
            where = origin
        problem = getattr(error, "problem", None) or getattr(error, "reason", None) or str(error)
        raise ConfigError(
            f"{origin}: not valid YAML", [FieldViolation(where, str(problem))]
        ) from None
    try:
        return parse_watchlist(data)
    except ConfigError as error:
        raise ConfigError(f"{origin}: watchlist is invalid", error.violations) from None


def read_text_file(path: Path, what: str) -> str:
    """The UTF-8 text of an analyst-edited file (``what`` names it in errors: "watchlist").

    A file that cannot be read, or is not UTF-8 (a damaged copy, a binary, another encoding),
    is a :class:`ConfigError` naming the file and, for bad bytes, the byte offset and line.
    """
    try:
        data = Path(path).read_bytes()
    except OSError as error:
        raise ConfigError(f"{path}: cannot read {what} ({error.strerror or error})") from None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as error:
        line = data.count(b"\n", 0, error.start) + 1
        raise ConfigError(
            f"{path}: {what} is not UTF-8 text: byte 0x{data[error.start]:02x} at offset "
            f"{error.start} (line {line}) is invalid"
        ) from None


def read_watchlist_file(path: Path) -> WatchlistSpec:
    """Read and validate a watchlist file."""
    return parse_watchlist_text(read_text_file(path, "watchlist"), str(path))
