"""Which exam to run: a recommended exam type for every RED or YELLOW decision.

A lane says *whether* to inspect; ports run different exams, each with its own capacity, and
the right one depends on what selected the shipment: a chemical identified in drums is settled
by a laboratory, a truck the model picked with nothing identified by a scan, papers that
disagree with themselves by a documentary review. :class:`ExamPlanner` turns what selected a
shipment (an :class:`ExamContext`, built in :meth:`scoring.scorer.Scorer.decide` from what it
already has) into an :class:`ExamChoice`: the exam and a reason in Spanish and English, neutral
in wording like every reason (:mod:`scoring.reasons`).

Exams (:data:`EXAMS`)
  ``physical_sampling``  physical examination with sampling for laboratory confirmation
  ``non_intrusive``      non-intrusive inspection: X-ray or gamma scan, nothing opened
  ``canine``             canine team (binomio canino)
  ``documentary``        documentary review

Situations, in the order they are recognised (the first that applies), with the exams
preferred for each lane, best first (:data:`PREFERENCES`):

====================  ===================================  ================================
situation             RED                                  YELLOW
====================  ===================================  ================================
random                non_intrusive, canine                non_intrusive, documentary
substance             physical_sampling, non_intrusive     documentary, non_intrusive
equipment             physical_sampling, non_intrusive     documentary, non_intrusive
documents             documentary, physical_sampling       documentary, non_intrusive
container_or_vehicle  non_intrusive, canine                non_intrusive, documentary
small_consignment     canine, non_intrusive                non_intrusive, documentary
other                 non_intrusive, physical_sampling     documentary, non_intrusive
====================  ===================================  ================================

- ``random``: the exploration share picked it (nothing else did: exploration only picks
  otherwise-GREEN shipments). One exam for every random pick keeps their labels comparable.
- ``substance``: a watched substance is identified (a hit of kind substance by CAS, specific HS
  code or name; hits below the matcher's evidence threshold never reach here), or a chemical
  identity rule fired (:data:`IDENTITY_RULES`). A mismatch signal on an identified substance
  (its CAS under "calcium chloride") is this situation too: a sample answers both what the
  drums hold and whether the papers are right, and the rule that fires on it asks for a
  physical examination.
- ``equipment``: watched tableting equipment identified (presses, capsule fillers, punches and
  dies), or an equipment rule fired (:data:`EQUIPMENT_RULES`). A machine has nothing to send to
  a laboratory, but a RED lane still opens the crate: the examination checks the machine and
  its tooling against the declaration and samples any powder residue on punches and dies, the
  one laboratory question a press raises.
- ``documents``: nothing watched identified, but the declaration disagrees with itself (see
  :func:`document_signals`): an invalid CAS number (the rule ``declared-cas-invalid`` or the
  feature ``invalid_cas_lines``), any mismatch signal of the matcher, or a declared value per
  kg at least :data:`VALUE_ANOMALY_FACTOR` times above or below its HS heading's median.
- ``container_or_vehicle``: selected by the model (or a rule about the route or parties, which
  the reason then names as a selection rule) on a sea or land shipment with nothing
  identified: a scan shows the whole load at once.
- ``small_consignment``: the same for air cargo and postal or courier parcels: a canine team
  screens many small parcels quickly.
- ``other``: anything else (no mode).

A YELLOW lane means documentary review or a scan, so YELLOW only ever recommends
``documentary`` or ``non_intrusive``; a RED lane may recommend any exam.

Capacity
  A port may cap each exam type as a share of its shipments (settings ``exam_capacity``: port
  UN/LOCODE or ``default`` → exam → share 0..1; a port's own mapping replaces ``default``
  whole; an exam it does not name is unlimited; nothing configured: everything unlimited). The
  planner counts, per port, the exams it recommended over that port's last :data:`EXAM_WINDOW`
  decisions, GREEN ones included in the count of decisions. An exam is full when one more would
  exceed ``share × window``; the next exam of the list that is not full is recommended and its
  reason says that the preferred one is at capacity. When every exam of the list is full, the
  first is kept and the reason says the port is over capacity for it. Every recommendation
  counts against its exam, over capacity or not.

  Ports Centinela knows by name (:data:`features.vocab.PORTS`) and ports the configuration names
  have a window each; any other port shares one window, so arbitrary port codes cannot grow the
  planner's memory.

Public API::

    EXAMS, PREFERENCES, SITUATIONS, EXAM_WINDOW
    ExamContext(port, mode, lane, rules_fired, hits, mismatch_kinds, random_selection, features)
    ExamHit(kind, match_type)
    ExamPlanner(capacity=None, window=EXAM_WINDOW)
    ExamPlanner.recommend(context) -> ExamChoice | None      # None for GREEN (still counted)
    ExamPlanner.usage(port) -> (decisions in window, {exam: count})
    ExamChoice(exam, reason, situation, preferred, over_capacity)
    situation_of(context) -> str
    document_signals(context) -> tuple[str, ...]
    check_capacity(value) -> dict                             # the settings validator
"""

