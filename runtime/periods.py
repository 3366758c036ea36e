"""Budget periods, calendar-aligned in UTC: days at 00:00, ISO weeks on Monday 00:00,
months on the 1st; `<N>d` counts N-day windows from the organization's epoch."""

from __future__ import annotations

import datetime as dt
from functools import lru_cache

NS_PER_DAY = 86_400 * 10**9
_EPOCH_DAY0 = dt.date(1970, 1, 1)


@lru_cache(maxsize=4096)
def window(period: str, day: int, epoch: str | None) -> tuple[str, int | None]:
    """(key, end in ns since 1970 or None) of the window holding `day` (days since 1970)."""
    date = _EPOCH_DAY0 + dt.timedelta(days=day)
    if period == "daily":
        return date.isoformat(), (day + 1) * NS_PER_DAY
    if period == "weekly":
        year, week, weekday = date.isocalendar()
        return f"{year}-W{week:02d}", (day + 8 - weekday) * NS_PER_DAY
    if period == "monthly":
        nxt = dt.date(date.year + date.month // 12, date.month % 12 + 1, 1)
        return f"{date.year}-{date.month:02d}", (nxt - _EPOCH_DAY0).days * NS_PER_DAY
    if period == "none":
        return "all", None
    n = int(period[:-1])
    start = (dt.date.fromisoformat(epoch) - _EPOCH_DAY0).days if epoch else 0
    index = (day - start) // n
    return f"{period}@{epoch or '1970-01-01'}#{index}", (start + (index + 1) * n) * NS_PER_DAY


def window_at(period: str, now_ns: int, epoch: str | None) -> tuple[str, int | None]:
    return window(period, now_ns // NS_PER_DAY, epoch)
