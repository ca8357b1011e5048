"""Keep secrets inside the process: every text the scheduler writes out (log lines, `--json`, `status`,
`/readyz`, CLI errors, Sentry events) goes through a `Redactor` first.

A `Redactor` replaces with `***`:

- the values it was told are secret: the DSNs of the configured databases (whole, and their passwords),
  and the values of the environment variables that look secret (a name with PASSWORD, SECRET, TOKEN, DSN,
  DATABASE_URL, API_KEY, ...; or a value holding a PostgreSQL DSN with a password);
- whatever any text carries as a PostgreSQL password, known or not: the password of a
  `postgres[ql]://user:password@host` URL, the value of any `password=` keyword (libpq's `key=value`
  strings, a URL's query), and the quoted pieces of a DSN that libpq's parse errors repeat (`missing "="
  after "<the DSN>" in connection info string`).

Values shorter than `MIN_SECRET_LENGTH` are not replaced wherever they appear (a two-letter password would
cut every word it spells); the patterns still remove them from DSNs. `Environ` wraps an environment mapping
so that its repr (in a traceback, a debugger, an object's repr) shows how many variables it holds, never
their values.
"""

from __future__ import annotations

import os
import re
import threading
from collections.abc import Iterable, Iterator, Mapping
from datetime import date, time, timedelta
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote

import psycopg.conninfo

if TYPE_CHECKING:
    from scheduler.config.models import Config

MASK = "***"
MIN_SECRET_LENGTH = 4
"""Shorter values are too likely to be parts of ordinary words or numbers to be replaced everywhere."""
_SECRET_NAME = re.compile(
    r"PASSWORD|PASSWD|PASSPHRASE|SECRET|TOKEN|DSN|DATABASE_URL|CREDENTIAL|API_?KEY|PRIVATE_?KEY",
    re.IGNORECASE,
)
"""Environment variable names whose values are secrets (a substring match, case-insensitive)."""
_NOT_SECRET = frozenset({"true", "false", "none", "null", "yes", "no", "on", "off"})
"""Values of secret-named variables that are switches, not secrets (`SENTRY_DSN_ENABLED=true`)."""
_URL_SCHEME = re.compile(r"postgres(?:ql)?://", re.IGNORECASE)
_AUTHORITY_END = re.compile(r"[/?#\s]")
_PASSWORD_KEYWORD = re.compile(r"password\s*=\s*", re.IGNORECASE)
_CONNINFO_ERROR = re.compile(r"connection info string| in URI|percent-encoded", re.IGNORECASE)
"""libpq's messages about a DSN it could not parse: they quote the DSN, or a part of it."""
_QUOTED = re.compile(r'"([^"\n]*)"')
_HINTS = re.compile(r"postgres|password|connection info string| in URI|percent-encoded", re.IGNORECASE)
"""A text without any of these (and without a known secret) has nothing to redact."""
_MAX_PASSES = 8
"""Replacing a secret can join its neighbours into another one (`a` + `***` when the secret is `a**`): the
redaction repeats until nothing known is left, a bounded number of times (each pass shortens the text)."""


class Environ(Mapping[str, str]):
    """A read-only view of an environment whose repr hides it: `Environ(<37 variables>)`."""

    __slots__ = ("_data",)

    def __init__(self, data: Mapping[str, str]) -> None:
        self._data = data.data if isinstance(data, Environ) else data

    @property
    def data(self) -> Mapping[str, str]:
        return self._data

    def __getitem__(self, key: str) -> str:
        return self._data[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._data)

    def __len__(self) -> int:
        return len(self._data)

    def __repr__(self) -> str:
        return f"Environ(<{len(self._data)} variables>)"

    __str__ = __repr__


def secret_name(name: str) -> bool:
    """Whether an environment variable's name says its value is a secret."""
    return _SECRET_NAME.search(name) is not None


def dsn_secrets(dsn: str) -> set[str]:
    """What of `dsn` is secret: the DSN itself and its password (as written, and decoded from a URL)."""
    found = {dsn}
    try:
        password = psycopg.conninfo.conninfo_to_dict(dsn).get("password")
    except psycopg.Error:  # not a valid DSN: the patterns still remove what looks like a password
        password = None
    if password:
        found.add(str(password))
    for start, end in _url_password_spans(dsn):
        found.add(dsn[start:end])
        found.add(unquote(dsn[start:end]))
    return found


def _looks_like_dsn(value: str) -> bool:
    return _URL_SCHEME.search(value) is not None or _PASSWORD_KEYWORD.search(value) is not None


