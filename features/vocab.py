"""Fixed vocabularies that turn categories into stable integer codes, and codes back into words.

A code must mean the same thing in every model bundle trained by this version of the code and in
every live request, so vocabularies are frozen tuples here, never learned from data. Unknown
values get a null code, which LightGBM treats as missing.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from features.records import MODES

# Ports of entry Centinela knows by name (reference §5a). Append only: codes are positions.
PORTS: tuple[str, ...] = (
    "MXZLO",  # Manzanillo, Colima (seaport)
    "MXLZC",  # Lázaro Cárdenas, Michoacán (seaport)
    "MXNLD",  # Nuevo Laredo, Tamaulipas (land)
    "MXTIJ",  # Tijuana, Baja California (land)
    "MXREX",  # Reynosa, Tamaulipas (land)
    "MXCJS",  # Ciudad Juárez, Chihuahua (land)
    "MXMXL",  # Mexicali, Baja California (land)
    "MXNOG",  # Nogales, Sonora (land)
    "MXPIE",  # Piedras Negras, Coahuila (land)
    "MX5CL",  # Colombia, Nuevo León (land)
    "MXMEX",  # Ciudad de México (air)
    "MXGDL",  # Guadalajara (air)
)
PORT_CODES: Mapping[str, int] = {port: i for i, port in enumerate(PORTS)}
_LOCODE = re.compile(r"[A-Z]{2}[A-Z2-9]{3}")


def is_locode(code: str) -> bool:
    """Whether ``code`` has the shape of a UN/LOCODE: a country's two letters and three letters
    or digits 2-9 (MXZLO), the whole string (no trailing newline slips through)."""
    return _LOCODE.fullmatch(code) is not None


# Transport modes, coded by their position in features.records.MODES.
MODE_CODES: Mapping[str, int] = {mode: i for i, mode in enumerate(MODES)}

# Countries by their two letters (ISO 3166-1 alpha-2), AA = 0 to ZZ = 675: every pair of capital
# letters has a code, so a country new to ISO needs no new vocabulary. Decoded by country_letters.
COUNTRY_CODES: Mapping[str, int] = {
    chr(65 + a) + chr(65 + b): a * 26 + b for a in range(26) for b in range(26)
}


def country_letters(code: int) -> str | None:
    """The two letters of a :data:`COUNTRY_CODES` code; None for a negative code (no country)."""
    if code < 0:
        return None
    return chr(65 + code // 26) + chr(65 + code % 26)


def port_label(port: str) -> str:
    """A metrics-safe label: known ports by code, everything else as 'other'."""
    return port if port in PORT_CODES else "other"
