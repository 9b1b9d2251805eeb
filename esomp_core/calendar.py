"""The trading calendar: the exchange's trading days, and the business date of a wall-clock moment.

A day is a trading day when it is a weekday, not one of the exchange's closures shipped in
``exchange_closures.toml`` and not one of the site's own holidays; a site may also open a shipped closure again.
The shipped closures cover whole years (``first_year`` to ``last_year``); a date outside them, and outside the
years the site lists itself, is "not covered": the calendar still answers (weekdays minus the site's holidays), but
whoever starts a day asks ``run_day_problem`` first and refuses it unless forced. See docs/configuration.md.
"""
from __future__ import annotations

import tomllib
from datetime import date, datetime, time, timedelta
from functools import cache
from pathlib import Path
from typing import Iterable

import attrs

CLOSURES_FILE = Path(__file__).resolve().parent / "exchange_closures.toml"
DEFAULT_EXCHANGE = "XSHG"


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


@attrs.frozen
class ExchangeClosures:
    """One exchange's shipped closures: weekdays it does not trade, for the years ``first_year``..``last_year``."""

    exchange: str
    name: str
    source: str
    first_year: int
    last_year: int
    days: frozenset[date]

    def covers(self, day: date) -> bool:
        return self.first_year <= day.year <= self.last_year


@cache
def shipped_closures(path: Path = CLOSURES_FILE) -> dict[str, ExchangeClosures]:
    """The closures file, by exchange code; ``same_as`` makes one exchange share another's closures."""
    with open(path, "rb") as f:
        data = tomllib.load(f)
    tables = {code: data[table.get("same_as", code)] | {"name": table["name"]} for code, table in data.items()}
    return {code: ExchangeClosures(exchange=code, name=t["name"], source=t["source"], first_year=t["first_year"],
                                   last_year=t["last_year"], days=frozenset(t["closures"]))
            for code, t in tables.items()}


class TradingCalendar:
    def __init__(self, holidays: Iterable[str] = (), open_days: Iterable[str] = (), day_change: str = "00:00", *,
                 closures: ExchangeClosures | None = None, listed_years: Iterable[int] = ()):
        self.holidays = {parse_date(d) for d in holidays}
        self.open_days = {parse_date(d) for d in open_days}
        self.closures = closures
        self.listed_years = set(listed_years)
        hours, minutes = map(int, day_change.split(":"))
        self.day_change = time(hours, minutes)

    @classmethod
    def for_exchange(cls, exchange: str = DEFAULT_EXCHANGE, **kwargs) -> "TradingCalendar":
        """The calendar of ``exchange`` (a code in the closures file), with the site's changes in ``kwargs``."""
        return cls(closures=shipped_closures()[exchange], **kwargs)

    def covers(self, day: date) -> bool:
        """Whether the closures of ``day``'s year are known (shipped, or listed by the site)."""
        return day.year in self.listed_years or (self.closures is not None and self.closures.covers(day))

    def coverage(self) -> str:
        """The years covered, for messages: "XSHG 1991-2026, site 2027"."""
        parts = [f"{self.closures.exchange} {self.closures.first_year}-{self.closures.last_year}"] \
            if self.closures else []
        if self.listed_years:
            parts.append("site " + ", ".join(map(str, sorted(self.listed_years))))
        return ", ".join(parts) or "no years"

    def closed_because(self, day: date) -> str | None:
        """Why ``day`` is not a trading day, or None when it is one."""
        if day in self.open_days:
            return None
        if day.weekday() >= 5:
            return f"a {day:%A}"
        if day in self.holidays:
            return "a site holiday ([calendar] holidays)"
        if self.closures is not None and day in self.closures.days:
            return f"a closure of {self.closures.exchange}, {self.closures.name}"
        return None

    def is_trading_day(self, day: date) -> bool:
        return self.closed_because(day) is None

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

    def run_day_problem(self, day: date) -> str | None:
        """Why a day should not be run (not covered, or not a trading day), or None when it may run."""
        if not self.covers(day):
            return (f"{ymd(day)} is not covered by the trading calendar (it knows {self.coverage()}): "
                    f"update the closures or list the year's holidays in [calendar] (docs/configuration.md)")
        reason = self.closed_because(day)
        if reason:
            return f"{ymd(day)} is not a trading day: it is {reason}"
        return None

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
