"""The model registry: a directory of bundles, the record of which one serves and why.

``<registry>/<version>/`` holds each bundle, and beside its files the gate's verdict on it
(``gate.json``, :class:`scoring.verdict.GateVerdict`) once it has been judged.
``<registry>/registry.json`` records the promotion history, newest last, and the promotion log::

    {"history": ["v0001", "v0003"],
     "log": [{"action": "promote", "version": "v0003", "replaced": "v0001",
              "at": "2025-06-02T14:30:00+00:00", "by": "ana", "reason": "...",
              "forced": false, "gate": {"passed": true, "champion": "v0001"}}, ...]}

The promoted version is the last entry of the history; rollback drops it, so the previous one
serves again. Every promotion and rollback appends an entry to the log (a record written before
the log existed reads as an empty log). A promotion needs a verdict that passed against the
bundle promoted now unless it is ``forced``, which needs a reason and is logged as forced.

Files are replaced atomically, so a reader never sees half a write; promotions and rollbacks
hold a lock on ``<registry>/.registry.lock`` from reading the record to replacing it.
"""

from __future__ import annotations

import fcntl
import json
import os
import re
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from features.errors import FailedPrecondition, InvalidInput, ModelError, NotFound
from scoring.bundle import HASHED_FILES, META_FILE, BundleMeta, ModelBundle, load_bundle
from scoring.verdict import GateRefused, GateVerdict

_RECORD = "registry.json"
_LOCK = ".registry.lock"
GATE_FILE = "gate.json"
_VERSION = re.compile(r"^v(\d{4,})$")

Action = Literal["promote", "rollback"]
ACTIONS: tuple[Action, ...] = ("promote", "rollback")


@dataclass(frozen=True, slots=True)
class RegistryEntry:
    version: str
    path: Path
    promoted: bool


@dataclass(frozen=True, slots=True)
class GateStamp:
    """What a log entry keeps of the verdict a promotion was made on."""

    passed: bool
    champion: str | None


@dataclass(frozen=True, slots=True)
class PromotionEntry:
    """One promotion or rollback. ``version`` is the version that serves after it (for a
    rollback, the one that serves again) and ``replaced`` the one that served before (None: none
    did). ``forced``: promoted without a verdict that passed against the promoted bundle;
    ``gate``: the verdict it had, if any."""

    action: Action
    version: str
    replaced: str | None
    at: datetime
    by: str
    reason: str
    forced: bool
    gate: GateStamp | None

    def concerns(self, version: str) -> bool:
        """Whether this entry promoted ``version`` or took it out of service."""
        return version in (self.version, self.replaced)

    def to_json(self) -> dict[str, Any]:
        return {
            "action": self.action,
            "version": self.version,
            "replaced": self.replaced,
            "at": self.at.isoformat(timespec="seconds"),
            "by": self.by,
            "reason": self.reason,
            "forced": self.forced,
            "gate": (
                None
                if self.gate is None
                else {"passed": self.gate.passed, "champion": self.gate.champion}
            ),
        }

    @classmethod
    def from_json(cls, doc: Any) -> PromotionEntry:
        """The entry of a log record; a ``ValueError`` saying which field is wrong."""
        if not isinstance(doc, dict):
            raise ValueError("not an object")
        action = _field(doc, "action", str)
        if action not in ACTIONS:
            raise ValueError(f"'action' is {action!r}, not one of {', '.join(ACTIONS)}")
        gate = doc.get("gate")
        if gate is not None and not (
            isinstance(gate, dict)
            and isinstance(gate.get("passed"), bool)
            and _optional_version(gate.get("champion"))
        ):
            raise ValueError("'gate' is not null nor {passed, champion}")
        replaced = doc.get("replaced")
        if not _optional_version(replaced):
            raise ValueError(f"'replaced' is {replaced!r}, not a version or null")
        version = _field(doc, "version", str)
        if not _VERSION.match(version):
            raise ValueError(f"'version' is {version!r}, not a version such as v0001")
        at = datetime.fromisoformat(_field(doc, "at", str))
        return cls(
            action=action,
            version=version,
            replaced=replaced,
            at=at if at.tzinfo else at.replace(tzinfo=UTC),
            by=_field(doc, "by", str),
            reason=_field(doc, "reason", str),
            forced=_field(doc, "forced", bool),
            gate=None if gate is None else GateStamp(gate["passed"], gate.get("champion")),
        )