from __future__ import annotations

import math
import threading
from collections import Counter, deque
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Annotated, NamedTuple

from pydantic import AfterValidator

from features.errors import suggest
from features.vocab import PORTS, is_locode
from scoring.reasons import Reason

PHYSICAL_SAMPLING = "physical_sampling"
NON_INTRUSIVE = "non_intrusive"
CANINE = "canine"
DOCUMENTARY = "documentary"
EXAMS: tuple[str, ...] = (PHYSICAL_SAMPLING, NON_INTRUSIVE, CANINE, DOCUMENTARY)

EXAM_WINDOW = 1000
"""Decisions per port over which exam capacity shares are counted."""

VALUE_ANOMALY_FACTOR = 10.0
"""A declared value per kg this many times above or below its HS heading's median (the feature
``value_per_kg_log_ratio``) is a documentary inconsistency."""

IDENTITY_RULES = frozenset(
    {
        "table-i-precursor",
        "table-i-precursor-named",
        "fentanyl-identified",
        "controlled-precursor-new-consignee",
        "watched-cas-misdeclared",
    }
)
"""Shipped rules that fire on a chemical identity (their evidence usually arrives as hits too;
a rule written with a lower ``min_strength`` than the matcher's threshold may not)."""

EQUIPMENT_RULES = frozenset({"pill-press-equipment", "pill-press-new-consignee"})
DOCUMENT_RULES = frozenset({"declared-cas-invalid"})

_IDENTIFYING = frozenset({"cas", "hs_specific", "name_exact", "name_fuzzy"})

_PREFERENCE_TABLE: tuple[tuple[str, tuple[str, ...], tuple[str, ...]], ...] = (
    # situation, in the order recognised; RED exams, best first; YELLOW exams, best first
    ("random", (NON_INTRUSIVE, CANINE), (NON_INTRUSIVE, DOCUMENTARY)),
    ("substance", (PHYSICAL_SAMPLING, NON_INTRUSIVE), (DOCUMENTARY, NON_INTRUSIVE)),
    ("equipment", (PHYSICAL_SAMPLING, NON_INTRUSIVE), (DOCUMENTARY, NON_INTRUSIVE)),
    ("documents", (DOCUMENTARY, PHYSICAL_SAMPLING), (DOCUMENTARY, NON_INTRUSIVE)),
    ("container_or_vehicle", (NON_INTRUSIVE, CANINE), (NON_INTRUSIVE, DOCUMENTARY)),
    ("small_consignment", (CANINE, NON_INTRUSIVE), (NON_INTRUSIVE, DOCUMENTARY)),
    ("other", (NON_INTRUSIVE, PHYSICAL_SAMPLING), (DOCUMENTARY, NON_INTRUSIVE)),
)

SITUATIONS: tuple[str, ...] = tuple(situation for situation, _, _ in _PREFERENCE_TABLE)

PREFERENCES: Mapping[str, Mapping[str, tuple[str, ...]]] = {
    situation: {"red": red, "yellow": yellow} for situation, red, yellow in _PREFERENCE_TABLE
}

