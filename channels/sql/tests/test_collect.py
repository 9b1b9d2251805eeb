"""Collecting a counter system's tables and queries on SQLite, MariaDB and PostgreSQL."""
from __future__ import annotations

import re
import socket
import time
from pathlib import Path

import pytest
from sqlalchemy import select

from esomp_core import FileRow, Job, run_stage, sha256_file
from esomp_sql import SqlCollectError, WatermarkRow

DAY1, DAY2 = "20261201", "20261202"

CUSTOMERS = ("CREATE TABLE customers (customer_id VARCHAR(12) PRIMARY KEY, name VARCHAR(40), opened DATE)",
             "INSERT INTO customers VALUES (:id, :name, :opened)")
POSTINGS = ("CREATE TABLE postings (serial_no INTEGER PRIMARY KEY, account VARCHAR(20), amount DECIMAL(18, 2))",
            "INSERT INTO postings VALUES (:serial_no, :account, :amount)")
TRANSFERS = ("CREATE TABLE transfers (transfer_id INTEGER PRIMARY KEY, account VARCHAR(20), trade_date DATE, "
             "direction VARCHAR(4), amount DECIMAL(18, 2))",
             "INSERT INTO transfers VALUES (:id, :account, :trade_date, :direction, :amount)")
TRANSFERS_OF_THE_DAY = "SELECT account, direction, amount FROM transfers WHERE trade_date = :day"


def job(day: str, job_id: int = 1) -> Job:
    return Job(id=job_id, date=day, name="collect-counter", stage="collect", business_type="core",
               channel="counter")


def output(site, day: str, table: str) -> Path:
    return Path(site.directory("collection_root"), day, "counter", f"{table}.csv")


def add_postings(run_sql, url: str, *serials: int) -> None:
    run_sql(url, POSTINGS[1], rows=[{"serial_no": n, "account": f"F{n % 3:04d}", "amount": f"{n}.50"}
                                    for n in serials])


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]  # nothing listens once the socket is closed


def test_hook_collect_writes_a_table_and_a_query_as_csv(counter_url, run_sql, sql_site):
    run_sql(counter_url, CUSTOMERS[0], CUSTOMERS[1], rows=[
        {"id": "C002", "name": "李四", "opened": "2020-05-06"},
        {"id": "C001", "name": "Zhang, San", "opened": "2019-01-02"}])
    run_sql(counter_url, TRANSFERS[0], TRANSFERS[1], rows=[
        {"id": 1, "account": "F0001", "trade_date": "2026-12-01", "direction": "in", "amount": "100.00"},
        {"id": 2, "account": "F0002", "trade_date": "2026-12-02", "direction": "out", "amount": "5.00"},
        {"id": 3, "account": "F0001", "trade_date": "2026-12-01", "direction": "out", "amount": "30.00"}])
    site = sql_site(counter_url, {"customers": "customers", "transfers": TRANSFERS_OF_THE_DAY,
                                  "zhang": "SELECT customer_id FROM customers WHERE name LIKE 'Zhang%'"})

    result = run_stage(site, job(DAY1))

    assert output(site, DAY1, "customers").read_text("utf-8") == (
        "customer_id,name,opened\nC001,\"Zhang, San\",2019-01-02\nC002,李四,2020-05-06\n")
    transfers = output(site, DAY1, "transfers").read_text("utf-8").splitlines()
    assert transfers[0] == "account,direction,amount"
    # SQLite keeps DECIMAL as a float: the exact digits are checked on the servers (test_decimals_are_exact).
    assert [line.rsplit(",", 1)[0] for line in transfers[1:]] == ["F0001,in", "F0001,out"]
    assert output(site, DAY1, "zhang").read_text() == "customer_id\nC001\n"  # '%' reaches the server as written
    assert (result.files, result.records) == (3, 5)
    assert result.bytes == sum(output(site, DAY1, t).stat().st_size for t in ("customers", "transfers", "zhang"))
    with site.repository.session() as session:
        rows = {r.name: (r.source, r.sha256, r.records, r.role) for r in session.scalars(
            select(FileRow).where(FileRow.date == DAY1, FileRow.channel == "counter"))}
    assert rows["transfers.csv"] == (TRANSFERS_OF_THE_DAY, sha256_file(output(site, DAY1, "transfers")), 2,
                                     "collected")
    assert rows["customers.csv"][0].startswith("SELECT * FROM") and rows["customers.csv"][2] == 2


