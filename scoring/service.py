"""The transport-free scoring service: what the gRPC servicers call.

It owns the serving state (the current :class:`~scoring.scorer.Scorer`), validates shipments,
turns scores into decisions, and reloads the model or the watchlist atomically: a failed reload
raises and leaves the versions already serving in place.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import logging
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from typing import TypeVar

from features.canonical import canonical_shipment
from features.errors import (
    CentinelaError,
    DeadlineExceeded,
    FailedPrecondition,
    ModelError,
    NotFound,
    Unavailable,
)
from features.history import Keyed
from features.records import Shipment
from features.schema import FEATURE_NAMES
from features.state import EntityState
from features.watchlist import Watchlist, load_watchlist
from scoring.bundle import ModelBundle
from scoring.caller import Caller
from scoring.decisions import (
    Decision,
    Declared,
    ModelInfo,
    Outcome,
    OutcomeReceipt,
    decision_payload,
    outcome_payload,
    same_outcome,
    validate_outcome,
)
from scoring.exams import ExamPlanner
from scoring.lanes import LanePolicy, PortShares
from scoring.ledger import Entry, Follower, FollowHealth, open_ledger, replay_into
from scoring.monitor import Monitor
from scoring.registry import Registry
from scoring.rules import RuleSet, load_rules
from scoring.scorer import Scorer
from scoring.settings import CoreSettings
from scoring.validation import Window, validate_shipment

log = logging.getLogger(__name__)

T = TypeVar("T")


@dataclasses.dataclass(frozen=True, slots=True)
class _Admitted:
    """A valid shipment on its way to a decision: both its forms, who asked for it, and its
    call's deadline (:func:`time.monotonic`; None: none)."""

    shipment: Declared
    caller: Caller | None
    deadline: float | None


