"""The ``centinela`` command: the analysts' commands plus ``serve``.

This is a composition root, so it may use both ``training`` (for ``--bootstrap``, which makes
data and a model on a fresh machine) and ``server``.
"""

from __future__ import annotations

import asyncio
import json
import logging
from datetime import UTC, datetime
from pathlib import Path

import typer

from scoring.bundle import BUNDLE_FORMAT, META_FILE
from scoring.registry import Registry
from server.app import serve
from server.logs import configure_logging
from server.settings import Settings, load_settings
from training.cli import app
from training.cli_common import config_option, console, run, use_settings_loader

use_settings_loader(load_settings)  # the analysts' --config takes the server's file whole

log = logging.getLogger("centinela.bootstrap")


def _outdated(registry: Registry, version: str) -> bool:
    """Whether the promoted bundle predates the bundle format this code loads."""
    try:
        doc = json.loads((registry.root / version / META_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False  # damaged, not old: the load names the problem; nothing is retrained
    return isinstance(doc, dict) and doc.get("format", 1) != BUNDLE_FORMAT


def bootstrap(settings: Settings) -> None:
    """Simulate a world and train a first model when the registry has none promoted (or, for
    ``make run``'s own registry, only a bundle older than the format this code loads)."""
    registry = Registry(settings.registry_dir)
    promoted = registry.promoted()
    retrain = promoted is not None and _outdated(registry, promoted)
    if promoted is not None and not retrain:
        return
    from features.tables import table_path
    from training.simulate import simulate_world
    from training.simulate.skeleton import add_months
    from training.train import train

    months = 24

    if not table_path(settings.data_dir, "shipments").exists():
        log.info(
            "no data: simulating a world",
            extra={"dir": str(settings.data_dir), "shipments": settings.bootstrap_shipments},
        )
        # The world ends today, so its history counts for the current declarations live
        # scoring accepts (see Settings.declared_at_max_age_days).
        simulate_world(
            settings.data_dir,
            shipments=settings.bootstrap_shipments,
            months=months,
            start=add_months(datetime.now(UTC).date(), -months),
            seed=settings.bootstrap_seed,
            progress=False,
        )
    if retrain:
        log.warning(
            "the promoted model predates the bundle format this version checks: training a new one",
            extra={"registry": str(settings.registry_dir), "outdated": promoted},
        )
    else:
        log.info("no promoted model: training one", extra={"registry": str(settings.registry_dir)})
    result = train(
        settings.data_dir,
        settings.registry_dir,
        seed=settings.bootstrap_seed,
        promote=True if retrain else None,
        promoted_by="centinela serve --bootstrap",
        promotion_reason=(
            f"the promoted model {promoted} predates the bundle format this version loads"
            if retrain
            else None  # train's own: the first model of an empty registry
        ),
    )
    log.info("trained", extra={"version": result.version, "metrics": result.metrics})


@app.command("serve")
def serve_command(
    config: Path | None = config_option("YAML settings file (unknown keys are rejected)."),
    bootstrap_missing: bool = typer.Option(
        False,
        "--bootstrap",
        help="If no model is promoted, simulate data and train one before serving.",
    ),
) -> None:
    """Run the gRPC scoring server until SIGTERM or SIGINT."""

    def body() -> None:
        settings = load_settings(config)
        configure_logging(settings.log_level, settings.log_json)
        prepare = (lambda: bootstrap(settings)) if bootstrap_missing else None
        asyncio.run(serve(settings, prepare))

    run(body)


@app.command("certs")
def certs_command(
    out: Path = typer.Option(..., "--out", help="Directory for the CA, server and client files."),
    callers: list[str] | None = typer.Option(
        None,
        "--caller",
        help="A client certificate for NAME with roles (scorer, reporter, admin), as "
        "NAME:ROLE[,ROLE]; repeat for several. Default: scorer, reporter and admin.",
    ),
    hosts: list[str] | None = typer.Option(
        None,
        "--host",
        help="A name or address the server certificate is for; repeat for several. Default: "
        "localhost, 127.0.0.1, ::1.",
    ),
    days: int = typer.Option(365, "--days", min=1, max=3650, help="Days the certificates last."),
) -> None:
    """Make a development CA, a server certificate and client certificates for named callers.

    A client certificate names its caller in CN=NAME and each role in a URI SAN
    spiffe://centinela/role/ROLE. The CA in OUT is reused when present, so a second run
    rotates the server and client certificates under the same CA. Keys are written 0600.
    """
    from server.certs import DEFAULT_CALLERS, DEFAULT_HOSTS, make_dev_pki, parse_caller

    def body() -> None:
        wanted = [parse_caller(c) for c in callers] if callers else list(DEFAULT_CALLERS)
        pki = make_dev_pki(out, wanted, hosts or DEFAULT_HOSTS, days)
        lines = [
            f"{'made' if pki.new_ca else 'reused'} CA {pki.ca_cert}",
            f"server certificate {pki.server_cert} (key {pki.server_key})",
            *(
                f"caller {name} ({','.join(dict(wanted)[name])}): {cert} (key {key})"
                for name, (cert, key) in pki.clients.items()
            ),
        ]
        for line in lines:
            console.print(line, markup=False, highlight=False)

    run(body)


def main() -> None:
    app()