def test_hook_collect_reads_only_rows_above_the_watermark_day_after_day(counter_url, run_sql, sql_site):
    run_sql(counter_url, POSTINGS[0])
    add_postings(run_sql, counter_url, 1, 2, 3)
    site = sql_site(counter_url, {"postings": {"source": "postings", "watermark": "serial_no"}})

    first = run_stage(site, job(DAY1))
    day1 = output(site, DAY1, "postings").read_bytes()
    add_postings(run_sql, counter_url, 4, 5)
    second = run_stage(site, job(DAY2, 2))

    assert [line.split(",")[0] for line in day1.decode().splitlines()] == ["serial_no", "1", "2", "3"]
    assert [line.split(",")[0] for line in output(site, DAY2, "postings").read_text().splitlines()] == \
        ["serial_no", "4", "5"]
    assert (first.records, second.records) == (3, 2)
    assert second.detail["tables"][0]["watermark"] == {"column": "serial_no", "above": "3", "up_to": "5"}
    with site.repository.session() as session:
        kept = [(w.date, w.low, w.high, w.rows) for w in session.scalars(
            select(WatermarkRow).where(WatermarkRow.channel == "counter").order_by(WatermarkRow.date))]
    assert kept == [(DAY1, None, "3", 3), (DAY2, "3", "5", 2)]

    # A rerun of the first day reads its own range again, not the second day's rows: the same bytes.
    add_postings(run_sql, counter_url, 6)
    run_stage(site, job(DAY1, 3))
    assert output(site, DAY1, "postings").read_bytes() == day1


def test_rerun_writes_byte_identical_files(counter_url, run_sql, sql_site):
    run_sql(counter_url, CUSTOMERS[0], CUSTOMERS[1], rows=[
        {"id": f"C{n:03d}", "name": f"客户{n}", "opened": "2021-03-04"} for n in (5, 3, 9, 1)])
    run_sql(counter_url, POSTINGS[0])
    add_postings(run_sql, counter_url, 7, 8)
    site = sql_site(counter_url, {"customers": "customers",
                                  "postings": {"source": "postings", "watermark": "serial_no"}})
    run_stage(site, job(DAY1))
    first = {t: output(site, DAY1, t).read_bytes() for t in ("customers", "postings")}

    run_stage(site, job(DAY1, 2))

    assert {t: output(site, DAY1, t).read_bytes() for t in ("customers", "postings")} == first
    with site.repository.session() as session:
        names = session.scalars(select(FileRow.name).where(FileRow.channel == "counter")).all()
    assert sorted(names) == ["customers.csv", "postings.csv"]  # recorded once each, not once per run


def test_decimals_are_exact(server_url, run_sql, sql_site):
    run_sql(server_url, "CREATE TABLE balances (account VARCHAR(20) PRIMARY KEY, balance DECIMAL(20, 4), "
                        "frozen DECIMAL(18, 2))",
            "INSERT INTO balances VALUES (:account, :balance, :frozen)", rows=[
                {"account": "A", "balance": "12345678901234.5678", "frozen": "0.10"},
                {"account": "B", "balance": "100", "frozen": "-0.01"},
                {"account": "C", "balance": "0.0001", "frozen": None}])
    site = sql_site(server_url, {"balances": "SELECT account, balance, frozen FROM balances"})

    run_stage(site, job(DAY1))

    assert output(site, DAY1, "balances").read_text() == (
        "account,balance,frozen\nA,12345678901234.5678,0.10\nB,100.0000,-0.01\nC,0.0001,\n")


