"""Model cards: one Markdown page per bundle saying what the model is, how it was made and
measured, what it cannot see, whether the gate passed it, and who promoted it and why.

:func:`render_card` builds the card from what the registry holds now: the bundle's metadata
(``bundle.json``), the per-port figures ``train`` measured on its test window (``card.json``,
:mod:`training.card_figures`), the gate's verdict (``gate.json``) and the promotion log. A
bundle written before cards existed has no ``card.json``; its card says so instead of leaving
the section out. ``train`` writes ``card.md`` into each bundle, and a registry made by
:func:`carded_registry` writes it again whenever a verdict is saved or a promotion or rollback
concerns the bundle; ``centinela models card`` renders it fresh.
"""

from __future__ import annotations

import json
import logging
import math
from pathlib import Path
from typing import Any, Final

from features.errors import CentinelaError
from features.history import (
    NETWORK_KEYS,
    OUTCOME_KEYS,
    VOLUME_KEYS,
    network_names,
    outcome_names,
    volume_names,
)
from features.schema import SPECS_BY_NAME
from features.stage_one import EVIDENCE_COLUMNS
from scoring.bundle import BundleMeta
from scoring.registry import GATE_FILE, PromotionEntry, Registry
from scoring.verdict import GateVerdict
from training.card_figures import CARD_DATA_FILE, CARD_DATA_FORMAT
from training.evaluation_format import percent, row, with_interval

PROVENANCE_FILE: Final[str] = "provenance.json"
"""What a retrained bundle was trained on (written by :mod:`training.retrain`)."""
CARD_FILE: Final[str] = "card.md"

log = logging.getLogger("centinela.model_card")

FEATURE_GROUPS: Final[tuple[tuple[str, frozenset[str]], ...]] = (
    ("Watchlist evidence", frozenset(EVIDENCE_COLUMNS)),
    ("Entity volume history", frozenset(n for e in VOLUME_KEYS for n in volume_names(e))),
    ("Outcome history", frozenset(n for e in OUTCOME_KEYS for n in outcome_names(e))),
    ("Network history", frozenset(n for e in NETWORK_KEYS for n in network_names(e))),
)
"""Groups of the card's feature list; every other feature is a declaration feature."""

BLIND_SPOTS_SOURCE: Final[str] = (
    "docs/simulated-world.md, sections 'What each pattern leaves in the declarations' and "
    "'Northbound concealment, in detail'"
)
SIMULATED_BLIND_SPOTS: Final[tuple[tuple[str, str], ...]] = (
    (
        "northbound_concealment",
        "nothing in the goods; only partly detectable, through entity history: a load whose "
        "parties are established and clean is undetectable from declarations",
    ),
    (
        "misdeclared_precursor",
        "only partly detectable: the cover's own trade is licit and large",
    ),
    (
        "designer_precursor",
        "only partly detectable: unscheduled analogues under broad 'other' HS lines",
    ),
    (
        "tablet_press",
        "only partly detectable: only weight, origin and parties separate it from real machinery",
    ),
)
"""Illicit patterns of the simulated world that its declarations cannot (fully) reveal, as the
source (:data:`BLIND_SPOTS_SOURCE`) states them; true of any model trained on that world."""
UNREAD_SIGNALS: Final[str] = (
    "the truck carrier and the plate (`carrier`, `conveyance_id`): concealment favours the less "
    "popular trucking companies, but no feature reads them"
)
"""What the simulated world's declarations hold of a pattern and no feature reads (same source)."""


def carded_registry(root: Path) -> Registry:
    """The registry at ``root``, rewriting a bundle's ``card.md`` whenever its verdict is saved
    or a promotion or rollback concerns it."""
    return Registry(root, on_change=refresh_card)


def refresh_card(registry: Registry, version: str) -> None:
    """Write ``version``'s card again. A card that cannot be written is a warning, never a
    failure of the promotion or verdict that changed it."""
    try:
        write_card(registry, version)
    except (CentinelaError, OSError) as error:
        log.warning("card.md of %s not rewritten: %s", version, error)


