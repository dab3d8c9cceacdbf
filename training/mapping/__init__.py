"""Bring your own data: map an analyst's declaration table onto the canonical tables.

A mapping file (YAML, :class:`MappingSpec`) names the analyst's table (CSV or Parquet) and says
which of its columns holds each canonical field. :func:`apply_mapping` reads the table, converts
every mapped column to the canonical type, and writes ``shipments``, ``goods`` and
``inspections`` (:mod:`features.tables`) so ``train`` and ``evaluate`` run on it unchanged.

Rules that decide what the model sees, all documented in ``docs/mapping.md``:

* Several rows with the same shipment id are one declaration: its shipment fields come from its
  first row, each row becomes a goods line in table order, and it counts as inspected (positive)
  when any of its rows is.
* A cell that cannot be converted marks its row invalid, and the whole declaration of an invalid
  row is dropped, so no shipment enters with goods lines or totals missing. Every drop is
  counted and reported with reasons and row numbers (data rows counted from 1, header excluded).
  When more than ``max_invalid_share`` of the rows are invalid nothing is written: a mapping
  that mangles a large part of the data is more likely wrong than the data.
* Labels are observed outcomes only; no ``truth`` table is written.
* ``extras`` columns go to ``extras.parquet`` (``shipment_id``, ``line_no``, then the columns as
  read) for analysts; they are not model features, because the feature schema is frozen.

Where each part lives: :mod:`~training.mapping.schema` (the file's keys),
:mod:`~training.mapping.load` (reading and validating it), :mod:`~training.mapping.fields` (the
canonical fields and their groups), :mod:`~training.mapping.values` (cell values translated to
canonical ones), :mod:`~training.mapping.source` (the analyst's table),
:mod:`~training.mapping.apply` (:func:`apply_mapping`, :func:`map_table`),
:mod:`~training.mapping.result` (:class:`MappedData`) and :mod:`~training.mapping.cache`
(:func:`mapped_data`). Everything public is importable from ``training.mapping``.
"""

from __future__ import annotations

from training.mapping.apply import EXAMPLE_ROWS, EXTRAS_FILE, apply_mapping, map_table
from training.mapping.cache import CACHE_DIR_NAME, MAPPING_FORMAT_VERSION, cache_key, mapped_data
from training.mapping.fields import (
    GOODS_FIELDS,
    INSPECTION_FIELDS,
    MAPPABLE_FIELDS,
    SHIPMENT_FIELDS,
)
from training.mapping.load import load_mapping, parse_mapping
from training.mapping.result import SUMMARY_FILE, DropReason, MappedData
from training.mapping.schema import LabelSpec, MappingSpec, Scalar
from training.mapping.source import read_table, resolve_table

__all__ = [
    "CACHE_DIR_NAME",
    "EXAMPLE_ROWS",
    "EXTRAS_FILE",
    "GOODS_FIELDS",
    "INSPECTION_FIELDS",
    "MAPPABLE_FIELDS",
    "MAPPING_FORMAT_VERSION",
    "SHIPMENT_FIELDS",
    "SUMMARY_FILE",
    "DropReason",
    "LabelSpec",
    "MappedData",
    "MappingSpec",
    "Scalar",
    "apply_mapping",
    "cache_key",
    "load_mapping",
    "map_table",
    "mapped_data",
    "parse_mapping",
    "read_table",
    "resolve_table",
]
