"""Bad input through the real CLI: findings with file:line:col, exit codes, no tracebacks, --help."""

from __future__ import annotations

import json
import re
from typing import TYPE_CHECKING

import pytest

from tests.acceptance.cli import scheduler
from tests.integration.pgboss.interop import node, to_url

if TYPE_CHECKING:
    from pathlib import Path

MALFORMED = 'version: 1\nschedules:\n  a:\n    cron: "0 * * * *"\n    cohort: { static: [ { key: a }\n'
UNKNOWN_KEY = """\
version: 1
databases:
  app: { dsn_env: APP_DATABASE_URL }
  queue: { dsn_env: QUEUE_DATABASE_URL }
queues:
  q: { name: generate-insight-post, backend: pgboss, policy: stately }
schedules:
  a:
    cron: "0 * * * *"
    cohort: { static: [ { key: a } ] }
    queue: q
    singelton_key: "x:{key}"
"""
KEYLESS_INTO_STATELY = UNKNOWN_KEY.replace('    singelton_key: "x:{key}"\n', "").replace(
    "[ { key: a } ]", "[ { key: a }, { key: b }, { key: c } ]"
)


def test_malformed_yaml_is_one_located_finding(tmp_path: Path) -> None:
    """An unclosed flow sequence: `file:6:1: CFG001 error: malformed YAML...` on stdout, exit 1, no traceback."""
    (tmp_path / "bad.yaml").write_text(MALFORMED)

    done = scheduler("validate", "bad.yaml", cwd=tmp_path)

    assert done.returncode == 1
    lines = done.stdout.splitlines()
    assert len(lines) == 1
    assert lines[0].startswith("bad.yaml:6:1: CFG001 error: malformed YAML: ")
    assert "Traceback" not in done.stdout + done.stderr


def test_an_unknown_key_names_its_place_and_the_likely_key(tmp_path: Path) -> None:
    """A misspelt `singleton_key` gives `file:12:5: CFG004 error: unknown key ... did you mean`, exit 1."""
    (tmp_path / "s.yaml").write_text(UNKNOWN_KEY)

    done = scheduler("validate", "s.yaml", cwd=tmp_path)

    assert done.returncode == 1
    assert done.stdout.splitlines() == [
        "s.yaml:12:5: CFG004 error: unknown key 'singelton_key' in schedules.a (did you mean 'singleton_key'?); "
        "allowed keys: catch_up, cohort, cron, enabled, expected_drops, expire_in, lane, priority, queue, "
        "retry_delay, retry_limit, singleton_key, stagger, timezone"
    ]
    assert "Traceback" not in done.stdout + done.stderr


def test_check_db_flags_a_keyless_fanout_into_a_live_stately_queue(tmp_path: Path, queues_db: str) -> None:
    """`validate --check-db` reads the live queue's policy (stately) and reports SCH104 at the schedule, exit 1."""
    (tmp_path / "s.yaml").write_text(KEYLESS_INTO_STATELY)

    done = scheduler(
        "validate",
        "--check-db",
        "s.yaml",
        cwd=tmp_path,
        APP_DATABASE_URL=queues_db,
        QUEUE_DATABASE_URL=queues_db,
    )

    assert done.returncode == 1
    sch104 = [line for line in done.stdout.splitlines() if " SCH104 " in line]
    assert sch104 == [
        "s.yaml:8:3: SCH104 error: schedule 'a' fans out into queue 'generate-insight-post', whose live policy "
        "is stately, with no singleton key: 2 of its 3 entities would be dropped; add "
        '`singleton_key: "a:{key}"` so each entity gets its own slot'
    ]
    assert "Traceback" not in done.stdout + done.stderr


KEYLESS_TWO_QUEUES = KEYLESS_INTO_STATELY.replace(
    "  q: { name: generate-insight-post, backend: pgboss, policy: stately }\n",
    "  q: { name: generate-insight-post, backend: pgboss, policy: stately }\n"
    "  later: { name: not-created-yet, backend: pgboss, policy: stately, create_missing: true }\n",
) + ('  b:\n    cron: "0 * * * *"\n    cohort: { static: [ { key: a }, { key: b } ] }\n    queue: later\n')


def test_check_db_reports_a_shared_slot_once_with_its_live_policy(tmp_path: Path, queues_db: str) -> None:
    """A keyless fan-out into a queue declared stately is SCH001 without --check-db; with it, where the live
    queue is stately too, the one problem is one finding, SCH104 (the live policy), not SCH001 as well.
    Into a queue that does not exist yet there is no live policy: SCH001 stays."""
    (tmp_path / "s.yaml").write_text(KEYLESS_TWO_QUEUES)
    env = {"APP_DATABASE_URL": queues_db, "QUEUE_DATABASE_URL": queues_db}

    static = scheduler("validate", "s.yaml", cwd=tmp_path, **env)
    live = scheduler("validate", "--check-db", "s.yaml", cwd=tmp_path, **env)

    def codes(out: str) -> list[tuple[str, str]]:
        return [
            (line.split(": ")[1].split()[0], line.split("schedule ")[1][:3])
            for line in out.splitlines()
            if " SCH00" in line or " SCH104 " in line
        ]

    assert static.returncode == live.returncode == 1
    assert codes(static.stdout) == [("SCH001", "'a'"), ("SCH001", "'b'")]
    assert codes(live.stdout) == [("SCH001", "'b'"), ("SCH104", "'a'")]
    assert "Traceback" not in static.stderr + live.stderr