class Redactor:
    """Replaces known secrets and DSN passwords in text (and in nested JSON-like values) with `***`.

    Thread-safe: `learn` swaps in a new set of secrets at once, and readers use one set per call.
    """

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        self._lock = threading.Lock()
        self._secrets: frozenset[str] = frozenset()
        self._pattern: re.Pattern[str] | None = None
        self.add(secrets)

    @classmethod
    def from_environ(cls, environ: Mapping[str, str] | None = None) -> Redactor:
        """A redactor of the secret-looking values of `environ` (default: this process's environment)."""
        redactor = cls()
        redactor.learn_environ(os.environ if environ is None else environ)
        return redactor

    def add(self, secrets: Iterable[str]) -> None:
        """Also replace these values (those shorter than `MIN_SECRET_LENGTH` are ignored)."""
        with self._lock:
            known = self._secrets | {
                s for s in (str(v) for v in secrets) if len(s) >= MIN_SECRET_LENGTH and s != MASK
            }
            if known == self._secrets:
                return
            # Longest first: a DSN goes as a whole before its password is looked for inside it.
            ordered = sorted(known, key=lambda s: (-len(s), s))
            self._pattern = re.compile("|".join(re.escape(s) for s in ordered)) if ordered else None
            self._secrets = known

    def learn_environ(self, environ: Mapping[str, str]) -> None:
        """Add the values of `environ` that are secrets: by their variable's name, or holding a DSN."""
        found: set[str] = set()
        for name, value in environ.items():
            if not value:
                continue
            if _looks_like_dsn(value):
                found |= dsn_secrets(value)
            elif secret_name(name) and value.strip().lower() not in _NOT_SECRET:
                found.add(value)
        self.add(found)

    def learn_config(self, config: Config, environ: Mapping[str, str]) -> None:
        """Add the DSNs of the databases `config` declares (read from `environ`, as connections do)."""
        found: set[str] = set()
        for ref in config.databases.values():
            value = environ.get(ref.dsn_env, "")
            if value.strip():
                found |= dsn_secrets(value) | dsn_secrets(value.strip())
        self.add(found)

    def text(self, text: str) -> str:
        """`text` without any known secret or DSN password."""
        for _ in range(_MAX_PASSES):
            redacted = self._once(text)
            if redacted == text:
                return text
            text = redacted
        return text

    def _once(self, text: str) -> str:
        pattern = self._pattern
        known = pattern is not None and pattern.search(text) is not None
        if not known and _HINTS.search(text) is None:
            return text  # the common case, cheaply: nothing known, nothing that looks like a DSN
        if pattern is not None:
            text = pattern.sub(MASK, text)
        spans = sorted(
            _url_password_spans(text) + _keyword_password_spans(text) + _conninfo_error_spans(text)
        )
        if not spans:
            return text
        parts: list[str] = []
        at = 0
        for start, end in _merged(spans):
            parts += [text[at:start], MASK]
            at = end
        parts.append(text[at:])
        return "".join(parts)

    def value(self, value: Any) -> Any:
        """`value` with every string in it (dict keys included) redacted; lists, tuples and dicts are
        rebuilt, numbers, booleans, None and times kept, anything else replaced by its redacted `str`."""
        if isinstance(value, str):
            return self.text(value)
        if value is None or isinstance(value, bool | int | float | date | time | timedelta):
            return value
        if isinstance(value, Mapping):
            return {self.value(k) if isinstance(k, str) else k: self.value(v) for k, v in value.items()}
        if isinstance(value, list | tuple):
            return [self.value(v) for v in value]
        return self.text(str(value))

    def __repr__(self) -> str:
        return f"Redactor(<{len(self._secrets)} secrets>)"


def _url_password_spans(text: str) -> list[tuple[int, int]]:
    """Where the passwords of `postgres[ql]://user:password@host` URLs are in `text`.

    The user info ends at the authority's last `@`. An authority that runs to the end of the text may have
    been cut (a truncated message): without an `@`, what follows its first `:` counts as a password."""
    spans: list[tuple[int, int]] = []
    for match in _URL_SCHEME.finditer(text):
        start = match.end()
        end_match = _AUTHORITY_END.search(text, start)
        end = end_match.start() if end_match else len(text)
        authority = text[start:end]
        at = authority.rfind("@")
        userinfo = authority[:at] if at >= 0 else (authority if end_match is None else "")
        colon = userinfo.find(":")
        if colon >= 0 and colon + 1 < len(userinfo):
            spans.append((start + colon + 1, start + len(userinfo)))
    return spans


def _keyword_password_spans(text: str) -> list[tuple[int, int]]:
    """Where the values of `password=` keywords are: quoted (libpq's `'...'` with backslash escapes, up to
    the closing quote or the end), or up to the next space (or `&`, in a URL's query).

    Every keyword is looked at, even inside another one's value, so a crafted earlier value cannot hide a
    later password."""
    spans: list[tuple[int, int]] = []
    for match in _PASSWORD_KEYWORD.finditer(text):
        start = match.end()
        if start >= len(text):
            continue
        if text[start] == "'":
            end = start + 1
            while end < len(text) and text[end] != "'":
                end += 2 if text[end] == "\\" else 1
            end = min(end + 1, len(text))
        else:
            # In a URL's query (`?password=...&sslmode=...`) a literal `&` ends the value (the URL would
            # percent-encode one in the password); in libpq's key=value form only a space does.
            in_query = match.start() > 0 and text[match.start() - 1] in "?&"
            end = start
            while end < len(text) and not text[end].isspace() and not (in_query and text[end] == "&"):
                end += 1
        if end > start:
            spans.append((start, end))
    return spans


def _conninfo_error_spans(text: str) -> list[tuple[int, int]]:
    """The quoted pieces (two characters or more: `"="` names the syntax) of each line of `text` that is a
    libpq parse error of a DSN."""
    if _CONNINFO_ERROR.search(text) is None:
        return []
    spans: list[tuple[int, int]] = []
    at = 0
    for line in text.splitlines(keepends=True):
        if _CONNINFO_ERROR.search(line):
            spans += [(at + m.start(1), at + m.end(1)) for m in _QUOTED.finditer(line) if len(m[1]) > 1]
        at += len(line)
    return spans


def _merged(spans: list[tuple[int, int]]) -> Iterator[tuple[int, int]]:
    """Sorted spans, overlapping or touching ones joined."""
    current: tuple[int, int] | None = None
    for start, end in spans:
        if current is not None and start <= current[1]:
            current = (current[0], max(current[1], end))
            continue
        if current is not None:
            yield current
        current = (start, end)
    if current is not None:
        yield current
