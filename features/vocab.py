"""Fixed vocabularies that turn categories into stable integer codes.

A code must mean the same thing in every model bundle trained by this version of the code and in
every live request, so vocabularies are frozen tuples here, never learned from data. Unknown
values get code -1, which LightGBM treats as missing.
"""

from __future__ import annotations

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

PORT_NAMES: dict[str, str] = {
    "MXZLO": "Manzanillo",
    "MXLZC": "Lázaro Cárdenas",
    "MXNLD": "Nuevo Laredo",
    "MXTIJ": "Tijuana",
    "MXREX": "Reynosa",
    "MXCJS": "Ciudad Juárez",
    "MXMXL": "Mexicali",
    "MXNOG": "Nogales",
    "MXPIE": "Piedras Negras",
    "MX5CL": "Colombia",
    "MXMEX": "Ciudad de México",
    "MXGDL": "Guadalajara",
}

_PORT_CODES = {port: i for i, port in enumerate(PORTS)}
_MODE_CODES: dict[str, int] = {mode: i for i, mode in enumerate(MODES)}


def port_code(port: str) -> int:
    return _PORT_CODES.get(port, -1)


def mode_code(mode: str) -> int:
    return _MODE_CODES.get(mode, -1)


def country_code(alpha2: str) -> int:
    """Two letters A-Z as a number 0..675: stable without a list that could be reordered."""
    if len(alpha2) != 2 or not alpha2.isascii() or not alpha2.isupper() or not alpha2.isalpha():
        return -1
    return (ord(alpha2[0]) - 65) * 26 + (ord(alpha2[1]) - 65)


def port_label(port: str) -> str:
    """A metrics-safe label: known ports by code, everything else as 'other'."""
    return port if port in _PORT_CODES else "other"
