"""Schedule files → one typed, validated `Config`, with the position of every value. Pure apart from reading files.

Steps, each collecting findings rather than stopping at the first:
1. read each file and compose it with PyYAML (nodes keep their marks); malformed YAML becomes a finding;
2. walk the nodes into plain values, recording where each path was written and rejecting duplicate keys;
3. merge the files section by section (`schedules`, `queues`, …); a name defined twice is an error naming both;
4. validate with pydantic, mapping each error's `loc` back to `file:line:col`;
5. check what pydantic cannot see: references between sections, exactly-one rules, static cohorts
   (`validate.check_references`).
`load_config` raises `ConfigInvalid` listing every error; warnings are `lint`'s business.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from scheduler.config.findings import (
    ConfigInvalid,
    ConfigPath,
    Finding,
    Location,
    Locations,
    Severity,
    sort_findings,
)
from scheduler.config.models import Config
from scheduler.config.validate import (
    SECTIONS,
    check_references,
    singular,
    validate_model,
)

if TYPE_CHECKING:
    from collections.abc import Sequence

_MERGE_TAG = "tag:yaml.org,2002:merge"


@dataclass(frozen=True)
class LoadedConfig:
    """A validated configuration, where each of its values was written, and the files it came from."""

    config: Config
    locations: Locations
    files: tuple[Path, ...]


def load_config(paths: Sequence[Path]) -> LoadedConfig:
    """Load schedule files (or directories of `*.yaml`/`*.yml`, in name order) into one validated config.

    Raises ConfigInvalid listing every error found (YAML syntax, duplicate keys or names, unknown keys, bad
    values, dangling references), each with its `file:line:col`.
    """
    findings: list[Finding] = []
    files = _expand(paths, findings)
    parsed: list[_Parsed] = []
    for file in files:
        one = _parse_file(file, findings)
        if one is not None:
            parsed.append(one)
    root = Location(files[0], 1, 1) if files else Location(Path(paths[0]) if paths else Path("."), 1, 1)
    merged, locations = _merge(parsed, root, findings)
    config, model_findings = validate_model(merged, locations)
    findings.extend(model_findings)
    findings.extend(check_references(merged, locations))
    errors = [f for f in findings if f.severity is Severity.ERROR]
    if errors or config is None:
        raise ConfigInvalid(sort_findings(errors))
    return LoadedConfig(config=config, locations=locations, files=tuple(files))


def _expand(paths: Sequence[Path], findings: list[Finding]) -> list[Path]:
    if not paths:
        findings.append(
            Finding("CFG011", Severity.ERROR, "no schedule files given; pass a YAML file or a directory")
        )
    files: list[Path] = []
    for path in map(Path, paths):
        if path.is_dir():
            found = sorted(p for p in path.iterdir() if p.suffix in {".yaml", ".yml"} and p.is_file())
            if not found:
                findings.append(
                    Finding(
                        "CFG011",
                        Severity.ERROR,
                        f"directory {str(path)!r} has no *.yaml or *.yml files; "
                        "put the schedule files there or pass a file",
                    )
                )
            files.extend(found)
        elif path.is_file():
            files.append(path)
        else:
            findings.append(
                Finding(
                    "CFG011",
                    Severity.ERROR,
                    f"{str(path)!r} does not exist; pass a YAML file or a directory of them",
                )
            )
    return list(dict.fromkeys(files))


@dataclass
class _Parsed:
    file: Path
    data: object
    values: dict[ConfigPath, Location]
    keys: dict[ConfigPath, Location]


def _parse_file(file: Path, findings: list[Finding]) -> _Parsed | None:
    try:
        text = file.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        findings.append(
            Finding("CFG011", Severity.ERROR, f"cannot read the file: {exc}", Location(file, 1, 1))
        )
        return None
    loader = yaml.SafeLoader(text)
    try:
        node = loader.get_single_node()
        walker = _Walker(file, loader)
        data = walker.value(node, ()) if node is not None else None
    except yaml.YAMLError as exc:
        findings.append(_yaml_finding(file, text, exc))
        return None
    finally:
        loader.dispose()
    findings.extend(walker.findings)
    return _Parsed(file, data, walker.values, walker.keys)


def _yaml_finding(file: Path, text: str, exc: yaml.YAMLError) -> Finding:
    if isinstance(exc, yaml.MarkedYAMLError):
        mark = exc.problem_mark or exc.context_mark
        location = Location(file, mark.line + 1, mark.column + 1) if mark else Location(file, 1, 1)
        problem = exc.problem or "malformed YAML"
        what = f"{exc.context}: {problem}" if exc.context else problem
        if exc.context_mark is not None and exc.context_mark is not mark:
            what += f" (the construct started at line {exc.context_mark.line + 1}, column {exc.context_mark.column + 1})"
        if "\\t" in problem or "\t" in problem:
            fix = "indent with spaces: YAML does not allow tabs for indentation"
        elif "end of stream" in problem:
            fix = "close the quote or bracket that is still open"
        elif "<block end>" in problem or "mapping values are not allowed" in problem:
            fix = (
                "indent this line like the other keys of its mapping (they start in the same column), "
                "or quote a value that contains ': '"
            )
        else:
            fix = "check the indentation and the quotes around this line"
        return Finding("CFG001", Severity.ERROR, f"malformed YAML: {what}; {fix}", location)
    if isinstance(exc, yaml.reader.ReaderError):
        before = text[: exc.position]
        line = before.count("\n") + 1
        column = exc.position - (before.rfind("\n") + 1) + 1
        return Finding(
            "CFG001",
            Severity.ERROR,
            f"malformed YAML: character {exc.character!r} is not allowed; remove it",
            Location(file, line, column),
        )
    return Finding("CFG001", Severity.ERROR, f"malformed YAML: {exc}", Location(file, 1, 1))


class _Walker:
    """Turns composed nodes into plain values, recording the location of every path it passes."""

    def __init__(self, file: Path, loader: yaml.SafeLoader) -> None:
        self.file = file
        self.loader = loader
        self.values: dict[ConfigPath, Location] = {(): Location(file, 1, 1)}
        self.keys: dict[ConfigPath, Location] = {}
        self.findings: list[Finding] = []
        self._stack: set[int] = set()

    def _at(self, node: Node) -> Location:
        return Location(self.file, node.start_mark.line + 1, node.start_mark.column + 1)

    def value(self, node: Node, path: ConfigPath) -> object:
        if isinstance(node, ScalarNode):
            return self.loader.construct_object(node)
        if id(node) in self._stack:
            self.findings.append(
                Finding(
                    "CFG001",
                    Severity.ERROR,
                    "malformed YAML: an alias refers to a value that contains it; remove the recursion",
                    self._at(node),
                )
            )
            return None
        self._stack.add(id(node))
        try:
            if isinstance(node, SequenceNode):
                items: list[object] = []
                for index, child in enumerate(node.value):
                    self.values[(*path, index)] = self._at(child)
                    items.append(self.value(child, (*path, index)))
                return items
            if isinstance(node, MappingNode):
                return self._mapping(node, path)
        finally:
            self._stack.discard(id(node))
        return None

    def _mapping(self, node: MappingNode, path: ConfigPath) -> dict[Any, object]:
        result: dict[Any, object] = {}
        merges: list[Node] = []
        for key_node, value_node in node.value:
            if key_node.tag == _MERGE_TAG:
                merges.extend(value_node.value if isinstance(value_node, SequenceNode) else [value_node])
                continue
            if not isinstance(key_node, ScalarNode):
                self.findings.append(
                    Finding(
                        "CFG001",
                        Severity.ERROR,
                        "malformed YAML: a key must be a plain name, not a list or mapping",
                        self._at(key_node),
                    )
                )
                continue
            key = self.loader.construct_object(key_node)
            child = (*path, key)
            if key in result:
                first = self.keys[child]
                self.findings.append(
                    Finding(
                        "CFG002",
                        Severity.ERROR,
                        f"key {key!r} appears twice in the same mapping (first at line {first.line}, "
                        f"column {first.column}); YAML would silently keep only the last one; "
                        "delete or rename one of them",
                        self._at(key_node),
                    )
                )
                continue
            self._record(child, key_node, value_node)
            result[key] = self.value(value_node, child)
        # `<<: *defaults` fills only the keys this mapping does not set itself (YAML merge-key rules).
        for source in merges:
            if not isinstance(source, MappingNode):
                self.findings.append(
                    Finding(
                        "CFG001",
                        Severity.ERROR,
                        "malformed YAML: `<<` must merge a mapping or a list of mappings",
                        self._at(source),
                    )
                )
                continue
            merged = self._mapping(source, path)
            for key, value in merged.items():
                result.setdefault(key, value)
        return result

    def _record(self, path: ConfigPath, key_node: Node, value_node: Node) -> None:
        self.keys.setdefault(path, self._at(key_node))
        # A scalar is located where it is written; a mapping or list where its key introduces it.
        at = value_node if isinstance(value_node, ScalarNode) else key_node
        self.values.setdefault(path, self._at(at))


def _merge(
    parsed: Sequence[_Parsed], root: Location, findings: list[Finding]
) -> tuple[dict[str, Any], Locations]:
    merged: dict[str, Any] = {}
    values: dict[ConfigPath, Location] = {(): root}
    keys: dict[ConfigPath, Location] = {}
    for one in parsed:
        data = one.data
        if data is None:
            continue  # an empty file (or only comments) adds nothing
        if not isinstance(data, dict):
            findings.append(
                Finding(
                    "CFG005",
                    Severity.ERROR,
                    f"the file must be a mapping with keys such as version, queues and schedules, "
                    f"got a {type(data).__name__}",
                    one.values[()],
                )
            )
            continue
        dropped: set[ConfigPath] = set()
        for top, section in data.items():
            where = one.values.get((top,), one.values[()])
            if top == "version":
                if not (type(section) is int and section == 1):
                    findings.append(
                        Finding(
                            "CFG005",
                            Severity.ERROR,
                            f"version: {section!r} is not supported; this scheduler reads version 1; "
                            "write `version: 1`",
                            where,
                        )
                    )
                continue
            if top not in SECTIONS:
                # Unknown top-level keys go on to pydantic, which reports them with a suggestion.
                merged.setdefault(top, section)
                continue
            if section is None:
                continue
            if not isinstance(section, dict):
                findings.append(
                    Finding(
                        "CFG005",
                        Severity.ERROR,
                        f"{top}: must be a mapping of name → {singular(top)}, got a {type(section).__name__}; "
                        f"write `{top}:` followed by indented `<name>: ...` entries",
                        where,
                    )
                )
                dropped.add((top,))
                continue
            target: dict[Any, object] = merged.setdefault(top, {})
            for name, entry in section.items():
                if name in target:
                    first = keys.get((top, name)) or values.get((top, name), root)
                    here = one.keys.get((top, name), where)
                    findings.append(
                        Finding(
                            "CFG003",
                            Severity.ERROR,
                            f"{singular(top)} {name!r} is defined twice: at {first} and at {here}; "
                            "rename one of them or delete the duplicate",
                            here,
                        )
                    )
                    dropped.add((top, name))
                    continue
                target[name] = entry
        for path, location in one.values.items():
            if not any(path[: len(d)] == d for d in dropped):
                values.setdefault(path, location)
        for path, location in one.keys.items():
            if not any(path[: len(d)] == d for d in dropped):
                keys.setdefault(path, location)
    return merged, Locations(values, keys, root)