class ScoringService:
    """Serving state and the operations on it. Safe to call from several threads."""

    def __init__(self, settings: CoreSettings) -> None:
        self.settings = settings
        self.registry = Registry(settings.registry_dir)
        self._lock = threading.Lock()  # serialises reloads; scoring reads self._scorer lock-free
        self._scorer: Scorer | None = None
        self._watchlist: Watchlist | None = None
        self._rules: RuleSet | None = None
        self.exams = ExamPlanner(settings.exam_capacity)  # its counts outlive model reloads
        self.lanes: LanePolicy | None = None  # one lane policy for the server's whole life
        self.state: EntityState | None = None
        self.ledger = open_ledger(settings) if settings.ledger_enabled else None
        # Where other servers write the same ledger: their rows into self.state (load starts it).
        self.follower: Follower | None = None
        self._outcome_lock = threading.Lock()  # one version number per outcome
        self.monitor = Monitor(  # drift and label lag (scoring.monitor), read by the metrics
            window=settings.drift_window,
            min_decisions=settings.drift_min_decisions,
            label_window_days=settings.label_window_days,
            label_max_age_days=settings.label_max_age_days,
        )

    @property
    def ready(self) -> bool:
        return self._scorer is not None

    def _require(self) -> Scorer:
        scorer = self._scorer
        if scorer is None:
            raise Unavailable("no model loaded yet; the service is starting")
        return scorer

    def load(self) -> Scorer:
        """Load the watchlist, the configured model and the shadow model (``shadow_model``, if
        set); raises and keeps state on failure."""
        with self._lock:
            watchlist = self._watchlist or load_watchlist(self.settings.watchlist_file)
            rules = self._rules or load_rules(self.settings.rules_file, watchlist)
            bundle = self.registry.load(self.settings.model_version)
            shadow = self._load_shadow()
            if self.state is None:  # kept only once whole: a failed load builds it again
                state = EntityState.from_data_dir(self.settings.data_dir, watchlist)
                if self.ledger is not None:
                    replayed = replay_into(state, self.ledger.location, watchlist)
                    with self._outcome_lock:  # no outcome counted twice or missed
                        self.monitor.seed(self.ledger.location)
                    if self.ledger.shared:
                        self._follow(state, replayed, watchlist)
                self.state = state
                log.info(
                    "entity history loaded",
                    extra={"shipments": state.shipments, "outcomes": state.outcomes},
                )
            self._watchlist, self._rules = watchlist, rules
            self._scorer = Scorer.create(
                bundle, watchlist, rules, self.settings, self.lanes, exams=self.exams, shadow=shadow
            )
            self.lanes = self._scorer.policy
            log.info(
                "model loaded",
                extra={
                    "model_version": bundle.version,
                    "watchlist_version": watchlist.version,
                    "shadow_model": shadow.version if shadow else None,
                },
            )
            return self._scorer

    def _load_shadow(self) -> ModelBundle | None:
        """The ``shadow_model`` bundle (None when unset), checked as the serving one is; an
        error says it is the shadow that failed, and its version."""
        version = self.settings.shadow_model
        if version is None:
            return None
        try:
            return self.registry.load(version)
        except (NotFound, FailedPrecondition, ModelError) as error:
            raise type(error)(
                f"shadow model {version} (setting shadow_model): {error.message}"
            ) from error

    def _follow(self, state: EntityState, replayed: int, watchlist: Watchlist) -> None:
        """Follow the other servers' rows of a shared ledger from the last one replayed: what
        they committed while this one replayed is applied before it serves, the rest as it
        comes (:mod:`scoring.ledger.follow`)."""
        assert self.ledger is not None
        follower = Follower(
            self.ledger,
            state,
            lambda: self._watchlist or watchlist,  # the one serving once load has set it
            replayed,
            self.settings.ledger_follow_interval_s,
        )
        caught_up = follower.poll()
        follower.start()
        self.follower = follower
        log.info(
            "following the shared ledger",
            extra={"replayed": replayed, "caught_up": caught_up, "after": follower.cursor},
        )

    def follow_health(self) -> FollowHealth | None:
        """The follower's figures (None: the ledger is not shared, or not yet followed)."""
        follower = self.follower
        return follower.health() if follower is not None else None

    def reload_model(self) -> Scorer:
        """Load the promoted model again; a failure is logged and raised, and what serves stays."""
        try:
            return self.load()
        except Exception as error:
            self._reload_failed("model", error)
            raise

    def reload_watchlist(self) -> Watchlist:
        """Reload the watchlist and the rules (checked against it) together, or neither; a
        failure is logged and raised, and what serves stays."""
        try:
            return self._load_watchlist()
        except Exception as error:
            self._reload_failed("watchlist", error)
            raise

    def _reload_failed(self, target: str, error: Exception) -> None:
        """One log line: what failed to reload, why, and what still serves."""
        model, watchlist, rules = self.versions
        serving = f"model {model or '-'}, watchlist {watchlist or '-'}, rules {rules or '-'}"
        if isinstance(error, CentinelaError):
            reason = " ".join(error.message.split())
            log.error("%s reload failed, still serving %s: %s", target, serving, reason)
        else:
            log.error("%s reload failed, still serving %s", target, serving, exc_info=error)

    def _load_watchlist(self) -> Watchlist:
        with self._lock:
            watchlist = load_watchlist(self.settings.watchlist_file)
            rules = load_rules(self.settings.rules_file, watchlist)
            self._watchlist, self._rules = watchlist, rules
            if self._scorer is not None:
                self._scorer = dataclasses.replace(self._scorer, watchlist=watchlist, rules=rules)
            log.info(
                "watchlist and rules loaded",
                extra={"watchlist_version": watchlist.version, "rules_version": rules.version},
            )
            return watchlist

    def lane_shares(self) -> list[PortShares]:
        """Each port's realised lanes over its window beside its capacity (for metrics)."""
        lanes = self.lanes
        return lanes.shares() if lanes is not None else []

    @property
    def shadow_version(self) -> str:
        """The version of the shadow model scored beside the serving one; empty for none."""
        scorer = self._scorer
        return scorer.shadow.version if scorer is not None and scorer.shadow is not None else ""

    @property
    def versions(self) -> tuple[str, str, str]:
        """(model, watchlist, rules) versions; empty strings for what is not loaded."""
        scorer, watchlist, rules = self._scorer, self._watchlist, self._rules
        return (
            scorer.model_version if scorer else "",
            watchlist.version if watchlist else "",
            rules.version if rules else "",
        )

    def score_each(
        self,
        shipments: Sequence[Shipment],
        caller: Caller | Sequence[Caller | None] | None = None,
        deadline: float | Sequence[float | None] | None = None,
    ) -> list[Decision | Exception]:
        """Score a batch where each shipment stands alone: invalid ones get their error, the
        valid ones are scored together in one batch. Results are in input order, one per
        shipment; a decision that could not be made durable comes back as its error.
        ``deadline`` (:func:`time.monotonic`) passed: raises DeadlineExceeded, nothing stored.

        ``caller`` and ``deadline`` may instead be one per shipment (a batch gathered from
        several calls): each decision records its own caller, and a shipment whose own
        deadline passes gets DeadlineExceeded as its result, not scored or not stored, while
        the others go on; then nothing raises DeadlineExceeded."""
        callers = _each(caller, len(shipments))
        deadlines = _each(deadline, len(shipments))
        results: list[Decision | Exception | None] = []
        valid: list[int] = []
        admitted: list[_Admitted] = []
        window = self.declared_window()
        for i, shipment in enumerate(shipments):
            try:
                declared = self._admit(shipment, window)
                admitted.append(_Admitted(declared, callers[i], deadlines[i]))
                valid.append(i)
                results.append(None)
            except Exception as error:  # an unexpected one too: it is this shipment's alone
                if not isinstance(error, CentinelaError):
                    log.error("unexpected error admitting a shipment", exc_info=error)
                results.append(error)
        if valid:
            decided: list[Decision | Exception]
            try:
                decided = self._score_valid(admitted)
            except DeadlineExceeded as error:
                if not isinstance(deadline, Sequence):
                    raise
                decided = [error] * len(valid)  # every valid one is late: each says so
            for i, result in zip(valid, decided, strict=True):
                results[i] = result
        return [r for r in results if r is not None]

    def score(
        self,
        shipments: Sequence[Shipment],
        caller: Caller | None = None,
        deadline: float | None = None,
    ) -> list[Decision]:
        """Validate and score a batch; any invalid shipment raises before anything is scored,
        and so does a decision that could not be made durable, and a ``deadline``
        (:func:`time.monotonic`) that passes before the decisions are stored."""
        window = self.declared_window()
        admitted = [_Admitted(self._admit(s, window), caller, deadline) for s in shipments]
        results = self._score_valid(admitted)
        for result in results:
            if isinstance(result, Exception):
                raise result
        return [r for r in results if isinstance(r, Decision)]

    def declared_window(self, now: datetime | None = None) -> Window:
        """The ``declared_at`` range live scoring accepts around ``now`` (default: the clock)."""
        now = now or datetime.now(UTC)
        return (
            now - timedelta(days=self.settings.declared_at_max_age_days),
            now + timedelta(days=self.settings.declared_at_max_ahead_days),
        )

    def _admit(self, shipment: Shipment, window: Window) -> Declared:
        """The edge of the core: the canonical form of ``shipment``, validated, with the
        shipment as declared kept beside it for the ledger."""
        canonical = canonical_shipment(shipment)
        validate_shipment(canonical, self.settings.max_goods_lines, window)
        return Declared(canonical, shipment)

    def _score_valid(self, admitted: Sequence[_Admitted]) -> list[Decision | Exception]:
        """Score admitted shipments, each with its caller and deadline, in input order.

        The scorer reads a batch by shipment id (goods, watchlist hits and history are joined
        on it), so two shipments with the same canonical id are never in one scorer batch:
        a repeat goes in a later round, which sees the earlier one in the entity history, as
        if they had come one after the other. Without repeats there is one round."""
        rounds = _rounds([a.shipment.canonical.shipment_id for a in admitted])
        if len(rounds) == 1:
            return self._score_round(admitted)
        results: list[Decision | Exception | None] = [None] * len(admitted)
        for members in rounds:
            try:
                scored = self._score_round([admitted[i] for i in members])
            except DeadlineExceeded as error:
                scored = [error] * len(members)  # earlier rounds may be stored: keep them
            for i, result in zip(members, scored, strict=True):
                results[i] = result
        out = [r for r in results if r is not None]
        if all(isinstance(r, DeadlineExceeded) for r in out):
            raise next(r for r in out if isinstance(r, DeadlineExceeded))
        return out

    def _score_round(self, admitted: Sequence[_Admitted]) -> list[Decision | Exception]:
        """Score shipments with distinct ids as one scorer batch. A shipment whose deadline
        has passed before it is scored, or before it is stored, gets DeadlineExceeded and is
        not ledgered; when that is every shipment, DeadlineExceeded is raised."""
        scorer = self._require()
        state = self.state
        assert state is not None
        results: list[Decision | Exception | None] = [None] * len(admitted)
        live = _in_time(admitted, range(len(admitted)), "scored", results)
        batch = scorer.score_batch([admitted[i].shipment.canonical for i in live], state)
        versions = (scorer.model_version, scorer.watchlist_version, scorer.rules_version)
        for i, scored in zip(live, batch.scored, strict=True):
            results[i] = Decision(uuid.uuid4().hex, scored, *versions)
        # The last moment to give up: past it the decisions are durable and delivered.
        stored = _in_time(admitted, live, "stored", results)
        follower = self.follower
        with follower.live() if follower is not None else contextlib.nullcontext() as remember:
            seqs = self._store(admitted, stored, results)
            self.monitor.decided(
                scorer.bundle.meta,
                [
                    (d.scored, d.scored.features)
                    for i in stored
                    if isinstance(d := results[i], Decision)
                ],
            )
            keyed = batch.keyed
            if len(stored) < len(live):  # only what is stored enters the history
                position = {i: row for row, i in enumerate(live)}
                keyed = keyed.take([position[i] for i in stored])
            self._remember(state, keyed, [seqs.get(i) for i in stored], remember)
        return [r for r in results if r is not None]

    def _store(
        self,
        admitted: Sequence[_Admitted],
        stored: Sequence[int],
        results: list[Decision | Exception | None],
    ) -> dict[int, int]:
        """Append the decisions of ``stored`` to the ledger and wait until they are durable;
        their seqs by position. A decision that could not be written becomes Unavailable in
        ``results``. Without a ledger, nothing (and no seqs)."""
        ledger = self.ledger
        if ledger is None:
            return {}
        decided = [i for i in stored if isinstance(results[i], Decision)]
        entries = []
        for i in decided:
            d = results[i]
            assert isinstance(d, Decision)
            payload = decision_payload(d, admitted[i].shipment, admitted[i].caller)
            entries.append(Entry("decision", d.decision_id, payload))
        try:
            appended: list[int | Exception] = ledger.append_many(entries).result()
        except Exception as error:  # the commit failed: none of them is durable
            appended = [error] * len(decided)
        seqs: dict[int, int] = {}
        for i, seq in zip(decided, appended, strict=True):  # durable before anyone sees them
            if isinstance(seq, Exception):
                log.error("ledger write failed", exc_info=seq)
                results[i] = Unavailable(
                    "the decision could not be written to the ledger; retry the shipment"
                )
            else:
                seqs[i] = seq
        return seqs

    @staticmethod
    def _remember(
        state: EntityState,
        keyed: Keyed,
        seqs: Sequence[int | None],
        remember: Callable[[Keyed, Sequence[int | None]], None] | None,
    ) -> None:
        """Add the stored shipments to the history: straight to ``state``, or where servers
        share the ledger through the follower (``remember``), with their seqs, so a later
        decision of the same id from another server is not overwritten by this one."""
        try:
            if remember is None:
                state.add_shipments(keyed)
            else:
                remember(keyed, seqs)
        except Exception as error:
            # The decisions are in the ledger already: deliver them; the next replay credits
            # their history.
            log.error("entity history update failed", exc_info=error)

    def record_outcome(self, outcome: Outcome, caller: Caller | None = None) -> OutcomeReceipt:
        """Store an inspection outcome; a repeat is idempotent, a different one a new version.
        ``caller`` is stored with it; a repeat of the same outcome by another caller is
        still a repeat (what is compared is the outcome, not who reported it)."""
        validate_outcome(outcome)
        if self.ledger is None:
            raise FailedPrecondition("outcomes need the decision ledger, which is disabled")
        with self._outcome_lock:
            rows = self.ledger.entries_for(outcome.decision_id)
            decisions = [r for r in rows if r.kind == "decision"]
            if not decisions:
                raise NotFound(f"no decision with id {outcome.decision_id!r}")
            previous = [json.loads(r.payload) for r in rows if r.kind == "outcome"]
            payload = outcome_payload(outcome)
            if previous and same_outcome(previous[-1], payload):
                return OutcomeReceipt(outcome.decision_id, previous[-1]["version"], True)
            version = len(previous) + 1
            decided = json.loads(decisions[0].payload)
            shipment_id = decided["shipment"]["shipment_id"]
            payload.update(
                version=version,
                shipment_id=shipment_id,
                caller=caller.to_json() if caller else None,
            )
            self.ledger.append(Entry("outcome", outcome.decision_id, payload)).result()
            self.monitor.outcome(decided, payload)
            first_result = version == 1 and outcome.inspected and outcome.result != "inconclusive"
            if first_result and self.state is not None:
                # Credited in ledger order, as a replay credits it, and once per shipment id:
                # the state ignores a first result against another decision of the same
                # shipment. Later versions correct the record, not the history credited.
                positive = outcome.result == "positive"
                self.state.add_outcome(shipment_id, datetime.now(UTC), positive)
        return OutcomeReceipt(outcome.decision_id, version, False)

    def close(self) -> None:
        if self.follower is not None:
            self.follower.stop()
        if self.ledger is not None:
            self.ledger.close()

    def model_info(self) -> ModelInfo:
        scorer = self._require()
        meta, shadow = scorer.bundle.meta, scorer.shadow
        return ModelInfo(
            model_version=meta.version,
            trained_at=meta.trained_at,
            feature_names=FEATURE_NAMES,
            watchlist_version=scorer.watchlist_version,
            metrics=dict(meta.metrics),
            code_version=meta.code_version,
            rules_version=scorer.rules_version,
            shadow_model_version=shadow.version if shadow else "",
            shadow_metrics=dict(shadow.bundle.meta.metrics) if shadow else {},
        )


