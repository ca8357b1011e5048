"""What validation and lint report: locations in the schedule files and findings at them. Pure.

A `Location` is 1-based (`file:line:col`, the way editors and compilers print it). The loader builds one
`Locations` map per loaded configuration, keyed by the path of a value inside the merged config
(`("schedules", "insight-digest", "cron")`, list items by index), so any later check can point back at the
line a user has to edit.

A finding prints on one line whatever its text holds: `Finding.format` escapes control, format and
surrogate characters (a newline becomes `\n`, an ESC `\x1b`), so a name in a file cannot forge a line
or drive the terminal (`escape`).
"""

from __future__ import annotations

import enum
import unicodedata
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, TypeAlias

from scheduler.errors import ConfigError

if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping

_SHORT_ESCAPES = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}


def _escape_char(char: str) -> str:
    if char in _SHORT_ESCAPES:
        return _SHORT_ESCAPES[char]
    code = ord(char)
    if code < 0x100:
        return f"\\x{code:02x}"
    if code < 0x10000:
        return f"\\u{code:04x}"
    return f"\\U{code:08x}"


def escape(text: str) -> str:
    """`text` with every control, format, surrogate, private-use or unassigned character (Unicode category C*),
    and the line and paragraph separators, written as a Python-style escape (`\\n`, `\\x1b`, `\\u2028`);
    printable text, spaces included, is unchanged."""
    if text.isprintable():
        return text
    return "".join(
        char if char == " " or unicodedata.category(char)[0] not in "CZ" else _escape_char(char)
        for char in text
    )


ConfigPath: TypeAlias = tuple[str | int, ...]
"""The path of a value inside the merged config: mapping keys and list indexes."""


@dataclass(frozen=True, slots=True)
class Location:
    """A position in a schedule file, 1-based like an editor's status bar."""

    file: Path
    line: int
    column: int

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.column}"


class Locations:
    """Where each value of a merged config was written.

    `of(path)` answers the position of a value: a scalar's own position, or the position of the key that
    introduces a mapping or a list (that is the line a user looks for). A path that was never written (a
    default, a missing key) answers with its nearest written ancestor, and finally the start of the first file.
    """

    __slots__ = ("_keys", "_root", "_values")

    def __init__(
        self,
        values: Mapping[ConfigPath, Location],
        keys: Mapping[ConfigPath, Location],
        root: Location,
    ) -> None:
        self._values = dict(values)
        self._keys = dict(keys)
        self._root = root

    def of(self, path: ConfigPath) -> Location:
        """The location of the value at `path`, or of its nearest known ancestor."""
        for end in range(len(path), 0, -1):
            found = self._values.get(path[:end])
            if found is not None:
                return found
        return self._root

    def key_of(self, path: ConfigPath) -> Location:
        """The location of the key that introduces `path` (for unknown or duplicate keys); else `of(path)`."""
        return self._keys.get(path) or self.of(path)

    def __contains__(self, path: object) -> bool:
        return path in self._values

    def __repr__(self) -> str:
        return f"Locations({len(self._values)} paths, root={self._root})"


class Severity(enum.Enum):
    """How bad a finding is."""

    ERROR = "error"
    """The configuration must not run: `load_config` raises, or `scheduler validate` exits non-zero."""
    WARNING = "warning"
    """The configuration runs, but probably not the way its author meant."""


@dataclass(frozen=True, slots=True)
class Finding:
    """One problem found in the schedule files, with a stable code and, where known, its location."""

    code: str
    severity: Severity
    message: str
    location: Location | None = None

    def format(self) -> str:
        """`file:line:col: CODE severity: message` (without a location: `CODE severity: message`)."""
        head = f"{self.code} {self.severity.value}: {self.message}"
        return escape(f"{self.location}: {head}" if self.location is not None else head)

    def __str__(self) -> str:
        return self.format()


def sort_findings(findings: Iterable[Finding]) -> list[Finding]:
    """Findings in file order (file, line, column), findings without a location first, then by code."""

    def key(f: Finding) -> tuple[str, int, int, str, str]:
        loc = f.location
        if loc is None:
            return ("", 0, 0, f.code, f.message)
        return (str(loc.file), loc.line, loc.column, f.code, f.message)

    return sorted(findings, key=key)


class ConfigInvalid(ConfigError):
    """The schedule files are invalid; every finding is listed."""

    findings: list[Finding]

    def __init__(self, findings: Iterable[Finding]) -> None:
        self.findings = list(findings)
        errors = sum(1 for f in self.findings if f.severity is Severity.ERROR)
        noun = "error" if errors == 1 else "errors"
        lines = [f"the schedule files have {errors} {noun}:"]
        lines.extend(f.format() for f in self.findings)
        super().__init__("\n".join(lines))
