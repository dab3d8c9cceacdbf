"""Reading a rules file: YAML text to a compiled :class:`~scoring.rules.engine.RuleSet`.

Validation is strict because a misspelt condition would otherwise be ignored and silently stop a
guarantee. Every problem is reported at once, each with its line in the file, e.g.
``line 42: rules[3].when.watchlist_lsts: rule 'table-i-precursor': unknown condition
'watchlist_lsts'``: the YAML node tree gives the line of every key and list item (and the
duplicate keys PyYAML would silently drop), each rule is validated on its own against
:mod:`scoring.rules.schema`, and pydantic's errors are reworded for analysts.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from importlib import resources
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from features.errors import ConfigError, FieldViolation, suggest
from features.watchlist import Watchlist, load_watchlist
from features.watchlist.schema import read_text_file
from features.yamlfiles import AnalystLoader
from scoring.rules.engine import RuleSet
from scoring.rules.schema import (
    Conditions,
    FeatureTest,
    FileHeader,
    MismatchCondition,
    RuleSpec,
    WatchlistCondition,
    When,
)

PACKAGED_FILE = "rules.yaml"

_TOP_KEYS = ("version", "rules")
_RULE_KEYS = tuple(RuleSpec.model_fields)
_WHEN_KEYS = tuple(When.model_fields)
_CONDITION_KEYS = tuple(Conditions.model_fields)
_WATCHLIST_KEYS = tuple(WatchlistCondition.model_fields)
_MISMATCH_KEYS = tuple(MismatchCondition.model_fields)
_OPERATORS = tuple(FeatureTest.model_fields)

_Path = tuple[str | int, ...]  # a place in the file: keys and list indexes from the top


def _map_lines(
    node: yaml.Node, path: _Path, lines: dict[_Path, int], problems: list[FieldViolation]
) -> None:
    """Record the line of every key and list item, and report duplicate keys.

    PyYAML keeps the last of two duplicate keys silently; an analyst's second ``lane:`` would win
    without a word.
    """
    if isinstance(node, yaml.MappingNode):
        seen: dict[str, int] = {}
        for key_node, value_node in node.value:
            key = str(key_node.value)
            line = key_node.start_mark.line + 1
            child = (*path, key)
            if key in seen:
                problems.append(
                    FieldViolation(
                        f"line {line}: {_path_text(child)}",
                        f"duplicate key {key!r}, first at line {seen[key]}",
                    )
                )
            else:
                seen[key] = line
                lines[child] = line
            _map_lines(value_node, child, lines, problems)
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            child = (*path, index)
            lines[child] = item.start_mark.line + 1
            _map_lines(item, child, lines, problems)


def _path_text(path: Iterable[str | int]) -> str:
    text = ""
    for part in path:
        text += f"[{part}]" if isinstance(part, int) else f".{part}"
    return text.lstrip(".") or "(file)"


def _line_of(path: _Path, lines: Mapping[_Path, int]) -> int:
    for end in range(len(path), 0, -1):
        line = lines.get(path[:end])
        if line is not None:
            return line
    return 1


def _unknown_key(path: _Path) -> str:
    key, parent = str(path[-1]), path[:-1]
    what = "key"
    known: tuple[str, ...] = _TOP_KEYS
    if len(parent) >= 2 and parent[0] == "rules":
        rest = parent[2:]
        what, known = "key", _RULE_KEYS
        if rest == ("when",):
            what, known = "condition", _WHEN_KEYS
        elif len(rest) == 3 and rest[:2] == ("when", "any"):
            if key == "any":
                return "'any' alternatives cannot be nested"
            what, known = "condition", _CONDITION_KEYS
        elif rest and rest[-1] == "watchlist":
            what, known = "watchlist condition", _WATCHLIST_KEYS
        elif rest and rest[-1] == "mismatch":
            what, known = "mismatch condition", _MISMATCH_KEYS
        elif len(rest) >= 2 and rest[-2] == "features":
            what, known = "operator", _OPERATORS
        elif rest == ("reason",):
            what, known = "language", ("es", "en")
    hint = suggest(key, known) or f"; expected one of {', '.join(known)}"
    return f"unknown {what} {key!r}{hint}"


def _message(error: Mapping[str, Any], path: _Path) -> str:
    kind = error.get("type", "")
    if kind == "extra_forbidden":
        return _unknown_key(path)
    if kind == "missing":
        if len(path) >= 2 and path[-2] == "reason":
            language = "Spanish" if path[-1] == "es" else "English"
            return f"reason needs {path[-1]!r}, the {language} text"
        return f"{path[-1]!r} is required"
    return str(error.get("msg", "invalid")).removeprefix("Value error, ")


def _violations(
    error: ValidationError,
    prefix: _Path,
    lines: Mapping[_Path, int],
    label: str,
) -> list[FieldViolation]:
    out = []
    for detail in error.errors():
        path: _Path = (*prefix, *(p for p in detail["loc"] if p != "[key]"))
        line = _line_of(path, lines)
        out.append(
            FieldViolation(f"line {line}: {_path_text(path)}", label + _message(detail, path))
        )
    return out


def _evidence_problem(rule: RuleSpec) -> str | None:
    """Why the rule's reason cannot be filled in, if it cannot."""
    if not rule.reason.templated:
        return None
    when = rule.when
    if when.has_evidence or (when.any and all(c.has_evidence for c in when.any)):
        return None
    return (
        "the reason uses placeholders, which are filled from watchlist evidence: give the rule "
        "a watchlist or mismatch condition"
    )


