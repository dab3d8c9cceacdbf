"""Versioned hard rules: analyst-written conditions that force a lane whatever the model says.

A calibrated score ranks shipments; it does not guarantee that an identified Table I precursor is
opened. The rules file (``scoring/rules.yaml``, its format documented in its header) states those
guarantees as data that analysts read, edit and version. Rules only raise a lane: the decision is
:func:`strongest_lane` of the model's lane and every rule that fires.

Public API::

    load_rules(path=None, watchlist=None) -> RuleSet      # None: the packaged rules.yaml
    parse_rules_text(text, origin, watchlist) -> RuleSet
    RuleSet.version, RuleSet.rules, RuleSet.evaluate(ctx) -> list[RuleHit]
    RuleContext(shipment, hits, mismatches, features)
    evidence_from_lines(line_matches, watchlist) -> (hits, mismatches)
    strongest_lane(model_lane, hits) -> str

Validation is strict because a misspelt condition would otherwise be ignored and silently stop a
guarantee. Every problem is reported at once, each with its line in the file, e.g.
``line 42: rules[3].when.watchlist_lsts: rule 'table-i-precursor': unknown condition
'watchlist_lsts'``. Entry ids and route families are checked against the watchlist given at load
time; evaluation uses the list memberships carried by each piece of evidence, so a reloaded
watchlist that adds a Table I entry is covered without reloading the rules.

Evaluation runs on every live request, so conditions are compiled at load into sets and closures;
a shipment without watchlist evidence is dismissed by evidence rules after one length check.
"""

from __future__ import annotations

import difflib
import math
import operator
import re
import string
import weakref
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Annotated, Any, Literal, NamedTuple, get_args

import pycountry
import yaml
from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from features.errors import ConfigError, DataError, FieldViolation
from features.records import Mode, Shipment
from features.schema import FEATURE_NAMES
from features.watchlist import (
    EVIDENCE_THRESHOLD,
    LineMatch,
    MatchType,
    MismatchKind,
    Watchlist,
    load_watchlist,
)
from features.watchlist.schema import Kind, ListName, read_text_file
from features.yamlfiles import AnalystLoader
from scoring.lanes import LANE_ORDER, LANES, raise_lane
from scoring.reasons import Reason

PACKAGED_FILE = "rules.yaml"
PLACEHOLDERS: tuple[str, ...] = ("entry_name", "goods_line", "matched_text")

RuleLane = Literal["red", "yellow"]

_LIST_NAMES: frozenset[str] = frozenset(get_args(ListName))
_FEATURES: frozenset[str] = frozenset(FEATURE_NAMES)
_SLUG = r"^[a-z0-9]+(-[a-z0-9]+)*$"
_LOCODE = re.compile(r"^[A-Z]{2}[A-Z2-9]{3}$")
_ALPHA2 = re.compile(r"^[A-Z]{2}$")
_HS_PREFIX = re.compile(r"^\d{2,10}$")


# --------------------------------------------------------------------------- value checks


def _suggest(value: str, known: Iterable[str]) -> str:
    close = difflib.get_close_matches(value, sorted(known), n=1, cutoff=0.6)
    return f"; did you mean {close[0]!r}?" if close else ""


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
    if not _LOCODE.match(value):
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
        raise ValueError(f"unknown feature {value!r}{_suggest(value, _FEATURES)}")
    return value


def _list_name(value: str) -> str:
    if value not in _LIST_NAMES:
        raise ValueError(f"unknown watchlist list {value!r}{_suggest(value, _LIST_NAMES)}")
    return value


def _entry_id(value: str, info: ValidationInfo) -> str:
    ids = _watchlist(info).entry_ids
    if value not in ids:
        raise ValueError(f"no watchlist entry has id {value!r}{_suggest(value, ids)}")
    return value