# --------------------------------------------------------------------------- texts

_EXAM_WORDS: Mapping[str, tuple[str, str]] = {
    PHYSICAL_SAMPLING: (
        "Reconocimiento físico con toma de muestras para confirmación de laboratorio",
        "Physical examination with sampling for laboratory confirmation",
    ),
    NON_INTRUSIVE: (
        "Inspección no intrusiva (rayos X o gamma)",
        "Non-intrusive inspection (X-ray or gamma scan)",
    ),
    CANINE: ("Revisión con binomio canino", "Canine inspection"),
    DOCUMENTARY: ("Revisión documental", "Documentary review"),
}

_MODE_WORDS: Mapping[str, tuple[str, str]] = {
    "sea": ("este embarque marítimo", "this sea shipment"),
    "land": ("este vehículo de carga terrestre", "this land vehicle"),
    "air": ("este envío de carga aérea", "this air cargo consignment"),
    "postal": ("este envío postal o de mensajería", "this postal or courier parcel"),
}

_SIGNAL_WORDS: Mapping[str, tuple[str, str]] = {
    "invalid_cas": ("un número CAS inválido", "an invalid CAS number"),
    "cas_under_other_hs": (
        "un número CAS que no concuerda con la fracción arancelaria",
        "a CAS number that does not agree with the HS code",
    ),
    "cas_under_benign_description": (
        "un número CAS que no concuerda con la descripción",
        "a CAS number that does not agree with the description",
    ),
    "name_under_other_hs": (
        "un nombre de sustancia que no concuerda con la fracción arancelaria",
        "a substance name that does not agree with the HS code",
    ),
    "hs_specific_under_benign_description": (
        "una fracción arancelaria específica que no concuerda con la descripción",
        "a specific HS code that does not agree with the description",
    ),
    "value_per_kg": (
        "un valor declarado por kg atípico para su partida arancelaria",
        "a declared value per kg unusual for its HS heading",
    ),
}


def _why(situation: str, context: ExamContext, exam: str) -> tuple[str, str]:
    """Why this situation selected the shipment, in plain neutral words."""
    if situation == "random":
        return (
            "seleccionado al azar para control de calidad del modelo; no indica riesgo",
            "selected at random to keep the model honest; not an indication of risk",
        )
    if situation == "substance":
        return (
            "las partidas identifican una sustancia química sujeta a vigilancia",
            "the goods lines identify a watched chemical substance",
        )
    if situation == "equipment":
        es = "las partidas identifican equipo de tableteado sujeto a vigilancia"
        en = "the goods lines identify watched tableting equipment"
        if exam == PHYSICAL_SAMPLING:
            es += "; se revisan el equipo, sus punzones y matrices, y se muestrea cualquier residuo"
            en += "; the equipment, its punches and dies are examined and any residue sampled"
        return es, en
    if situation == "documents":
        signals = [_SIGNAL_WORDS[s] for s in document_signals(context)]
        return (
            "la declaración presenta " + _join([es for es, _ in signals], "y"),
            "the declaration shows " + _join([en for _, en in signals], "and"),
        )
    if situation in ("container_or_vehicle", "small_consignment"):
        es_mode, en_mode = _MODE_WORDS[context.mode]
        es_who, en_who = (
            ("una regla de selección", "a selection rule")
            if context.rules_fired
            else ("el modelo de riesgo", "the risk model")
        )
        return (
            f"{es_who} seleccionó {es_mode} sin identificar una sustancia vigilada en las partidas",
            f"{en_who} selected {en_mode} with no watched substance identified in the goods lines",
        )
    return ("seleccionado para revisión", "selected for review")


def _join(parts: list[str], conjunction: str) -> str:
    if len(parts) <= 1:
        return "".join(parts)
    return ", ".join(parts[:-1]) + f" {conjunction} " + parts[-1]


