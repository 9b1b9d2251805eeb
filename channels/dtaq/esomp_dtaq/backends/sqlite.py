"""SQLite queues (WAL): durable on one machine, shared by every process that opens the same file.

One table holds the entries of all queues; a receive is one ``DELETE ... RETURNING`` (or a lease ``UPDATE``),
so each entry goes to exactly one receiver. An entry's ``seq`` is the largest plus one (no AUTOINCREMENT, which
costs a page write per send): order is kept, and a number reused after the newest entry left cannot confuse a
lease receipt, which also carries its deadline. ``synchronous=NORMAL`` survives a killed process; queues with
``force`` commit with ``synchronous=FULL`` so every operation on them also survives a power cut.

Writers take an advisory lock (``flock`` on ``DB.lock`` beside the database) around each write: the kernel
queues them and wakes the next at once, where SQLite's own busy handler would sleep a millisecond or more per
collision and make latency spiky under load. SQLite cannot block a reader until data arrives, so:

- a receive by key with order EQ (a client waiting for its reply) binds a Linux abstract datagram socket named
  after the database, queue and key; a sender rings it after committing an entry with that key;
- other waits watch ``PRAGMA data_version`` (which changes when another connection commits) with short sleeps.
"""
from __future__ import annotations

import contextlib
import fcntl
import hashlib
import mmap
import os
import socket
import sqlite3
import struct
import sys
import threading
import time
from pathlib import Path
from typing import Any, Callable, Iterator

from esomp_dtaq.backends import Backend
from esomp_dtaq.queues import DataQueue, Entry, Order, QueueAttributes, QueueFull