def _route_family(value: str, info: ValidationInfo) -> str:
    families = {e.route_family for e in _watchlist(info).spec.entries}
    if value not in families:
        raise ValueError(
            f"no watchlist entry has route family {value!r}{_suggest(value, families)}"
        )
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

    lists: list[ListRef] = Field(default_factory=list, min_length=1)
    entries: list[EntryRef] = Field(default_factory=list, min_length=1)
    kinds: list[Kind] = Field(default_factory=list, min_length=1)
    route_families: list[RouteFamilyRef] = Field(default_factory=list, min_length=1)
    exclude_entries: list[EntryRef] = Field(default_factory=list, min_length=1)
    exclude_route_families: list[RouteFamilyRef] = Field(default_factory=list, min_length=1)
    match_types: list[MatchType] = Field(default_factory=list, min_length=1)
    min_strength: Number = Field(default=EVIDENCE_THRESHOLD, ge=0.0, le=1.0)


class MismatchCondition(_Strict):
    """Some mismatch signal of one of ``kinds``; an empty mapping: any signal."""

    kinds: list[MismatchKind] = Field(default_factory=list, min_length=1)


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
    hs_prefixes: list[HsPrefix] = Field(default_factory=list, min_length=1)
    origin_countries: list[CountryCode] = Field(default_factory=list, min_length=1)
    export_countries: list[CountryCode] = Field(default_factory=list, min_length=1)
    ports: list[Locode] = Field(default_factory=list, min_length=1)
    modes: list[Mode] = Field(default_factory=list, min_length=1)
    transshipment_via: list[Locode] = Field(default_factory=list, min_length=1)
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

    any: list[Conditions] = Field(default_factory=list, min_length=1)


class ReasonText(_Strict):
    """The reason shown to inspectors, in both languages."""

    es: Template
    en: Template


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


class _Header(_Strict):
    version: Annotated[str, Field(pattern=r"^\d{4}\.\d{1,2}\.\d+$")]


_TOP_KEYS = ("version", "rules")
_RULE_KEYS = tuple(RuleSpec.model_fields)
_WHEN_KEYS = tuple(When.model_fields)
_CONDITION_KEYS = tuple(Conditions.model_fields)
_WATCHLIST_KEYS = tuple(WatchlistCondition.model_fields)
_MISMATCH_KEYS = tuple(MismatchCondition.model_fields)
_OPERATORS = tuple(FeatureTest.model_fields)


# --------------------------------------------------------------------------- evidence


@dataclass(frozen=True, slots=True)
class RuleEvidence:
    """One watchlist hit on one goods line, with what the watchlist says about its entry.

    Memberships travel with the evidence so rules keep working when the watchlist is reloaded.
    """

    entry_id: str
    match_type: str
    strength: float
    goods_index: int
    matched_text: str
    entry_name: str = ""
    lists: frozenset[str] = frozenset()
    kind: str = ""
    route_family: str = ""


class MismatchEvidence(NamedTuple):
    """A mismatch signal of the matcher on one goods line."""

    entry_id: str
    kind: str
    goods_index: int


@dataclass(frozen=True, slots=True)
class _Facts:
    name: str
    lists: frozenset[str]
    kind: str
    route_family: str


_FACTS: weakref.WeakKeyDictionary[Watchlist, Mapping[str, _Facts]] = weakref.WeakKeyDictionary()


def _facts(watchlist: Watchlist) -> Mapping[str, _Facts]:
    found = _FACTS.get(watchlist)
    if found is None:
        found = {
            e.id: _Facts(e.name, frozenset(m.list for m in e.memberships), e.kind, e.route_family)
            for e in watchlist.spec.entries
        }
        _FACTS[watchlist] = found
    return found


def _evidence(
    facts: Mapping[str, _Facts],
    entry_id: str,
    match_type: str,
    strength: float,
    goods_index: int,
    matched_text: str,
) -> RuleEvidence:
    fact = facts.get(entry_id)
    if fact is None:
        raise DataError(
            f"watchlist hit names entry {entry_id!r}, which the watchlist lacks: "
            "hits and watchlist must come from the same version"
        )
    return RuleEvidence(
        entry_id,
        match_type,
        float(strength),
        goods_index,
        matched_text,
        fact.name,
        fact.lists,
        fact.kind,
        fact.route_family,
    )


