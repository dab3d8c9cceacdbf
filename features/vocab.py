"""Fixed vocabularies that turn categories into stable integer codes.

A code must mean the same thing in every model bundle trained by this version of the code and in
every live request, so vocabularies are frozen tuples here, never learned from data. Unknown
values get a null code, which LightGBM treats as missing.
"""

from __future__ import annotations

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

_PORT_CODES = {port: i for i, port in enumerate(PORTS)}


def port_label(port: str) -> str:
    """A metrics-safe label: known ports by code, everything else as 'other'."""
    return port if port in _PORT_CODES else "other"
