"""What the generators of checked-in files in ``deploy/`` share: one command line that writes
the file, or with ``--check`` exits 1 when the checked-in file differs from what it would write
(the tests and ``make deploy-files`` rely on both)."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path


def generate(
    argv: list[str] | None,
    doc: str,
    render: Callable[[], str],
    out: Path,
    *,
    what: str,
    script: str,
) -> int:
    """Write ``render()`` to ``--out`` (``out`` by default), or check it is current there.

    ``doc`` is the generator's docstring (its first line describes the command), ``what`` names
    the file in the help (``JSON``, ``example``), ``script`` is the generator's path: the stale
    message says to run it."""
    parser = argparse.ArgumentParser(description=doc.splitlines()[0])
    parser.add_argument("--out", type=Path, default=out, help=f"Where to write the {what}.")
    parser.add_argument(
        "--check",
        action="store_true",
        help="Exit 1 if the file differs from what would be written.",
    )
    args = parser.parse_args(argv)
    text = render()
    if args.check:
        current = args.out.read_text(encoding="utf-8") if args.out.exists() else ""
        if current != text:
            print(f"{args.out} is stale: run {Path(script).name}", file=sys.stderr)
            return 1
        return 0
    args.out.write_text(text, encoding="utf-8")
    print(f"wrote {args.out}")
    return 0