def evidence_from_lines(
    lines: Sequence[LineMatch], watchlist: Watchlist
) -> tuple[tuple[RuleEvidence, ...], tuple[MismatchEvidence, ...]]:
    """Evidence from ``Watchlist.match_line`` results, one per goods line in goods order."""
    facts = _facts(watchlist)
    hits = tuple(
        _evidence(facts, h.entry_id, h.match_type, h.strength, index, h.matched_text)
        for index, line in enumerate(lines)
        for h in line.hits
    )
    mismatches = tuple(
        MismatchEvidence(m.entry_id, m.kind, index)
        for index, line in enumerate(lines)
        for m in line.mismatches
    )
    return hits, mismatches


def _hs_digits(code: str) -> str:
    return "".join(ch for ch in code if ch.isdigit())


_MATCH_PREFERENCE = {"cas": 0, "hs_specific": 1, "name_exact": 2, "name_fuzzy": 3, "hs_broad": 4}


def _preference(ev: RuleEvidence) -> int:
    return _MATCH_PREFERENCE.get(ev.match_type, len(_MATCH_PREFERENCE))


@dataclass(frozen=True, slots=True)
class RuleContext:
    """Everything rules may look at for one shipment. ``features`` holds NaN for null values.

    A feature missing from ``features`` counts as null.
    """

    shipment: Shipment
    hits: Sequence[RuleEvidence] = ()
    mismatches: Sequence[MismatchEvidence] = ()
    features: Mapping[str, float] = field(default_factory=dict)

    def evidence_at(self, entry_id: str, goods_index: int) -> RuleEvidence | None:
        """The hit behind a mismatch signal: the entry's CAS hit on that line if there is one.

        Only called for a mismatch rule that fires, so a linear scan beats building an index.
        """
        candidates = [
            ev for ev in self.hits if ev.entry_id == entry_id and ev.goods_index == goods_index
        ]
        return min(candidates, key=_preference, default=None)


# --------------------------------------------------------------------------- compiled rules


@dataclass(frozen=True, slots=True)
class RuleHit:
    """A rule that fired for a shipment: the lane it forces and the reason to show."""

    rule_id: str
    lane: str
    reason: Reason


_Check = Callable[[RuleContext], bool]


def _optional(values: Iterable[str]) -> frozenset[str] | None:
    found = frozenset(values)
    return found or None


@dataclass(frozen=True, slots=True)
class _WatchTest:
    lists: frozenset[str] | None
    entries: frozenset[str] | None
    kinds: frozenset[str] | None
    route_families: frozenset[str] | None
    exclude_entries: frozenset[str]
    exclude_route_families: frozenset[str]
    match_types: frozenset[str] | None
    min_strength: float

    @classmethod
    def compile(cls, spec: WatchlistCondition) -> _WatchTest:
        return cls(
            lists=_optional(spec.lists),
            entries=_optional(spec.entries),
            kinds=_optional(spec.kinds),
            route_families=_optional(spec.route_families),
            exclude_entries=frozenset(spec.exclude_entries),
            exclude_route_families=frozenset(spec.exclude_route_families),
            match_types=_optional(spec.match_types),
            min_strength=spec.min_strength,
        )

    def first(self, hits: Sequence[RuleEvidence]) -> RuleEvidence | None:
        for ev in hits:
            if (
                ev.strength >= self.min_strength
                and (self.match_types is None or ev.match_type in self.match_types)
                and (self.entries is None or ev.entry_id in self.entries)
                and (self.kinds is None or ev.kind in self.kinds)
                and (self.route_families is None or ev.route_family in self.route_families)
                and (self.lists is None or not self.lists.isdisjoint(ev.lists))
                and ev.entry_id not in self.exclude_entries
                and ev.route_family not in self.exclude_route_families
            ):
                return ev
        return None


@dataclass(frozen=True, slots=True)
class _Found:
    hit: RuleEvidence | None = None
    mismatch: MismatchEvidence | None = None


