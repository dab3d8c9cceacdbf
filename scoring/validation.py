"""Validation of every field of a shipment, naming each bad field and why.

Validation sees shipments in canonical form (:func:`features.canonical.canonical_shipment`
runs first), so it judges what an identifier *is*, not how it was written: ``２９３３.３７`` is
the valid HS code ``293337``. What is left that can only be an attack is rejected: white space,
control or non-ASCII characters inside an id, a code of the wrong shape. A CAS number whose
check digit fails is *not* rejected: the line is scored and flagged (feature
``invalid_cas_lines``, rule ``declared-cas-invalid``), because a broken identifier on a chemical
line is a signal, not a typo to bounce back to the shipper.

Paths use the contract's field names (``goods[2].hs_code``, ``shipper.id``) so a caller can find
the field in its own request. All violations are collected, not just the first; values are
quoted by a short prefix only (:func:`features.errors.quote`).
"""

from __future__ import annotations

import math
import re
from datetime import UTC, datetime

import pycountry

from features.errors import FieldViolation, InvalidInput, quote
from features.records import MODES, GoodsLine, Party, Shipment
from features.vocab import is_locode

_HS = re.compile(r"^\d{6,10}$")
_ID = re.compile(r"^[\x21-\x7e]{1,128}$")  # printable ASCII, no spaces
_COUNTRIES = frozenset(c.alpha_2 for c in pycountry.countries)
_EARLIEST = datetime(1990, 1, 1, tzinfo=UTC)
_LATEST = datetime(2100, 1, 1, tzinfo=UTC)
MAX_DESCRIPTION = 4_000
MAX_TEXT = 256
MAX_WEIGHT_KG = 1e8  # a whole bulk carrier's cargo
MAX_VALUE_USD = 1e11
MAX_CAS_LENGTH = 32
MAX_CAS_PER_LINE = 50
MAX_TRANSSHIPMENTS = 32

Window = tuple[datetime, datetime]
"""The earliest and latest ``declared_at`` accepted (live scoring's window around now)."""


def _country(value: str, path: str, out: list[FieldViolation], required: bool = True) -> None:
    if not value:
        if required:
            out.append(FieldViolation(path, "required: ISO 3166-1 alpha-2 country code"))
    elif value not in _COUNTRIES:
        out.append(
            FieldViolation(path, f"{quote(value)} is not an ISO 3166-1 alpha-2 country code")
        )


def _text(value: str, path: str, out: list[FieldViolation], limit: int = MAX_TEXT) -> None:
    if len(value) > limit:
        out.append(FieldViolation(path, f"longer than {limit} characters"))


def _party(party: Party | None, path: str, out: list[FieldViolation]) -> None:
    if party is None:
        out.append(FieldViolation(path, "required"))
        return
    if not party.id:
        out.append(FieldViolation(f"{path}.id", "required"))
    elif not _ID.fullmatch(party.id):
        out.append(FieldViolation(f"{path}.id", _ID_RULE))
    _text(party.name, f"{path}.name", out)
    _country(party.country, f"{path}.country", out, required=False)
    _text(party.tax_id, f"{path}.tax_id", out, limit=64)


_ID_RULE = "must be 1-128 printable ASCII characters, no spaces or control characters"


def _amount(
    value: float, path: str, out: list[FieldViolation], *, positive: bool, limit: float
) -> None:
    if not math.isfinite(value):
        out.append(FieldViolation(path, "must be a finite number"))
    elif positive and value <= 0:
        out.append(FieldViolation(path, f"must be greater than 0, got {value:g}"))
    elif value < 0:
        out.append(FieldViolation(path, f"must not be negative, got {value:g}"))
    elif value > limit:
        out.append(FieldViolation(path, f"implausibly large ({value:g} > {limit:g})"))


