"""Names and founding dates of the simulated companies.

Mexican importers get Spanish trade names (``Comercializadora … S.A. de C.V.``), foreign
companies a pseudo-word in their country's style plus its legal suffix. Every name is drawn from
the generator it is given, so the same seed names the same parties.
"""

from __future__ import annotations

import numpy as np

SYLLABLES: tuple[str, ...] = (
    "ta",
    "ro",
    "mex",
    "zan",
    "li",
    "qui",
    "vo",
    "tel",
    "ar",
    "co",
    "nu",
    "bal",
    "dor",
    "sa",
    "ven",
    "tla",
    "xo",
    "mi",
    "ra",
    "pel",
    "cu",
    "an",
    "ti",
    "lo",
    "ber",
    "gal",
    "ri",
    "zu",
)
CN_SYLLABLES: tuple[str, ...] = (
    "hua",
    "xin",
    "long",
    "tai",
    "feng",
    "jia",
    "rui",
    "sheng",
    "hong",
    "yuan",
    "kang",
    "da",
    "mei",
    "tong",
    "xiang",
    "bao",
    "heng",
    "jin",
    "lian",
    "shun",
)
IN_SYLLABLES: tuple[str, ...] = (
    "shri",
    "ava",
    "niv",
    "aro",
    "dhan",
    "vik",
    "ram",
    "sun",
    "kri",
    "pra",
    "dev",
    "lak",
    "mit",
    "aan",
    "jay",
    "sar",
)
MX_PREFIXES: tuple[str, ...] = (
    "Comercializadora",
    "Distribuidora",
    "Importadora",
    "Grupo",
    "Industrias",
    "Corporativo",
    "Servicios",
    "Manufacturas",
    "Proveedora",
    "Suministros",
)
MX_REGIONS: tuple[str, ...] = (
    "del Pacífico",
    "del Norte",
    "de Occidente",
    "del Bajío",
    "del Golfo",
    "de México",
    "Internacional",
    "Global",
    "",
)
SECTOR_WORDS: dict[str, str] = {
    "consumer": "Comercial",
    "electronics": "Electrónica",
    "auto": "Autopartes",
    "machinery": "Maquinaria",
    "metals": "Aceros",
    "plastics": "Plásticos",
    "chemicals": "Química",
    "pharma": "Farma",
    "food": "Alimentos",
    "watched": "Química Fina",
}
FOREIGN_SUFFIX: dict[str, str] = {
    "CN": "Co., Ltd.",
    "HK": "Trading Ltd.",
    "IN": "Pvt. Ltd.",
    "US": "Inc.",
    "DE": "GmbH",
    "KR": "Co., Ltd.",
    "JP": "K.K.",
    "TW": "Co., Ltd.",
    "VN": "JSC",
    "TH": "Co., Ltd.",
    "MY": "Sdn. Bhd.",
    "ES": "S.L.",
    "NL": "B.V.",
    "FR": "SAS",
    "CA": "Ltd.",
    "CL": "SpA",
    "PE": "S.A.C.",
    "SG": "Pte. Ltd.",
    "GT": "S.A.",
    "SV": "S.A. de C.V.",
    "NI": "S.A.",
    "HN": "S. de R.L.",
    "CR": "S.A.",
    "EC": "S.A.",
    "CO": "S.A.S.",
}
FOREIGN_TRADES: tuple[str, ...] = (
    "Industrial",
    "Trading",
    "Import & Export",
    "Manufacturing",
    "Technology",
    "Chemical",
    "Materials",
    "Supply",
    "Commerce",
)


def pseudo_word(
    rng: np.random.Generator, syllables: tuple[str, ...], lo: int = 2, hi: int = 3
) -> str:
    """A capitalised word of ``lo`` to ``hi`` syllables."""
    k = int(rng.integers(lo, hi + 1))
    return "".join(syllables[int(i)] for i in rng.integers(0, len(syllables), size=k)).capitalize()


def mx_company_name(rng: np.random.Generator, sector: str | None) -> str:
    """A Mexican trade name, naming the sector's trade about half the time."""
    prefix = MX_PREFIXES[int(rng.integers(0, len(MX_PREFIXES)))]
    core = pseudo_word(rng, SYLLABLES)
    word = SECTOR_WORDS.get(sector or "", "")
    region = MX_REGIONS[int(rng.integers(0, len(MX_REGIONS)))]
    legal = "S.A. de C.V." if rng.random() < 0.8 else "S. de R.L. de C.V."
    parts = [prefix, core, word if rng.random() < 0.6 else "", region, legal]
    return " ".join(p for p in parts if p)


def foreign_company_name(rng: np.random.Generator, country: str) -> str:
    """A company name in ``country``'s style, ending in its usual legal form."""
    syllables = (
        CN_SYLLABLES
        if country in {"CN", "HK", "TW"}
        else IN_SYLLABLES
        if country == "IN"
        else SYLLABLES
    )
    core = pseudo_word(rng, syllables)
    if rng.random() < 0.5:
        core = f"{core} {pseudo_word(rng, syllables)}"
    trade = FOREIGN_TRADES[int(rng.integers(0, len(FOREIGN_TRADES)))]
    return f"{core} {trade} {FOREIGN_SUFFIX.get(country, 'Ltd.')}"


def founded_before(
    rng: np.random.Generator, year: int, month: int, max_months: int
) -> tuple[int, int, int]:
    """A founding date (year, month, day) zero to ``max_months`` months before ``year-month``."""
    back = int(rng.integers(0, max_months + 1))
    total = year * 12 + (month - 1) - back
    return total // 12, total % 12 + 1, int(rng.integers(1, 29))
