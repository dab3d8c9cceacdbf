"""The peers benchmark's report: the table of medians, one column a server with Centinela's
ratio to each beside it, and the ratios of Centinela to each peer spelled out."""

from __future__ import annotations

import statistics
from collections.abc import Callable, Iterable

from bench.load import Run
from bench.servers import BARE, CENTINELA, EMPTY, MLSERVER

COLUMNS = (CENTINELA, MLSERVER, BARE, EMPTY)

# Runs of each server, by name, by measurement ("8", "1" in flight, "manifest").
Runs = dict[str, dict[str, list[Run]]]


def median(runs: Iterable[Run], value: Callable[[Run], float]) -> float:
    return statistics.median(value(r) for r in runs)


ROWS: tuple[tuple[str, str, str, Callable[[Run], float], str], ...] = (
    # label, measurement, unit, figure, format
    ("1 shipment a call, 8 in flight", "8", "/s", lambda r: r.per_s, "{:,.0f}"),
    ("", "8", "p99 ms", lambda r: r.ms(99), "{:.2f}"),
    ("1 in flight", "1", "/s", lambda r: r.per_s, "{:,.0f}"),
    ("", "1", "p50 ms", lambda r: r.ms(50), "{:.2f}"),
    ("manifests (stream / 1000-row calls)", "manifest", "/s", lambda r: r.per_s, "{:,.0f}"),
)


def table(runs: Runs, missing: dict[str, str]) -> list[str]:
    """The table's lines; a server in ``missing`` shows why instead of figures."""
    label_w = max(len(label) for label, *_ in ROWS) + 8
    cells: list[list[str]] = []
    for label, key, unit, figure, fmt in ROWS:
        line = [f"{label:<{label_w - 8}}{unit:>8}"]
        ours = median(runs[CENTINELA][key], figure) if CENTINELA in runs else None
        for name in COLUMNS:
            if name in missing:
                line.append("" if cells else missing[name])
            elif name in runs:
                value = median(runs[name][key], figure)
                text = fmt.format(value)
                if name != CENTINELA and ours is not None and value > 0:
                    text += f" ({ours / value:.2f}x)"
                line.append(text)
            else:
                line.append("-")
        cells.append(line)
    head = [" " * label_w, *COLUMNS]
    widths = [max(len(row[i]) for row in [head, *cells]) for i in range(len(head))]
    out = [
        "  ".join(
            c.rjust(w) if i else c.ljust(w)
            for i, (c, w) in enumerate(zip(row, widths, strict=True))
        )
        for row in [head, *cells]
    ]
    return out


def report_ratios(runs: Runs) -> None:
    ours = runs[CENTINELA]
    if MLSERVER in runs:
        theirs = runs[MLSERVER]
        for text, key, figure in (
            ("throughput at 8 in flight", "8", lambda r: r.per_s),
            ("p99 at 8 in flight", "8", lambda r: r.ms(99)),
            ("throughput at 1 in flight", "1", lambda r: r.per_s),
            ("p50 at 1 in flight", "1", lambda r: r.ms(50)),
            ("manifest throughput (stream / 1000-row calls)", "manifest", lambda r: r.per_s),
        ):
            ratio = median(ours[key], figure) / median(theirs[key], figure)
            print(f"Centinela / MLServer {text}: {ratio:.2f}x")
    for name in (BARE, EMPTY):
        for text, key in (
            ("at 8 in flight", "8"),
            ("at 1 in flight", "1"),
            ("manifest", "manifest"),
        ):
            share = median(ours[key], lambda r: r.per_s) / median(
                runs[name][key], lambda r: r.per_s
            )
            print(f"Centinela / {name} throughput {text}: {share:.0%}")
