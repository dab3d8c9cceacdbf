"""Rules compiled for evaluation, and the decision's lane.

Evaluation runs for every shipment scored, so :class:`RuleSet` compiles each validated
:class:`~scoring.rules.schema.RuleSpec` once, into sets and closures, and sorts the rules by the
evidence they need: for a shipment without watchlist hits strong enough for any rule, or without
mismatch signals, the rules that need them are not called at all. :meth:`RuleSet.evaluate_batch`
goes further for a whole batch: numpy finds the rows where some rule may fire (its evidence
present, its feature tests passed), and only those are evaluated one by one. A rule that fires
gives a :class:`RuleHit` (its lane and its reason, placeholders filled from the evidence that
satisfied it); :func:`strongest_lane` takes the strongest of the model's lane and every hit's.
"""

from __future__ import annotations

import math
import operator
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

import numpy as np

from features.build import FeatureBlock
from features.declarations import Array, Declarations
from features.records import Shipment
from features.schema import FEATURE_NAMES
from features.watchlist import Hit, Watchlist
from scoring.lanes import LANE_ORDER, LANES, raise_lane
from scoring.reasons import Reason
from scoring.rules.evidence import (
    MismatchEvidence,
    RuleContext,
    RuleEvidence,
    evidence_from_lines,
)
from scoring.rules.schema import PLACEHOLDERS, Conditions, FeatureTest, RuleSpec, WatchlistCondition


@dataclass(frozen=True, slots=True)
class RuleHit:
    """A rule that fired for a shipment: the lane it forces and the reason to show."""

    rule_id: str
    lane: str
    reason: Reason


_Check = Callable[[RuleContext], bool]
_Fire = Callable[[RuleContext], RuleHit | None]

_COLUMN = {name: i for i, name in enumerate(FEATURE_NAMES)}
"""A feature's column in a batch's feature matrix."""

VECTOR_ROWS = 64
"""The smallest batch :meth:`RuleSet.evaluate_batch` sifts with numpy: numpy's fixed cost, about
0.1 ms for the shipped rules, is that of evaluating some 50 shipments one by one."""


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


def _number_tests(test: FeatureTest) -> tuple[tuple[Callable[[float, float], bool], float], ...]:
    """The comparisons of a number test, each with its bound, in :data:`_OPERATOR_FUNCTIONS`
    order."""
    return tuple(
        (_OPERATOR_FUNCTIONS[op], bound)
        for op in _OPERATOR_FUNCTIONS
        if (bound := getattr(test, op)) is not None
    )


def _feature_check(name: str, test: FeatureTest) -> _Check:
    """The tests on one feature; a null value fails every number test."""
    if test.is_null is not None:
        want = test.is_null
        return lambda ctx: _is_null(ctx.features.get(name)) is want
    tests = _number_tests(test)

    def check(ctx: RuleContext) -> bool:
        value = ctx.features.get(name)
        if value is None or math.isnan(value):
            return False
        for compare, bound in tests:  # noqa: SIM110 (all() of a generator is twice as slow)
            if not compare(value, bound):
                return False
        return True

    return check


