import json
from datetime import date, datetime

from esomp_core.calendar import TradingCalendar


def test_trading_days_and_business_date():
    cal = TradingCalendar(holidays=["2026-10-01", "20261002"], day_change="06:00")
    assert not cal.is_trading_day(date(2026, 10, 1))
    assert cal.next_trading_day(date(2026, 9, 30)) == date(2026, 10, 5)
    assert cal.previous_trading_day(date(2026, 10, 5)) == date(2026, 9, 30)
    # 02:00 on Saturday still belongs to Friday's day; 07:00 on Monday is Monday's.
    assert cal.business_date(datetime(2026, 11, 21, 2, 0)) == date(2026, 11, 20)
    assert cal.current_trading_day(datetime(2026, 11, 22, 12, 0)) == date(2026, 11, 20)
    assert cal.business_date(datetime(2026, 11, 23, 7, 0)) == date(2026, 11, 23)


def test_init_creates_site(tmp_path, esomp_cli):
    result = esomp_cli(["init", tmp_path / "s"])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "s" / "esomp.toml").exists() and (tmp_path / "s" / "work" / "bcp").is_dir()
    again = esomp_cli(["init", tmp_path / "s"])
    assert again.exit_code == 1 and "exists" in again.output
    cal = json.loads(esomp_cli(["calendar", "--date", "20261003", "--json"], site=tmp_path / "s").output)
    assert (cal["date"], cal["trading_day"], cal["previous"], cal["next"]) == ("20261003", False, "20260930",
                                                                               "20261008")


def test_site_missing_gives_clear_error(tmp_path, esomp_cli, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("ESOMP_SITE", raising=False)
    result = esomp_cli(["calendar"])
    assert result.exit_code == 1 and "no site given" in result.output
