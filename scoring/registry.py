"""The model registry: a directory of bundles and a record of which one serves.

``<registry>/<version>/`` holds each bundle; ``<registry>/registry.json`` records the promotion
history, newest last. The promoted version is the last entry; rollback drops it, so the previous
one serves again. The record is replaced atomically, so a reader never sees half a write.
"""

from __future__ import annotations

import json
import os
import re
import tempfile
from dataclasses import dataclass
from pathlib import Path

from features.errors import FailedPrecondition, NotFound
from scoring.bundle import META_FILE, ModelBundle, load_bundle

_RECORD = "registry.json"
_VERSION = re.compile(r"^v(\d{4,})$")


@dataclass(frozen=True, slots=True)
class RegistryEntry:
    version: str
    path: Path
    promoted: bool


class Registry:
    def __init__(self, root: Path) -> None:
        self.root = Path(root)

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

    def history(self) -> list[str]:
        """The promotion history, oldest first. A record that cannot be read or is not the
        expected shape is a :class:`FailedPrecondition` naming the file, never a guess."""
        record = self.root / _RECORD
        try:
            data = record.read_bytes()
        except FileNotFoundError:
            return []
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
        history = doc.get("history") if isinstance(doc, dict) else None
        if not isinstance(history, list) or not all(
            isinstance(v, str) and _VERSION.match(v) for v in history
        ):
            raise self._damaged('not of the form {"history": ["v0001", ...]}')
        return [str(v) for v in history]

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

    def promote(self, version: str) -> None:
        self.path_for(version)
        history = [v for v in self.history() if v != version] + [version]
        self._write(history)

    def rollback(self) -> str:
        history = self.history()
        if len(history) < 2:
            raise FailedPrecondition("nothing to roll back to: fewer than two promotions")
        self._write(history[:-1])
        return history[-2]

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

    def _write(self, history: list[str]) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".registry-", dir=self.root)
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump({"history": history}, f, indent=2)
        os.replace(tmp, self.root / _RECORD)
