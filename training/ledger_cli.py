"""``centinela ledger``: check the decision ledger's hash chain and export it for retraining."""

from __future__ import annotations

from pathlib import Path

import typer

from scoring.ledger import export, verify
from training.cli_common import console, err_console, print_json, run

app = typer.Typer(help="Verify and export the decision ledger.", no_args_is_help=True)

DB_OPTION = typer.Option(Path("var/ledger.sqlite"), "--db", help="Ledger SQLite file.")


@app.command("verify")
def verify_command(
    db: Path = DB_OPTION,
    json_out: bool = typer.Option(False, "--json", help="Print the result as JSON."),
) -> None:
    """Walk the hash chain; name the first row that was edited, deleted or reordered."""

    def body() -> None:
        result = verify(db)
        if json_out:
            print_json(
                {"ok": result.ok, "rows": result.rows, "problem": result.problem, "row": result.seq}
            )
        elif result.ok:
            console.print(f"ledger {db}: {result.rows} rows, hash chain intact")
        else:
            err_console.print(f"ledger {db}: [bold red]{result.problem}[/]", highlight=False)
        if not result.ok:
            raise typer.Exit(6)

    run(body)


@app.command("export")
def export_command(
    out: Path = typer.Option(..., "--out", help="Directory for the canonical tables."),
    db: Path = DB_OPTION,
    json_out: bool = typer.Option(False, "--json", help="Print the counts as JSON."),
) -> None:
    """Write decisions and outcomes as tables `centinela train --data OUT` reads.

    One shipment per shipment id: a shipment scored more than once is exported as its latest
    decision declared it, with one inspection at most.
    """

    def body() -> None:
        result = export(db, out)
        if json_out:
            print_json(
                {
                    "shipments": result.shipments,
                    "goods": result.goods,
                    "inspections": result.inspections,
                    "folded": result.folded,
                    "out": str(out),
                }
            )
            return
        console.print(
            f"exported {result.shipments} shipments, {result.goods} goods lines and "
            f"{result.inspections} inspection outcomes to {out}"
        )
        if result.folded:
            console.print(
                f"folded {result.folded} repeated decisions of the same shipment ids (latest kept)",
                highlight=False,
            )

    run(body)


if __name__ == "__main__":
    app()