def write_card(registry: Registry, version: str) -> Path:
    """Render ``version``'s card into its bundle as ``card.md``."""
    return registry.write_file(version, CARD_FILE, render_card(registry, version))


def render_card(registry: Registry, version: str) -> str:
    """``version``'s model card as Markdown, from what the registry holds now."""
    path = registry.path_for(version)
    try:
        meta: BundleMeta | None = registry.meta(version)
        unreadable = ""
    except CentinelaError as error:
        meta, unreadable = None, error.message
    figures, figures_problem = _card_data(path / CARD_DATA_FILE)
    verdict, verdict_problem = _verdict(registry, version)
    sections = [
        f"# Model card: {version}",
        _summary(registry, version, meta, unreadable),
        *(
            []
            if meta is None
            else [
                _windows(meta, _provenance(path / PROVENANCE_FILE)),
                _features(meta),
                _settings(meta),
                _metrics(meta, figures, figures_problem),
                _calibration(meta),
            ]
        ),
        _gate(verdict, verdict_problem, path / GATE_FILE),
        _blind_spots(figures, figures_problem),
        _promotions(registry.promotion_log(version), version),
    ]
    return "\n\n".join(sections) + "\n"


# --------------------------------------------------------------------------- reading


def _card_data(path: Path) -> tuple[dict[str, Any] | None, str]:
    """``card.json``'s figures, or None and why there are none."""
    try:
        doc = json.loads(path.read_bytes().decode("utf-8"))
    except FileNotFoundError:
        return None, (
            f"no {CARD_DATA_FILE} in the bundle: it was trained before model cards measured "
            "per-port figures; `centinela evaluate --model VERSION` measures them"
        )
    except (OSError, ValueError) as error:
        return None, f"{path}: unreadable ({error})"
    if (
        not isinstance(doc, dict)
        or doc.get("format") != CARD_DATA_FORMAT
        or not isinstance(doc.get("ports"), dict)
    ):
        return None, f"{path}: not a card.json of format {CARD_DATA_FORMAT}"
    return doc, ""


def _verdict(registry: Registry, version: str) -> tuple[GateVerdict | None, str]:
    """The bundle's verdict, or None and why it cannot be read ("" when never judged)."""
    try:
        return registry.verdict(version), ""
    except CentinelaError as error:
        return None, error.message


# --------------------------------------------------------------------------- sections


def _summary(registry: Registry, version: str, meta: BundleMeta | None, unreadable: str) -> str:
    promoted = registry.promoted() == version
    lines = ["| | |", "|---|---|"]
    lines.append(row(["promoted now", "yes" if promoted else "no"]))
    if meta is None:
        lines.append(row(["bundle metadata", f"unreadable: {unreadable}"]))
        return "\n".join(lines)
    lines += [
        row(["trained at", meta.trained_at.isoformat(timespec="seconds")]),
        row(["code version", meta.code_version]),
        row(["watchlist version", meta.watchlist_version]),
        row(["data fingerprint", f"`{meta.data_fingerprint or 'not recorded'}`"]),
    ]
    return "\n".join(lines)


def _provenance(path: Path) -> str:
    """Where a retrained bundle's tables came from (``retrain``'s provenance), or ""."""
    try:
        doc = json.loads(path.read_bytes().decode("utf-8"))
        history, ledger = doc["history"], doc["ledger"]
        return (
            f"Trained by `{doc['source']}` on the historical tables of `{doc['data']}` "
            f"({history['shipments']:,} shipments, {history['inspections']:,} inspections) "
            f"plus the ledger `{doc['ledger_location']}` ({ledger['shipments']:,} shipments "
            f"decided, {ledger['inspections']:,} outcomes reported)."
        )
    except FileNotFoundError:
        return ""
    except (OSError, ValueError, KeyError, TypeError) as error:
        return f"{path}: unreadable ({error!r})."


