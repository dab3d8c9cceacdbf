"""Versioned hard rules: analyst-written conditions that force a lane whatever the model says.

A calibrated score ranks shipments; it does not guarantee that an identified Table I precursor is
opened. The rules file (``scoring/rules.yaml``, its format documented in its header) states those
guarantees as data that analysts read, edit and version. Rules only raise a lane: the decision is
:func:`strongest_lane` of the model's lane and every rule that fires.

Public API::

    load_rules(path=None, watchlist=None) -> RuleSet      # None: the packaged rules.yaml
    parse_rules_text(text, origin, watchlist) -> RuleSet
    RuleSet.version, RuleSet.rules, RuleSet.evaluate(ctx) -> list[RuleHit]
    RuleSet.evaluate_batch(shipments, declarations, block, watchlist)
        -> list[tuple[RuleHit, ...]]                      # evaluate of every row of a batch
    RuleContext(shipment, hits, mismatches, features)
    evidence_from_lines(line_matches, watchlist) -> (hits, mismatches)
    strongest_lane(model_lane, hits) -> str

Modules, one concern each:

- :mod:`scoring.rules.schema`: the file's format, the pydantic models every rule is validated
  against and the checks of single values;
- :mod:`scoring.rules.loading`: reading a file, and validation that names the line of every
  mistake;
- :mod:`scoring.rules.evidence`: what rules look at (:class:`RuleContext`), built from the
  watchlist matcher's results;
- :mod:`scoring.rules.engine`: rules compiled for evaluation (:class:`RuleSet`), and the
  decision's lane.

Validation is strict because a misspelt condition would otherwise be ignored and silently stop a
guarantee. Every problem is reported at once, each with its line in the file, e.g.
``line 42: rules[3].when.watchlist_lsts: rule 'table-i-precursor': unknown condition
'watchlist_lsts'``. Entry ids and route families are checked against the watchlist given at load
time; evaluation uses the list memberships carried by each piece of evidence, so a reloaded
watchlist that adds a Table I entry is covered without reloading the rules.

Evaluation runs for every shipment scored, so conditions are compiled at load into sets and
closures, and a rule that needs evidence the shipment lacks is not called; a batch evaluated at
once builds a context only for the rows where numpy finds that some rule may fire.
"""

from __future__ import annotations

from scoring.rules.engine import VECTOR_ROWS, RuleHit, RuleSet, strongest_lane
from scoring.rules.evidence import (
    MismatchEvidence,
    RuleContext,
    RuleEvidence,
    evidence_from_lines,
)
from scoring.rules.loading import PACKAGED_FILE, load_rules, parse_rules_text
from scoring.rules.schema import (
    PLACEHOLDERS,
    Conditions,
    FeatureTest,
    MismatchCondition,
    ReasonText,
    RuleLane,
    RuleSpec,
    WatchlistCondition,
    When,
)

__all__ = [
    "PACKAGED_FILE",
    "PLACEHOLDERS",
    "VECTOR_ROWS",
    "Conditions",
    "FeatureTest",
    "MismatchCondition",
    "MismatchEvidence",
    "ReasonText",
    "RuleContext",
    "RuleEvidence",
    "RuleHit",
    "RuleLane",
    "RuleSet",
    "RuleSpec",
    "WatchlistCondition",
    "When",
    "evidence_from_lines",
    "load_rules",
    "parse_rules_text",
    "strongest_lane",
]