_NO_EVIDENCE = _Found()

_OPERATOR_FUNCTIONS: dict[str, Callable[[float, float], bool]] = {
    "lt": operator.lt,
    "le": operator.le,
    "gt": operator.gt,
    "ge": operator.ge,
    "eq": operator.eq,
}


def _is_null(value: float | None) -> bool:
    return value is None or math.isnan(value)


def _feature_check(name: str, test: FeatureTest) -> _Check:
    if test.is_null is not None:
        want = test.is_null
        return lambda ctx: _is_null(ctx.features.get(name)) is want
    tests = tuple(
        (_OPERATOR_FUNCTIONS[op], bound)
        for op in _OPERATOR_FUNCTIONS
        if (bound := getattr(test, op)) is not None
    )

    def check(ctx: RuleContext) -> bool:
        value = ctx.features.get(name)
        if value is None or math.isnan(value):
            return False
        return all(compare(value, bound) for compare, bound in tests)

    return check


def _checks(spec: Conditions) -> tuple[_Check, ...]:
    checks: list[_Check] = []
    if spec.modes:
        modes = frozenset(spec.modes)
        checks.append(lambda ctx: ctx.shipment.mode in modes)
    if spec.ports:
        ports = frozenset(spec.ports)
        checks.append(lambda ctx: ctx.shipment.port_of_entry in ports)
    if spec.origin_countries:
        origins = frozenset(spec.origin_countries)
        checks.append(lambda ctx: ctx.shipment.origin_country in origins)
    if spec.export_countries:
        exports = frozenset(spec.export_countries)
        checks.append(lambda ctx: ctx.shipment.export_country in exports)
    if spec.transshipment_via:
        via = frozenset(spec.transshipment_via)
        checks.append(lambda ctx: not via.isdisjoint(ctx.shipment.transshipment_ports))
    checks += [_feature_check(name, test) for name, test in spec.features.items()]
    if spec.hs_prefixes:
        prefixes = tuple(spec.hs_prefixes)
        checks.append(
            lambda ctx: any(_hs_digits(g.hs_code).startswith(prefixes) for g in ctx.shipment.goods)
        )
    return tuple(checks)


@dataclass(frozen=True, slots=True)
class _Clause:
    watch: _WatchTest | None
    mismatch_kinds: frozenset[str] | None
    wants_mismatch: bool
    checks: tuple[_Check, ...]

    @classmethod
    def compile(cls, spec: Conditions) -> _Clause:
        return cls(
            watch=_WatchTest.compile(spec.watchlist) if spec.watchlist is not None else None,
            mismatch_kinds=_optional(spec.mismatch.kinds) if spec.mismatch is not None else None,
            wants_mismatch=spec.mismatch is not None,
            checks=_checks(spec),
        )

    def test(self, ctx: RuleContext) -> _Found | None:
        hit = None
        if self.watch is not None:
            if not ctx.hits:
                return None
            hit = self.watch.first(ctx.hits)
            if hit is None:
                return None
        mismatch = None
        if self.wants_mismatch:
            kinds = self.mismatch_kinds
            mismatch = next((m for m in ctx.mismatches if kinds is None or m.kind in kinds), None)
            if mismatch is None:
                return None
        for check in self.checks:
            if not check(ctx):
                return None
        if hit is None and mismatch is None:
            return _NO_EVIDENCE
        return _Found(hit, mismatch)


def _placeholder_values(ctx: RuleContext, found: _Found) -> dict[str, str]:
    if found.hit is not None:
        ev: RuleEvidence | None = found.hit
        entry_id, goods_index = found.hit.entry_id, found.hit.goods_index
    elif found.mismatch is not None:
        entry_id, goods_index = found.mismatch.entry_id, found.mismatch.goods_index
        ev = ctx.evidence_at(entry_id, goods_index)
    else:
        return dict.fromkeys(PLACEHOLDERS, "")
    return {
        "entry_name": (ev.entry_name if ev is not None else "") or entry_id,
        "goods_line": str(goods_index + 1),
        "matched_text": ev.matched_text if ev is not None else "",
    }


