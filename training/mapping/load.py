"""Reading and validating a mapping file: YAML, then the schema, then the canonical fields.

:func:`parse_mapping` names every bad key by its path (``columns.hs_cde``, ``label.column``),
including what pydantic cannot know: unknown canonical fields, a missing required column,
defaults that do not convert, scales on non-numeric fields, an unknown time zone.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import polars as pl
import yaml
from pydantic import BaseModel, ValidationError
from pydantic_core import ErrorDetails

from features.errors import ConfigError, FieldViolation, pydantic_violations
from features.yamlfiles import load_strict
from training.mapping.fields import MAPPABLE_FIELDS, NO_DEFAULT, NUMBERS, REQUIRED, TIMES
from training.mapping.schema import LabelSpec, MappingSpec
from training.mapping.values import convert, text_of


def _known_keys(model: type[BaseModel], loc: tuple[int | str, ...]) -> list[str]:
    if len(loc) >= 2 and loc[0] == "label":
        return list(LabelSpec.model_fields)
    return list(model.model_fields)


def _describe(e: ErrorDetails) -> str:
    if e["type"] == "extra_forbidden":
        known = ", ".join(_known_keys(MappingSpec, tuple(e["loc"])))
        return f"unknown key (known keys here: {known})"
    if e["type"] == "missing":
        return "required key is missing"
    return str(e["msg"]).removeprefix("Value error, ")


def parse_mapping(data: object, origin: str = "mapping") -> MappingSpec:
    """Validate parsed YAML; raise :class:`ConfigError` naming every bad key path."""
    if not isinstance(data, dict):
        raise ConfigError(f"{origin}: a mapping file must be a YAML mapping of key: value")
    try:
        spec = MappingSpec.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(
            f"{origin}: invalid mapping", pydantic_violations(exc, _describe)
        ) from None
    problems = _field_problems(spec)
    if problems:
        raise ConfigError(f"{origin}: invalid mapping", problems)
    return spec


def load_mapping(path: Path) -> MappingSpec:
    """Read and validate a mapping file."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"cannot read mapping file {path}: {exc.strerror or exc}") from None
    try:
        data = load_strict(text)
    except yaml.YAMLError as exc:
        raise ConfigError(f"mapping file {path} is not valid YAML: {exc}") from None
    return parse_mapping(data, str(path))


def _unknown_field(key: str, allowed: Iterable[str]) -> str:
    return f"{key!r} is not a canonical field; one of: {', '.join(allowed)}"


def _field_problems(spec: MappingSpec) -> list[FieldViolation]:
    """What pydantic cannot say: canonical field names, required fields, the defaults' types."""
    out: list[FieldViolation] = []
    for key in spec.columns:
        if key not in MAPPABLE_FIELDS:
            out.append(FieldViolation(f"columns.{key}", _unknown_field(key, MAPPABLE_FIELDS)))
    out += [
        FieldViolation(f"columns.{f}", "required: the source column of this field")
        for f in sorted(REQUIRED - set(spec.columns))
    ]
    for key in spec.values:
        if key not in MAPPABLE_FIELDS:
            out.append(FieldViolation(f"values.{key}", _unknown_field(key, MAPPABLE_FIELDS)))
        elif key in TIMES:
            out.append(FieldViolation(f"values.{key}", "value maps do not apply to date/times"))
    for key, value in spec.defaults.items():
        if key not in MAPPABLE_FIELDS:
            out.append(FieldViolation(f"defaults.{key}", _unknown_field(key, MAPPABLE_FIELDS)))
        elif key in NO_DEFAULT:
            out.append(FieldViolation(f"defaults.{key}", "this field cannot have a default"))
        else:
            converted = convert(key, pl.Series([text_of(value)], dtype=pl.String), spec)
            if converted.bad.any():
                out.append(FieldViolation(f"defaults.{key}", f"{value!r}: {converted.reason}"))
    for key in spec.scale:
        if key not in NUMBERS - {"selection_probability"}:
            allowed = sorted(NUMBERS - {"selection_probability"})
            out.append(FieldViolation(f"scale.{key}", f"only numeric fields scale: {allowed}"))
    try:
        ZoneInfo(spec.timezone)
    except (ZoneInfoNotFoundError, ValueError):
        out.append(FieldViolation("timezone", f"{spec.timezone!r} is not an IANA time zone"))
    seen: set[str] = set()
    for i, name in enumerate(spec.extras):
        if name in seen:
            out.append(FieldViolation(f"extras[{i}]", f"{name!r} is listed twice"))
        seen.add(name)
    return out
