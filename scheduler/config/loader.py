"""Schedule files → one typed, validated `Config`, with the position of every value. Pure apart from reading files.

Steps, each collecting findings rather than stopping at the first:
1. read each file and compose it with PyYAML (nodes keep their marks); malformed YAML becomes a finding;
2. walk the nodes into plain values, recording where each path was written and rejecting duplicate keys;
3. merge the files section by section (`schedules`, `queues`, …); a name defined twice is an error naming both;
4. validate with pydantic, mapping each error's `loc` back to `file:line:col`;
5. check what pydantic cannot see: references between sections, exactly-one rules, static cohorts
   (`validate.check_references`).
`load_config` raises `ConfigInvalid` listing every error; warnings are `lint`'s business.

Whatever a file holds, loading it gives findings, never another exception, in bounded time and memory:
- a file is at most `MAX_FILE_BYTES` (1 MiB, what one Kubernetes ConfigMap can hold); a larger one is
  one CFG012 finding, and is not parsed;
- mappings and lists nest at most `MAX_DEPTH` (64) deep, counted while composing (CFG012);
- a file expands to at most `MAX_VALUES` (200,000) values, every alias counted as a copy of what it names,
  counted while walking, so a few hundred bytes of nested aliases (billion laughs) stop at the limit (CFG012);
- only the plain YAML types are read (`!!str`, `!!int`, `!!float`, `!!bool`, `!!null`, `!!timestamp`,
  `!!map`, `!!seq`); another tag, a value its tag cannot read (a calendar-invalid date), a NUL character
  or a lone surrogate is a CFG001 finding at the value;
- anything else that goes wrong (a bug) is a CFG013 finding naming the file, not a traceback.
"""

from __future__ import annotations

import re
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import yaml
from yaml.composer import Composer
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode
from yaml.resolver import Resolver

