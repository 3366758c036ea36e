"""Budget periods, calendar-aligned in UTC: days at 00:00, ISO weeks on Monday 00:00,
months on the 1st; `<N>d` counts N-day windows from the organization's epoch.

The Redis store computes the same windows in Lua from the server's clock (lua.py); a
property test keeps the two in step."""

from __future__ import annotations

import datetime as dt
from functools import lru_cache

NS_PER_DAY = 86_400 * 10**9
_EPOCH_DAY0 = dt.date(1970, 1, 1)
# how the Lua scripts name a period: daily, weekly, monthly, none, <N>d
DAILY, WEEKLY, MONTHLY, NONE, N_DAYS = 1, 2, 3, 4, 5


@lru_cache(maxsize=4096)
def span(period: str, day: int, epoch: str | None) -> tuple[str, int, int | None]:
    """(key, first day, the day after the last or None) of the window holding `day`, in
    days since 1970."""
    date = _EPOCH_DAY0 + dt.timedelta(days=day)
    if period == "daily":
        return date.isoformat(), day, day + 1
    if period == "weekly":
        year, week, weekday = date.isocalendar()
        return f"{year}-W{week:02d}", day + 1 - weekday, day + 8 - weekday
    if period == "monthly":
        nxt = dt.date(date.year + date.month // 12, date.month % 12 + 1, 1)
        day1 = (date.replace(day=1) - _EPOCH_DAY0).days
        return f"{date.year}-{date.month:02d}", day1, (nxt - _EPOCH_DAY0).days
    if period == "none":
        return "all", 0, None
    n = int(period[:-1])
    start = epoch_day(epoch)
    index = (day - start) // n
    first = start + index * n
    return f"{period}@{epoch or '1970-01-01'}#{index}", first, first + n


def window(period: str, day: int, epoch: str | None) -> tuple[str, int | None]:
    """(key, end in ns since 1970 or None) of the window holding `day` (days since 1970)."""
    key, _, end = span(period, day, epoch)
    return key, None if end is None else end * NS_PER_DAY


def window_at(period: str, now_ns: int, epoch: str | None) -> tuple[str, int | None]:
    return window(period, now_ns // NS_PER_DAY, epoch)


def kind(period: str) -> tuple[int, int]:
    """(the scripts' code for the period, N of `<N>d` or 0)."""
    fixed = {"daily": DAILY, "weekly": WEEKLY, "monthly": MONTHLY, "none": NONE}.get(period)
    return (fixed, 0) if fixed is not None else (N_DAYS, int(period[:-1]))


def epoch_day(epoch: str | None) -> int:
    return (dt.date.fromisoformat(epoch) - _EPOCH_DAY0).days if epoch else 0