def test_a_server_that_is_down_fails_quickly_naming_channel_table_and_server(sql_site, monkeypatch):
    port = closed_port()
    monkeypatch.setenv("COUNTER_PASSWORD", "Pa55-w0rd-secret")
    for url in (f"mysql+pymysql://esomp@127.0.0.1:{port}/counter",
                f"postgresql+psycopg2://esomp@127.0.0.1:{port}/counter"):
        site = sql_site(url, {"customers": "customers", "postings": "postings"}, connect_timeout=3,
                        password_env="COUNTER_PASSWORD")
        started = time.monotonic()
        with pytest.raises(SqlCollectError) as caught:
            run_stage(site, job(DAY1))
        assert time.monotonic() - started < 5
        message = str(caught.value)
        assert message.startswith(f"channel counter: table customers: collecting from ")
        assert f"esomp:***@127.0.0.1:{port}/counter" in message and "Pa55-w0rd-secret" not in message
        assert not output(site, DAY1, "customers").parent.exists() or \
            not list(output(site, DAY1, "customers").parent.iterdir())


def test_a_server_that_does_not_answer_fails_within_the_connect_timeout(sql_site):
    with socket.socket() as silent:  # accepts connections (the kernel does) and never says a word
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        port = silent.getsockname()[1]
        for url in (f"mysql+pymysql://esomp@127.0.0.1:{port}/counter",
                    f"postgresql+psycopg2://esomp@127.0.0.1:{port}/counter"):
            site = sql_site(url, {"customers": "customers"}, connect_timeout=2)
            started = time.monotonic()
            with pytest.raises(SqlCollectError, match=rf"^channel counter: table customers: collecting from "
                                                      rf"{re.escape(url)} failed: OperationalError"):
                run_stage(site, job(DAY1))
            assert time.monotonic() - started < 4


def test_a_query_slower_than_the_connect_timeout_is_read(esomp_mariadb_url, sql_site):
    site = sql_site(esomp_mariadb_url, {"slow": "SELECT SLEEP(2) AS slept"}, connect_timeout=1)

    run_stage(site, job(DAY1))

    assert output(site, DAY1, "slow").read_text() == "slept\n0\n"


def test_bad_credentials_fail_with_the_password_masked(esomp_mariadb_url, sql_site, monkeypatch):
    monkeypatch.setenv("COUNTER_PASSWORD", "Wr0ng-Pa55word")
    url = esomp_mariadb_url.replace("root@", "esomp_nobody@")
    site = sql_site(url, {"customers": "customers"}, password_env="COUNTER_PASSWORD")

    with pytest.raises(SqlCollectError, match=r"channel counter: table customers: .*esomp_nobody:\*\*\*@127\.0\.0\.1"
                                              r".*Access denied") as caught:
        run_stage(site, job(DAY1))
    assert "Wr0ng-Pa55word" not in str(caught.value)


def test_a_missing_column_or_table_fails_and_changes_nothing(counter_url, run_sql, sql_site):
    run_sql(counter_url, POSTINGS[0])
    add_postings(run_sql, counter_url, 1, 2)
    good = sql_site(counter_url, {"postings": {"source": "postings", "watermark": "serial_no"}})
    good.pm.hook.collect(job=job(DAY1), site=good)
    before = output(good, DAY1, "postings").read_bytes()
    add_postings(run_sql, counter_url, 3)
    configs = {
        "watermark": ({"postings": {"source": "postings", "watermark": "serial"}}, r"no column 'serial'"),
        "query": ({"postings": {"source": "postings", "watermark": "serial_no"},
                   "wrong": "SELECT account, amount_due FROM postings"}, r"amount_due"),
        "table": ({"postings": {"source": "postings", "watermark": "serial_no"}, "zz": "no_such_table"},
                  r"no_such_table"),
    }
    for what, (tables, reason) in configs.items():
        good.config.channels["counter"].options["tables"] = tables
        table = {"watermark": "postings", "query": "wrong", "table": "zz"}[what]
        with pytest.raises(SqlCollectError, match=rf"^channel counter: table {table}: collecting from \S+ failed: "
                                                  rf".*{reason}"):
            good.pm.hook.collect(job=job(DAY1, 2), site=good)
        # The table read before the failing one is not replaced, and its watermark did not move.
        assert output(good, DAY1, "postings").read_bytes() == before
        assert [p.name for p in output(good, DAY1, "postings").parent.iterdir()] == ["postings.csv"]
    with good.repository.session() as session:
        assert session.scalars(select(WatermarkRow.high)).all() == ["2"]