@dataclass(frozen=True, slots=True)
class _Rule:
    spec: RuleSpec
    top: _Clause
    alternatives: tuple[_Clause, ...]
    fixed: RuleHit | None

    @classmethod
    def compile(cls, spec: RuleSpec) -> _Rule:
        templated = _has_placeholders(spec.reason.es) or _has_placeholders(spec.reason.en)
        fixed = (
            None
            if templated
            else RuleHit(spec.id, spec.lane, Reason(spec.code, spec.reason.es, spec.reason.en, 0.0))
        )
        return cls(
            spec,
            _Clause.compile(spec.when),
            tuple(_Clause.compile(c) for c in spec.when.any),
            fixed,
        )

    def fire(self, ctx: RuleContext) -> RuleHit | None:
        found = self.top.test(ctx)
        if found is None:
            return None
        if self.alternatives:
            chosen = None
            for clause in self.alternatives:
                chosen = clause.test(ctx)
                if chosen is not None:
                    break
            if chosen is None:
                return None
            if found is _NO_EVIDENCE:
                found = chosen
        if self.fixed is not None:
            return self.fixed
        values = _placeholder_values(ctx, found)
        reason = Reason(
            self.spec.code,
            self.spec.reason.es.format_map(values),
            self.spec.reason.en.format_map(values),
            0.0,
        )
        return RuleHit(self.spec.id, self.spec.lane, reason)


@dataclass(frozen=True, eq=False)
class RuleSet:
    """A validated, compiled, immutable rules file, usually built by :func:`load_rules`.

    ``rules`` are validated :class:`RuleSpec` objects; they are compiled here, once. ``source``
    names the file they came from, for logs and messages.
    """

    version: str
    rules: tuple[RuleSpec, ...]
    source: str = ""
    _compiled: tuple[_Rule, ...] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "rules", tuple(self.rules))
        object.__setattr__(self, "_compiled", tuple(_Rule.compile(r) for r in self.rules))

    def evaluate(self, ctx: RuleContext) -> list[RuleHit]:
        """Every rule that fires for the shipment, in file order."""
        out: list[RuleHit] = []
        for rule in self._compiled:
            hit = rule.fire(ctx)
            if hit is not None:
                out.append(hit)
        return out


def strongest_lane(model_lane: str, hits: Sequence[RuleHit]) -> str:
    """The decision's lane: the strongest of the model's lane and the rules' (red > yellow > green).

    Rules can only raise the lane; a rule never releases a shipment the model selected.
    """
    if model_lane not in LANE_ORDER:
        raise ValueError(f"unknown lane {model_lane!r}; lanes are {', '.join(LANES)}")
    best = model_lane
    for hit in hits:
        best = raise_lane(best, hit.lane)
    return best


# --------------------------------------------------------------------------- loading


_Path = tuple[str | int, ...]


def _map_lines(
    node: yaml.Node, path: _Path, lines: dict[_Path, int], problems: list[FieldViolation]
) -> None:
    """Record the line of every key and list item, and report duplicate keys.

    PyYAML keeps the last of two duplicate keys silently; an analyst's second ``lane:`` would win
    without a word.
    """
    if isinstance(node, yaml.MappingNode):
        seen: dict[str, int] = {}
        for key_node, value_node in node.value:
            key = str(key_node.value)
            line = key_node.start_mark.line + 1
            child = (*path, key)
            if key in seen:
                problems.append(
                    FieldViolation(
                        f"line {line}: {_path_text(child)}",
                        f"duplicate key {key!r}, first at line {seen[key]}",
                    )
                )
            else:
                seen[key] = line
                lines[child] = line
            _map_lines(value_node, child, lines, problems)
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            child = (*path, index)
            lines[child] = item.start_mark.line + 1
            _map_lines(item, child, lines, problems)