from scheduler.config.findings import (
    ConfigInvalid,
    ConfigPath,
    Finding,
    Location,
    Locations,
    Severity,
    escape,
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
    from collections.abc import Callable, Iterator, Sequence

    from yaml.events import Event

_MERGE_TAG = "tag:yaml.org,2002:merge"
_TAG = "tag:yaml.org,2002:"
_SCALAR_TAGS = frozenset(f"{_TAG}{t}" for t in ("str", "int", "float", "bool", "null", "timestamp"))
_MAP_TAG = f"{_TAG}map"
_SEQ_TAG = f"{_TAG}seq"

MAX_FILE_BYTES = 1024 * 1024
"""The largest schedule file read (1 MiB: what one Kubernetes ConfigMap can hold)."""
MAX_DEPTH = 64
"""How deep mappings and lists may nest in a file (the example files nest 7 deep)."""
MAX_VALUES = 200_000
"""How many values (mappings, lists and scalars, each alias counted as a copy of what it names) one file may
expand to; a 1 MiB file of plain rows stays below it, a billion-laughs file stops at it."""


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
    config: Config | None = None
    locations = Locations({}, {}, root)
    try:
        merged, locations = _merge(parsed, root, findings)
        config, model_findings = validate_model(merged, locations)
        findings.extend(model_findings)
        findings.extend(check_references(merged, locations))
    except Exception as exc:  # a bug: every known cause is a finding already; this one still is
        findings.append(unexpected(exc, root, "validating the schedule files"))
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
            try:
                found = sorted(p for p in path.iterdir() if p.suffix in {".yaml", ".yml"} and p.is_file())
            except OSError as exc:
                findings.append(
                    Finding(
                        "CFG011",
                        Severity.ERROR,
                        f"cannot list directory {str(path)!r}: {exc.strerror or type(exc).__name__}; "
                        "check that it is readable",
                    )
                )
                continue
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


class _LimitExceeded(Exception):
    """A file is past one of the loader's limits; `finding` says which, where, and what to do."""

    def __init__(self, finding: Finding) -> None:
        super().__init__(finding.message)
        self.finding = finding


class _Place(Protocol):
    """A parser's mark (PyYAML's or libyaml's): where an event starts."""

    line: int
    column: int


def _limit(file: Path, mark: _Place | None, message: str) -> _LimitExceeded:
    where = Location(file, mark.line + 1, mark.column + 1) if mark is not None else Location(file, 1, 1)
    return _LimitExceeded(Finding("CFG012", Severity.ERROR, message, where))


class _DepthLimit(Composer):
    """PyYAML's composer, composing at most `MAX_DEPTH` nested mappings and lists.

    The composer is recursive: without this bound a deep file would end in a RecursionError.
    """

    _file: Path
    _depth: int

    if TYPE_CHECKING:  # the parser's method: every loader mixes a parser in (SafeLoader's, libyaml's CParser)

        def peek_event(self) -> Event: ...

    def compose_node(self, parent: Node | None, index: int) -> Node | None:
        self._depth += 1
        try:
            if self._depth > MAX_DEPTH:
                event = self.peek_event()
                raise _limit(
                    self._file,
                    event.start_mark,
                    f"mappings and lists nest more than {MAX_DEPTH} deep here, the limit for a schedule file; "
                    "flatten the structure",
                )
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1


class _Loader(_DepthLimit, yaml.SafeLoader):
    """PyYAML's own scanner and parser: slower, and the source of the error messages findings quote."""

    def __init__(self, text: str, file: Path) -> None:
        yaml.SafeLoader.__init__(self, text)
        self._file = file
        self._depth = 0


class _Composing(Protocol):
    """What `_compose` needs of a loader."""

    def get_single_node(self) -> Node | None: ...

    def dispose(self) -> None: ...


_FastLoader: Callable[[str, Path], _Composing] | None = None
if yaml.__with_libyaml__:  # pragma: no branch - the wheels ship libyaml
    from yaml._yaml import CParser

    class _LibyamlLoader(_DepthLimit, CParser, Resolver):
        """libyaml's scanner and parser (several times faster) under the same Python composer and limits."""

        def __init__(self, text: str, file: Path) -> None:
            CParser.__init__(self, text)
            Resolver.__init__(self)
            Composer.__init__(self)
            self._file = file
            self._depth = 0

    _FastLoader = _LibyamlLoader


def _compose(text: str, file: Path) -> Node | None:
    """The file's node tree. libyaml parses when it is there; on a YAML error (or without libyaml), PyYAML
    parses again, so that a finding quotes PyYAML's messages (the fix hints key on them)."""
    if _FastLoader is not None:
        fast = _FastLoader(text, file)
        try:
            node = fast.get_single_node()
        except yaml.YAMLError:
            pass
        else:
            return node
        finally:
            fast.dispose()
    loader = _Loader(text, file)
    try:
        return loader.get_single_node()
    finally:
        loader.dispose()


def _read(file: Path, findings: list[Finding]) -> str | None:
    """The file's text, or None with a finding (unreadable, larger than the limit, not UTF-8)."""
    try:
        with file.open("rb") as stream:
            data = stream.read(MAX_FILE_BYTES + 1)
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        findings.append(
            Finding(
                "CFG011",
                Severity.ERROR,
                f"cannot read the file: {reason}; check that it exists and is readable",
                Location(file, 1, 1),
            )
        )
        return None
    if len(data) > MAX_FILE_BYTES:
        findings.append(
            Finding(
                "CFG012",
                Severity.ERROR,
                f"the file is larger than {MAX_FILE_BYTES // (1024 * 1024)} MiB, the limit for one schedule file; "
                "split it into several files, or move large static cohorts into an SQL cohort",
                Location(file, 1, 1),
            )
        )
        return None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        column = exc.start - (data.rfind(b"\n", 0, exc.start) + 1) + 1
        findings.append(
            Finding(
                "CFG011",
                Severity.ERROR,
                f"the file is not UTF-8 text (byte 0x{data[exc.start]:02x} cannot start or continue a "
                "character here); save it as UTF-8",
                Location(file, line, column),
            )
        )
        return None


def _parse_file(file: Path, findings: list[Finding]) -> _Parsed | None:
    text = _read(file, findings)
    if text is None:
        return None
    walker = _Walker(file)
    try:
        node = _compose(text, file)
        data = walker.value(node, ()) if node is not None else None
    except _LimitExceeded as exc:
        findings.append(exc.finding)
        return None
    except yaml.YAMLError as exc:
        findings.append(_yaml_finding(file, text, exc))
        return None
    except RecursionError:
        findings.append(
            Finding(
                "CFG012",
                Severity.ERROR,
                "the file nests too deeply to be read (through aliases or merge keys); flatten the structure",
                Location(file, 1, 1),
            )
        )
        return None
    except Exception as exc:  # a bug of ours or of PyYAML: still a finding, never a traceback
        findings.append(unexpected(exc, Location(file, 1, 1), "reading this file"))
        return None
    findings.extend(walker.findings)
    return _Parsed(file, data, walker.values, walker.keys)


def unexpected(exc: BaseException, where: Location | None, doing: str) -> Finding:
    """CFG013: an exception nobody mapped to a finding (a bug), reported instead of a traceback."""
    text = escape(str(exc))
    if len(text) > 200:
        text = text[:200] + "…"
    return Finding(
        "CFG013",
        Severity.ERROR,
        f"unexpected error while {doing}: {type(exc).__name__}: {text}; this is a bug in the scheduler, "
        "please report it with the file that caused it",
        where,
    )


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
        elif "undefined alias" in problem:
            fix = "define the anchor (`&name`) before the alias (`*name`) that uses it"
        elif "duplicate anchor" in what:
            fix = "give each anchor its own name"
        elif "expected a single document" in what:
            fix = "keep one YAML document per file (remove the `---` or split the file)"
        else:
            fix = "check the indentation and the quotes around this line"
        return Finding("CFG001", Severity.ERROR, f"malformed YAML: {what}; {fix}", location)
    if isinstance(exc, yaml.reader.ReaderError):
        before = text[: exc.position]
        line = before.count("\n") + 1
        column = exc.position - (before.rfind("\n") + 1) + 1
        character = exc.character if isinstance(exc.character, str) else chr(exc.character)
        return Finding(
            "CFG001",
            Severity.ERROR,
            f"malformed YAML: character {escape(repr(character))} (U+{ord(character):04X}) is not allowed "
            "in a YAML file; remove it (write it as an escape inside double quotes if it belongs in a value)",
            Location(file, line, column),
        )
    return Finding("CFG001", Severity.ERROR, f"malformed YAML: {exc}", Location(file, 1, 1))


_SURROGATE = re.compile("[\ud800-\udfff]")

_TAG_NAMES = {
    f"{_TAG}int": "an integer",
    f"{_TAG}float": "a number",
    f"{_TAG}bool": "true or false",
    f"{_TAG}timestamp": "a date or time",
    f"{_TAG}null": "null",
}


def _tag(node: Node) -> str:
    tag = f"!!{node.tag.removeprefix(_TAG)}" if node.tag.startswith(_TAG) else node.tag
    return escape(repr(tag))


def _short(text: str) -> str:
    shown = repr(text if len(text) <= 40 else text[:40] + "…")
    return escape(shown)


class _Walker:
    """Turns composed nodes into plain values, recording the location of every path it passes.

    It counts every value it makes (an alias is walked, and counted, once per use) and stops at `MAX_VALUES`.
    """

    def __init__(self, file: Path) -> None:
        self.file = file
        self.constructor = yaml.SafeLoader("")
        self.values: dict[ConfigPath, Location] = {(): Location(file, 1, 1)}
        self.keys: dict[ConfigPath, Location] = {}
        self.findings: list[Finding] = []
        self._stack: set[int] = set()
        self._count = 0
        self._depth = 0

    def _at(self, node: Node) -> Location:
        return Location(self.file, node.start_mark.line + 1, node.start_mark.column + 1)

    def _error(self, node: Node, message: str) -> None:
        self.findings.append(Finding("CFG001", Severity.ERROR, message, self._at(node)))

    @contextmanager
    def _inside(self, node: Node) -> Iterator[None]:
        """Walk into a mapping or list (`node`): bounded depth (aliases and merge keys can nest what the
        composer saw flat), and a finding rather than endless recursion for a value that contains itself."""
        self._depth += 1
        self._stack.add(id(node))
        try:
            if self._depth > MAX_DEPTH:
                raise _limit(
                    self.file,
                    node.start_mark,
                    f"mappings and lists nest more than {MAX_DEPTH} deep here through aliases or merge keys, "
                    "the limit for a schedule file; flatten the structure",
                )
            yield
        finally:
            self._depth -= 1
            self._stack.discard(id(node))

    def _visit(self, node: Node, path: ConfigPath) -> None:
        self._count += 1
        if self._count > MAX_VALUES:
            # Located at the entry being walked (e.g. `schedules: digest:`), not deep inside what an alias copied.
            where = self.keys.get(path[:2]) or self.keys.get(path[:1]) or self._at(node)
            raise _LimitExceeded(
                Finding(
                    "CFG012",
                    Severity.ERROR,
                    f"the file expands to more than {MAX_VALUES:,} values, the limit for a schedule file (every "
                    "alias `*name` counts as a copy of what it names); use fewer or smaller aliases, or split the file",
                    where,
                )
            )

    def scalar(self, node: ScalarNode, path: ConfigPath) -> object:
        """The value of a scalar under the plain YAML tags; a finding (and its text) for anything else."""
        self._visit(node, path)
        if node.tag not in _SCALAR_TAGS:
            self._error(
                node,
                f"malformed YAML: tag {_tag(node)} is not supported here; schedule "
                "files hold plain strings, numbers, booleans, nulls, dates, mappings and lists: remove the tag, "
                "or quote the value if it is text starting with `!`",
            )
            return node.value
        try:
            value: object = self.constructor.construct_object(node)
        except (ValueError, TypeError, KeyError, AttributeError, OverflowError, yaml.YAMLError) as exc:
            what = _TAG_NAMES.get(node.tag, "this type")
            reason = str(exc).splitlines()[0] if isinstance(exc, ValueError) and str(exc) else ""
            because = f" ({escape(reason)})" if reason and len(reason) < 120 else ""
            fix = "fix the date" if node.tag == f"{_TAG}timestamp" else "fix the value"
            self._error(
                node,
                f"malformed YAML: {_short(node.value)} cannot be read as {what}{because}; {fix}, "
                "or quote it to keep it as text",
            )
            return node.value
        if isinstance(value, str):
            if "\x00" in value:
                self._error(
                    node,
                    f"{_short(value)} contains a NUL character (\\0), which PostgreSQL text cannot hold; remove it",
                )
            elif _SURROGATE.search(value):
                self._error(
                    node,
                    f"{_short(value)} contains a lone UTF-16 surrogate, which is not Unicode text; write the "
                    "character itself (or its \\U escape) instead",
                )
        return value

    def value(self, node: Node, path: ConfigPath) -> object:
        if isinstance(node, ScalarNode):
            return self.scalar(node, path)
        if id(node) in self._stack:
            self._error(
                node, "malformed YAML: an alias refers to a value that contains it; remove the recursion"
            )
            return None
        self._visit(node, path)
        with self._inside(node):
            if isinstance(node, SequenceNode):
                if node.tag != _SEQ_TAG:
                    self._unsupported_tag(node)
                items: list[object] = []
                for index, child in enumerate(node.value):
                    self.values[(*path, index)] = self._at(child)
                    items.append(self.value(child, (*path, index)))
                return items
            if isinstance(node, MappingNode):
                if node.tag != _MAP_TAG:
                    self._unsupported_tag(node)
                return self._mapping(node, path)
        return None

    def _unsupported_tag(self, node: Node) -> None:
        self._error(
            node,
            f"malformed YAML: tag {_tag(node)} is not supported here; schedule files "
            "hold plain mappings and lists: remove the tag",
        )

    def _mapping(self, node: MappingNode, path: ConfigPath) -> dict[Any, object]:
        result: dict[Any, object] = {}
        merges: list[Node] = []
        for key_node, value_node in node.value:
            if key_node.tag == _MERGE_TAG:
                merges.extend(value_node.value if isinstance(value_node, SequenceNode) else [value_node])
                continue
            if not isinstance(key_node, ScalarNode):
                self._error(key_node, "malformed YAML: a key must be a plain name, not a list or mapping")
                continue
            key: Any = self.scalar(key_node, path)
            child: ConfigPath = (*path, key)
            if key in result:
                first = self.keys[child]
                self.findings.append(
                    Finding(
                        "CFG002",
                        Severity.ERROR,
                        f"key {escape(repr(key))} appears twice in the same mapping (first at line {first.line}, "
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
                self._error(source, "malformed YAML: `<<` must merge a mapping or a list of mappings")
                continue
            if id(source) in self._stack:
                self._error(
                    source, "malformed YAML: `<<` merges a mapping that contains it; remove the recursion"
                )
                continue
            self._visit(source, path)
            with self._inside(source):
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