def _reason(
    exam: str, situation: str, context: ExamContext, skipped: tuple[str, ...], over: bool
) -> Reason:
    exam_es, exam_en = _EXAM_WORDS[exam]
    why_es, why_en = _why(situation, context, exam)
    es = f"{exam_es}: {why_es}."
    en = f"{exam_en}: {why_en}."
    port = context.port
    if skipped:
        names_es = _join([_EXAM_WORDS[e][0].lower() for e in skipped], "y")
        names_en = _join([_EXAM_WORDS[e][1].lower() for e in skipped], "and")
        es += (
            f" Se recomienda en lugar de {names_es}, la opción preferida, porque su capacidad "
            f"en {port} está completa."
        )
        en += (
            f" Recommended instead of {names_en}, the preferred exam, because its capacity at "
            f"{port} is full."
        )
    if over:
        es += (
            f" Todas las opciones adecuadas tienen su capacidad completa en {port}: se mantiene "
            "la preferida por encima de la capacidad del puerto."
        )
        en += (
            f" Every suitable exam is at capacity at {port}: the preferred one is kept, over "
            "the port's capacity."
        )
    return Reason(f"EXAM_{exam.upper()}", es, en)


# --------------------------------------------------------------------------- choice


class ExamHit(NamedTuple):
    """What a watchlist identification says about the shipment: its entry's kind (substance or
    equipment) and how it matched (cas, hs_specific, hs_broad, name_exact, name_fuzzy)."""

    kind: str
    match_type: str


@dataclass(frozen=True, slots=True)
class ExamContext:
    """What selected one shipment, as :meth:`Scorer.decide` knows it.

    ``port`` and ``mode`` are the shipment's; ``lane`` the decided lane (``green``, ``yellow`` or
    ``red``); ``rules_fired`` the ids of the hard rules that fired; ``hits`` its watchlist
    identifications at or above the matcher's evidence threshold and ``mismatch_kinds`` the
    matcher's mismatch signals; ``random_selection`` whether exploration picked it; ``features``
    its feature values by name (NaN for null).
    """

    port: str
    mode: str
    lane: str
    rules_fired: tuple[str, ...] = ()
    hits: tuple[ExamHit, ...] = ()
    mismatch_kinds: tuple[str, ...] = ()
    random_selection: bool = False
    features: Mapping[str, float] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class ExamChoice:
    """The exam recommended for one decision and why; ``preferred`` is the first exam of the
    situation's list (equal to ``exam`` unless it was at capacity)."""

    exam: str
    reason: Reason
    situation: str = "other"
    preferred: str = ""
    over_capacity: bool = False


def document_signals(context: ExamContext) -> tuple[str, ...]:
    """The documentary inconsistencies of a shipment, in a fixed order, without repeats."""
    out: list[str] = []
    invalid = context.features.get("invalid_cas_lines", 0.0)
    if set(context.rules_fired) & DOCUMENT_RULES or (math.isfinite(invalid) and invalid > 0):
        out.append("invalid_cas")
    out += [k for k in _SIGNAL_WORDS if k in context.mismatch_kinds and k not in out]
    ratio = context.features.get("value_per_kg_log_ratio", math.nan)
    if math.isfinite(ratio) and abs(ratio) >= math.log(VALUE_ANOMALY_FACTOR):
        out.append("value_per_kg")
    return tuple(out)


def situation_of(context: ExamContext) -> str:
    """The first situation of :data:`SITUATIONS` that applies to ``context``."""
    if context.random_selection:
        return "random"
    kinds = {h.kind for h in context.hits if h.match_type in _IDENTIFYING}
    fired = set(context.rules_fired)
    if "substance" in kinds or fired & IDENTITY_RULES:
        return "substance"
    if "equipment" in kinds or fired & EQUIPMENT_RULES:
        return "equipment"
    if document_signals(context):
        return "documents"
    if context.mode in ("sea", "land"):
        return "container_or_vehicle"
    if context.mode in ("air", "postal"):
        return "small_consignment"
    return "other"


