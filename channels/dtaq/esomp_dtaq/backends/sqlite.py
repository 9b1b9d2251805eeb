"""SQLite queues (WAL): durable on one machine, shared by every process that opens the same file.

One table holds the entries of all queues; a receive is one ``DELETE ... RETURNING`` (or a lease ``UPDATE``)
on the row a read found, so each entry goes to exactly one receiver. SQLite cannot block, so a waiting receive
watches ``PRAGMA data_version`` (which changes when another connection commits) with sleeps backing off to
``poll_max``. ``synchronous=NORMAL`` survives a killed process; queues with ``force`` commit with
``synchronous=FULL`` so they also survive a power cut.
"""
from __future__ import annotations

import os
import sqlite3
import threading
import time
from pathlib import Path
from typing import Any

from esomp_dtaq.backends import Backend
from esomp_dtaq.queues import DataQueue, Entry, Order, QueueAttributes, QueueFull

SCHEMA = """
CREATE TABLE IF NOT EXISTS dtaq_queues (name TEXT PRIMARY KEY, attributes TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS dtaq_entries (
    seq INTEGER PRIMARY KEY AUTOINCREMENT, queue TEXT NOT NULL, key BLOB NOT NULL, data BLOB NOT NULL,
    sender TEXT NOT NULL, sent_at REAL NOT NULL, visible_at REAL NOT NULL DEFAULT 0);
CREATE INDEX IF NOT EXISTS dtaq_entries_order ON dtaq_entries (queue, key, seq);
CREATE TABLE IF NOT EXISTS dtaq_dedup (queue TEXT NOT NULL, id TEXT NOT NULL, expires REAL NOT NULL,
    PRIMARY KEY (queue, id));
CREATE TABLE IF NOT EXISTS dtaq_state (ns TEXT NOT NULL, field TEXT NOT NULL, value TEXT NOT NULL,
    PRIMARY KEY (ns, field));
CREATE TABLE IF NOT EXISTS dtaq_counters (name TEXT PRIMARY KEY, value INTEGER NOT NULL);
"""

ORDER_SQL = {Order.EQ: "key = ?", Order.NE: "key != ?", Order.LT: "key < ?", Order.LE: "key <= ?",
             Order.GT: "key > ?", Order.GE: "key >= ?"}


class SqliteQueue(DataQueue):
    backend: "SqliteBackend"

    def __init__(self, backend: "SqliteBackend", name: str, attributes: QueueAttributes):
        super().__init__(backend, name, attributes)
        direction = "seq DESC" if attributes.sequence == "LIFO" else "key, seq"
        self._select, self._delete = {}, {}
        for order, condition in [*ORDER_SQL.items(), (None, "1")]:
            where = (f"FROM dtaq_entries WHERE queue = ? AND {condition} AND visible_at <= ? "
                     f"ORDER BY {direction} LIMIT 1")
            self._select[order] = f"SELECT seq, key, data, sender, sent_at {where}"
            self._delete[order] = (f"DELETE FROM dtaq_entries WHERE seq = (SELECT seq {where}) "
                                   f"RETURNING seq, key, data, sender, sent_at")

    def _put(self, data: bytes, key: bytes, sender: str, dedup: str | None) -> bool:
        a = self.attributes
        if dedup is None and not a.max_entries and not a.force:  # one statement: its own transaction
            self.backend.connection().execute(
                "INSERT INTO dtaq_entries (queue, key, data, sender, sent_at) VALUES (?, ?, ?, ?, ?)",
                (self.name, key, data, sender, time.time()))
            return True
        with self.backend.transaction(force=a.force) as db:
            now = time.time()
            if dedup is not None:
                row = db.execute("SELECT expires FROM dtaq_dedup WHERE queue = ? AND id = ?",
                                 (self.name, dedup)).fetchone()
                if row is not None and row[0] > now:
                    return False
                db.execute("INSERT OR REPLACE INTO dtaq_dedup VALUES (?, ?, ?)",
                           (self.name, dedup, now + a.dedup_seconds))
            if a.max_entries:
                (count,) = db.execute("SELECT count(*) FROM dtaq_entries WHERE queue = ?", (self.name,)).fetchone()
                if count >= a.max_entries:
                    raise QueueFull(f"queue {self.name} is full ({a.max_entries} entries)")
            db.execute("INSERT INTO dtaq_entries (queue, key, data, sender, sent_at) VALUES (?, ?, ?, ?, ?)",
                       (self.name, key, data, sender, now))
        return True

    def _take(self, key: bytes, order: Order, remove: bool) -> Entry | None:
        db = self.backend.connection()
        while True:
            now = time.time()
            order_key, args = (order, (self.name, key, now)) if key else (None, (self.name, now))
            row = db.execute(self._select[order_key], args).fetchone()
            if row is None:
                return None
            seq, entry_key, data, sender, sent_at = row
            if not remove:
                return Entry(data, entry_key, sender, sent_at)
            if not self.attributes.lease and not self.attributes.force:
                # one statement, its own transaction; it re-selects, so a lost race just takes the next entry
                row = db.execute(self._delete[order_key], args).fetchone()
                if row is None:
                    return None
                return Entry(row[2], row[1], row[3], row[4])
            with self.backend.transaction(force=self.attributes.force) as db:
                if self.attributes.lease:
                    visible_at = now + self.attributes.lease
                    taken = db.execute("UPDATE dtaq_entries SET visible_at = ? WHERE seq = ? AND visible_at <= ?",
                                       (visible_at, seq, now)).rowcount
                    receipt = (seq, visible_at)
                else:
                    taken = db.execute("DELETE FROM dtaq_entries WHERE seq = ?", (seq,)).rowcount
                    receipt = None
            if taken:
                return Entry(data, entry_key, sender, sent_at, receipt)
            # another receiver took it between our read and our write: look again

    def _wait_for_change(self, seconds: float) -> None:
        db = self.backend.connection()
        (before,) = db.execute("PRAGMA data_version").fetchone()
        end = time.monotonic() + seconds
        step = 0.0001
        while (left := end - time.monotonic()) > 0:
            time.sleep(min(step, left))
            if db.execute("PRAGMA data_version").fetchone()[0] != before:
                return
            step = min(step * 2, 0.001)  # 12 waiting processes must not eat two cores polling

    def _ack(self, receipt: Any) -> None:
        seq, visible_at = receipt
        with self.backend.transaction(force=self.attributes.force) as db:
            db.execute("DELETE FROM dtaq_entries WHERE seq = ? AND visible_at = ?", (seq, visible_at))

    def _clear(self, key: bytes | None, order: Order) -> int:
        with self.backend.transaction(force=self.attributes.force) as db:
            if key is None:
                return db.execute("DELETE FROM dtaq_entries WHERE queue = ?", (self.name,)).rowcount
            return db.execute(f"DELETE FROM dtaq_entries WHERE queue = ? AND {ORDER_SQL[order]}",
                              (self.name, key)).rowcount

    def _describe(self) -> tuple[int, int, float | None]:
        now = time.time()
        depth, leased, oldest = self.backend.connection().execute(
            "SELECT sum(visible_at <= ?), sum(visible_at > ?), min(sent_at) FROM dtaq_entries WHERE queue = ?",
            (now, now, self.name)).fetchone()
        return depth or 0, leased or 0, oldest


