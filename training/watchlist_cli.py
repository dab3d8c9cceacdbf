"""``centinela watchlist``: check a watchlist file and try the matcher on one goods line.

Analysts run ``validate`` before shipping an edited file (the service would refuse it anyway,
keeping the old list) and ``match`` to see what a description would trigger and why.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape
from rich.table import Table

from features.canonical import read_cas
from features.watchlist import LineMatch, Watchlist, invalid_cas_reason, load_watchlist
from features.watchlist.store import PACKAGED_FILE
from training.cli_common import console, json_option, packaged_file_argument, print_json, run, say

app = typer.Typer(help="Check the precursor watchlist file and match goods lines against it.")


@app.command()
def validate(
    file: Annotated[Path | None, packaged_file_argument("watchlist")] = None,
) -> None:
    """Validate a watchlist file: prints OK with counts, or every bad field (exit status 3)."""

    def body() -> None:
        watchlist = load_watchlist(file)
        spec = watchlist.spec
        substances = sum(1 for e in spec.entries if e.kind == "substance")
        equipment = len(spec.entries) - substances
        cas = sum(len(e.cas) for e in spec.entries)
        hs = sum(len(e.hs) for e in spec.entries)
        names = sum(len(e.synonyms) + len(e.abbreviations) + 1 for e in spec.entries)
        say(
            f"[bold green]OK[/] {file or PACKAGED_FILE}: version {spec.version}, "
            f"{len(spec.entries)} entries ({substances} substances, {equipment} equipment), "
            f"{names} names, {cas} CAS numbers, {hs} HS codes"
        )

    run(body)


def _invalid_cas(found: LineMatch) -> list[dict[str, str]]:
    out = []
    for number in found.invalid_cas:
        reading = read_cas(number)
        out.append(
            {"cas": number, "status": reading.status, "problem": invalid_cas_reason(reading) or ""}
        )
    return out


def _as_json(found: LineMatch, watchlist: Watchlist) -> dict[str, Any]:
    return {
        "hits": [
            {
                "entryId": h.entry_id,
                "name": h.name,
                "matchType": h.match_type,
                "matchedText": h.matched_text,
                "similarity": h.similarity,
            }
            for h in found.hits
        ],
        "mismatch": [
            {"entryId": m.entry_id, "kind": m.kind, "detail": m.detail} for m in found.mismatches
        ],
        "invalidCas": _invalid_cas(found),
        "watchlistVersion": watchlist.version,
    }


@app.command()
def match(
    text: Annotated[str, typer.Argument(help="Goods description to match.")],
    hs: Annotated[str, typer.Option("--hs", help="HS code of the line, e.g. 2933.37.")] = "",
    cas: Annotated[
        list[str] | None, typer.Option("--cas", help="Declared CAS number; repeat for several.")
    ] = None,
    as_json: bool = json_option("the findings"),
    watchlist_file: Annotated[
        Path | None, typer.Option("--watchlist", help="Watchlist YAML; default: packaged.")
    ] = None,
) -> None:
    """Match one goods line and show the hits, mismatch signals and invalid CAS numbers.

    Any equivalent writing matches (``039742-60-4``, ``39742604``, full-width digits,
    look-alike letters); a declared CAS number that is not a valid CAS is reported, never
    matched.
    """

    def body() -> None:
        watchlist = load_watchlist(watchlist_file)
        found = watchlist.match_line(hs, text, tuple(cas or ()))
        if as_json:
            print_json(_as_json(found, watchlist))
            return
        if not found.hits:
            say(f"no watchlist hits (watchlist {watchlist.version})")
        else:
            table = Table(title=f"Watchlist hits (watchlist {watchlist.version})")
            for column in ("entry", "name", "match type", "matched text", "similarity", "strength"):
                table.add_column(column, overflow="fold")
            for h in found.hits:
                table.add_row(
                    h.entry_id,
                    h.name,
                    h.match_type,
                    escape(h.matched_text),
                    f"{h.similarity:.2f}",
                    f"{h.strength:.2f}",
                )
            console.print(table)
        for m in found.mismatches:
            say(f"[bold yellow]mismatch[/] {m.entry_id} {m.kind}: {escape(m.detail)}")
        for bad in _invalid_cas(found):
            shown = bad["cas"] if bad["status"] == "check_digit" else repr(bad["cas"])
            console.print(
                f"[bold red]invalid CAS[/] declared CAS {escape(shown)} is invalid: "
                f"{bad['problem']}",
                highlight=False,
                soft_wrap=True,
            )

    run(body)


if __name__ == "__main__":
    app()
