"""Sourced facts the simulated world is built on, in one place.

Every constant cites the section and row of the precursor and port reference notes it comes
from (``ref §5b Laredo``) or says ``assumption``. Those notes compile public sources (INCB and
CND scheduling decisions, EU regulations, DEA lists, UN/LOCODE, BTS Border Crossing Entry Data,
ASIPONA container figures), each row naming its own; a substance's is in its ``source`` field.
``docs/simulated-world.md`` lists them all with the reasoning; change a figure here and there
together.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

SCHEDULING_4_PIPERIDONE = date(2024, 12, 3)
"""4-piperidone and 1-boc-4-piperidone enter Table I (ref §1a, CND 67/6 and 67/7; INCB,
incb.org/incb/en/news/news_2024/scheduling-2024-precursors.html)."""


@dataclass(frozen=True, slots=True)
class Substance:
    """One watchlist entry as the simulator uses it.

    ``entry_id`` is the colleague's watchlist id; ``hs`` is the 6-digit code the goods line
    declares when the substance is declared openly (``national`` adds the 8/10-digit form seen in
    tariffs, ref §8 "China uses 2933399073").
    """

    entry_id: str
    name_en: str
    name_es: str
    synonyms: tuple[str, ...]
    cas: tuple[str, ...]
    hs: str
    national: str
    source: str


SUBSTANCES: tuple[Substance, ...] = (
    Substance(
        "npp",
        "N-phenethyl-4-piperidone",
        "N-fenetil-4-piperidona",
        ("NPP", "1-phenethyl-4-piperidone", "1-(2-phenylethyl)-4-piperidinone"),
        ("39742-60-4",),
        "293337",
        "29333701",
        "ref §1b NPP",
    ),
    Substance(
        "anpp",
        "4-anilino-N-phenethylpiperidine",
        "4-anilino-N-fenetilpiperidina",
        ("ANPP", "4-ANPP", "despropionyl fentanyl"),
        ("21409-26-7",),
        "293336",
        "29333601",
        "ref §1b ANPP",
    ),
    Substance(
        "4-ap",
        "4-anilinopiperidine",
        "4-anilinopiperidina",
        ("4-AP", "N-phenylpiperidin-4-amine", "piperidimina", "4-AP dihydrochloride"),
        ("23056-29-3", "99918-43-1"),
        "293339",
        "2933399073",
        "ref §1b 4-AP; 'piperidimina' ref §6 lot sizes (Guadalajara)",
    ),
    Substance(
        "boc-4-ap",
        "tert-butyl 4-(phenylamino)piperidine-1-carboxylate",
        "1-boc-4-anilinopiperidina",
        ("1-boc-4-AP", "boc-4-AP", "1-N-Boc-4-(phenylamino)piperidine"),
        ("125541-22-2",),
        "293339",
        "2933399073",
        "ref §1b 1-boc-4-AP",
    ),
    Substance(
        "norfentanyl",
        "norfentanyl",
        "norfentanilo",
        ("N-phenyl-N-(piperidin-4-yl)propanamide",),
        ("1609-66-1",),
        "293339",
        "2933399073",
        "ref §1b norfentanyl",
    ),
    Substance(
        "4-piperidone",
        "4-piperidone",
        "4-piperidona",
        ("piperidin-4-one", "4-piperidinone", "4-piperidone HCl monohydrate"),
        ("41661-47-6",),
        "293339",
        "29333999",
        "ref §1b 4-piperidone",
    ),
    Substance(
        "boc-4-piperidone",
        "1-boc-4-piperidone",
        "1-boc-4-piperidona",
        ("N-Boc-4-piperidone", "tert-butyl 4-oxopiperidine-1-carboxylate", "boc-ppd"),
        ("79099-07-3",),
        "293339",
        "29333999",
        "ref §1b 1-boc-4-piperidone",
    ),
    Substance(
        "propionyl-chloride",
        "propionyl chloride",
        "cloruro de propionilo",
        ("propanoyl chloride",),
        ("79-03-8",),
        "291590",
        "29159099",
        "ref §2b (HS L)",
    ),
    Substance(
        "propionic-anhydride",
        "propionic anhydride",
        "anhídrido propiónico",
        ("propanoic anhydride",),
        ("123-62-6",),
        "291590",
        "29159099",
        "ref §2b (HS L)",
    ),
    Substance(
        "aniline",
        "aniline",
        "anilina",
        ("benzenamine", "aminobenzene"),
        ("62-53-3",),
        "292141",
        "29214101",
        "ref §2b (HS L)",
    ),
    Substance(
        "phenethyl-bromide",
        "(2-bromoethyl)benzene",
        "bromuro de fenetilo",
        ("phenethyl bromide", "2-phenylethyl bromide"),
        ("103-63-9",),
        "290399",
        "29039999",
        "ref §2b (HS L)",
    ),
    Substance(
        "piperidine",
        "piperidine",
        "piperidina",
        ("hexahydropyridine",),
        ("110-89-4",),
        "293332",
        "29333201",
        "ref §2b piperidine",
    ),
    Substance(
        "ephedrine",
        "ephedrine",
        "efedrina",
        ("(-)-ephedrine",),
        ("299-42-3",),
        "293941",
        "29394101",
        "ref §3 ephedrine",
    ),
    Substance(
        "pseudoephedrine",
        "pseudoephedrine",
        "pseudoefedrina",
        ("(+)-pseudoephedrine",),
        ("90-82-4",),
        "293942",
        "29394201",
        "ref §3 pseudoephedrine",
    ),
    Substance(
        "p2p",
        "1-phenyl-2-propanone",
        "fenilacetona",
        ("P-2-P", "phenylacetone", "BMK", "benzyl methyl ketone"),
        ("103-79-7",),
        "291431",
        "29143101",
        "ref §3 P-2-P",
    ),
    Substance(
        "paa",
        "phenylacetic acid",
        "ácido fenilacético",
        ("PAA", "benzeneacetic acid"),
        ("103-82-2",),
        "291634",
        "29163401",
        "ref §3 PAA",
    ),
    Substance(
        "apaan",
        "alpha-phenylacetoacetonitrile",
        "alfa-fenilacetoacetonitrilo",
        ("APAAN", "3-oxo-2-phenylbutanenitrile"),
        ("4468-48-8",),
        "292640",
        "29264001",
        "ref §3 APAAN",
    ),
    Substance(
        "methylamine",
        "methylamine",
        "metilamina",
        ("monomethylamine", "MMA"),
        ("74-89-5",),
        "292111",
        "29211101",
        "ref §3 methylamine",
    ),
    Substance(
        "tablet-press",
        "rotary tablet press",
        "prensa rotativa para tabletas",
        ("pill press", "tableting machine", "punches and dies"),
        (),
        "847989",
        "84798999",
        "ref §4 rotary tablet press",
    ),
    Substance(
        "tablet-tooling",
        "tablet press punches and dies",
        "punzones y matrices para tableteadora",
        ("punches and dies", "tooling for tablet presses"),
        (),
        "820730",
        "82073099",
        "ref §4 punches and dies (HS L)",
    ),
    Substance(
        "fentanyl",
        "fentanyl",
        "fentanilo",
        ("fentanyl citrate", "M30 tablets"),
        ("437-38-7",),
        "293333",
        "29333399",
        "ref §1b (HS 2933.33); CAS 437-38-7 not in the reference (assumption, check digit OK)",
    ),
    Substance(
        "1-benzyl-4-piperidone",
        "1-benzyl-4-piperidone",
        "1-bencil-4-piperidona",
        ("N-benzyl-4-piperidone",),
        ("3612-20-2",),
        "293339",
        "29333999",
        "ref §2b 1-benzyl-4-piperidone (HS L)",
    ),
    Substance(
        "benzylfentanyl",
        "benzylfentanyl",
        "bencilfentanilo",
        ("N-(1-benzylpiperidin-4-yl)-N-phenylpropionamide",),
        ("1474-02-8",),
        "293339",
        "29333999",
        "ref §2b benzylfentanyl (HS unsourced)",
    ),
    Substance(
        "depapd",
        "diethyl (phenylacetyl)propanedioate",
        "(fenilacetil)malonato de dietilo",
        ("DEPAPD",),
        ("20320-59-6",),
        "291830",
        "29183099",
        "ref §3 DEPAPD (HS unsourced, assumption 2918.30)",
    ),
    Substance(
        "bmk-glycidic-acid",
        "BMK methyl glycidate",
        "glicidato de metilo BMK",
        ("P-2-P methyl glycidic acid methyl ester", "BMK glycidic acid"),
        ("80532-66-7", "25547-51-7"),
        "291899",
        "29189999",
        "ref §3 P-2-P methyl glycidic acid (Table I 2024)",
    ),
    Substance(
        "acetic-acid",
        "glacial acetic acid",
        "ácido acético glacial",
        ("acetic acid", "ethanoic acid"),
        ("64-19-7",),
        "291521",
        "29152101",
        "ref §3 glacial acetic acid (HS L)",
    ),
)
"""Entry ids as in ``features/watchlist/watchlist.yaml`` (checked when this was written)."""

SUBSTANCE_BY_ID: dict[str, Substance] = {s.entry_id: s for s in SUBSTANCES}
WATCHLIST_IDS: tuple[str, ...] = tuple(s.entry_id for s in SUBSTANCES)

# --- ports -----------------------------------------------------------------------------------

LAREDO_TRUCKS_2024 = 3_026_632
"""ref §5b Laredo 2304 (World Trade Bridge + Colombia-Solidarity)."""
COLOMBIA_SHARE_OF_LAREDO = 0.12
"""assumption: the Colombia-Solidarity bridge's share of Laredo trucks (not in the reference)."""

