"""Index pools shared by the licit generator and the illicit planner (countries, routes)."""

from __future__ import annotations

from training.simulate.catalogue import (
    AIR_VIA,
    ORIGINS,
    REEXPORT_HUBS,
    SEA_ROUTES,
    TRANSIT_DESTINATIONS,
)

LAND_SOUTH_ROUTES: dict[str, tuple[tuple[tuple[str, ...], float], ...]] = {
    "CN": ((("CNSHA", "USLGB"), 1.0),),
    "DE": ((("DEHAM", "USHOU"), 1.0),),
}
"""assumption: overseas goods reaching Mexico by truck came through a US port first."""

COUNTRIES: list[str] = sorted(
    {c for mix in ORIGINS.values() for c in mix}
    | set(REEXPORT_HUBS)
    | set(TRANSIT_DESTINATIONS)
    | {"MX", "ES", "CN", "IN", "HK"}
)
COUNTRY_INDEX: dict[str, int] = {c: i for i, c in enumerate(COUNTRIES)}


def _routes() -> list[tuple[str, ...]]:
    seen: dict[tuple[str, ...], None] = {(): None}
    for table in (SEA_ROUTES, AIR_VIA, LAND_SOUTH_ROUTES):
        for country in sorted(table):
            for route, _ in table[country]:
                seen.setdefault(route, None)
    return list(seen)


ROUTES: list[tuple[str, ...]] = _routes()
ROUTE_INDEX: dict[tuple[str, ...], int] = {r: i for i, r in enumerate(ROUTES)}
