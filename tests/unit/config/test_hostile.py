"""Hostile schedule files: each root cause the fuzzer found is a located finding, never a traceback.

One test per cause (a calendar-invalid date, a NUL or form-feed byte, an unknown tag, a time zone that names
a directory, an infinite or huge duration, deep nesting, billion laughs, a huge file), plus the bounds that
make what passes `validate` run (durations, windows, integers, cron syntax, names, static data).
"""

from __future__ import annotations

import tracemalloc
from typing import TYPE_CHECKING

import pytest

from scheduler.config import ConfigInvalid, Finding, Severity, load_config
from scheduler.config import loader as loader_module
from scheduler.config.findings import escape
from scheduler.config.loader import MAX_DEPTH, MAX_FILE_BYTES, MAX_VALUES

if TYPE_CHECKING:
    from pathlib import Path

    from tests.unit.config.conftest import Errors, Load, Write

DIGEST = """\
schedules:
  digest:
    cron: "0 * * * *"
    cohort: { sql: select 1 }
    queue: plain
"""


def billion_laughs(levels: int) -> str:
    """`levels` anchors, each a list of nine aliases of the one before: 9**levels values in ~40 bytes a level."""
    lines = ['l0: &l0 ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    lines += [f"l{i}: &l{i} [{','.join([f'*l{i - 1}'] * 9)}]" for i in range(1, levels)]
    return "\n".join(lines) + "\n"


def findings_of(path: Path) -> list[Finding]:
    with pytest.raises(ConfigInvalid) as caught:
        load_config([path])
    return caught.value.findings


def traced(path: Path) -> tuple[list[Finding], int]:
    """The findings of loading an invalid `path`, and the peak of Python allocations meanwhile (tracemalloc)."""
    tracemalloc.start()
    try:
        found = findings_of(path)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return found, peak


# ---------------------------------------------------------------------------------------------------------
# limits: size, nesting, alias expansion


def test_billion_laughs_stops_at_the_value_limit_in_bounded_memory(
    write: Write, monkeypatch: pytest.MonkeyPatch
) -> None:
    """351 bytes that expand to 4.8 million values: one CFG012 at the entry that passes the limit, after exactly
    MAX_VALUES + 1 values made, in tens of MB (2.2 GB and 31 s before the limit)."""
    walkers: list[loader_module._Walker] = []

    class Counted(loader_module._Walker):
        def __init__(self, file: Path) -> None:
            super().__init__(file)
            walkers.append(self)

    monkeypatch.setattr(loader_module, "_Walker", Counted)
    path = write(billion_laughs(7), header=False)
    found, peak = traced(path)
    assert [w._count for w in walkers] == [MAX_VALUES + 1]
    assert [f.format() for f in found] == [
        f"{path}:6:1: CFG012 error: the file expands to more than {MAX_VALUES:,} values, the limit for a schedule "
        "file (every alias `*name` counts as a copy of what it names); use fewer or smaller aliases, or split "
        "the file"
    ]
    assert peak < 128 * 1024 * 1024


def test_aliases_below_the_limit_still_load(load: Load) -> None:
    """Anchors, aliases and merge keys are fine while the expansion stays under the limit."""
    loaded = load(
        "schedules:\n  digest: &d\n    cron: '0 * * * *'\n    cohort: { sql: select 1 }\n    queue: plain\n"
        "  other:\n    <<: *d\n    cron: '5 * * * *'\n"
    )
    assert loaded is not None


def test_a_file_over_one_mib_is_refused_without_parsing(write: Write) -> None:
    """A file past MAX_FILE_BYTES is one CFG012 at its first line; it is never read whole, let alone parsed."""
    path = write("# padding\n" * (MAX_FILE_BYTES // 10 + 1), header=False)
    found, peak = traced(path)
    assert [f.format() for f in found] == [
        f"{path}:1:1: CFG012 error: the file is larger than 1 MiB, the limit for one schedule file; split it "
        "into several files, or move large static cohorts into an SQL cohort"
    ]
    assert peak < 4 * MAX_FILE_BYTES


def test_deep_nesting_is_a_finding_at_the_limit(write: Write) -> None:
    """10,000 nested lists (a RecursionError in the composer before) stop at depth MAX_DEPTH with a location."""
    path = write("x: " + "[" * 10_000 + "]" * 10_000 + "\n", header=False)
    assert [f.format() for f in findings_of(path)] == [
        f"{path}:1:{3 + MAX_DEPTH}: CFG012 error: mappings and lists nest more than {MAX_DEPTH} deep here, the "
        "limit for a schedule file; flatten the structure"
    ]


def test_a_chain_of_merge_keys_is_bounded_like_nesting(write: Write) -> None:
    """Merges that each merge the one before nest through the walker, not the text: bounded all the same."""
    chain = "m0: &m0 { a: 1 }\n" + "".join(f"m{i}: &m{i} {{ <<: *m{i - 1} }}\n" for i in range(1, 200))
    found = findings_of(write(chain, header=False))
    assert [(f.code, f.location is not None) for f in found] == [("CFG012", True)]
    assert "through aliases or merge keys" in found[0].message


def test_a_mapping_that_merges_itself_is_a_finding(write: Write) -> None:
    """`&a { <<: *a }` refers to itself: a finding, not endless recursion."""
    path = write("x: &a { b: 1, <<: *a }\n", header=False)
    assert f"{path}:1:4: CFG001 error: malformed YAML: `<<` merges a mapping that contains it" in "\n".join(
        f.format() for f in findings_of(path)
    )


# ---------------------------------------------------------------------------------------------------------
# bytes and characters


@pytest.mark.parametrize(
    ("char", "shown"),
    [("\x00", "'\\x00' (U+0000)"), ("\x0c", "'\\x0c' (U+000C)"), ("\x1b", "'\\x1b' (U+001B)")],
)
def test_a_control_byte_is_a_located_finding(write: Write, errors: Errors, char: str, shown: str) -> None:
    """A raw NUL, form feed or ESC in the file (a ReaderError raised before parsing began) is located."""
    path = write(DIGEST.replace("select 1", f"select{char}1"))
    assert errors(path) == [
        f"{path}:14:26: CFG001 error: malformed YAML: character {shown} is not allowed in a YAML file; remove it "
        "(write it as an escape inside double quotes if it belongs in a value)"
    ]


def test_a_nul_escape_in_text_is_refused_where_it_is_written(write: Write, errors: Errors) -> None:
    """`"select\\0"` is valid YAML, but PostgreSQL text cannot hold a NUL: refused at the value."""
    path = write(DIGEST.replace("select 1", '"select\\0"'))
    assert errors(path) == [
        f"{path}:14:20: CFG001 error: 'select\\x00' contains a NUL character (\\0), which PostgreSQL text "
        "cannot hold; remove it"
    ]


def test_a_lone_surrogate_is_refused_and_the_finding_prints(write: Write) -> None:
    """`"\\ud800"` is not Unicode text: a finding, and the finding itself encodes as UTF-8."""
    found = findings_of(write(DIGEST.replace("select 1", '"select \\ud800"')))
    assert [f.code for f in found] == ["CFG001"]
    assert "lone UTF-16 surrogate" in found[0].message
    found[0].format().encode("utf-8")


def test_a_file_that_is_not_utf8_names_the_byte(write: Write, tmp_path: Path) -> None:
    """Latin-1 bytes are CFG011 at the line and column of the first bad byte."""
    path = tmp_path / "latin1.yaml"
    path.write_bytes(b"version: 1\n# caf\xe9\n")
    assert [f.format() for f in findings_of(path)] == [
        f"{path}:2:6: CFG011 error: the file is not UTF-8 text (byte 0xe9 cannot start or continue a character "
        "here); save it as UTF-8"
    ]


def test_two_documents_in_one_file_say_keep_one(write: Write) -> None:
    """A second `---` document is a finding that says one document per file."""
    found = findings_of(write("version: 1\n---\nversion: 1\n", header=False))
    assert [f.code for f in found] == ["CFG001"]
    assert "keep one YAML document per file" in found[0].message


# ---------------------------------------------------------------------------------------------------------
# tags and values a tag cannot read


def test_a_calendar_invalid_date_is_located_at_the_value(write: Write, errors: Errors) -> None:
    """`2024-02-30` looks like a date to YAML, and is not one (a ValueError in the constructor before)."""
    path = write(
        "schedules:\n  digest:\n    cron: '0 * * * *'\n    queue: plain\n"
        "    cohort: { static: [ { key: a, data: { due: 2024-02-30 } } ] }\n"
    )
    assert errors(path) == [
        f"{path}:15:48: CFG001 error: malformed YAML: '2024-02-30' cannot be read as a date or time (day is out of "
        "range for month); fix the date, or quote it to keep it as text"
    ]


@pytest.mark.parametrize(
    ("tag", "shown"),
    [
        ("!foo", "'!foo'"),
        ("!!python/object/apply:os.system", "'!!python/object/apply:os.system'"),
        ("!!binary", "'!!binary'"),
        ("!!set", "'!!set'"),
    ],
)
def test_an_unknown_or_unsafe_tag_is_refused(write: Write, errors: Errors, tag: str, shown: str) -> None:
    """Only the plain YAML types are read; any other tag is a finding at the tagged value."""
    path = write(DIGEST.replace("select 1", f"{tag} select"))
    assert errors(path) == [
        f"{path}:14:20: CFG001 error: malformed YAML: tag {shown} is not supported here; schedule files hold "
        "plain strings, numbers, booleans, nulls, dates, mappings and lists: remove the tag, or quote the "
        "value if it is text starting with `!`"
    ]


def test_a_tag_on_a_mapping_is_refused(write: Write) -> None:
    """`!!omap`, `!!set` or a local tag on a mapping or list is refused too (it was silently ignored)."""
    found = findings_of(write(DIGEST.replace("{ sql: select 1 }", "!!set { sql: select 1 }")))
    assert "tag '!!set' is not supported here" in found[0].message


@pytest.mark.parametrize(
    ("value", "what"),
    [("!!int many", "an integer"), ("!!float x", "a number"), ("!!bool maybe", "true or false")],
)
def test_a_value_its_tag_cannot_read_is_a_finding(write: Write, value: str, what: str) -> None:
    """`!!int many` (a ValueError before), `!!bool maybe` (a KeyError), `!!timestamp x` (an AttributeError)."""
    found = findings_of(write(f"schedules:\n  digest:\n    priority: {value}\n"))
    assert [f.code for f in found if f.code == "CFG001"] == ["CFG001"]
    assert f"cannot be read as {what}" in next(f.message for f in found if f.code == "CFG001")


def test_an_integer_of_5000_digits_is_a_finding(write: Write) -> None:
    """Python refuses to convert it (a ValueError from PyYAML before)."""
    found = findings_of(write(f"schedules:\n  digest:\n    priority: {'9' * 5000}\n"))
    assert any(f.code == "CFG001" and "cannot be read as an integer" in f.message for f in found)


# ---------------------------------------------------------------------------------------------------------
# time zones


@pytest.mark.parametrize(
    "zone", ["America", "Etc", "posix", "localtime", "right/UTC", "posix/UTC", "zone.tab", ""]
)
def test_a_time_zone_that_is_not_an_iana_zone_is_refused(write: Write, zone: str) -> None:
    """A directory of the zone database (an IsADirectoryError before), a data file, the host's localtime."""
    found = findings_of(write(DIGEST + f"    timezone: '{zone}'\n"))
    assert [f.code for f in found] == ["CFG005"]
    assert f"unknown time zone {zone!r}" in found[0].message


# ---------------------------------------------------------------------------------------------------------
# durations and windows


@pytest.mark.parametrize("window", [".inf", ".nan", "1e400", "1e300", "99999999999d", "9999999999999999999s"])
def test_an_infinite_or_huge_duration_is_refused(write: Write, window: str) -> None:
    """An infinite, NaN or overflowing duration (an OverflowError out of pydantic before) is CFG005."""
    found = findings_of(write(DIGEST + f"    stagger: {{ window: {window} }}\n"))
    assert [(f.code, f.location is not None) for f in found] == [("CFG005", True)]


@pytest.mark.parametrize(
    ("line", "limit"),
    [
        ("    stagger: { window: 367d }\n", "the window 367d is longer than 366d, the limit"),
        ("    catch_up: 400d\n", "the window 400d is longer than 366d, the limit"),
        ("    expire_in: 25h\n", "the expiry 1d1h is longer than 1d, the limit"),
        ("    retry_delay: 999d\n", "the retry delay 999d is longer than 366d, the limit"),
    ],
)
def test_windows_and_durations_name_their_bound(write: Write, line: str, limit: str) -> None:
    """A window past its bound would overflow `tick ± window` at run time: refused, naming the bound."""
    found = findings_of(write(DIGEST + line))
    assert [f.code for f in found] == ["CFG005"]
    assert limit in found[0].message


def test_a_statement_timeout_of_zero_is_refused(write: Write) -> None:
    """0 would turn PostgreSQL's statement timeout off: the cohort must have a deadline."""
    found = findings_of(
        write(DIGEST.replace("{ sql: select 1 }", "{ sql: select 1, statement_timeout: 0s }"))
    )
    assert [f.code for f in found] == ["CFG005"]
    assert "statement_timeout: input should be greater than 0 seconds" in found[0].message


def test_a_watcher_that_scans_without_pause_is_refused(write: Write) -> None:
    """`every: 0s` would be a busy loop on the app database."""
    found = findings_of(write("watchers:\n  w:\n    every: 0s\n    sql: select 1 as key\n    queue: plain\n"))
    assert "the scan interval 0s is shorter than 1s, the minimum" in found[0].message


@pytest.mark.parametrize("value", ["priority: 2147483648", "priority: -2147483649", "retry_limit: -1"])
def test_integers_fit_postgresql_integer_columns(write: Write, value: str) -> None:
    """A priority or retry limit is an `integer` column in both queue systems."""
    found = findings_of(write(DIGEST + f"    {value}\n"))
    assert [f.code for f in found] == ["CFG005"]


# ---------------------------------------------------------------------------------------------------------
# cron: standard and deterministic only


@pytest.mark.parametrize(
    "cron",
    [
        "R * * * *",  # croniter: random, a different tick on each replica
        "H * * * *",  # Jenkins: hashed
        "0 0 L * *",  # Quartz: last day of the month
        "0 0 * * 5L",
        "0 0 15W * *",
        "0 0 * * 1#2",
        "0 0 ? * *",
        "0 0 * * * *",  # seconds
        "0 0 0 * * * 2030",  # seconds and years
        "@reboot",
        "5-1 * * * *",  # a backwards range croniter wraps around
        "*/0 * * * *",
    ],
)
def test_non_standard_cron_is_refused(write: Write, cron: str) -> None:
    """Only standard 5-field cron passes: a tick must be a pure function of the schedule, the same everywhere."""
    found = findings_of(write(DIGEST.replace('"0 * * * *"', f'"{cron}"')))
    assert [(f.code, f.location is not None) for f in found] == [("CFG005", True)]
    assert f"cron {cron!r}" in found[0].message


@pytest.mark.parametrize(
    "cron", ["0 0 * jan-mar mon-fri", "*/15 9-17 * * 1-5", "0 0 1,15 * *", "0 0 * * 7", "@daily", "@hourly"]
)
def test_standard_cron_still_passes(write: Write, cron: str) -> None:
    """Names, ranges, lists, steps, Sunday as 7, and the macros."""
    assert (
        load_config([write(DIGEST.replace('"0 * * * *"', f'"{cron}"'))]).config.schedules["digest"].cron
        == cron
    )


# ---------------------------------------------------------------------------------------------------------
# names and what findings print


def test_a_schedule_name_with_a_newline_and_an_escape_is_refused_and_printed_escaped(write: Write) -> None:
    """A name that could forge a line or drive the terminal is refused; its finding prints on one line."""
    path = write(DIGEST.replace("  digest:", '  "digest\\n\\e[31mx":'))
    found = findings_of(path)
    assert [f.code for f in found] == ["CFG005"]
    line = found[0].format()
    assert "\n" not in line
    assert "\x1b" not in line
    assert "\\x1b[31m" in line


@pytest.mark.parametrize("name", ["has space", "-starts-with-dash", "x" * 129, "ümlaut", "tab\there"])
def test_names_outside_the_charset_are_refused(write: Write, name: str) -> None:
    """Names are ASCII letters, digits, `_ - . /` (pg-boss's queue-name rule), at most 128 characters."""
    found = findings_of(write(DIGEST.replace("  digest:", f'  "{name}":')))
    assert any(f.code == "CFG005" and "is not allowed" in f.message for f in found)


def test_a_pgboss_queue_name_outside_pgboss_rules_is_refused(write: Write) -> None:
    """pg-boss refuses such a queue name itself; validate says so first."""
    found = findings_of(write("queues:\n  odd: { name: 'odd name', backend: pgboss }\n", header=False))
    assert "pg-boss queue name 'odd name' is not allowed" in found[0].message


def test_escape_leaves_printable_text_and_escapes_the_rest() -> None:
    """Control, format, separator and surrogate characters become escapes; letters and spaces stay."""
    assert escape("café 日本 a b") == "café 日本 a b"
    assert (
        escape("a\nb\r\tc\x1b[2J\u2028\u202e\ud800\x00") == "a\\nb\\r\\tc\\x1b[2J\\u2028\\u202e\\ud800\\x00"
    )


def test_finding_format_is_always_one_line() -> None:
    """Whatever a message holds, `format()` is one printable line."""
    finding = Finding("CFG005", Severity.ERROR, "schedule 'a\nb\x1b[0m' is bad")
    assert finding.format() == "CFG005 error: schedule 'a\\nb\\x1b[0m' is bad"


# ---------------------------------------------------------------------------------------------------------
# static data the queues could not hold


@pytest.mark.parametrize(
    ("data", "problem"),
    [
        ("{ due: 2024-02-01 }", "data.due: date '2024-02-01' is not a JSON value; quote it"),
        ("{ ratio: .nan }", "data.ratio: nan is not a JSON number"),
        ("{ nested: { 1: x } }", "data.nested: key 1 is not a string; quote it"),
    ],
)
def test_static_data_must_be_json(write: Write, data: str, problem: str) -> None:
    """A date, a NaN or a numeric key would fail the enqueue at every tick: refused at load."""
    path = write(
        "schedules:\n  digest:\n    cron: '0 * * * *'\n    queue: plain\n"
        f"    cohort: {{ static: [ {{ key: a, data: {data} }} ] }}\n"
    )
    found = findings_of(path)
    assert [f.code for f in found] == ["CFG005"]
    assert problem in found[0].message


# ---------------------------------------------------------------------------------------------------------
# the safety net


def test_an_unexpected_error_is_a_finding_not_a_traceback(
    write: Write, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Should a check have a bug, load_config still raises only ConfigInvalid, with a CFG013 naming it."""

    def broken(*args: object) -> object:
        raise RuntimeError("boom")

    monkeypatch.setattr(loader_module, "validate_model", broken)
    found = findings_of(write(DIGEST))
    assert [f.code for f in found] == ["CFG013"]
    assert "RuntimeError: boom" in found[0].message


def test_an_unexpected_error_while_parsing_names_the_file(
    write: Write, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A bug while walking one file is a CFG013 at that file."""

    def broken(*args: object) -> object:
        raise LookupError("walker bug")

    monkeypatch.setattr(loader_module._Walker, "value", broken)
    path = write(DIGEST)
    found = findings_of(path)
    assert [(f.code, f.location is not None and f.location.file) for f in found] == [("CFG013", path)]