def _path_text(path: Iterable[str | int]) -> str:
    text = ""
    for part in path:
        text += f"[{part}]" if isinstance(part, int) else f".{part}"
    return text.lstrip(".") or "(file)"


def _line_of(path: _Path, lines: Mapping[_Path, int]) -> int:
    for end in range(len(path), 0, -1):
        line = lines.get(path[:end])
        if line is not None:
            return line
    return 1


def _unknown_key(path: _Path) -> str:
    key, parent = str(path[-1]), path[:-1]
    what = "key"
    known: tuple[str, ...] = _TOP_KEYS
    if len(parent) >= 2 and parent[0] == "rules":
        rest = parent[2:]
        what, known = "key", _RULE_KEYS
        if rest == ("when",):
            what, known = "condition", _WHEN_KEYS
        elif len(rest) == 3 and rest[:2] == ("when", "any"):
            if key == "any":
                return "'any' alternatives cannot be nested"
            what, known = "condition", _CONDITION_KEYS
        elif rest and rest[-1] == "watchlist":
            what, known = "watchlist condition", _WATCHLIST_KEYS
        elif rest and rest[-1] == "mismatch":
            what, known = "mismatch condition", _MISMATCH_KEYS
        elif len(rest) >= 2 and rest[-2] == "features":
            what, known = "operator", _OPERATORS
        elif rest == ("reason",):
            what, known = "language", ("es", "en")
    hint = _suggest(key, known) or f"; expected one of {', '.join(known)}"
    return f"unknown {what} {key!r}{hint}"


def _message(error: Mapping[str, Any], path: _Path) -> str:
    kind = error.get("type", "")
    if kind == "extra_forbidden":
        return _unknown_key(path)
    if kind == "missing":
        if len(path) >= 2 and path[-2] == "reason":
            language = "Spanish" if path[-1] == "es" else "English"
            return f"reason needs {path[-1]!r}, the {language} text"
        return f"{path[-1]!r} is required"
    return str(error.get("msg", "invalid")).removeprefix("Value error, ")


def _violations(
    error: ValidationError,
    prefix: _Path,
    lines: Mapping[_Path, int],
    label: str,
) -> list[FieldViolation]:
    out = []
    for detail in error.errors():
        path: _Path = (*prefix, *(p for p in detail["loc"] if p != "[key]"))
        line = _line_of(path, lines)
        out.append(
            FieldViolation(f"line {line}: {_path_text(path)}", label + _message(detail, path))
        )
    return out


def _evidence_problem(rule: RuleSpec) -> str | None:
    if not (_has_placeholders(rule.reason.es) or _has_placeholders(rule.reason.en)):
        return None
    when = rule.when
    if when.has_evidence or (when.any and all(c.has_evidence for c in when.any)):
        return None
    return (
        "the reason uses placeholders, which are filled from watchlist evidence: give the rule "
        "a watchlist or mismatch condition"
    )


def _at(path: _Path, lines: Mapping[_Path, int], description: str) -> FieldViolation:
    return FieldViolation(f"line {_line_of(path, lines)}: {_path_text(path)}", description)


def _line_number(violation: FieldViolation) -> int:
    return int(violation.field.split(":", 1)[0].removeprefix("line "))


def _invalid(origin: str, violations: list[FieldViolation]) -> ConfigError:
    ordered = sorted(violations, key=_line_number)
    count = len(ordered)
    return ConfigError(
        f"{origin}: rules file is invalid ({count} problem{'s' if count != 1 else ''})", ordered
    )


