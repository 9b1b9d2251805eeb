"""The trading calendar: weekdays that are not holidays, and the business date of a wall-clock moment."""
from __future__ import annotations

from datetime import date, datetime, time, timedelta
from typing import Iterable


def parse_date(text: str) -> date:
    """Accept YYYYMMDD or YYYY-MM-DD."""
    text = text.strip()
    fmt = "%Y%m%d" if len(text) == 8 else "%Y-%m-%d"
    try:
        return datetime.strptime(text, fmt).date()
    except ValueError:
        raise ValueError(f"not a date (expected YYYYMMDD or YYYY-MM-DD): {text!r}") from None


def ymd(day: date) -> str:
    return day.strftime("%Y%m%d")


class TradingCalendar:
    def __init__(self, holidays: Iterable[str] = (), workdays: Iterable[str] = (), day_change: str = "00:00"):
        self.holidays = {parse_date(d) for d in holidays}
        self.workdays = {parse_date(d) for d in workdays}
        hours, minutes = map(int, day_change.split(":"))
        self.day_change = time(hours, minutes)

    def is_trading_day(self, day: date) -> bool:
        if day in self.workdays:
            return True
        return day.weekday() < 5 and day not in self.holidays

    def next_trading_day(self, day: date) -> date:
        day += timedelta(days=1)
        while not self.is_trading_day(day):
            day += timedelta(days=1)
        return day

    def previous_trading_day(self, day: date) -> date:
        day -= timedelta(days=1)
        while not self.is_trading_day(day):
            day -= timedelta(days=1)
        return day

    def business_date(self, moment: datetime) -> date:
        """The business date a moment belongs to: before the day-change time it is still yesterday's work.

        Like Control-M's New Day: the day's work that runs past midnight keeps its date (ODATE).
        """
        day = moment.date()
        if moment.time() < self.day_change:
            day -= timedelta(days=1)
        return day

    def current_trading_day(self, moment: datetime) -> date:
        """The trading day whose work is under way at ``moment`` (the last trading day on or before it)."""
        day = self.business_date(moment)
        return day if self.is_trading_day(day) else self.previous_trading_day(day)
