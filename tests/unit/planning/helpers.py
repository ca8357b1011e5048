"""Shared helpers for the planning tests: time zones with and without DST, and their transition days."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

ZONES = (
    "America/New_York",
    "Europe/London",
    "Europe/Berlin",
    "Australia/Lord_Howe",
    "UTC",
    "Asia/Kolkata",
)
"""The zones every property test draws from: DST north and south, a 30-minute shift, and two without DST."""


def transition_days(zone: str, years: range) -> list[datetime]:
    """UTC midnights of the days on which `zone` changes its offset (empty for a zone without DST)."""
    tz = ZoneInfo(zone)
    days: list[datetime] = []
    day = datetime(years.start, 1, 1, tzinfo=UTC)
    end = datetime(years.stop, 1, 1, tzinfo=UTC)
    while day < end:
        if day.astimezone(tz).utcoffset() != (day + timedelta(days=1)).astimezone(tz).utcoffset():
            days.append(day)
        day += timedelta(days=1)
    return days