class _Transaction:
    def __init__(self, backend: "SqliteBackend", force: bool):
        self.backend, self.force = backend, force

    def __enter__(self) -> sqlite3.Connection:
        self.db = self.backend.connection()
        if self.force:
            self.db.execute("PRAGMA synchronous=FULL")
        self.db.execute("BEGIN IMMEDIATE")
        return self.db

    def __exit__(self, exc_type, exc, tb) -> None:
        try:
            self.db.execute("COMMIT" if exc_type is None else "ROLLBACK")
        finally:
            if self.force:
                self.db.execute("PRAGMA synchronous=NORMAL")


class SqliteBackend(Backend):
    kind = "sqlite"

    def __init__(self, path: str | os.PathLike):
        super().__init__()
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._local = threading.local()
        self._pid = os.getpid()
        self.connection().executescript(SCHEMA)

    def __repr__(self) -> str:
        return f"sqlite:{self.path}"

    def connection(self) -> sqlite3.Connection:
        """This thread's connection (a forked child opens its own: connections must not cross a fork)."""
        db = getattr(self._local, "db", None)
        if db is None or self._pid != os.getpid():
            if self._pid != os.getpid():
                self._local = threading.local()
                self._pid = os.getpid()
                self.forget()
            db = sqlite3.connect(self.path, timeout=30, isolation_level=None, check_same_thread=False)
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=NORMAL")
            self._local.db = db
        return db

    def transaction(self, force: bool = False) -> _Transaction:
        return _Transaction(self, force)

    def close(self) -> None:
        db = getattr(self._local, "db", None)
        if db is not None:
            db.close()
            self._local.db = None

    def names(self) -> list[str]:
        return [r[0] for r in self.connection().execute("SELECT name FROM dtaq_queues ORDER BY name")]

    def _create(self, name: str, attributes: QueueAttributes) -> None:
        with self.transaction() as db:
            db.execute("INSERT OR REPLACE INTO dtaq_queues VALUES (?, ?)", (name, self.encode_attributes(attributes)))

    def _delete(self, name: str) -> None:
        with self.transaction() as db:
            db.execute("DELETE FROM dtaq_queues WHERE name = ?", (name,))
            db.execute("DELETE FROM dtaq_entries WHERE queue = ?", (name,))
            db.execute("DELETE FROM dtaq_dedup WHERE queue = ?", (name,))

    def _load_attributes(self, name: str) -> QueueAttributes | None:
        row = self.connection().execute("SELECT attributes FROM dtaq_queues WHERE name = ?", (name,)).fetchone()
        return self.decode_attributes(row[0] if row else None)

    def _make_queue(self, name: str, attributes: QueueAttributes) -> DataQueue:
        return SqliteQueue(self, name, attributes)

    def state_get(self, ns: str, field: str) -> str | None:
        row = self.connection().execute("SELECT value FROM dtaq_state WHERE ns = ? AND field = ?",
                                        (ns, field)).fetchone()
        return row[0] if row else None

    def state_set(self, ns: str, field: str, value: str) -> None:
        with self.transaction() as db:
            db.execute("INSERT OR REPLACE INTO dtaq_state VALUES (?, ?, ?)", (ns, field, value))

    def state_delete(self, ns: str, field: str) -> None:
        with self.transaction() as db:
            db.execute("DELETE FROM dtaq_state WHERE ns = ? AND field = ?", (ns, field))

    def state_all(self, ns: str) -> dict[str, str]:
        return dict(self.connection().execute("SELECT field, value FROM dtaq_state WHERE ns = ? ORDER BY field",
                                              (ns,)))

    def counter(self, name: str) -> int:
        row = self.connection().execute("SELECT value FROM dtaq_counters WHERE name = ?", (name,)).fetchone()
        return row[0] if row else 0

    def next_id(self, name: str) -> int:
        with self.transaction() as db:
            return db.execute("INSERT INTO dtaq_counters VALUES (?, 1) ON CONFLICT (name) DO UPDATE "
                              "SET value = value + 1 RETURNING value", (name,)).fetchone()[0]