SCHEMA = """
CREATE TABLE IF NOT EXISTS dtaq_queues (name TEXT PRIMARY KEY, attributes TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS dtaq_entries (
    seq INTEGER PRIMARY KEY, queue TEXT NOT NULL, key BLOB NOT NULL, data BLOB NOT NULL,
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
INSERT = "INSERT INTO dtaq_entries (queue, key, data, sender, sent_at) VALUES (?, ?, ?, ?, ?)"
# INSERT unless the queue already holds max_entries (the count stops at the limit: a deep queue costs no more)
INSERT_BOUNDED = ("INSERT INTO dtaq_entries (queue, key, data, sender, sent_at) SELECT ?, ?, ?, ?, ? "
                  "WHERE (SELECT count(*) FROM (SELECT 1 FROM dtaq_entries WHERE queue = ? LIMIT ?)) < ?")
COLUMNS = "seq, key, data, sender, sent_at"
HANDED = b"E"  # a datagram carrying an entry handed over (an empty one is a ring)
HAND_OVER_MAX = 1 + 10 + 2 + 256 + 65536  # marker, sent time and sender length, sender, data
WAKE_CAP = 0.1  # a socket wait still looks at the table this often: a lease that ran out, a ring lost


class SqliteQueue(DataQueue):
    backend: "SqliteBackend"

    def __init__(self, backend: "SqliteBackend", name: str, attributes: QueueAttributes):
        super().__init__(backend, name, attributes)
        direction = "seq DESC" if attributes.sequence == "LIFO" else "key, seq"
        self._select, self._delete, self._lease = {}, {}, {}
        for order, condition in [*ORDER_SQL.items(), (None, "1")]:
            where = (f"FROM dtaq_entries WHERE queue = ? AND {condition} AND visible_at <= ? "
                     f"ORDER BY {direction} LIMIT 1")
            self._select[order] = f"SELECT {COLUMNS} {where}"
            self._delete[order] = f"DELETE FROM dtaq_entries WHERE seq = (SELECT seq {where}) RETURNING {COLUMNS}"
            self._lease[order] = (f"UPDATE dtaq_entries SET visible_at = ? WHERE seq = (SELECT seq {where}) "
                                  f"RETURNING {COLUMNS}")
        self._any = "SELECT 1 FROM dtaq_entries WHERE queue = ? AND visible_at <= ? LIMIT 1"
        first_n = f"SELECT seq FROM dtaq_entries WHERE queue = ? AND visible_at <= ? ORDER BY {direction} LIMIT ?"
        self._delete_many = f"DELETE FROM dtaq_entries WHERE seq IN ({first_n}) RETURNING {COLUMNS}"
        self._lease_many = (f"UPDATE dtaq_entries SET visible_at = ? WHERE seq IN ({first_n}) "
                            f"RETURNING {COLUMNS}")

    # --- send ------------------------------------------------------------------------------------------------------
    def _put(self, data: bytes, key: bytes, sender: str, dedup: str | None) -> bool:
        return self._put_many([(data, key, dedup)], sender)[0]

    def _put_many(self, items: list[tuple[bytes, bytes, str | None]], sender: str) -> list[bool]:
        a = self.attributes
        now = time.time()
        sent: list[bool] = []
        full = False
        if not a.max_entries and all(dedup is None for _, _, dedup in items):
            rows = [(self.name, key, data, sender, now) for data, key, _ in items]
            with self.backend.writing(transaction=len(rows) > 1 or a.force, force=a.force) as db:
                db.executemany(INSERT, rows) if len(rows) > 1 else db.execute(INSERT, rows[0])
            sent = [True] * len(rows)
        elif len(items) == 1 and items[0][2] is None:  # a client's request: counted and inserted in one statement
            data, key, _ = items[0]
            with self.backend.writing(force=a.force, transaction=a.force) as db:
                inserted = db.execute(INSERT_BOUNDED, (self.name, key, data, sender, now, self.name, a.max_entries,
                                                       a.max_entries)).rowcount == 1
            sent, full = ([True], False) if inserted else ([], True)
        else:
            with self.backend.writing(transaction=True, force=a.force) as db:
                count = None
                if a.max_entries:  # counting stops at the limit: a deep queue costs no more than a full one
                    (count,) = db.execute("SELECT count(*) FROM (SELECT 1 FROM dtaq_entries WHERE queue = ? "
                                          "LIMIT ?)", (self.name, a.max_entries)).fetchone()
                for data, key, dedup in items:
                    if dedup is not None:
                        row = db.execute("SELECT expires FROM dtaq_dedup WHERE queue = ? AND id = ?",
                                         (self.name, dedup)).fetchone()
                        if row is not None and row[0] > now:
                            sent.append(False)
                            continue
                    if count is not None and count >= a.max_entries:
                        full = True  # what was sent before stays sent: commit it, then raise
                        break
                    if dedup is not None:
                        db.execute("INSERT OR REPLACE INTO dtaq_dedup VALUES (?, ?, ?)",
                                   (self.name, dedup, now + a.dedup_seconds))
                    db.execute(INSERT, (self.name, key, data, sender, now))
                    sent.append(True)
                    if count is not None:
                        count += 1
        self.backend.waker.ring(self.name, [key for (_, key, _), ok in zip(items, sent) if ok])
        if full:
            raise QueueFull(f"queue {self.name} is full ({a.max_entries} entries)")
        return sent

    # --- receive ---------------------------------------------------------------------------------------------------
    def _take(self, key: bytes, order: Order, remove: bool, *, rung: bool = False) -> Entry | None:
        """The next matching entry. Unless ``rung`` (a ring said one was sent), a read comes first: an empty
        queue, which is what most looks find, then costs no write lock."""
        a = self.attributes
        now = time.time()
        order_key, args = (order, (self.name, key, now)) if key else (None, (self.name, now))
        if not rung or not remove:
            row = self.backend.connection().execute(self._select[order_key], args).fetchone()
            if row is None:
                return None
            if not remove:
                return Entry(row[2], row[1], row[3], row[4])
        if a.lease:
            visible_at = now + a.lease
            with self.backend.writing(force=a.force, transaction=a.force) as db:
                rows = db.execute(self._lease[order_key], (visible_at, *args)).fetchall()
            return Entry(rows[0][2], rows[0][1], rows[0][3], rows[0][4], (rows[0][0], visible_at)) if rows else None
        with self.backend.writing(force=a.force, transaction=a.force) as db:
            # it re-selects, so an entry another receiver took in between just means the next one (or none);
            # fetchall runs the statement to its end, so its autocommit is done before the lock is let go
            rows = db.execute(self._delete[order_key], args).fetchall()
        return Entry(rows[0][2], rows[0][1], rows[0][3], rows[0][4]) if rows else None

    def receive_many(self, wait: float, limit: int) -> list[Entry]:
        entries = super().receive_many(0, limit)  # checks the arguments
        if entries or wait == 0:
            return entries
        deadline = None if wait < 0 else time.monotonic() + wait
        left_over: list[bytes] = []
        try:
            with self.backend.waker.listen(self.name, None, left_over) as bell:
                if bell is None:
                    return super().receive_many(wait, limit)
                found = _until_rung(bell, deadline, lambda rung: self._take_many(limit, rung=rung))
                if isinstance(found, Entry):  # a request handed over: and any others handed with it
                    return [found, *(_handed_entry(message) for message in _handed_waiting(bell, limit - 1))]
                return found
        finally:
            self._put_back(b"", left_over)

    def _take_many(self, limit: int, *, rung: bool = False) -> list[Entry]:
        a = self.attributes
        now = time.time()
        if not rung and self.backend.connection().execute(self._any, (self.name, now)).fetchone() is None:
            return []  # as in _take: a read first
        with self.backend.writing(force=a.force, transaction=a.force) as db:
            if a.lease:
                visible_at = now + a.lease
                rows = db.execute(self._lease_many, (visible_at, self.name, now, limit)).fetchall()
            else:
                rows = db.execute(self._delete_many, (self.name, now, limit)).fetchall()
        rows.sort(key=lambda r: r[0], reverse=a.sequence == "LIFO")  # RETURNING promises no order
        return [Entry(r[2], r[1], r[3], r[4], (r[0], visible_at) if a.lease else None) for r in rows]

    def _hand_request(self, data: bytes) -> bool:
        """Give a request straight to a receiver waiting on this FIFO/LIFO queue (one that takes entries:
        server workers), without storing it; False when none takes it, and then it must be sent normally.
        Never on queues with lease, force or sender ids: those go through the table. With max_entries it is:
        a worker waits only when it found the table empty, so a handed request never deepens the queue."""
        a = self.attributes
        if a.lease or a.force or a.sender_id or a.keyed or len(data) > a.maxlen:
            return False
        return self.backend.waker.hand_any(self.name, _handed(bytes(data), "", time.time()))

    def send_receive(self, data: bytes, replies: DataQueue, key: bytes, wait: float) -> Entry | None:
        """Listen on the reply key's socket before sending: no look at the reply queue is needed before the
        request is even in the queue. The request itself is handed to an idle server worker where one waits
        (see _hand_request), else stored."""
        if not isinstance(replies, SqliteQueue) or replies.backend is not self.backend or wait == 0 \
                or not replies.attributes.keyed:
            return super().send_receive(data, replies, key, wait)
        key = replies._check_key(key, "receive")
        left_over: list[bytes] = []
        try:
            with self.backend.waker.listen(replies.name, key, left_over) as bell:
                if bell is None or not self._hand_request(data):
                    self.send(data)
                if bell is None:
                    return replies.receive(wait, key)
                deadline = None if wait < 0 else time.monotonic() + wait
                # the key is a new communication id: its reply can only come after the send, rung or handed
                # over to this socket, so no look at the table before the first ring (or WAKE_CAP)
                return _until_rung(bell, deadline, lambda rung: replies._take(key, Order.EQ, True, rung=rung), key,
                                   look_first=False)
        finally:
            replies._put_back(key, left_over)

    def _take_blocking(self, deadline: float | None, key: bytes, order: Order, remove: bool) -> Any:
        keyed_wait = bool(key) and order is Order.EQ
        if not remove or (self.attributes.keyed and not keyed_wait):
            # other key orders match many keys, which no one socket stands for; a peek must not be handed
            # the entry itself: poll
            return NotImplemented
        entry = self._take(key, order, remove)
        if entry is not None or (deadline is not None and time.monotonic() >= deadline):
            return entry
        left_over: list[bytes] = []
        try:
            with self.backend.waker.listen(self.name, key if keyed_wait else None, left_over) as bell:
                if bell is None:  # no sockets here, or every slot (or this very key) is taken: poll
                    return NotImplemented
                return _until_rung(bell, deadline, lambda rung: self._take(key, order, remove, rung=rung), key)
        finally:
            self._put_back(key, left_over)

    def _hand_over(self, items: list[tuple[bytes, bytes, str | None]], sender: str) -> list[bool]:
        a = self.attributes
        if not a.keyed or a.force or a.max_entries:  # durable per operation, or counted: through the table
            return self._put_many(items, sender)
        now = time.time()
        handed = [dedup is None and self.backend.waker.hand(self.name, key, _handed(data, sender, now))
                  for data, key, dedup in items]
        rest = [item for item, done in zip(items, handed) if not done]
        results = iter(self._put_many(rest, sender) if rest else [])
        return [True if done else next(results) for done in handed]

    def _put_back(self, key: bytes, left_over: list[bytes]) -> None:
        """Entries handed over to a receiver that left without them go to the table as they were sent."""
        if left_over:
            entries = [_handed_entry(message, key) for message in left_over]
            with self.backend.writing(transaction=True) as db:
                db.executemany(INSERT, [(self.name, key, e.data, e.sender, e.sent_at) for e in entries])
            self.backend.waker.ring(self.name, [key] * len(entries))

    def _wait_for_change(self, seconds: float) -> None:
        db = self.backend.connection()
        (before,) = db.execute("PRAGMA data_version").fetchone()
        end = time.monotonic() + seconds
        step = 0.0001
        while (left := end - time.monotonic()) > 0:
            time.sleep(min(step, left))
            if db.execute("PRAGMA data_version").fetchone()[0] != before:
                return
            step = min(step * 2, 0.001)  # waiting processes must not eat the cores polling

    # --- ack, clear, describe ------------------------------------------------------------------------------------
    def _ack(self, receipt: Any) -> None:
        self._ack_many([receipt])

    def _ack_many(self, receipts: list[Any]) -> None:
        with self.backend.writing(transaction=True, force=self.attributes.force) as db:
            db.executemany("DELETE FROM dtaq_entries WHERE seq = ? AND visible_at = ?", receipts)

    def _clear(self, key: bytes | None, order: Order) -> int:
        with self.backend.writing(transaction=True, force=self.attributes.force) as db:
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


def _until_rung(bell: socket.socket, deadline: float | None, look: Callable[[bool], Any], key: bytes = b"",
                rung: bool = False, look_first: bool = True) -> Any:
    """Look, and until ``look`` finds something or the deadline passes, wait for a ring (or WAKE_CAP) and look
    again; ``look(rung)`` is told whether a ring came. An entry handed over on the socket is the answer. The
    caller listens before calling, so an entry committed after the first look is rung for; without
    ``look_first`` (the caller knows nothing can be there yet) the first look waits for a ring or WAKE_CAP."""
    looked = look_first
    found = look(rung) if look_first else None
    while True:
        left = WAKE_CAP if deadline is None else min(WAKE_CAP, deadline - time.monotonic())
        if found or left <= 0:
            return found if found or looked else look(False)
        bell.settimeout(left)
        try:
            message = bell.recv(HAND_OVER_MAX)
        except TimeoutError:
            rung = False
        else:
            if message[:1] == HANDED:
                return _handed_entry(message, key)
            rung = True
        found, looked = look(rung), True


def _handed_waiting(bell: socket.socket, limit: int) -> list[bytes]:
    """Up to ``limit`` more entries already handed to ``bell`` (rings are dropped); the rest stay for leaving."""
    bell.setblocking(False)
    found: list[bytes] = []
    while len(found) < limit:
        try:
            message = bell.recv(HAND_OVER_MAX)
        except OSError:
            break
        if message[:1] == HANDED:
            found.append(message)
    return found


def _handed(data: bytes, sender: str, sent_at: float) -> bytes:
    raw = sender.encode()
    return HANDED + struct.pack("<dH", sent_at, len(raw)) + raw + data


def _handed_entry(message: bytes, key: bytes = b"") -> Entry:
    sent_at, length = struct.unpack_from("<dH", message, 1)
    return Entry(message[11 + length:], key, message[11:11 + length].decode(), sent_at)


class Waker:
    """Wake-ups instead of polling, with Linux abstract datagram sockets (elsewhere receives poll).

    A receive by key (EQ) binds a socket named after (database, queue, key); whoever sends an entry with that key
    rings it after committing. Other receives (FIFO/LIFO queues: server workers) bind one of SLOTS sockets named
    after (database, queue, slot) and mark the slot in a small shared file beside the database (``DB.wake``), so a
    sender rings only waiters that exist: one per entry sent. A waiter marks itself before its last look at the
    table and a sender reads the marks after its commit, so an entry is either seen or rung for; a lost or stale
    ring only costs one WAKE_CAP of latency or one extra look.
    """

    available = sys.platform.startswith("linux")
    SLOTS = 16
    REGIONS = 256  # queues hash into regions of the mark file; two queues sharing one only get extra rings

    def __init__(self, database: Path):
        digest = hashlib.blake2b(str(database.resolve()).encode(), digest_size=8).hexdigest()
        self.prefix = b"\0esomp-dtaq/" + digest.encode() + b"/"
        self._slot_cache: dict[str, tuple[int, list[bytes]]] = {}
        self.marks_path = database.with_name(database.name + ".wake")
        self._marks: mmap.mmap | None = None
        self._sender: socket.socket | None = None
        self._pid = -1
        self._turn = 0

    def address(self, queue: str, key: bytes, slot: int = -1) -> bytes:
        """(database, queue, key or slot) as an abstract socket name: readable when it fits, else hashed."""
        name = b"%s%s/%s/%d" % (self.prefix, queue.encode(), key.hex().encode(), slot)
        if len(name) > 100:  # sun_path holds 108 bytes
            name = self.prefix + hashlib.blake2b(name, digest_size=20).hexdigest().encode()
        return name

    def _slots(self, queue: str) -> tuple[int, list[bytes]]:
        """Where the queue's marks start in the mark file, and its slot sockets' names."""
        found = self._slot_cache.get(queue)
        if found is None:
            region = int.from_bytes(hashlib.blake2b(queue.encode(), digest_size=2).digest(), "big") % self.REGIONS
            found = self._slot_cache[queue] = (region * self.SLOTS,
                                               [self.address(queue, b"", slot) for slot in range(self.SLOTS)])
        return found

    def _process(self) -> None:
        if self._pid != os.getpid():  # a forked child must not use its parent's sockets
            self._sender = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
            self._sender.setblocking(False)
            fd = os.open(self.marks_path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
            try:
                if os.fstat(fd).st_size < self.REGIONS * self.SLOTS:
                    os.ftruncate(fd, self.REGIONS * self.SLOTS)
                self._marks = mmap.mmap(fd, self.REGIONS * self.SLOTS)
            finally:
                os.close(fd)
            self._pid = os.getpid()

    def _bind(self, address: bytes) -> socket.socket | None:
        bell = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        try:
            bell.bind(address)
        except OSError:
            bell.close()
            return None
        return bell

    @contextlib.contextmanager
    def listen(self, queue: str, key: bytes | None,
               left_over: list[bytes] | None = None) -> Iterator[socket.socket | None]:
        """A socket to wait on for entries with ``key`` (None: any entry); None when the caller must poll.
        On leaving, a key socket is shut for reading first (senders then fail and use the table), and entries
        handed over to it but not taken are put in ``left_over``."""
        if not self.available:
            yield None
            return
        self._process()
        if key is not None:
            if left_over is None:
                raise ValueError("a key socket may be handed entries: listen needs a left_over list")
            bell = self._bind(self.address(queue, key))
            try:
                yield bell
            finally:
                if bell is not None:
                    self._leave(bell, left_over)
            return
        base, addresses = self._slots(queue)
        for slot in range(self.SLOTS):
            if self._marks[base + slot] == 0 and (bell := self._bind(addresses[slot])):
                break  # two waiters may eye the same free slot: bind decides
        else:
            yield None
            return
        self._marks[base + slot] = 1
        try:
            yield bell
        finally:
            self._marks[base + slot] = 0
            self._leave(bell, left_over)

    @staticmethod
    def _leave(bell: socket.socket, left_over: list[bytes] | None) -> None:
        """Shut the socket for reading first (senders then fail and use the table), then keep what was handed
        to it but not taken in ``left_over``."""
        bell.shutdown(socket.SHUT_RD)
        bell.setblocking(False)
        while True:
            try:
                message = bell.recv(HAND_OVER_MAX)
            except OSError:
                break
            if message[:1] == HANDED:
                if left_over is None:
                    raise RuntimeError("an entry was handed to a socket that takes none")  # a bug: say so
                left_over.append(message)
        bell.close()

    def hand_any(self, queue: str, entry: bytes) -> bool:
        """Give an entry of a FIFO/LIFO queue to one of its waiting receivers (slot sockets); False when none
        takes it. Waiters are tried from a place that moves on, so idle workers share the requests."""
        if not self.available:
            return False
        self._process()
        base, addresses = self._slots(queue)
        marks = self._marks[base:base + self.SLOTS]
        self._turn = (self._turn + 1) % self.SLOTS
        for i in range(self.SLOTS):
            slot = (self._turn + i) % self.SLOTS
            if marks[slot]:
                try:
                    self._sender.sendto(entry, addresses[slot])
                    return True
                except OSError:  # it left (its socket is shut or gone), or has as many as it can hold
                    continue
        return False

    def hand(self, queue: str, key: bytes, entry: bytes) -> bool:
        """Give an entry straight to a receiver waiting on its key; False when none takes it (none waits, it is
        leaving, or its socket is full): then the entry goes to the table."""
        if not self.available:
            return False
        self._process()
        try:
            self._sender.sendto(entry, self.address(queue, key))
            return True
        except OSError:
            return False

    def ring(self, queue: str, keys: list[bytes]) -> None:
        """After a commit: ring the waiters of these keys (keyed queue), or one slot waiter per entry (b"")."""
        if not self.available or not keys:
            return
        self._process()
        if keys[0] == b"":
            base, slots = self._slots(queue)
            marks = self._marks[base:base + self.SLOTS]
            addresses = [slots[slot] for slot in range(self.SLOTS) if marks[slot]][:len(keys)]
        else:
            addresses = [self.address(queue, key) for key in set(keys)]
        for address in addresses:
            try:
                self._sender.sendto(b"", address)
            except OSError:  # nobody waits there any more, or a ring is already pending
                pass


class _Writing:
    """A write under the writers' lock (a class, not a generator: this runs several times per round trip)."""

    __slots__ = ("local", "transaction", "force")

    def __init__(self, local: threading.local, transaction: bool, force: bool):
        self.local, self.transaction, self.force = local, transaction, force

    def __enter__(self) -> sqlite3.Connection:
        db = self.local.db
        fcntl.flock(self.local.lock, fcntl.LOCK_EX)
        if self.transaction:
            try:
                if self.force:
                    db.execute("PRAGMA synchronous=FULL")
                db.execute("BEGIN IMMEDIATE")
            except BaseException:
                self._release()
                raise
        return db

    def __exit__(self, exc_type, exc, tb) -> None:
        try:
            if self.transaction:
                self.local.db.execute("COMMIT" if exc_type is None else "ROLLBACK")
        finally:
            self._release()

    def _release(self) -> None:
        try:
            if self.force:
                self.local.db.execute("PRAGMA synchronous=NORMAL")
        finally:
            fcntl.flock(self.local.lock, fcntl.LOCK_UN)