class ExamPlanner:
    """Recommends exams within each port's capacity. Safe to call from several threads.

    ``capacity``: port UN/LOCODE or ``default`` → exam → share of the port's decisions (an
    already validated settings value, see :func:`check_capacity`); ``window``: how many of a
    port's last decisions the shares are counted over.
    """

    def __init__(
        self,
        capacity: Mapping[str, Mapping[str, float]] | None = None,
        window: int = EXAM_WINDOW,
    ) -> None:
        if window < 1:
            raise ValueError("the exam window must hold at least one decision")
        self.capacity = {port: dict(shares) for port, shares in (capacity or {}).items()}
        self.window = window
        self._lock = threading.Lock()
        self._recent: dict[str, deque[str]] = {}
        self._counts: dict[str, Counter[str]] = {}

    def limits(self, port: str) -> Mapping[str, float]:
        """The port's exam shares: its own mapping, else ``default``, else none (unlimited)."""
        return self.capacity.get(port, self.capacity.get("default", {}))

    def _key(self, port: str) -> str:
        return port if port in self.capacity or port in PORTS else "other"

    def usage(self, port: str) -> tuple[int, dict[str, int]]:
        """Decisions in the port's window and the exams recommended among them."""
        with self._lock:
            key = self._key(port)
            recent = self._recent.get(key, ())
            return len(recent), dict(self._counts.get(key, {}))

    def recommend(self, context: ExamContext) -> ExamChoice | None:
        """The exam for a RED or YELLOW decision (None for GREEN), counted against the port."""
        limits = self.limits(context.port)
        if context.lane not in ("red", "yellow"):
            if limits:
                with self._lock:
                    self._count(context.port, "")
            return None
        situation = situation_of(context)
        ranked = PREFERENCES[situation][context.lane]
        if not limits:
            return self._choice(ranked[0], situation, context, ranked, 0, over=False)
        with self._lock:
            used = self._counts.get(self._key(context.port), Counter())
            index = next(
                (
                    i
                    for i, exam in enumerate(ranked)
                    if exam not in limits or used[exam] + 1 <= limits[exam] * self.window + 1e-9
                ),
                None,
            )
            over = index is None
            chosen = ranked[0] if index is None else ranked[index]
            self._count(context.port, chosen)
        return self._choice(chosen, situation, context, ranked, index or 0, over=over)

    def _count(self, port: str, exam: str) -> None:
        """Remember one decision of ``port`` (``exam`` empty for none); the lock is held."""
        key = self._key(port)
        recent = self._recent.setdefault(key, deque())
        counts = self._counts.setdefault(key, Counter())
        if len(recent) >= self.window:
            dropped = recent.popleft()
            if dropped:
                counts[dropped] -= 1
        recent.append(exam)
        if exam:
            counts[exam] += 1

    @staticmethod
    def _choice(
        exam: str,
        situation: str,
        context: ExamContext,
        ranked: tuple[str, ...],
        index: int,
        *,
        over: bool,
    ) -> ExamChoice:
        reason = _reason(exam, situation, context, ranked[:index], over)
        return ExamChoice(exam, reason, situation, ranked[0], over)


# --------------------------------------------------------------------------- settings


def check_capacity(value: dict[str, dict[str, float]]) -> dict[str, dict[str, float]]:
    """Validate an ``exam_capacity`` setting, naming every problem at once."""
    problems: list[str] = []
    for port, shares in value.items():
        if port != "default" and not is_locode(port):
            problems.append(f"{port!r} is not a UN/LOCODE such as MXZLO, nor 'default'")
        for exam, share in shares.items():
            if exam not in EXAMS:
                hint = suggest(exam, EXAMS)
                problems.append(f"{port}: unknown exam {exam!r}{hint} (exams: {', '.join(EXAMS)})")
            elif not 0.0 <= share <= 1.0:
                problems.append(f"{port}.{exam}: share must be between 0 and 1, got {share}")
    if problems:
        raise ValueError("; ".join(problems))
    return value


ExamCapacity = Annotated[dict[str, dict[str, float]], AfterValidator(check_capacity)]
"""The settings type of ``exam_capacity``."""