def _validate(
    data: object, watchlist: Watchlist, lines: Mapping[_Path, int]
) -> tuple[str | None, list[RuleSpec], list[FieldViolation]]:
    """The file's version and valid rules, and every problem found, each at its line.

    Rules are validated one by one so a single run reports the problems of every rule.
    """
    if not isinstance(data, Mapping):
        return None, [], [_at((), lines, "top level must be a mapping with version and rules")]
    violations = [
        _at((str(k),), lines, _unknown_key((str(k),))) for k in data if k not in _TOP_KEYS
    ]
    version = None
    try:
        version = _Header.model_validate({k: data[k] for k in ("version",) if k in data}).version
    except ValidationError as error:
        violations += _violations(error, (), lines, "")
    raw_rules = data.get("rules")
    if not isinstance(raw_rules, list):
        violations.append(_at(("rules",), lines, "must be a list of rules"))
        raw_rules = []
    parsed: list[RuleSpec] = []
    first_at: dict[str, int] = {}
    context = {"watchlist": watchlist}
    for index, raw in enumerate(raw_rules):
        prefix: _Path = ("rules", index)
        rule_id = raw.get("id") if isinstance(raw, Mapping) else None
        label = f"rule {rule_id!r}: " if isinstance(rule_id, str) else ""
        try:
            rule = RuleSpec.model_validate(raw, context=context)
        except ValidationError as error:
            violations += _violations(error, prefix, lines, label)
            continue
        parsed.append(rule)
        id_line = _line_of((*prefix, "id"), lines)
        if rule.id in first_at:
            violations.append(
                _at(
                    (*prefix, "id"),
                    lines,
                    f"{label}duplicate id, first at line {first_at[rule.id]}",
                )
            )
        first_at.setdefault(rule.id, id_line)
        problem = _evidence_problem(rule)
        if problem:
            violations.append(_at((*prefix, "reason"), lines, label + problem))
    return version, parsed, violations


def _not_yaml(origin: str, text: str, error: Exception) -> ConfigError:
    """A YAML error (or nesting too deep to read) as a :class:`ConfigError` with its line."""
    if isinstance(error, RecursionError):
        return ConfigError(
            f"{origin}: not valid YAML", [FieldViolation("line 1", "nested too deeply")]
        )
    mark = getattr(error, "problem_mark", None)
    position = getattr(error, "position", None)  # a ReaderError: a character YAML refuses
    if mark is not None:
        line = mark.line + 1
    elif isinstance(position, int):
        line = text.count("\n", 0, position) + 1
    else:
        line = 1
    problem = getattr(error, "problem", None) or getattr(error, "reason", None) or str(error)
    return ConfigError(f"{origin}: not valid YAML", [FieldViolation(f"line {line}", str(problem))])


def parse_rules_text(text: str, origin: str, watchlist: Watchlist) -> RuleSet:
    """Parse and validate rules YAML text; ``origin`` names it in error messages.

    Raises :class:`~features.errors.ConfigError` with one violation per problem, each field
    starting with its line, e.g. ``line 42: rules[3].when.watchlist_lsts``.
    """
    try:
        loader = AnalystLoader(text)  # its reader refuses control characters at once
    except yaml.YAMLError as error:
        raise _not_yaml(origin, text, error) from None
    lines: dict[_Path, int] = {}
    violations: list[FieldViolation] = []
    try:
        node = loader.get_single_node()
        if node is not None:
            _map_lines(node, (), lines, violations)
        data = loader.construct_document(node) if node is not None else None
    except (yaml.YAMLError, RecursionError) as error:
        raise _not_yaml(origin, text, error) from None
    finally:
        loader.dispose()
    version, rules, problems = _validate(data, watchlist, lines)
    violations += problems
    if violations or version is None:
        raise _invalid(origin, violations)
    return RuleSet(version, tuple(rules), origin)


def load_rules(path: Path | None = None, watchlist: Watchlist | None = None) -> RuleSet:
    """Load and compile a rules file; ``None`` loads the one shipped with Centinela.

    ``watchlist`` (default: the packaged one) is what entry ids and route families are checked
    against. Raises :class:`~features.errors.ConfigError` naming every problem with its line.
    """
    if watchlist is None:
        watchlist = load_watchlist()
    if path is None:
        resource = resources.files("scoring").joinpath(PACKAGED_FILE)
        return parse_rules_text(
            resource.read_text(encoding="utf-8"), f"(packaged) {PACKAGED_FILE}", watchlist
        )
    return parse_rules_text(read_text_file(Path(path), "rules"), str(path), watchlist)