class SqliteBackend(Backend):
    kind = "sqlite"

    def __init__(self, path: str | os.PathLike):
        super().__init__()
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.lock_path = self.path.with_name(self.path.name + ".lock")
        self.waker = Waker(self.path)
        self._local = threading.local()
        self._pid = os.getpid()
        with self.writing():
            self.connection().executescript(SCHEMA)

    def __repr__(self) -> str:
        return f"sqlite:{self.path}"

    def _thread(self) -> threading.local:
        """This thread's connection and lock file (a forked child opens its own: neither may cross a fork)."""
        local = self._local
        if self._pid != os.getpid():
            self._local = local = threading.local()
            self._pid = os.getpid()
            self.forget()
        if getattr(local, "db", None) is None:
            db = sqlite3.connect(self.path, timeout=30, isolation_level=None, check_same_thread=False,
                                 cached_statements=256)
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=NORMAL")
            local.db = db
            # one open file per thread: flock excludes other open files, not other threads sharing one
            local.lock = os.open(self.lock_path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        return local

    def connection(self) -> sqlite3.Connection:
        return self._thread().db

    def writing(self, *, transaction: bool = False, force: bool = False) -> "_Writing":
        """Hold the writers' lock; with ``transaction`` run the body in BEGIN IMMEDIATE ... COMMIT, with
        ``force`` committed with synchronous=FULL."""
        return _Writing(self._thread(), transaction or force, force)

    def transaction(self, force: bool = False) -> "_Writing":
        return self.writing(transaction=True, force=force)

    def close(self) -> None:
        local = self._local
        if getattr(local, "db", None) is not None:
            local.db.close()
            os.close(local.lock)
            local.db = None

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
        with self.writing() as db:
            db.execute("INSERT OR REPLACE INTO dtaq_state VALUES (?, ?, ?)", (ns, field, value))

    def state_delete(self, ns: str, field: str) -> None:
        with self.writing() as db:
            db.execute("DELETE FROM dtaq_state WHERE ns = ? AND field = ?", (ns, field))

    def state_all(self, ns: str) -> dict[str, str]:
        return dict(self.connection().execute("SELECT field, value FROM dtaq_state WHERE ns = ? ORDER BY field",
                                              (ns,)))

    def counter(self, name: str) -> int:
        row = self.connection().execute("SELECT value FROM dtaq_counters WHERE name = ?", (name,)).fetchone()
        return row[0] if row else 0

    def next_id(self, name: str) -> int:
        with self.writing() as db:
            return db.execute("INSERT INTO dtaq_counters VALUES (?, 1) ON CONFLICT (name) DO UPDATE "
                              "SET value = value + 1 RETURNING value", (name,)).fetchall()[0][0]