def _feature_mask(column: Array, test: FeatureTest) -> Array:
    """Rows of a feature's ``column`` (NaN for null) that pass ``test``, as
    :func:`_feature_check` would find them one by one."""
    if test.is_null is not None:
        return np.asarray(np.isnan(column) == test.is_null)
    mask: Array = ~np.isnan(column)
    for compare, bound in _number_tests(test):
        mask &= compare(column, bound)  # type: ignore[arg-type]  # elementwise on arrays
    return mask


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
    features: tuple[tuple[int, FeatureTest], ...]  # column in FEATURE_NAMES order, and test

    @classmethod
    def compile(cls, spec: Conditions) -> _Clause:
        return cls(
            watch=_WatchTest.compile(spec.watchlist) if spec.watchlist is not None else None,
            mismatch_kinds=_optional(spec.mismatch.kinds) if spec.mismatch is not None else None,
            wants_mismatch=spec.mismatch is not None,
            checks=_checks(spec),
            features=tuple((_COLUMN[name], test) for name, test in spec.features.items()),
        )

    def may_hold(self, matrix: Array, has_hits: Array, has_mismatches: Array) -> Array:
        """Rows of a batch where the clause may hold: false only where the evidence it asks for
        is missing or a feature test fails (its other conditions are left to :meth:`test`)."""
        mask = np.ones(len(matrix), dtype=bool)
        if self.watch is not None:
            mask &= has_hits
        if self.wants_mismatch:
            mask &= has_mismatches
        for column, test in self.features:
            mask &= _feature_mask(matrix[:, column], test)
        return mask

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

    @property
    def needs_hits(self) -> bool:
        """Whether the rule can only fire for a shipment with watchlist hits."""
        return self.top.watch is not None or (
            bool(self.alternatives) and all(c.watch is not None for c in self.alternatives)
        )

    @property
    def needs_mismatches(self) -> bool:
        """Whether the rule can only fire for a shipment with mismatch signals."""
        return self.top.wants_mismatch or (
            bool(self.alternatives) and all(c.wants_mismatch for c in self.alternatives)
        )

    def fast(self) -> _Fire:
        """:meth:`fire`, or a shorter equivalent for a rule with a fixed hit and only checks of
        the context (no evidence, no alternatives): the checks in the same order, then the
        hit."""
        top, fixed = self.top, self.fixed
        if fixed is None or self.alternatives or top.watch is not None or top.wants_mismatch:
            return self.fire
        checks = top.checks
        if len(checks) == 1:
            (check,) = checks
            return lambda ctx: fixed if check(ctx) else None
        return lambda ctx: fixed if all(check(ctx) for check in checks) else None

    def may_fire(self, matrix: Array, has_hits: Array, has_mismatches: Array) -> Array:
        """Rows of a batch where the rule may fire (see :meth:`_Clause.may_hold`)."""
        mask = self.top.may_hold(matrix, has_hits, has_mismatches)
        if self.alternatives:
            mask &= np.logical_or.reduce(
                [c.may_hold(matrix, has_hits, has_mismatches) for c in self.alternatives]
            )
        return mask

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
    _by_evidence: tuple[tuple[_Fire, ...], ...] = field(init=False, repr=False)
    """The rules that can fire, in file order, by ``2 * strong_hits + has_mismatches``: most
    shipments have no watchlist evidence, and no rule that needs it is even called."""
    _weakest: float = field(init=False, repr=False)
    """The lowest ``min_strength`` of any watchlist condition: weaker hits satisfy none, so a
    shipment with only those (a broad HS line) counts as one without hits."""

    def __post_init__(self) -> None:
        object.__setattr__(self, "rules", tuple(self.rules))
        compiled = tuple(_Rule.compile(r) for r in self.rules)
        object.__setattr__(self, "_compiled", compiled)
        weakest = min(
            (
                clause.watch.min_strength
                for rule in compiled
                for clause in (rule.top, *rule.alternatives)
                if clause.watch is not None
            ),
            default=math.inf,
        )
        object.__setattr__(self, "_weakest", weakest)
        by_evidence = tuple(
            tuple(
                rule.fast()
                for rule in compiled
                if (hits or not rule.needs_hits) and (mismatches or not rule.needs_mismatches)
            )
            for hits in (False, True)
            for mismatches in (False, True)
        )
        object.__setattr__(self, "_by_evidence", by_evidence)

    def evaluate(self, ctx: RuleContext) -> list[RuleHit]:
        """Every rule that fires for the shipment, in file order."""
        out: list[RuleHit] = []
        strong = 2 if ctx.hits and _reaches(ctx.hits, self._weakest) else 0
        for fire in self._by_evidence[strong + (1 if ctx.mismatches else 0)]:
            hit = fire(ctx)
            if hit is not None:
                out.append(hit)
        return out

    def evaluate_batch(
        self,
        shipments: Sequence[Shipment],
        declarations: Declarations,
        block: FeatureBlock,
        watchlist: Watchlist,
    ) -> list[tuple[RuleHit, ...]]:
        """What :meth:`evaluate` gives for each shipment of a batch, as tuples, in batch order.

        Row ``i`` is ``shipments[i]``, with the watchlist readings
        ``declarations.lines_of(i)`` (evidence from ``watchlist``) and the features
        ``block.row(i)``, as :meth:`~scoring.scorer.Scorer.decide` lays a batch out. Rows where
        no rule can fire (no rule's evidence is present and its feature tests pass: found with
        numpy over the whole batch) get ``()`` without a context being built; the others are
        evaluated one by one. A batch of fewer than :data:`VECTOR_ROWS` rows is evaluated one
        by one: there numpy's fixed cost is more than the loop's.
        """
        rows = len(shipments)
        if len(declarations) != rows or len(block.matrix) != rows:
            raise ValueError(
                f"a batch of {rows} shipments needs as many declarations and feature rows, "
                f"not {len(declarations)} and {len(block.matrix)}"
            )
        candidates = self.candidate_rows(declarations, block.matrix)
        return self.evaluate_rows(
            candidates, [shipments[row] for row in candidates], declarations, block, watchlist
        )

    def candidate_rows(self, declarations: Declarations, matrix: Array) -> list[int]:
        """The rows of a batch :meth:`evaluate_batch` evaluates one by one: where some rule may
        fire (numpy over the batch), or every row of a batch under :data:`VECTOR_ROWS`."""
        rows = len(matrix)
        if rows < VECTOR_ROWS:
            return list(range(rows))
        return np.flatnonzero(self._may_fire(declarations, matrix)).tolist()

    def evaluate_rows(
        self,
        rows: Sequence[int],
        shipments: Sequence[Shipment],
        declarations: Declarations,
        block: FeatureBlock,
        watchlist: Watchlist,
    ) -> list[tuple[RuleHit, ...]]:
        """:meth:`evaluate_batch` given its :meth:`candidate_rows` ``rows`` and only their
        records (``shipments[k]`` is row ``rows[k]``): bulk runs build no record for the
        other rows, which fire nothing."""
        out: list[tuple[RuleHit, ...]] = [()] * len(block.matrix)
        for row, shipment in zip(rows, shipments, strict=True):
            hits, mismatches = evidence_from_lines(declarations.lines_of(row), watchlist)
            ctx = RuleContext(shipment, hits, mismatches, block.row(row))
            out[row] = tuple(self.evaluate(ctx))
        return out

    def _may_fire(self, declarations: Declarations, matrix: Array) -> Array:
        """Rows of a batch where some rule may fire: false only where no rule has the evidence
        it needs and passes its feature tests."""
        matches, starts = declarations.matches, declarations.line_start
        found = [j for j, line in enumerate(matches) if line.hits or line.mismatches]
        weakest = self._weakest
        has_hits = _rows_of([j for j in found if _reaches(matches[j].hits, weakest)], starts)
        has_mismatches = _rows_of([j for j in found if matches[j].mismatches], starts)
        candidates = np.zeros(len(matrix), dtype=bool)
        for rule in self._compiled:
            candidates |= rule.may_fire(matrix, has_hits, has_mismatches)
        return candidates


def _reaches(hits: Iterable[RuleEvidence | Hit], strength: float) -> bool:
    """Whether some hit is at least as strong as ``strength``."""
    return any(h.strength >= strength for h in hits)


def _rows_of(lines: list[int], line_start: Array) -> Array:
    """A mask of the rows that hold some of ``lines``, the lines of row ``i`` being
    ``line_start[i]:line_start[i + 1]``."""
    mask = np.zeros(len(line_start) - 1, dtype=bool)
    mask[np.searchsorted(line_start, lines, side="right") - 1] = True
    return mask


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
