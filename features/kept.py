"""A chunk's declarations and stage one in a file, for the second pass of a bulk run to read
back instead of computing them again.

One pickle of the pair spends much of its time in the pickler's memo, which holds every object
written so far: a chunk has hundreds of thousands of strings. The file is instead a run of
pickles, one a field, the memo cleared between them; a field that is the same object as one
written before (``Basics.keyed.shipment_id`` is ``Declarations.shipment_id``) is written as a
reference to it, so it is read back as one object again. Values round-trip exactly.
"""

from __future__ import annotations

import pickle
from dataclasses import fields
from pathlib import Path
from typing import NamedTuple

from features.declarations import Declarations
from features.history import Keyed
from features.stage_one import Basics


class _Same(NamedTuple):
    """In place of a field: the object of the field ``name`` written before it."""

    name: str


def _parts(declarations: Declarations, basics: Basics) -> dict[str, object]:
    """Every field of the pair by a name of its own, in the order they are written."""
    keyed = basics.keyed
    parts: dict[str, object] = {
        f"d.{f.name}": getattr(declarations, f.name) for f in fields(Declarations)
    }
    parts |= {f"key.{entity}": keys for entity, keys in keyed.keys.items()}
    parts |= {
        "k.shipment_id": keyed.shipment_id,
        "k.declared_at": keyed.declared_at,
        "k.families": keyed.families,
        "b.columns": basics.columns,
        "b.port_of_entry": basics.port_of_entry,
    }
    return parts


def save_stage_one(path: Path, declarations: Declarations, basics: Basics) -> None:
    """Write ``declarations`` and their stage one ``basics`` to ``path`` (a file of the run's
    own), for :func:`load_stage_one`."""
    written: dict[int, str] = {}
    with path.open("wb") as out:
        pickler = pickle.Pickler(out, protocol=pickle.HIGHEST_PROTOCOL)
        for name, value in _parts(declarations, basics).items():
            same = written.get(id(value))
            pickler.dump((name, value if same is None else _Same(same)))
            pickler.clear_memo()
            written.setdefault(id(value), name)


def load_stage_one(path: Path) -> tuple[Declarations, Basics]:
    """The declarations and stage one :func:`save_stage_one` wrote to ``path`` (a file this run
    wrote in its own directory, never outside input)."""
    parts: dict[str, object] = {}
    with path.open("rb") as kept:
        while kept.peek(1):  # an unpickler a field: each field's memo starts empty
            name, value = pickle.Unpickler(kept).load()
            parts[name] = parts[value.name] if isinstance(value, _Same) else value
    declarations = Declarations(
        **{f.name: parts.pop(f"d.{f.name}") for f in fields(Declarations)}  # type: ignore[arg-type]
    )
    keyed = Keyed(
        shipment_id=parts.pop("k.shipment_id"),  # type: ignore[arg-type]
        declared_at=parts.pop("k.declared_at"),  # type: ignore[arg-type]
        keys={
            name.removeprefix("key."): parts.pop(name)  # type: ignore[misc]
            for name in [n for n in parts if n.startswith("key.")]
        },
        families=parts.pop("k.families"),  # type: ignore[arg-type]
    )
    basics = Basics(
        parts.pop("b.columns"),  # type: ignore[arg-type]
        keyed,
        parts.pop("b.port_of_entry"),  # type: ignore[arg-type]
    )
    return declarations, basics
