"""Load named SQL statements from a `.sql` file that sits next to the module using them.

A file is a series of blocks, each opening with a header line `-- name: <noun>_<verb>[_many] :<kind>` and a
comment line saying what it does. Statements load once, at import, into a dict of `LiteralString`.
Identifiers (a configurable schema) are written `{name}` and filled only through `psycopg.sql.Identifier`.
"""

from __future__ import annotations

import re
from importlib import resources
from typing import LiteralString

_HEADER = re.compile(r"^--\s*name:\s*(?P<name>[a-z0-9_]+)(?:\s+:(?P<kind>[a-z]+))?\s*$", re.MULTILINE)


def parse_queries(text: str) -> dict[str, LiteralString]:
    """Split `text` into named statements. Raises ValueError on a duplicate or an empty statement."""
    queries: dict[str, LiteralString] = {}
    headers = list(_HEADER.finditer(text))
    for i, header in enumerate(headers):
        end = headers[i + 1].start() if i + 1 < len(headers) else len(text)
        body = text[header.end() : end].strip()
        name = header.group("name")
        if name in queries:
            raise ValueError(f"SQL statement {name!r} is defined twice")
        if not body or all(line.lstrip().startswith("--") for line in body.splitlines()):
            raise ValueError(f"SQL statement {name!r} is empty")
        # The leading comment lines describe the statement; psycopg does not parse SQL comments, so a `%`
        # in them would count as a placeholder. The statement starts at its first non-comment line.
        lines = body.splitlines()
        while lines and lines[0].lstrip().startswith("--"):
            lines.pop(0)
        # The text comes from a file shipped in the package, never from user input.
        queries[name] = "\n".join(lines)
    return queries


def load_queries(package: str, filename: str) -> dict[str, LiteralString]:
    """Load the named statements of `filename`, a resource of `package`."""
    text = resources.files(package).joinpath(filename).read_text(encoding="utf-8")
    return parse_queries(text)
