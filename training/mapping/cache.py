"""Mapped tables cached beside the data, keyed by the mapping file, the table and the rules.

``train`` and ``evaluate`` call :func:`mapped_data`, which maps a table once into
``DATA/.centinela-mapped/<key>/`` and reuses it while the mapping file, the table file (size and
modification time) and :data:`MAPPING_FORMAT_VERSION` stay the same.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from dataclasses import replace
from pathlib import Path
from typing import Final

from features.errors import DataError
from training.mapping.apply import map_table
from training.mapping.load import load_mapping
from training.mapping.result import SUMMARY_FILE, MappedData
from training.mapping.source import resolve_table

MAPPING_FORMAT_VERSION: Final = 1
"""Part of the cache key: bump it when the conversion rules change so old caches are not reused."""

CACHE_DIR_NAME: Final = ".centinela-mapped"


def cache_key(spec_bytes: bytes, table: Path) -> str:
    """Changes when the mapping file, the table file or the conversion rules change."""
    stat = table.stat()
    digest = hashlib.sha256()
    digest.update(f"v{MAPPING_FORMAT_VERSION}\0".encode())
    digest.update(spec_bytes)
    digest.update(f"\0{table.resolve()}\0{stat.st_size}\0{stat.st_mtime_ns}".encode())
    return digest.hexdigest()[:16]


def mapped_data(data_dir: Path, mapping_file: Path) -> MappedData:
    """Map ``data_dir`` through ``mapping_file`` into ``DATA/.centinela-mapped/<key>/``.

    A directory already mapped with the same mapping file and the same table (size and
    modification time) is reused. The mapping is written to a temporary sibling and renamed,
    so an interrupted run never leaves a half-written cache that a later run would trust.
    """
    data_dir = Path(data_dir)
    if not data_dir.is_dir():
        raise DataError(f"{data_dir}: no such data directory")
    spec = load_mapping(mapping_file)
    source = resolve_table(data_dir, spec)
    if not source.is_file():
        raise DataError(f"{source}: no such table file (mapping {mapping_file}: table)")
    key = cache_key(Path(mapping_file).read_bytes(), source)
    root = data_dir / CACHE_DIR_NAME
    target = root / key
    summary = target / SUMMARY_FILE
    if summary.is_file():
        try:
            return MappedData.from_json(json.loads(summary.read_text(encoding="utf-8")), target)
        except (OSError, ValueError, TypeError, KeyError):
            shutil.rmtree(target, ignore_errors=True)
    staging = root / f"{key}.tmp-{os.getpid()}"
    shutil.rmtree(staging, ignore_errors=True)
    try:
        result = map_table(spec, source, staging, str(mapping_file))
        try:
            staging.rename(target)
        except OSError:
            if not (target / SUMMARY_FILE).is_file():
                raise
    except OSError as exc:
        raise DataError(f"cannot write the mapped tables under {root}: {exc}") from None
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return replace(result, out_dir=target)