def _field(doc: dict[str, Any], name: str, kind: type[Any]) -> Any:
    value = doc.get(name)
    if not isinstance(value, kind):
        raise ValueError(f"{name!r} is {value!r}, not {kind.__name__}")
    return value


def _optional_version(value: object) -> bool:
    return value is None or (isinstance(value, str) and bool(_VERSION.match(value)))


@dataclass(frozen=True, slots=True)
class _Record:
    history: list[str]
    log: list[PromotionEntry]


ChangeHook = Callable[["Registry", str], None]
"""Called with the registry and a version whose verdict or promotion log just changed."""


class Registry:
    """The registry at ``root``. ``on_change`` is told of every version whose verdict or log
    entries change (:mod:`training.model_card` rewrites that bundle's card)."""

    def __init__(self, root: Path, *, on_change: ChangeHook | None = None) -> None:
        self.root = Path(root)
        self.on_change = on_change

    def versions(self) -> list[str]:
        if not self.root.exists():
            return []
        found = [
            p.name
            for p in self.root.iterdir()
            if p.is_dir() and _VERSION.match(p.name) and (p / META_FILE).exists()
        ]
        return sorted(found, key=lambda v: int(v[1:]))

    def next_version(self) -> str:
        taken = [int(m.group(1)) for p in self._all_dirs() if (m := _VERSION.match(p.name))]
        return f"v{(max(taken) + 1 if taken else 1):04d}"

    def _all_dirs(self) -> list[Path]:
        return [p for p in self.root.iterdir() if p.is_dir()] if self.root.exists() else []

    def path_for(self, version: str) -> Path:
        path = self.root / version
        if not (path / META_FILE).exists():
            known = ", ".join(self.versions()) or "none"
            raise NotFound(f"model version {version!r} not in registry {self.root} (have: {known})")
        return path

    # ------------------------------------------------------------------ the record

    def history(self) -> list[str]:
        """The promotion history, oldest first. A record that cannot be read or is not the
        expected shape is a :class:`FailedPrecondition` naming the file, never a guess."""
        history: list[str] = _history(self._document())
        return history

    def promotion_log(self, version: str | None = None) -> list[PromotionEntry]:
        """Every promotion and rollback, oldest first; with ``version``, those that promoted it
        or took it out of service. A record without a log (written before it existed) has an
        empty one."""
        log = _log(self._document(), self._damaged)
        return log if version is None else [e for e in log if e.concerns(version)]

    def _document(self) -> dict[str, Any] | None:
        """The record as JSON, None when there is none yet."""
        record = self.root / _RECORD
        try:
            data = record.read_bytes()
        except FileNotFoundError:
            return None
        except OSError as error:
            raise FailedPrecondition(
                f"{record}: cannot read the registry record ({error.strerror or error})"
            ) from None
        try:
            doc = json.loads(data.decode("utf-8"))
        except UnicodeDecodeError as error:
            raise self._damaged(f"invalid UTF-8 at byte offset {error.start}") from None
        except ValueError as error:
            raise self._damaged(f"not valid JSON ({error})" if data.strip() else "empty") from None
        if not isinstance(doc, dict) or _history(doc) is None:
            raise self._damaged('not of the form {"history": ["v0001", ...]}')
        return doc

    def _damaged(self, problem: str) -> FailedPrecondition:
        return FailedPrecondition(
            f"{self.root / _RECORD}: the registry record is damaged ({problem}); restore it, "
            'or write the promotion history again: {"history": ["v0001", ...]}, newest last'
        )

    def promoted(self) -> str | None:
        history = self.history()
        return history[-1] if history else None

    def entries(self) -> list[RegistryEntry]:
        current = self.promoted()
        return [RegistryEntry(v, self.root / v, v == current) for v in self.versions()]

    # ------------------------------------------------------------------ verdicts

    def save_verdict(self, version: str, verdict: GateVerdict) -> Path:
        """Keep ``verdict`` as bundle ``version``'s ``gate.json`` (replacing any before it)."""
        if verdict.challenger != version:
            raise InvalidInput(
                f"the verdict judges {verdict.challenger!r}, not {version!r}; not saved"
            )
        path = self.write_file(
            version, GATE_FILE, json.dumps(verdict.to_json(), indent=2, ensure_ascii=False)
        )
        self._changed(version)
        return path

    def verdict(self, version: str) -> GateVerdict | None:
        """Bundle ``version``'s verdict, None when it was never judged. A ``gate.json`` that
        cannot be read or is not a verdict on this bundle is a :class:`FailedPrecondition`
        naming the file and the field."""
        path = self.path_for(version) / GATE_FILE
        try:
            doc = json.loads(path.read_bytes().decode("utf-8"))
        except FileNotFoundError:
            return None
        except OSError as error:
            raise FailedPrecondition(
                f"{path}: cannot read the gate verdict ({error.strerror or error})"
            ) from None
        except ValueError as error:  # invalid UTF-8 or JSON
            raise FailedPrecondition(
                f"{path}: the gate verdict is damaged ({error}); judge the bundle again: "
                f"centinela models compare {version} --ledger ..."
            ) from None
        verdict = GateVerdict.from_json(doc, source=str(path))
        if verdict.challenger != version:
            raise FailedPrecondition(
                f"{path}: field 'challenger' of the gate verdict: {verdict.challenger!r} is not "
                f"this bundle ({version})"
            )
        return verdict

    def gate_refusal(self, version: str) -> str | None:
        """Why the gate refuses to promote ``version`` now (None: it may be promoted): no
        verdict, a failed one, or one judged against a bundle that is no longer promoted."""
        verdict = self.verdict(version)
        again = f"centinela models compare {version} --ledger ..."
        if verdict is None:
            return f"{version} has no gate verdict: run `{again}` first"
        if not verdict.passed:
            failed = "".join(f"\n  - {reason}" for reason in verdict.reasons())
            return f"{version}'s gate verdict failed ({verdict.summary()}):{failed}"
        champion = self.promoted()
        if verdict.champion != champion:
            judged = verdict.champion or "an empty registry"
            now = f"{champion} is promoted now" if champion else "nothing is promoted now"
            return (
                f"{version}'s gate verdict is stale: it was judged against {judged}, but {now}; "
                f"run `{again}` again"
            )
        return None

    def check_gate(self, version: str) -> None:
        """Raise :class:`GateRefused` saying why when the gate refuses to promote ``version``."""
        refusal = self.gate_refusal(version)
        if refusal is not None:
            raise _refused(refusal)

    # ------------------------------------------------------------------ promotion

    def promote(
        self, version: str, *, by: str, reason: str, forced: bool = False
    ) -> PromotionEntry:
        """Make ``version`` the promoted bundle and log who did it and why.

        Refused (:class:`GateRefused`) unless its verdict passed against the bundle promoted
        now (:meth:`gate_refusal`), or ``forced`` (which needs a ``reason``)."""
        self.path_for(version)
        if not by.strip() or not reason.strip():
            raise InvalidInput(
                f"promoting {version} needs who promotes it and why "
                f"(by: {by!r}, reason: {reason!r})"
            )
        with self._locked():
            record = self._read_for_change()
            if record.history and record.history[-1] == version:
                raise FailedPrecondition(f"{version} is already the promoted version")
            refusal = self.gate_refusal(version)
            if refusal is not None and not forced:
                raise _refused(refusal)
            verdict = self.verdict(version)
            entry = PromotionEntry(
                action="promote",
                version=version,
                replaced=record.history[-1] if record.history else None,
                at=datetime.now(UTC),
                by=by,
                reason=reason,
                forced=refusal is not None,
                gate=None if verdict is None else GateStamp(verdict.passed, verdict.champion),
            )
            history = [v for v in record.history if v != version] + [version]
            self._write(_Record(history, [*record.log, entry]))
        self._changed(version, entry.replaced)
        return entry

    def rollback(self, *, by: str, reason: str) -> PromotionEntry:
        """Return to the previously promoted bundle, and log who did it and why."""
        with self._locked():
            record = self._read_for_change()
            if len(record.history) < 2:
                raise FailedPrecondition("nothing to roll back to: fewer than two promotions")
            entry = PromotionEntry(
                action="rollback",
                version=record.history[-2],
                replaced=record.history[-1],
                at=datetime.now(UTC),
                by=by,
                reason=reason,
                forced=False,
                gate=None,
            )
            self._write(_Record(record.history[:-1], [*record.log, entry]))
        self._changed(entry.version, entry.replaced)
        return entry

    def _read_for_change(self) -> _Record:
        doc = self._document()
        return _Record(_history(doc) or [], _log(doc, self._damaged))

    def _changed(self, *versions: str | None) -> None:
        if self.on_change is not None:
            for version in versions:
                if version is not None:
                    self.on_change(self, version)

    @contextmanager
    def _locked(self) -> Iterator[None]:
        self.root.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.root / _LOCK, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)  # closing the only descriptor drops the lock

    def _write(self, record: _Record) -> None:
        doc = {"history": record.history, "log": [e.to_json() for e in record.log]}
        _replace(self.root / _RECORD, json.dumps(doc, indent=2, ensure_ascii=False))

    # ------------------------------------------------------------------ bundles

    def write_file(self, version: str, name: str, text: str) -> Path:
        """Write ``text`` as file ``name`` of bundle ``version``, atomically. For what describes
        a bundle beside it (its verdict, its card); the bundle's own files are never rewritten."""
        if name in (META_FILE, *HASHED_FILES) or "/" in name:
            raise ValueError(f"{name!r} is not a file the registry writes into a bundle")
        path = self.path_for(version) / name
        _replace(path, text)
        return path

    def meta(self, version: str) -> BundleMeta:
        """Bundle ``version``'s metadata as ``bundle.json`` states it, without loading the model
        or checking its manifest (:meth:`load` does both)."""
        path = self.path_for(version) / META_FILE
        try:
            return BundleMeta.from_json(json.loads(path.read_bytes().decode("utf-8")))
        except ModelError as error:
            raise ModelError(f"{path}: {error.message}") from None
        except (OSError, ValueError, KeyError, TypeError, AttributeError) as error:
            raise ModelError(f"{path}: unreadable bundle metadata ({error!r})") from None

    def load(self, version: str | None = None) -> ModelBundle:
        """Load ``version``, or the promoted bundle when ``version`` is None."""
        chosen = version or self.promoted()
        if chosen is None:
            raise FailedPrecondition(f"no model promoted in registry {self.root}")
        if version is None and not (self.root / chosen / META_FILE).exists():
            raise FailedPrecondition(
                f"{self.root / _RECORD}: promotes {chosen!r}, which is not a bundle in "
                f"{self.root} (have: {', '.join(self.versions()) or 'none'})"
            )
        return load_bundle(self.path_for(chosen))


def _refused(refusal: str) -> GateRefused:
    return GateRefused(f"{refusal}\n(to promote it anyway: --force --reason TEXT, which is logged)")


def _history(doc: dict[str, Any] | None) -> Any:
    """The history of a record (empty without one); None when it is not a list of versions."""
    if doc is None:
        return []
    history = doc.get("history")
    if not isinstance(history, list) or not all(
        isinstance(v, str) and _VERSION.match(v) for v in history
    ):
        return None
    return [str(v) for v in history]


def _log(
    doc: dict[str, Any] | None, damaged: Callable[[str], FailedPrecondition]
) -> list[PromotionEntry]:
    """The promotion log of a record; empty for a record from before the log existed."""
    raw = [] if doc is None else doc.get("log", [])
    if not isinstance(raw, list):
        raise damaged('"log" is not a list of promotions')
    entries = []
    for index, item in enumerate(raw):
        try:
            entries.append(PromotionEntry.from_json(item))
        except ValueError as error:
            raise damaged(f"log entry {index}: {error}") from None
    return entries


def _replace(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` so a reader sees the old file or the new one, never a part."""
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}-", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
