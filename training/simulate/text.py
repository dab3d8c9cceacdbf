"""Free-text noise for goods descriptions: language, casing, accents, abbreviations, typos.

Real declarations are typed by brokers in a hurry: ``ACIDO CITRICO``, ``anilina 99.5% min``,
``calcium chlorid 25kg bags``. Each product gets a small pool of noisy variants up front, so the
bulk generator only gathers from the pool.
"""

from __future__ import annotations

import unicodedata

import numpy as np

ABBREVIATIONS: dict[str, str] = {
    "hydrochloride": "HCl",
    "clorhidrato": "clorh.",
    "solution": "soln",
    "solución": "sol.",
    "industrial": "ind.",
    "machines": "mach.",
    "machinery": "mach.",
    "máquinas": "maq.",
    "parts": "pts",
    "partes": "ptes",
    "para": "p/",
    "vehicles": "veh.",
    "vehículos": "veh.",
    "pharmaceutical": "pharm.",
    "farmacéutica": "farm.",
    "chemical": "chem.",
    "químicas": "quim.",
}

PACKAGING_ES: tuple[str, ...] = (
    "en tambores de 25 kg",
    "en tambores de 200 kg",
    "en sacos de 25 kg",
    "en cajas",
    "a granel",
    "en tarimas",
)
PACKAGING_EN: tuple[str, ...] = (
    "in 25 kg drums",
    "in 200 kg drums",
    "in 25kg bags",
    "in cartons",
    "bulk",
    "on pallets",
)


def strip_accents(text: str) -> str:
    return "".join(
        ch for ch in unicodedata.normalize("NFD", text) if unicodedata.category(ch) != "Mn"
    )


def typo(rng: np.random.Generator, text: str) -> str:
    """One keyboard slip: a dropped, doubled or swapped letter."""
    positions = [i for i, ch in enumerate(text) if ch.isalpha()]
    if len(positions) < 4:
        return text
    i = positions[int(rng.integers(1, len(positions) - 1))]
    kind = int(rng.integers(0, 3))
    if kind == 0:
        return text[:i] + text[i + 1 :]
    if kind == 1:
        return text[:i] + text[i] + text[i:]
    return text[: i - 1] + text[i] + text[i - 1] + text[i + 1 :]


def noisy(
    rng: np.random.Generator,
    en: str,
    es: str,
    synonyms: tuple[str, ...] = (),
    packaged: bool = True,
) -> str:
    """One plausible declaration of a goods line described as ``en`` / ``es``."""
    roll = rng.random()
    if synonyms and rng.random() < 0.3:
        text = synonyms[int(rng.integers(0, len(synonyms)))]
    elif roll < 0.55:
        text = es
    elif roll < 0.9:
        text = en
    else:
        text = f"{es} / {en}"
    if rng.random() < 0.25:
        words = text.split(" ")
        text = " ".join(ABBREVIATIONS.get(w.lower(), w) for w in words)
    if packaged and rng.random() < 0.2:
        spanish = rng.random() < 0.6
        pack = PACKAGING_ES if spanish else PACKAGING_EN
        text = f"{text} {pack[int(rng.integers(0, len(pack)))]}"
    if rng.random() < 0.15:
        text = typo(rng, text)
    casing = rng.random()
    if casing < 0.45:
        text = strip_accents(text).upper() if rng.random() < 0.7 else text.upper()
    elif casing < 0.6:
        text = text.lower()
    elif casing < 0.7:
        text = text.title()
    if rng.random() < 0.05:
        text = "  " + text + " "
    return text


def variants(rng: np.random.Generator, en: str, es: str, k: int, packaged: bool) -> list[str]:
    return [noisy(rng, en, es, packaged=packaged) for _ in range(k)]