def _windows(meta: BundleMeta, provenance: str = "") -> str:
    source = [provenance, ""] if provenance else []
    if not meta.windows:
        return "\n".join(["## Data windows", "", *source, "Not recorded in the bundle."])
    lines = [
        "## Data windows",
        "",
        *source,
        "Shipments by declared time: the model was fitted on `train`, stopped early and "
        "calibrated on `valid`, and measured on `test`.",
        "",
        row(["window", "first declared", "last declared"]),
        row(["---"] * 3),
    ]
    lines += [row([name, first, last]) for name, (first, last) in meta.windows.items()]
    if "test" not in meta.windows:
        lines += ["", "No test window: every shipment was fitted on."]
    return "\n".join(lines)


def _features(meta: BundleMeta) -> str:
    names = [str(f.get("name")) for f in meta.schema]
    stored = {str(f.get("name")): str(f.get("meaning", "")) for f in meta.schema}
    lines = [f"## Features ({len(names)})"]
    groups = [*FEATURE_GROUPS, ("Declaration", frozenset())]
    grouped = {title: [n for n in names if _group(n) == title] for title, _ in groups}
    for title, members in grouped.items():
        if not members:
            continue
        lines += ["", f"### {title} ({len(members)})", ""]
        lines += [f"- `{name}`: {_feature_text(name, stored[name])}" for name in members]
    return "\n".join(lines)


def _group(name: str) -> str:
    return next((title for title, members in FEATURE_GROUPS if name in members), "Declaration")


def _feature_text(name: str, meaning: str) -> str:
    """The feature's meaning as the bundle stores it, and what a null says where it says
    something (from the code's :class:`~features.schema.FeatureSpec`)."""
    spec = SPECS_BY_NAME.get(name)
    text = meaning or (spec.meaning if spec else "")
    if spec is None:
        return f"{text} (not a feature of this code's schema)"
    if spec.null_reason is not None:
        text += f"; when null: {spec.null_reason[1]}"
    return text


def _settings(meta: BundleMeta) -> str:
    lines = ["## Training settings", "", row(["setting", "value"]), row(["---"] * 2)]
    lines += [row([key, _value(value)]) for key, value in sorted(meta.params.items())]
    return "\n".join(lines)


def _value(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.6g}"
    if isinstance(value, dict | list):
        return f"`{json.dumps(value, sort_keys=True)}`"
    return str(value)


def _metrics(meta: BundleMeta, figures: dict[str, Any] | None, problem: str) -> str:
    shown = {k: v for k, v in meta.metrics.items() if not k.startswith("calibration_")}
    lines = ["## Metrics", "", row(["metric", "value"]), row(["---"] * 2)]
    lines += [row([key, "—" if math.isnan(v) else f"{v:.6g}"]) for key, v in shown.items()]
    lines += ["", "### Per port, test window", ""]
    if figures is None:
        return "\n".join([*lines, f"Not available: {problem}."])
    budget = percent(float(figures.get("budget", 0.0))).replace(".0%", "%")
    lines += [
        f"At an inspection budget of {budget} of each port's shipments, against observed "
        "outcomes (a shipment never inspected counts as negative); 95% bootstrap intervals in "
        "brackets.",
        "",
        row(
            [
                "port",
                "shipments",
                "inspected",
                "positives",
                "precision",
                "precision among inspected",
                "recall",
                "PR-AUC",
            ]
        ),
        row(["---"] * 8),
    ]
    ports = dict(figures["ports"])
    if figures.get("overall"):
        ports["**all ports**"] = figures["overall"]
    lines += [_port_row(port, m) for port, m in ports.items()]
    if not figures["ports"]:
        lines.append("\nThe test window was empty.")
    return "\n".join(lines)


def _port_row(port: str, m: dict[str, Any]) -> str:
    def share(key: str) -> str:
        interval = m.get(f"{key}Interval")
        return with_interval(m.get(key), tuple(interval) if interval else None)  # type: ignore[arg-type]

    counts = [f"{m.get(key, 0):,}" for key in ("shipments", "inspected", "positives")]
    if not m.get("positives"):
        return row([port, *counts, "no positives", "—", "—", "—"])
    shares = [share(key) for key in ("precision", "precisionInspected", "recall", "prAuc")]
    return row([port, *counts, *shares])


