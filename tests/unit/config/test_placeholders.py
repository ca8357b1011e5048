"""`config.placeholders`: the `%` signs psycopg refuses in cohort and watcher SQL, found from the text alone,
and checked against the real psycopg."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import psycopg
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from scheduler.config.placeholders import COHORT_PARAMETERS, WATCHER_PARAMETERS, problems, statement
from tests.conftest import ADMIN_DSN

if TYPE_CHECKING:
    from collections.abc import Iterator


def test_a_literal_percent_in_like_is_found_with_its_place_and_fix() -> None:
    """`LIKE 'a%'` on the second line of the query: the `%'` at line 2, column 19, and the fix `%%`."""
    query = "select id as key from org\nwhere name like 'a%' and digest_hour = %(hour)s\n"
    [problem] = problems(query, COHORT_PARAMETERS)
    assert (problem.text, problem.line, problem.column) == ("%'", 2, 19)
    assert "`%%`" in problem.message


@pytest.mark.parametrize(
    ("query", "found"),
    [
        ("select 1 as key where 'a%%' like 'a%%' and %(hour)s > 0", []),
        ("select %(tick)s::date, %(schedule)s, %(weekday)b, %(minute)t as key", []),
        ("select 7 % 2 as key", [("% ", 1, 10, "`%%`")]),
        ("select 1 as key -- 100% sure", [("% ", 1, 23, "`%%`")]),
        ("select %(tenant)s as key", [("%(tenant)s", 1, 8, "%(tick)s, %(hour)s")]),
        ("select %s as key", [("%s", 1, 8, "positional")]),
        ("select %(hour)d as key", [("%(hour)d", 1, 8, "`%(hour)s`")]),
        ("select 1 as key where x = %(hour", [("%(hour", 1, 27, "incomplete")]),
        ("select 'a%', 'b%' as key", [("%'", 1, 10, "`%%`"), ("%'", 1, 16, "`%%`")]),
        ("select 'é%é' as key", [("%é", 1, 10, "`%%`")]),  # psycopg fails with UnicodeDecodeError
        # psycopg leaves a `%` alone at the end of the statement or of a line
        ("select 1 as key where 'x' like 'x%\n' ;\n", []),
        ("  select 1 as key, 5 %", []),
        # positions are in the text as written, before the reader strips it
        ("\n\n  select 'a%' as key", [("%'", 3, 12, "`%%`")]),
    ],
)
def test_named_cases(query: str, found: list[tuple[str, int, int, str]]) -> None:
    """Each case: the sequences found, their line and column in the query, and a word of the fix."""
    got = problems(query, COHORT_PARAMETERS)
    assert [(p.text, p.line, p.column) for p in got] == [f[:3] for f in found]
    for problem, (_, _, _, fix) in zip(got, found, strict=True):
        assert fix in problem.message


def test_watcher_parameters_are_their_own() -> None:
    """A watcher binds stuck_after, now and watcher: `%(tick)s` is a schedule's, not a watcher's."""
    query = "select id as key from t where updated_at < %(now)s - %(stuck_after)s and %(tick)s is null"
    [problem] = problems(query, WATCHER_PARAMETERS)
    assert problem.text == "%(tick)s"
    assert "%(stuck_after)s, %(now)s, %(watcher)s" in problem.message


@pytest.fixture(scope="module")
def conn() -> Iterator[psycopg.Connection[Any]]:
    with psycopg.connect(ADMIN_DSN) as conn:
        yield conn


def psycopg_refuses(conn: psycopg.Connection[Any], query: str) -> bool:
    """Whether psycopg refuses `query` with the cohort's parameters before the server sees it (an error of
    the server, a syntax error of this random text, has a SQLSTATE)."""
    try:
        conn.execute(statement(query), dict.fromkeys(COHORT_PARAMETERS, 1))
    except psycopg.Error as exc:
        return exc.sqlstate is None
    except (TypeError, UnicodeDecodeError):
        return True
    finally:
        conn.rollback()
    return False


PIECES = ["%", "%%", "%(hour)", "%(tick", "(", ")", "(hour)", "(tick)", "(x)", "s", "b", "t", "d"]
PIECES += ["'", ";", "é", "a", " ", "\n"]


@settings(max_examples=400, deadline=None)
@given(st.lists(st.sampled_from(PIECES), max_size=12).map("".join))
@example("%(hour)s%(hour)b")  # found by this property: psycopg binds a name in one format only
def test_it_agrees_with_psycopg(conn: psycopg.Connection[Any], query: str) -> None:
    """For texts made of `%`, parentheses, names, format letters, quotes, spaces, newlines, `;` and a
    multi-byte letter: a problem is found exactly when psycopg refuses to bind the cohort's parameters."""
    assert bool(problems(query, COHORT_PARAMETERS)) == psycopg_refuses(conn, query)
