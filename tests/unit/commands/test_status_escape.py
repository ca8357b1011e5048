"""`status` prints names, errors, replicas and reasons with control characters escaped: a value from the
ledger or the files cannot forge a line of the table or drive the terminal."""

from __future__ import annotations

import pytest

from scheduler.commands.status import _print_tables

FORGED = "bad\nfake-schedule  cron '* * * * *'\x1b[2J"


def _doc(error: str | None, reason: str | None) -> dict[str, object]:
    recent = [
        {
            "tick": "2026-06-01T14:00:00+00:00",
            "outcome": "failed",
            "fired_by": "scheduled",
            "accepted": 0,
            "dropped": 0,
            "attempts": 1,
            "replica": FORGED,
            "reason": reason,
        }
    ]
    return {
        FORGED: {
            "cron": "* * * * *",
            "timezone": "UTC",
            "next_fire": "2026-06-01T14:01:00+00:00",
            "database": "app",
            "failed": 1,
            "error": error,
            "recent": recent,
        }
    }


@pytest.mark.parametrize(("error", "reason"), [(FORGED, None), (None, FORGED)])
def test_status_tables_escape_control_characters(
    capsys: pytest.CaptureFixture[str], error: str | None, reason: str | None
) -> None:
    _print_tables(_doc(error, reason))
    out = capsys.readouterr().out
    assert "\x1b" not in out
    assert not any(line.startswith("fake-schedule") for line in out.splitlines())
    assert "\\n" in out
    assert "\\x1b" in out