def _at(path: _Path, lines: Mapping[_Path, int], description: str) -> FieldViolation:
    return FieldViolation(f"line {_line_of(path, lines)}: {_path_text(path)}", description)


def _line_number(violation: FieldViolation) -> int:
    return int(violation.field.split(":", 1)[0].removeprefix("line "))


def _invalid(origin: str, violations: list[FieldViolation]) -> ConfigError:
    ordered = sorted(violations, key=_line_number)
    count = len(ordered)
    return ConfigError(
        f"{origin}: rules file is invalid ({count} problem{'s' if count != 1 else ''})", ordered
    )


def _validate(
    data: object, watchlist: Watchlist, lines: Mapping[_Path, int]
) -> tuple[str | None, list[RuleSpec], list[FieldViolation]]:
    """The file's version and valid rules, and every problem found, each at its line.

    Rules are validated one by one so a single run reports the problems of every rule.
    """
    if not isinstance(data, Mapping):
        return None, [], [_at((), lines, "top level must be a mapping with version and rules")]
    violations = [
        _at((str(k),), lines, _unknown_key((str(k),))) for k in data if k not in _TOP_KEYS
    ]
    version = None
    try:
        version = FileHeader.model_validate({k: data[k] for k in ("version",) if k in data}).version
    except ValidationError as error:
        violations += _violations(error, (), lines, "")
    raw_rules = data.get("rules")
    if not isinstance(raw_rules, list):
        violations.append(_at(("rules",), lines, "must be a list of rules"))
        raw_rules = []
    parsed: list[RuleSpec] = []
    first_at: dict[str, int] = {}
    context = {"watchlist": watchlist}
    for index, raw in enumerate(raw_rules):
        prefix: _Path = ("rules", index)
        rule_id = raw.get("id") if isinstance(raw, Mapping) else None
        label = f"rule {rule_id!r}: " if isinstance(rule_id, str) else ""
        try:
            rule = RuleSpec.model_validate(raw, context=context)
        except ValidationError as error:
            violations += _violations(error, prefix, lines, label)
            continue
        parsed.append(rule)
        id_line = _line_of((*prefix, "id"), lines)
        if rule.id in first_at:
            violations.append(
                _at(
                    (*prefix, "id"),
                    lines,
                    f"{label}duplicate id, first at line {first_at[rule.id]}",
                )
            )
        first_at.setdefault(rule.id, id_line)
        problem = _evidence_problem(rule)
        if problem:
            violations.append(_at((*prefix, "reason"), lines, label + problem))
    return version, parsed, violations


def _not_yaml(origin: str, text: str, error: Exception) -> ConfigError:
    """A YAML error (or nesting too deep to read) as a :class:`ConfigError` with its line."""
    if isinstance(error, RecursionError):
        return ConfigError(
            f"{origin}: not valid YAML", [FieldViolation("line 1", "nested too deeply")]
        )
    mark = getattr(error, "problem_mark", None)
    position = getattr(error, "position", None)  # a ReaderError: a character YAML refuses
    if mark is not None:
        line = mark.line + 1
    elif isinstance(position, int):
        line = text.count("\n", 0, position) + 1
    else:
        line = 1
    problem = getattr(error, "problem", None) or getattr(error, "reason", None) or str(error)
    return ConfigError(f"{origin}: not valid YAML", [FieldViolation(f"line {line}", str(problem))])


def parse_rules_text(text: str, origin: str, watchlist: Watchlist) -> RuleSet:
    """Parse and validate rules YAML text; ``origin`` names it in error messages.

    Raises :class:`~features.errors.ConfigError` with one violation per problem, each field
    starting with its line, e.g. ``line 42: rules[3].when.watchlist_lsts``.
    """
    try:
        loader = AnalystLoader(text)  # its reader refuses control characters at once
    except yaml.YAMLError as error:
        raise _not_yaml(origin, text, error) from None
    lines: dict[_Path, int] = {}
    violations: list[FieldViolation] = []
    try:
        node = loader.get_single_node()
        if node is not None:
            _map_lines(node, (), lines, violations)
        data = loader.construct_document(node) if node is not None else None
    except (yaml.YAMLError, RecursionError) as error:
        raise _not_yaml(origin, text, error) from None
    finally:
        loader.dispose()
    version, rules, problems = _validate(data, watchlist, lines)
    violations += problems
    if violations or version is None:
        raise _invalid(origin, violations)
    return RuleSet(version, tuple(rules), origin)


def load_rules(path: Path | None = None, watchlist: Watchlist | None = None) -> RuleSet:
    """Load and compile a rules file; ``None`` loads the one shipped with Centinela.

    ``watchlist`` (default: the packaged one) is what entry ids and route families are checked
    against. Raises :class:`~features.errors.ConfigError` naming every problem with its line.
    """
    if watchlist is None:
        watchlist = load_watchlist()
    if path is None:
        resource = resources.files("scoring").joinpath(PACKAGED_FILE)
        return parse_rules_text(
            resource.read_text(encoding="utf-8"), f"(packaged) {PACKAGED_FILE}", watchlist
        )
    return parse_rules_text(read_text_file(Path(path), "rules"), str(path), watchlist)