def test_a_usage_error_exits_2(tmp_path: Path) -> None:
    """`dry-run` without --hour is a usage error: exit 2 and argparse's message naming --hour."""
    done = scheduler("dry-run", cwd=tmp_path)

    assert done.returncode == 2
    assert "the following arguments are required: --hour" in done.stderr
    assert done.stdout == ""


@pytest.mark.parametrize(
    "command",
    [[], ["validate"], ["dry-run"], ["fire"], ["schema"], ["run"], ["migrate"], ["status"], ["bench-pool"]],
)
def test_every_help_exits_0_with_an_example(tmp_path: Path, command: list[str]) -> None:
    """`scheduler [COMMAND] --help` exits 0 and shows at least one `scheduler ...` example."""
    done = scheduler(*command, "--help", cwd=tmp_path)

    assert done.returncode == 0
    assert "example" in done.stdout
    assert "\n  scheduler " in done.stdout


def _laughs(levels: int) -> str:
    lines = ['l0: &l0 ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    lines += [f"l{i}: &l{i} [{','.join([f'*l{i - 1}'] * 9)}]" for i in range(1, levels)]
    return "version: 1\n" + "\n".join(lines) + "\n"


HOSTILE = {
    "laughs.yaml": _laughs(8),
    "deep.yaml": "x: " + "[" * 5000 + "]" * 5000 + "\n",
    "date.yaml": "version: 1\nx: 2024-02-30\n",
    "tag.yaml": "version: 1\nx: !!python/object/apply:os.system [echo]\n",
    "zone.yaml": "version: 1\nschedules:\n  a:\n    cron: '0 * * * *'\n    timezone: America\n",
    "inf.yaml": "version: 1\nschedules:\n  a:\n    cron: '0 * * * *'\n    stagger: { window: .inf }\n",
    "name.yaml": 'version: 1\nschedules:\n  "a\\nforged.yaml:1:1: CFG000 error: \\e[2J":\n    cron: R * * * *\n',
}


def test_hostile_files_give_located_findings_and_exit_1(tmp_path: Path) -> None:
    """Billion laughs, deep nesting, a bad date, an unsafe tag, a directory as time zone, an infinite window,
    a name forging a line: every stdout line is `file:line:col: CODE error: ...`, exit 1, no traceback."""
    for name, text in HOSTILE.items():
        (tmp_path / name).write_text(text)

    done = scheduler("validate", ".", cwd=tmp_path)

    assert done.returncode == 1
    assert "Traceback" not in done.stdout + done.stderr
    lines = done.stdout.splitlines()
    assert all(re.match(r"^[a-z]+\.yaml:\d+:\d+: (CFG|SCH)\d{3} error: ", line) for line in lines), lines
    assert {line.split(":")[0] for line in lines} == set(HOSTILE)
    assert "\x1b" not in done.stdout
    assert not any(line.startswith("forged.yaml") for line in lines)
    assert any("laughs.yaml:" in line and "CFG012" in line and "200,000 values" in line for line in lines)


def test_a_file_over_the_size_limit_is_refused_unparsed(tmp_path: Path) -> None:
    """A 2 MiB file is one CFG012 at its first line; it is not parsed."""
    (tmp_path / "big.yaml").write_text("version: 1\n" + "# padding\n" * 200_000)

    done = scheduler("validate", "big.yaml", cwd=tmp_path)

    assert done.returncode == 1
    assert done.stdout.splitlines() == [
        "big.yaml:1:1: CFG012 error: the file is larger than 1 MiB, the limit for one schedule file; split it "
        "into several files, or move large static cohorts into an SQL cohort"
    ]


def test_check_db_flags_a_keyless_fanout_into_a_live_key_strict_fifo_queue(
    tmp_path: Path, queues_db: str
) -> None:
    """A queue declared `standard` that pg-boss created key_strict_fifo: `validate --check-db` says every fire
    would fail (SCH105), where fire would otherwise be the first to find out."""
    node(
        "setup.mjs",
        to_url(queues_db),
        json.dumps([{"name": "strict-jobs", "options": {"policy": "key_strict_fifo"}}]),
    )
    (tmp_path / "s.yaml").write_text(
        UNKNOWN_KEY.replace(
            "generate-insight-post, backend: pgboss, policy: stately", "strict-jobs, backend: pgboss"
        ).replace('    singelton_key: "x:{key}"\n', "")
    )

    done = scheduler(
        "validate",
        "--check-db",
        "s.yaml",
        cwd=tmp_path,
        APP_DATABASE_URL=queues_db,
        QUEUE_DATABASE_URL=queues_db,
    )

    assert done.returncode == 1
    assert [line for line in done.stdout.splitlines() if " SCH105 " in line] == [
        "s.yaml:8:3: SCH105 error: schedule 'a' fans out into queue 'q' (strict-jobs), whose live policy is "
        "key_strict_fifo, which needs a singleton key on every job, but it has no singleton_key: pg-boss refuses "
        'every job, so every fire fails; set `singleton_key: "a:{key}"`'
    ]
    assert "Traceback" not in done.stdout + done.stderr
