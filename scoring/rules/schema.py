"""The rules file's format: the pydantic models a rule is validated against.

Each value is checked where it is declared (country and port codes, HS prefixes, feature names,
watchlist lists, entries and route families, lanes, reason templates), so a mistake is reported
with a message an analyst can act on, often with a suggestion. Entry ids and route families are
checked against the watchlist passed as validation context (``{"watchlist": watchlist}``).
Reading the file and placing each message at its line is :mod:`scoring.rules.loading`.
"""

from __future__ import annotations

import re
import string
from collections.abc import Mapping
from typing import Annotated, Literal, TypeVar, get_args

import pycountry
from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationInfo,
    field_validator,
    model_validator,
)

from features.errors import suggest
from features.records import Mode
from features.schema import FEATURE_NAMES
from features.vocab import is_locode
from features.watchlist import EVIDENCE_THRESHOLD, MatchType, MismatchKind, Watchlist
from features.watchlist.schema import Kind, ListName

PLACEHOLDERS: tuple[str, ...] = ("entry_name", "goods_line", "matched_text")

RuleLane = Literal["red", "yellow"]

_LIST_NAMES: frozenset[str] = frozenset(get_args(ListName))
_FEATURES: frozenset[str] = frozenset(FEATURE_NAMES)
_SLUG = r"^[a-z0-9]+(-[a-z0-9]+)*$"
_ALPHA2 = re.compile(r"^[A-Z]{2}$")
_HS_PREFIX = re.compile(r"^\d{2,10}$")


# --------------------------------------------------------------------------- value checks


def _watchlist(info: ValidationInfo) -> Watchlist:
    context = info.context
    if not isinstance(context, Mapping) or not isinstance(context.get("watchlist"), Watchlist):
        raise ValueError("rules are validated against a watchlist; none was given")
    watchlist: Watchlist = context["watchlist"]
    return watchlist


def _code_text(value: object) -> object:
    if isinstance(value, bool):
        raise ValueError(f"{value!r} was read as a yes/no value: quote the code")
    if isinstance(value, int | float):
        raise ValueError(f"{value!r} was read as a number: quote the code")
    return value


def _country(value: str) -> str:
    if not _ALPHA2.match(value) or pycountry.countries.get(alpha_2=value) is None:
        raise ValueError(f"{value!r} is not an ISO 3166 alpha-2 country code (e.g. CN, IN, MX)")
    return value


def _locode(value: str) -> str:
    if not is_locode(value):
        raise ValueError(f"{value!r} is not a UN/LOCODE: two letters of country, three of place")
    if pycountry.countries.get(alpha_2=value[:2]) is None:
        raise ValueError(f"{value!r}: {value[:2]!r} is not an ISO 3166 alpha-2 country code")
    return value


def _hs_prefix(value: object) -> object:
    if isinstance(value, int | float) and not isinstance(value, bool):
        raise ValueError(f'HS prefix {value!r} was read as a number: quote it, e.g. "2933"')
    if not isinstance(value, str):
        return value
    digits = value.replace(".", "")
    if not _HS_PREFIX.match(digits):
        raise ValueError(f"HS prefix {value!r} must be 2 to 10 digits, optionally dotted")
    return digits


def _feature_name(value: str) -> str:
    if value not in _FEATURES:
        raise ValueError(f"unknown feature {value!r}{suggest(value, _FEATURES)}")
    return value


def _list_name(value: str) -> str:
    if value not in _LIST_NAMES:
        raise ValueError(f"unknown watchlist list {value!r}{suggest(value, _LIST_NAMES)}")
    return value


def _entry_id(value: str, info: ValidationInfo) -> str:
    ids = _watchlist(info).entry_ids
    if value not in ids:
        raise ValueError(f"no watchlist entry has id {value!r}{suggest(value, ids)}")
    return value


def _route_family(value: str, info: ValidationInfo) -> str:
    families = {e.route_family for e in _watchlist(info).spec.entries}
    if value not in families:
        raise ValueError(f"no watchlist entry has route family {value!r}{suggest(value, families)}")
    return value


def _lane(value: object) -> object:
    if value == "green":
        raise ValueError("rules only raise a lane, so green cannot be forced: write red or yellow")
    if value not in get_args(RuleLane):
        raise ValueError(f"lane must be red or yellow, not {value!r}")
    return value


def _template(value: str) -> str:
    try:
        parts = list(string.Formatter().parse(value))
    except ValueError as error:
        raise ValueError(f"{error}; write a literal brace as {{{{ or }}}}") from None
    for _, name, spec, conversion in parts:
        if name is None:
            continue
        if name not in PLACEHOLDERS:
            allowed = ", ".join("{" + p + "}" for p in PLACEHOLDERS)
            raise ValueError(f"unknown placeholder {{{name}}}: use {allowed}")
        if spec or conversion:
            raise ValueError(f"write the placeholder as {{{name}}}, without a format")
    return value


