"""YAML loaders for the files analysts edit (watchlist, rules, data mappings).

PyYAML's defaults hide mistakes far from where they were typed: YAML 1.1 reads ``NO``
(Norway) and ``ON`` as booleans, turns an impossible date such as 2023-02-30 into a bare error
with no location, and keeps the last of two duplicate keys silently. These loaders read only
``true``/``false`` as booleans, leave dates as text for the schema to check, and (strict) reject
duplicate keys with their line.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml

from features.errors import ConfigError


class AnalystLoader(yaml.SafeLoader):
    """SafeLoader with YAML 1.2 booleans and no implicit dates."""


AnalystLoader.yaml_implicit_resolvers = {
    first: [
        (tag, regexp)
        for tag, regexp in resolvers
        if tag not in ("tag:yaml.org,2002:bool", "tag:yaml.org,2002:timestamp")
    ]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
AnalystLoader.add_implicit_resolver(
    "tag:yaml.org,2002:bool",
    re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"),
    list("tTfF"),
)


class StrictLoader(AnalystLoader):
    """:class:`AnalystLoader` that also refuses duplicate keys."""


def _construct_mapping(loader: StrictLoader, node: yaml.MappingNode) -> dict[Any, Any]:
    seen: set[Any] = set()
    for key_node, _ in node.value:
        key = loader.construct_object(key_node)  # type: ignore[no-untyped-call]
        if key in seen:
            raise yaml.constructor.ConstructorError(
                None, None, f"duplicate key {key!r}", key_node.start_mark
            )
        seen.add(key)
    return loader.construct_mapping(node)


StrictLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)


def load_strict(text: str) -> Any:
    """Parse one YAML document with :class:`StrictLoader`; raises ``yaml.YAMLError``."""
    return yaml.load(text, Loader=StrictLoader)


def read_yaml_file(path: Path, what: str, *, secret: bool = False) -> Any:
    """The one YAML (or JSON) document of a settings-like file, with PyYAML's safe loader;
    :class:`ConfigError` naming ``what`` and the file when it cannot be read or parsed. For a
    ``secret`` file the parser's message is left out: it quotes the line it stopped at."""
    try:
        return yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"cannot read {what} {path}: {exc.strerror}") from exc
    except yaml.YAMLError as exc:
        detail = "" if secret else f": {exc}"
        raise ConfigError(f"{what} {path} is not valid YAML or JSON{detail}") from exc