def _calibration(meta: BundleMeta) -> str:
    lines = ["## Calibration", "", f"{meta.calibration.describe()}, fitted on the `valid` window."]
    figures = {k: v for k, v in meta.metrics.items() if k.startswith("calibration_")}
    if figures:
        lines += ["", row(["figure", "value"]), row(["---"] * 2)]
        lines += [row([k, f"{v:.6g}"]) for k, v in figures.items()]
    return "\n".join(lines)


def _gate(verdict: GateVerdict | None, problem: str, path: Path) -> str:
    if verdict is None:
        text = f"Unreadable: {problem}" if problem else "Not judged."
        return f"## Gate verdict\n\n{text}"
    lines = [
        "## Gate verdict",
        "",
        f"**{'Passed' if verdict.passed else 'Failed'}** against "
        f"{verdict.champion or 'no champion (empty registry)'}, decided "
        f"{verdict.decided_at.isoformat(timespec='seconds')} on {verdict.evidence}.",
        "",
        row(["check", "passed", "detail"]),
        row(["---"] * 3),
    ]
    lines += [
        row([cell(c.name), "yes" if c.passed else "**no**", cell(c.detail)]) for c in verdict.checks
    ]
    if verdict.figures:
        lines += ["", f"The figures behind the checks are in the bundle's `{path.name}`."]
    return "\n".join(lines)


def _blind_spots(figures: dict[str, Any] | None, problem: str) -> str:
    lines = ["## Known blind spots", ""]
    if figures is None:
        lines.append(f"- Ports with no positives in the test window: unknown ({problem}).")
    else:
        empty = [p for p, m in figures["ports"].items() if not m.get("positives")]
        lines.append(
            "- Ports with no positives in the test window (nothing there says how the model "
            f"does): {', '.join(f'`{p}`' for p in empty) if empty else 'none'}."
        )
    lines += [
        "- What the simulated world's declarations cannot reveal, so no model trained on it "
        f"finds it reliably (source: {BLIND_SPOTS_SOURCE}):",
        *(f"  - `{name}`: {text}." for name, text in SIMULATED_BLIND_SPOTS),
        f"- A signal the simulated world's declarations hold but the model does not read: "
        f"{UNREAD_SIGNALS} (same source).",
    ]
    return "\n".join(lines)


def cell(text: str) -> str:
    """Free text (a reason, a check's detail) as one Markdown table cell."""
    return " ".join(text.split()).replace("|", "\\|")


def _promotions(entries: list[PromotionEntry], version: str) -> str:
    if not entries:
        return "## Promotions\n\nNever promoted."
    lines = [
        "## Promotions",
        "",
        row(["at", "what", "by", "reason", "forced", "gate"]),
        row(["---"] * 6),
    ]
    for e in entries:
        lines.append(
            row(
                [
                    e.at.isoformat(timespec="seconds"),
                    describe_entry(e, version),
                    cell(e.by),
                    cell(e.reason),
                    "yes" if e.forced else "no",
                    gate_stamp(e),
                ]
            )
        )
    return "\n".join(lines)


def describe_entry(entry: PromotionEntry, version: str | None = None) -> str:
    """What a log entry did, from ``version``'s point of view when given."""
    if entry.action == "rollback":
        if version == entry.replaced:
            return f"rolled back (to {entry.version})"
        return f"rollback to {entry.version} (from {entry.replaced})"
    if version is not None and version == entry.replaced:
        return f"replaced by {entry.version}"
    return f"promoted {entry.version}" + (
        f" (replacing {entry.replaced})" if entry.replaced else ""
    )


def gate_stamp(entry: PromotionEntry) -> str:
    """The verdict a log entry was made on, in a few words."""
    if entry.action == "rollback":
        return "—"
    if entry.gate is None:
        return "no verdict"
    against = entry.gate.champion or "empty registry"
    return f"{'passed' if entry.gate.passed else 'failed'} vs {against}"
