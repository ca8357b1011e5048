"""The Redactor: known secrets and DSN passwords leave no trace in text, whatever surrounds them."""

from __future__ import annotations

from typing import TYPE_CHECKING
from urllib.parse import quote

import psycopg.conninfo
from hypothesis import assume, example, given, settings
from hypothesis import strategies as st

from scheduler.config import load_config
from scheduler.observe.redact import MASK, MIN_SECRET_LENGTH, Environ, Redactor

if TYPE_CHECKING:
    from collections.abc import Callable

passwords = st.text(min_size=MIN_SECRET_LENGTH, max_size=40).filter(lambda p: "\x00" not in p)
"""Any password libpq can carry (it cannot hold a NUL), at least as long as what is replaced everywhere."""
surroundings = st.text(max_size=60)


def url(password: str, *, user: str = "root", host: str = "127.0.0.1", db: str = "app") -> str:
    return f"postgresql://{quote(user, safe='')}:{quote(password, safe='')}@{host}:5432/{db}"


def keywords(password: str) -> str:
    return psycopg.conninfo.make_conninfo(host="127.0.0.1", user="root", password=password, dbname="app")


@settings(max_examples=300, deadline=None)
@given(password=passwords, before=surroundings, after=surroundings, form=st.sampled_from([url, keywords]))
def test_a_configured_dsn_leaves_no_trace_of_its_password_in_any_text(
    password: str, before: str, after: str, form: Callable[[str], str]
) -> None:
    """Taught a DSN (as `scheduler run` is, by the environment), the redactor removes its password from any
    text around it, in the form the DSN wrote it and decoded: nothing of it is left."""
    dsn = form(password)
    redactor = Redactor.from_environ({"QUEUE_URL": dsn})
    out = redactor.text(before + dsn + after)
    assert password not in out
    assert dsn not in out


@settings(max_examples=300, deadline=None)
@given(
    password=passwords,
    user=st.text(alphabet=st.characters(codec="ascii", categories=["L", "N"]), min_size=1, max_size=8),
    before=surroundings,
    after=surroundings,
    form=st.sampled_from(["url", "keywords"]),
)
# Found by this property: a keyword password that starts with `&` was cut to nothing (the URL-query stop).
@example(password="&000", user="0", before="", after="", form="keywords")
def test_any_dsn_in_any_text_loses_its_password_to_the_patterns(
    password: str, user: str, before: str, after: str, form: str
) -> None:
    """Not taught anything, the redactor still finds the password of any PostgreSQL DSN in a text (a URL's
    user info, a `password=` keyword, quoted or not): the text, where the password was, says `***`.

    What the text holds elsewhere is the text's own: the property is about the DSN's password, so the
    surroundings (and the DSN's other parts) must not spell the password themselves."""
    assume(MASK[0] not in password)  # `***` next to a password piece could spell it again
    if form == "url":
        dsn, written = url(password, user=user), quote(password, safe="")
    else:
        dsn = keywords(password)
        written = dsn.split("password=", 1)[1].split(" dbname=", 1)[0]
    text = f"{before} {dsn} {after}"
    start = text.index(written, len(before) + 1)
    elsewhere = text[:start] + MASK + text[start + len(written) :]
    assume(written not in elsewhere)
    out = Redactor().text(text)
    assert written not in out
    assert MASK in out


def test_dsn_shapes_found_without_being_taught() -> None:
    """Each shape a password takes in a message, and what is left of the message."""
    r = Redactor()
    assert r.text("x postgresql://root:S3cr3t@db:5432/app y") == "x postgresql://root:***@db:5432/app y"
    assert r.text("postgres://u:p@ss@db/app") == "postgres://u:***@db/app"
    assert r.text("host=db password='a b\\' c' dbname=x") == "host=db password=*** dbname=x"
    assert r.text("PGPASSWORD=hunter22 next") == "PGPASSWORD=*** next"
    assert r.text("postgresql://db/app?user=u&password=pw&sslmode=require") == (
        "postgresql://db/app?user=u&password=***&sslmode=require"
    )
    # a value cut short (a truncated message): what follows the user is taken for a password
    assert r.text("cut at postgresql://root:S3cr") == "cut at postgresql://root:***"
    # libpq repeats what it could not parse
    assert r.text('missing "=" after "postgresql//root:S3cr3t@db/app" in connection info string') == (
        'missing "=" after "***" in connection info string'
    )
    # nothing to hide: untouched
    assert (
        r.text("postgresql://root@db:5432/app and 2 + 2 = 4") == "postgresql://root@db:5432/app and 2 + 2 = 4"
    )


def test_a_crafted_value_cannot_hide_a_later_password() -> None:
    """A quoted `password=` value that swallows the next keyword does not shield that keyword's value."""
    assert "p w" not in Redactor().text("password='x password='p w' dbname=app")


def test_secret_environment_values_by_name_or_by_content() -> None:
    """Secret-named variables and DSN-holding ones are learned; switches and ordinary values are not."""
    r = Redactor.from_environ(
        {
            "API_TOKEN": "tok-9f8e7d6c",
            "STRIPE_SECRET_KEY": "sk_live_abcdef",
            "SENTRY_DSN": "https://public@o1.ingest.sentry.io/1",
            "SOME_URL": "host=db password=kw-Pa55word",
            "SENTRY_DSN_ENABLED": "true",
            "HOME": "/home/app",
            "PGPASSWORD": "abc",
        }
    )
    out = r.text(
        "tok-9f8e7d6c sk_live_abcdef https://public@o1.ingest.sentry.io/1 kw-Pa55word true /home/app"
    )
    assert out == "*** *** *** *** true /home/app"
    assert r.text("abc") == "abc"  # shorter than MIN_SECRET_LENGTH: found only inside a DSN


def test_learn_config_adds_the_dsns_the_files_name(tmp_path: object) -> None:
    """The DSN of a declared database is learned whatever its variable is called, even without a password
    keyword or URL in it (the whole value is a secret)."""
    from pathlib import Path

    path = Path(str(tmp_path)) / "s.yaml"
    path.write_text("version: 1\ndatabases:\n  queue: { dsn_env: Q }\n")
    config = load_config([path]).config
    r = Redactor()
    r.learn_config(config, {"Q": "host=db.internal user=svc dbname=queue sslkey=/k"})
    assert r.text("dsn host=db.internal user=svc dbname=queue sslkey=/k end") == "dsn *** end"


def test_value_redacts_nested_structures_keys_included() -> None:
    r = Redactor(["hunter2-secret"])
    doc = {
        "a": ["x hunter2-secret", ("hunter2-secret",)],
        "hunter2-secret": 1,
        "n": 2.5,
        "b": None,
        "t": True,
    }
    assert r.value(doc) == {"a": ["x ***", ["***"]], "***": 1, "n": 2.5, "b": None, "t": True}
    assert r.value(ValueError("boom hunter2-secret")) == "boom ***"


def test_environ_repr_hides_values() -> None:
    env = Environ({"A_PASSWORD": "p4ssw0rd-value", "B": "x"})
    assert repr(env) == "Environ(<2 variables>)"
    assert "p4ssw0rd" not in str(env) + repr({"env": env})
    assert env["A_PASSWORD"] == "p4ssw0rd-value"
    assert dict(Environ(env)) == {"A_PASSWORD": "p4ssw0rd-value", "B": "x"}
