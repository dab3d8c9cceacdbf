"""Rules compiled for evaluation, and the decision's lane.

Evaluation runs on every live request, so :class:`RuleSet` compiles each validated
:class:`~scoring.rules.schema.RuleSpec` once, into sets and closures: a shipment without
watchlist evidence is dismissed by evidence rules after one length check. A rule that fires
gives a :class:`RuleHit` (its lane and its reason, placeholders filled from the evidence that
satisfied it); :func:`strongest_lane` takes the strongest of the model's lane and every hit's.
"""

from __future__ import annotations

import math
import operator
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

from features.records import Shipment
from scoring.lanes import LANE_ORDER, LANES, raise_lane
from scoring.reasons import Reason
from scoring.rules.evidence import MismatchEvidence, RuleContext, RuleEvidence
from scoring.rules.schema import PLACEHOLDERS, Conditions, FeatureTest, RuleSpec, WatchlistCondition


@dataclass(frozen=True, slots=True)
class RuleHit:
    """A rule that fired for a shipment: the lane it forces and the reason to show."""

    rule_id: str
    lane: str
    reason: Reason


_Check = Callable[[RuleContext], bool]


def _optional(values: Iterable[str]) -> frozenset[str] | None:
    """The values a filter allows; None, for any value, when the rule lists none."""
    found = frozenset(values)
    return found or None


_FILTERS = ("lists", "entries", "kinds", "route_families", "match_types")
"""The watchlist condition's filters that allow any value when the rule lists none."""


@dataclass(frozen=True, slots=True)
class _WatchTest:
    """A compiled watchlist condition: finds the first hit that passes every filter."""

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
        filters = {name: _optional(getattr(spec, name)) for name in _FILTERS}
        return cls(
            **filters,
            exclude_entries=frozenset(spec.exclude_entries),
            exclude_route_families=frozenset(spec.exclude_route_families),
            min_strength=spec.min_strength,
        )

    def first(self, hits: Sequence[RuleEvidence]) -> RuleEvidence | None:
        """The first of ``hits`` that satisfies the condition, if any."""
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
    """The evidence that satisfied a clause, where placeholders are filled from."""

    hit: RuleEvidence | None = None
    mismatch: MismatchEvidence | None = None


_NO_EVIDENCE = _Found()
"""A clause satisfied without watchlist evidence (it has no watchlist or mismatch condition)."""

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
    """The tests on one feature; a null value fails every number test."""
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


def _hs_digits(code: str) -> str:
    return "".join(ch for ch in code if ch.isdigit())


_SHIPMENT_FIELDS: tuple[tuple[str, Callable[[Shipment], str]], ...] = (
    ("modes", operator.attrgetter("mode")),
    ("ports", operator.attrgetter("port_of_entry")),
    ("origin_countries", operator.attrgetter("origin_country")),
    ("export_countries", operator.attrgetter("export_country")),
)
"""Conditions that list the values one field of the shipment may take, and that field."""


def _one_of(shipment_field: Callable[[Shipment], str], allowed: frozenset[str]) -> _Check:
    return lambda ctx: shipment_field(ctx.shipment) in allowed


def _checks(spec: Conditions) -> tuple[_Check, ...]:
    """The conditions other than watchlist evidence, each as a test of the context."""
    checks = [
        _one_of(shipment_field, frozenset(allowed))
        for condition, shipment_field in _SHIPMENT_FIELDS
        if (allowed := getattr(spec, condition))
    ]
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
    """One compiled set of conditions (a rule's ``when``, or one of its ``any`` alternatives)."""

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
        """The evidence that satisfies every condition, :data:`_NO_EVIDENCE` if none is asked
        for, or None when a condition fails."""
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
    """The values of :data:`~scoring.rules.schema.PLACEHOLDERS` for the evidence found."""
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
    """One compiled rule; ``fixed`` is its hit when the reason has no placeholders to fill."""

    spec: RuleSpec
    top: _Clause
    alternatives: tuple[_Clause, ...]
    fixed: RuleHit | None

    @classmethod
    def compile(cls, spec: RuleSpec) -> _Rule:
        fixed = (
            None
            if spec.reason.templated
            else RuleHit(spec.id, spec.lane, Reason(spec.code, spec.reason.es, spec.reason.en, 0.0))
        )
        return cls(
            spec,
            _Clause.compile(spec.when),
            tuple(_Clause.compile(c) for c in spec.when.any),
            fixed,
        )

    def fire(self, ctx: RuleContext) -> RuleHit | None:
        """The hit if the rule fires for the shipment, else None."""
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