def test_a_password_variable_that_is_not_set_fails_naming_it(sql_site, monkeypatch):
    monkeypatch.delenv("COUNTER_PASSWORD", raising=False)
    site = sql_site("postgresql+psycopg2://esomp@127.0.0.1/counter", {"customers": "customers"},
                    password_env="COUNTER_PASSWORD")

    with pytest.raises(SqlCollectError, match=r"^channel counter: table customers: collecting from "
                                              r"postgresql\+psycopg2://esomp:\*\*\*@127\.0\.0\.1/counter failed: "
                                              r".*environment variable COUNTER_PASSWORD is not set"):
        run_stage(site, job(DAY1))


def test_a_timestamp_watermark_is_compared_as_a_timestamp(server_url, run_sql, sql_site):
    run_sql(server_url, "CREATE TABLE transfers (posted_at TIMESTAMP NULL, account VARCHAR(20), amount DECIMAL(18, 2))",
            "INSERT INTO transfers VALUES (:at, :account, :amount)", rows=[
                {"at": "2026-12-01 09:30:00", "account": "F1", "amount": "10.00"},
                {"at": "2026-12-01 15:00:00", "account": "F2", "amount": "20.00"},
                {"at": None, "account": "F9", "amount": "99.00"}])
    site = sql_site(server_url, {"transfers": {"source": "transfers", "watermark": "posted_at"}})
    run_stage(site, job(DAY1))
    run_sql(server_url, "INSERT INTO transfers VALUES (:at, :account, :amount)", rows=[
        {"at": "2026-12-01 15:00:01", "account": "F3", "amount": "30.00"},
        {"at": "2026-12-02 08:00:00", "account": "F4", "amount": "40.00"}])

    result = run_stage(site, job(DAY2, 2))

    assert output(site, DAY1, "transfers").read_text() == (
        "posted_at,account,amount\n2026-12-01T09:30:00,F1,10.00\n2026-12-01T15:00:00,F2,20.00\n")
    assert output(site, DAY2, "transfers").read_text() == (
        "posted_at,account,amount\n2026-12-01T15:00:01,F3,30.00\n2026-12-02T08:00:00,F4,40.00\n")
    assert result.detail["tables"][0]["watermark"]["up_to"] == "2026-12-02T08:00:00"


def test_a_watermark_column_of_a_type_that_cannot_be_kept_fails_before_writing(esomp_postgres_url, run_sql,
                                                                               sql_site):
    run_sql(esomp_postgres_url, "CREATE TABLE flags (posted BOOLEAN, account VARCHAR(20))",
            "INSERT INTO flags VALUES (true, 'F1')")
    site = sql_site(esomp_postgres_url, {"flags": {"source": "flags", "watermark": "posted"}})

    with pytest.raises(SqlCollectError, match=r"^channel counter: table flags: .*ValueError: a true/false column "
                                              r"cannot be a watermark"):
        run_stage(site, job(DAY1))
    assert not output(site, DAY1, "flags").exists()
    with site.repository.session() as session:
        assert session.scalars(select(FileRow).where(FileRow.channel == "counter")).all() == []