def _has_placeholders(text: str) -> bool:
    return any(name is not None for _, name, _, _ in string.Formatter().parse(text))


CountryCode = Annotated[str, BeforeValidator(_code_text), AfterValidator(_country)]
Locode = Annotated[str, BeforeValidator(_code_text), AfterValidator(_locode)]
HsPrefix = Annotated[str, BeforeValidator(_hs_prefix)]
FeatureName = Annotated[str, AfterValidator(_feature_name)]
ListRef = Annotated[str, AfterValidator(_list_name)]
EntryRef = Annotated[str, AfterValidator(_entry_id)]
RouteFamilyRef = Annotated[str, AfterValidator(_route_family)]
Template = Annotated[str, Field(min_length=1), AfterValidator(_template)]
Number = Annotated[float, Field(strict=True, allow_inf_nan=False)]

_T = TypeVar("_T")
OneOrMore = Annotated[list[_T], Field(default_factory=list, min_length=1)]
"""A list condition: at least one item when the key is written; an absent key is an empty list,
which filters nothing."""


# --------------------------------------------------------------------------- file schema


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=True)

    @field_validator("*", mode="before")
    @classmethod
    def _present(cls, value: object) -> object:
        if value is None:
            raise ValueError("has no value: write one or remove the key")
        return value


class WatchlistCondition(_Strict):
    """Some single watchlist hit satisfies every filter given; an empty mapping: any hit."""

    lists: OneOrMore[ListRef]
    entries: OneOrMore[EntryRef]
    kinds: OneOrMore[Kind]
    route_families: OneOrMore[RouteFamilyRef]
    exclude_entries: OneOrMore[EntryRef]
    exclude_route_families: OneOrMore[RouteFamilyRef]
    match_types: OneOrMore[MatchType]
    min_strength: Number = Field(default=EVIDENCE_THRESHOLD, ge=0.0, le=1.0)


class MismatchCondition(_Strict):
    """Some mismatch signal of one of ``kinds``; an empty mapping: any signal."""

    kinds: OneOrMore[MismatchKind]


class FeatureTest(_Strict):
    """Tests on one feature value that must all hold; a null value fails every number test."""

    lt: Number | None = None
    le: Number | None = None
    gt: Number | None = None
    ge: Number | None = None
    eq: Number | None = None
    is_null: Annotated[bool, Field(strict=True)] | None = None

    @model_validator(mode="after")
    def _one_kind_of_test(self) -> FeatureTest:
        if not self.model_fields_set:
            raise ValueError("give a test: lt, le, gt, ge, eq or is_null")
        if self.is_null is not None and len(self.model_fields_set) > 1:
            raise ValueError("is_null cannot be combined with number tests")
        return self


class Conditions(_Strict):
    """One set of conditions; all must hold."""

    watchlist: WatchlistCondition | None = None
    mismatch: MismatchCondition | None = None
    hs_prefixes: OneOrMore[HsPrefix]
    origin_countries: OneOrMore[CountryCode]
    export_countries: OneOrMore[CountryCode]
    ports: OneOrMore[Locode]
    modes: OneOrMore[Mode]
    transshipment_via: OneOrMore[Locode]
    features: dict[FeatureName, FeatureTest] = Field(default_factory=dict, min_length=1)

    @model_validator(mode="after")
    def _not_empty(self) -> Conditions:
        if not self.model_fields_set:
            raise ValueError("no conditions: a rule that always fires would select everything")
        return self

    @property
    def has_evidence(self) -> bool:
        """Whether the conditions name watchlist evidence that placeholders can be filled from."""
        return self.watchlist is not None or self.mismatch is not None


class When(Conditions):
    """A rule's conditions, optionally with alternatives of which at least one must hold."""

    any: OneOrMore[Conditions]


class ReasonText(_Strict):
    """The reason shown to inspectors, in both languages."""

    es: Template
    en: Template

    @property
    def templated(self) -> bool:
        """Whether either text has placeholders, to be filled from the evidence of each hit."""
        return _has_placeholders(self.es) or _has_placeholders(self.en)


class RuleSpec(_Strict):
    """One rule as written in the file."""

    id: Annotated[str, Field(pattern=_SLUG, max_length=64)]
    description: str | None = None
    when: When
    lane: Annotated[RuleLane, BeforeValidator(_lane)]
    reason: ReasonText

    @property
    def code(self) -> str:
        """The reason code: ``RULE_`` and the id in upper snake case."""
        return "RULE_" + self.id.upper().replace("-", "_")


class FileHeader(_Strict):
    """What the file states besides its rules: the version of the rules, ``YYYY.M.N``."""

    version: Annotated[str, Field(pattern=r"^\d{4}\.\d{1,2}\.\d+$")]