def _each(value: T | Sequence[T | None] | None, n: int) -> list[T | None]:
    """``value`` for each of ``n`` shipments: a sequence is already one per shipment."""
    if isinstance(value, Sequence):
        if len(value) != n:
            raise ValueError(f"{len(value)} values for {n} shipments")
        return list(value)
    return [value] * n


def _rounds(ids: Sequence[str]) -> list[list[int]]:
    """Positions of ``ids`` in rounds where no id repeats: the k-th occurrence of an id is
    in round k."""
    seen: dict[str, int] = {}
    rounds: list[list[int]] = []
    for i, shipment_id in enumerate(ids):
        k = seen.get(shipment_id, 0)
        seen[shipment_id] = k + 1
        if k == len(rounds):
            rounds.append([])
        rounds[k].append(i)
    return rounds or [[]]


def _in_time(
    admitted: Sequence[_Admitted],
    positions: Sequence[int],
    step: str,
    results: list[Decision | Exception | None],
) -> list[int]:
    """The ``positions`` whose deadline (:func:`time.monotonic`) has not passed; those past
    it get DeadlineExceeded in ``results``: nobody waits for their answer, so nothing more
    is decided or ledgered for them. Raises DeadlineExceeded when that is all of them."""
    now = time.monotonic()
    late = {i for i in positions if (d := admitted[i].deadline) is not None and now >= d}
    message = f"the call's deadline passed before its shipments were {step}"
    if late and len(late) == len(positions):
        raise DeadlineExceeded(message)
    for i in late:
        results[i] = DeadlineExceeded(message)
    return [i for i in positions if i not in late]