LAND_TRUCKS_2024: dict[str, float] = {
    "MXNLD": LAREDO_TRUCKS_2024 * (1 - COLOMBIA_SHARE_OF_LAREDO),  # ref §5b Laredo 2304
    "MX5CL": LAREDO_TRUCKS_2024 * COLOMBIA_SHARE_OF_LAREDO,  # ref §5b Laredo 2304
    "MXTIJ": 1_059_759,  # ref §5b Otay Mesa 2506
    "MXREX": 721_489,  # ref §5b Hidalgo 2305 (Pharr)
    "MXCJS": 670_627 + 133_841,  # ref §5b Ysleta 2401 + El Paso BOTA 2402
    "MXMXL": 462_526,  # ref §5b Calexico East 2507
    "MXNOG": 404_588,  # ref §5b Nogales 2604
    "MXPIE": 256_225,  # ref §5b Eagle Pass 2303
}

ZLO_TEU_IMPEX_2024 = 3.326e6
"""ref §5c Manzanillo: 2024 imports + exports, excluding transshipment (~15% of the total)."""
ZLO_TRANSSHIP_SHARE = 0.15
"""ref §5c Manzanillo: transshipment is about 15% of the total."""
LZC_TEU_2024 = 2.36e6
"""ref §5c Lázaro Cárdenas: 2025 projection 2.6 M at +10% puts 2024 at about 2.36 M (derived)."""
LZC_IMPORT_SHARE = 0.31
LZC_TRANSSHIP_SHARE = 0.37
"""ref §5c Lázaro Cárdenas Jan–May 2024 split: 31% import, 32% export, 37% transshipment."""
ZLO_IMPORT_SHARE_OF_IMPEX = 0.5
"""assumption: Manzanillo's import+export TEU split evenly (no split in the reference)."""
TRANSSHIP_INBOUND_FRACTION = 0.5
"""assumption: a transshipped box is counted twice in port TEU (discharge and load)."""
TEU_PER_CONTAINER = 1.7
"""assumption: the usual 20'/40' mix; converts TEU to containers (one container = one shipment)."""


