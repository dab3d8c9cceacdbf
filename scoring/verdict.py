"""A promotion gate's verdict on a challenger bundle, as the registry stores it.

``centinela models compare`` judges a challenger against the promoted bundle (its champion) on
evidence such as a ledger of live traffic, check by check, and the registry keeps the result
beside the bundle (``<registry>/<version>/gate.json``,
:meth:`scoring.registry.Registry.save_verdict`).
``centinela models promote`` promotes only a bundle whose verdict passed against the bundle
promoted now; :class:`GateRefused` says why it will not.

A verdict passes when every one of its checks passed; there is always at least one check.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from features.errors import FailedPrecondition

VERDICT_FORMAT = 1


class GateRefused(FailedPrecondition):
    """A promotion the gate refuses: no verdict, a failed one, or one judged against a bundle
    that is no longer promoted. The CLI exits 6 on it (:mod:`training.cli_common`)."""


@dataclass(frozen=True, slots=True)
class GateCheck:
    """One check of a gate: its ``name``, whether it ``passed``, and a ``detail`` saying what
    was measured against what (the figures and the bar)."""

    name: str
    passed: bool
    detail: str

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "passed": self.passed, "detail": self.detail}


@dataclass(frozen=True)
class GateVerdict:
    """A gate's judgement of bundle ``challenger`` against ``champion`` (None: nothing was
    promoted, so nothing to compare against), decided at ``decided_at`` (timezone-aware) on
    ``evidence`` (e.g. the ledger it was judged on); ``figures`` are the measurements behind the
    checks, as JSON values."""

    challenger: str
    champion: str | None
    passed: bool
    checks: tuple[GateCheck, ...]
    decided_at: datetime
    evidence: str
    figures: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not self.checks:
            raise ValueError("a gate verdict needs at least one check")
        if self.passed != all(c.passed for c in self.checks):
            raise ValueError(
                f"verdict passed={self.passed} disagrees with its checks "
                f"({', '.join(f'{c.name}: {c.passed}' for c in self.checks)})"
            )
        if self.decided_at.utcoffset() is None:
            raise ValueError("decided_at must carry a timezone")

    @classmethod
    def judge(
        cls,
        challenger: str,
        champion: str | None,
        checks: tuple[GateCheck, ...],
        *,
        decided_at: datetime,
        evidence: str,
        figures: dict[str, Any] | None = None,
    ) -> GateVerdict:
        """The verdict of ``checks``: passed when every one passed."""
        return cls(
            challenger,
            champion,
            all(c.passed for c in checks),
            tuple(checks),
            decided_at,
            evidence,
            dict(figures or {}),
        )

    @property
    def failed(self) -> tuple[GateCheck, ...]:
        return tuple(c for c in self.checks if not c.passed)

    def reasons(self) -> list[str]:
        """``name: detail`` of each failed check, or of every check when the verdict passed."""
        return [f"{c.name}: {c.detail}" for c in (self.failed or self.checks)]

    def summary(self) -> str:
        """One line: passed or failed, against what, when, on what."""
        against = self.champion or "no champion (empty registry)"
        return (
            f"{'passed' if self.passed else 'failed'} against {against} on "
            f"{self.decided_at.isoformat(timespec='seconds')} ({self.evidence})"
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "format": VERDICT_FORMAT,
            "challenger": self.challenger,
            "champion": self.champion,
            "passed": self.passed,
            "checks": [c.to_json() for c in self.checks],
            "decided_at": self.decided_at.isoformat(),
            "evidence": self.evidence,
            "figures": self.figures,
        }

    @classmethod
    def from_json(cls, doc: Any, *, source: str = "gate verdict") -> GateVerdict:
        """The verdict of a stored document; a :class:`FailedPrecondition` naming ``source`` (the
        file) and the field when it is not a verdict."""
        fields = _Fields(doc, source)
        if doc.get("format", VERDICT_FORMAT) != VERDICT_FORMAT:
            raise fields.bad("format", f"{doc.get('format')!r} is not {VERDICT_FORMAT}")
        checks = tuple(_check(item, fields, i) for i, item in enumerate(fields.get("checks", list)))
        decided = fields.get("decided_at", str)
        try:
            decided_at = datetime.fromisoformat(decided)
        except ValueError:
            raise fields.bad("decided_at", f"{decided!r} is not an ISO 8601 time") from None
        if decided_at.utcoffset() is None:
            raise fields.bad("decided_at", f"{decided!r} has no timezone")
        champion = doc.get("champion")
        if champion is not None and not isinstance(champion, str):
            raise fields.bad("champion", "must be a version or null")
        try:
            return cls(
                fields.get("challenger", str),
                champion,
                fields.get("passed", bool),
                checks,
                decided_at,
                fields.get("evidence", str),
                fields.get("figures", dict) if "figures" in doc else {},
            )
        except ValueError as error:
            raise FailedPrecondition(f"{source}: not a consistent gate verdict ({error})") from None


class _Fields:
    """Typed access to the fields of a verdict document (or of one of its checks, ``prefix``
    naming it), failing with the source and the field named."""

    def __init__(self, doc: Any, source: str, prefix: str = "") -> None:
        if not isinstance(doc, dict):
            raise FailedPrecondition(f"{source}: a gate verdict is a JSON object")
        self.doc, self.source, self.prefix = doc, source, prefix

    def get(self, name: str, kind: type[Any]) -> Any:
        if name not in self.doc:
            raise self.bad(name, "missing")
        value = self.doc[name]
        if not isinstance(value, kind) or (kind is not bool and isinstance(value, bool)):
            raise self.bad(name, f"must be {_KIND_NAMES[kind]}, not {type(value).__name__}")
        return value

    def bad(self, name: str, problem: str) -> FailedPrecondition:
        return FailedPrecondition(
            f"{self.source}: field {self.prefix + name!r} of the gate verdict: {problem}"
        )


_KIND_NAMES: dict[type[Any], str] = {
    str: "a string",
    bool: "true or false",
    list: "a list",
    dict: "an object",
}


def _check(item: Any, fields: _Fields, index: int) -> GateCheck:
    """Check ``index`` of the document, each of its fields named on failure."""
    name = f"checks[{index}]"
    if not isinstance(item, dict):
        raise fields.bad(name, "must be an object {name, passed, detail}")
    at = _Fields(item, fields.source, prefix=f"{name}.")
    return GateCheck(at.get("name", str), at.get("passed", bool), at.get("detail", str))