def _goods_line(line: GoodsLine, path: str, out: list[FieldViolation]) -> None:
    if not line.hs_code:
        out.append(FieldViolation(f"{path}.hs_code", "required: 6 to 10 digits"))
    elif not _HS.fullmatch(line.hs_code):
        out.append(
            FieldViolation(f"{path}.hs_code", f"{quote(line.hs_code)} is not 6 to 10 digits")
        )
    elif not 1 <= int(line.hs_code[:2]) <= 97:
        out.append(FieldViolation(f"{path}.hs_code", f"chapter {line.hs_code[:2]} does not exist"))
    if not line.description.strip():
        out.append(FieldViolation(f"{path}.description", "required"))
    _text(line.description, f"{path}.description", out, limit=MAX_DESCRIPTION)
    if len(line.cas_numbers) > MAX_CAS_PER_LINE:
        out.append(FieldViolation(f"{path}.cas_numbers", f"more than {MAX_CAS_PER_LINE}"))
    for j, cas in enumerate(line.cas_numbers[:MAX_CAS_PER_LINE]):
        # An invalid check digit is scored and flagged, not rejected (module docstring).
        if not cas:
            out.append(FieldViolation(f"{path}.cas_numbers[{j}]", "empty"))
        elif len(cas) > MAX_CAS_LENGTH:
            out.append(
                FieldViolation(
                    f"{path}.cas_numbers[{j}]",
                    f"{quote(cas)} is longer than {MAX_CAS_LENGTH} characters",
                )
            )
    _amount(line.quantity, f"{path}.quantity", out, positive=False, limit=1e12)
    _text(line.unit, f"{path}.unit", out, limit=16)
    _amount(
        line.gross_weight_kg, f"{path}.gross_weight_kg", out, positive=True, limit=MAX_WEIGHT_KG
    )
    _amount(
        line.declared_value_usd,
        f"{path}.declared_value_usd",
        out,
        positive=False,
        limit=MAX_VALUE_USD,
    )


def _declared_at(value: datetime | None, window: Window | None, out: list[FieldViolation]) -> None:
    if value is None:
        out.append(FieldViolation("declared_at", "required: RFC 3339 timestamp"))
    elif not _EARLIEST <= value < _LATEST:
        out.append(FieldViolation("declared_at", f"{value.isoformat()} is out of range"))
    elif window is not None and not window[0] <= value <= window[1]:
        earliest, latest = (w.strftime("%Y-%m-%dT%H:%MZ") for w in window)
        out.append(
            FieldViolation(
                "declared_at",
                f"{value.strftime('%Y-%m-%dT%H:%MZ')} is outside the accepted window "
                f"{earliest}..{latest} (live scoring takes current declarations only)",
            )
        )


def shipment_violations(
    shipment: Shipment, max_goods_lines: int = 1_000, window: Window | None = None
) -> list[FieldViolation]:
    """Every problem with ``shipment``, in field order; empty when it is valid.

    ``window`` bounds ``declared_at`` (live scoring); without it any date from 1990 to 2099
    passes (tables of past shipments).
    """
    out: list[FieldViolation] = []
    s = shipment
    if not s.shipment_id:
        out.append(FieldViolation("shipment_id", "required"))
    elif not _ID.fullmatch(s.shipment_id):
        out.append(FieldViolation("shipment_id", _ID_RULE))
    _declared_at(s.declared_at, window, out)
    if not s.port_of_entry:
        out.append(FieldViolation("port_of_entry", "required: UN/LOCODE such as MXZLO"))
    elif not is_locode(s.port_of_entry):
        out.append(
            FieldViolation(
                "port_of_entry", f"{quote(s.port_of_entry)} is not a UN/LOCODE (e.g. MXZLO)"
            )
        )
    if s.mode not in MODES:
        out.append(FieldViolation("mode", "required: MODE_SEA, MODE_LAND, MODE_AIR or MODE_POSTAL"))
    _country(s.origin_country, "origin_country", out)
    _country(s.export_country, "export_country", out)
    if len(s.transshipment_ports) > MAX_TRANSSHIPMENTS:
        out.append(FieldViolation("transshipment_ports", f"more than {MAX_TRANSSHIPMENTS}"))
    for i, port in enumerate(s.transshipment_ports[:MAX_TRANSSHIPMENTS]):
        if not is_locode(port):
            out.append(
                FieldViolation(f"transshipment_ports[{i}]", f"{quote(port)} is not a UN/LOCODE")
            )
    _text(s.carrier, "carrier", out)
    _text(s.conveyance_id, "conveyance_id", out)
    _text(s.container_id, "container_id", out)
    _party(s.shipper, "shipper", out)
    _party(s.consignee, "consignee", out)
    _text(s.broker_id, "broker_id", out)
    if not s.goods:
        out.append(FieldViolation("goods", "at least one goods line is required"))
    elif len(s.goods) > max_goods_lines:
        out.append(FieldViolation("goods", f"more than {max_goods_lines} goods lines"))
    else:
        for i, line in enumerate(s.goods):
            _goods_line(line, f"goods[{i}]", out)
    return out


def validate_shipment(
    shipment: Shipment, max_goods_lines: int = 1_000, window: Window | None = None
) -> Shipment:
    """Return ``shipment`` unchanged if valid; otherwise raise :class:`InvalidInput`."""
    violations = shipment_violations(shipment, max_goods_lines, window)
    if violations:
        name = quote(shipment.shipment_id) if shipment.shipment_id else "(no id)"
        raise InvalidInput(f"shipment {name} is invalid", violations)
    return shipment