def _sea_inbound_teu() -> dict[str, tuple[float, float]]:
    """Inbound TEU per seaport as (imports, transshipment discharged)."""
    zlo_total = ZLO_TEU_IMPEX_2024 / (1 - ZLO_TRANSSHIP_SHARE)
    zlo = (
        ZLO_TEU_IMPEX_2024 * ZLO_IMPORT_SHARE_OF_IMPEX,
        zlo_total * ZLO_TRANSSHIP_SHARE * TRANSSHIP_INBOUND_FRACTION,
    )
    lzc = (
        LZC_TEU_2024 * LZC_IMPORT_SHARE,
        LZC_TEU_2024 * LZC_TRANSSHIP_SHARE * TRANSSHIP_INBOUND_FRACTION,
    )
    return {"MXZLO": zlo, "MXLZC": lzc}


SEA_INBOUND_TEU = _sea_inbound_teu()
SEA_CONTAINERS: dict[str, float] = {
    port: (imp + tr) / TEU_PER_CONTAINER for port, (imp, tr) in SEA_INBOUND_TEU.items()
}
SEA_TRANSIT_SHARE: dict[str, float] = {
    port: tr / (imp + tr) for port, (imp, tr) in SEA_INBOUND_TEU.items()
}
"""Share of a seaport's inbound shipments that are transit consignments for third countries."""

AIR_PORT_WEIGHTS: dict[str, float] = {"MXMEX": 0.62, "MXGDL": 0.2, "MXMTY": 0.12, "MXTIJ": 0.06}
"""assumption: no air cargo figures in the reference; Mexico City dominates."""
POSTAL_PORT_WEIGHTS: dict[str, float] = {"MXMEX": 0.85, "MXGDL": 0.15}
"""assumption: international mail is exchanged mainly in Mexico City."""
AIR_SHARE = 0.07
POSTAL_SHARE = 0.04
"""assumption: air waybills and postal items as shares of all shipment records."""
LAND_NORTHBOUND_SHARE = 0.55
"""assumption: share of land records that are northbound freight declared at the crossing."""


def mode_shares() -> dict[str, float]:
    """Shares of all shipments by mode: sea vs land from ref §5b/§5c, air and postal assumed."""
    sea = sum(SEA_CONTAINERS.values())
    land = sum(LAND_TRUCKS_2024.values())
    rest = 1.0 - AIR_SHARE - POSTAL_SHARE
    return {
        "sea": rest * sea / (sea + land),
        "land": rest * land / (sea + land),
        "air": AIR_SHARE,
        "postal": POSTAL_SHARE,
    }


def port_shares_within_mode() -> dict[str, dict[str, float]]:
    """Each port's share of its mode's shipments, from the reference volumes or assumptions."""

    def norm(weights: dict[str, float]) -> dict[str, float]:
        total = sum(weights.values())
        return {k: v / total for k, v in weights.items()}

    return {
        "sea": norm(SEA_CONTAINERS),
        "land": norm(LAND_TRUCKS_2024),
        "air": norm(AIR_PORT_WEIGHTS),
        "postal": norm(POSTAL_PORT_WEIGHTS),
    }


SOURCED_MODES: tuple[str, ...] = ("sea", "land")
"""Modes whose port shares come from the reference (the others are assumptions)."""
