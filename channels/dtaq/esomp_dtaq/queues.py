"""Data queues with IBM i semantics (CRTDTAQ / QSNDDTAQ / QRCVDTAQ / QCLRDTAQ / QMHQRDQD), backend-neutral.

A backend implements ``_put``, ``_take`` (non-blocking), ``_clear``, ``_describe`` and ``_ack``; this module
checks arguments, turns waits into the backend's blocking primitive or a short backoff, and fixes the order in
which entries come out: FIFO oldest first, LIFO newest first, KEYED lowest matching key first and FIFO within a
key. Keys are compared as unsigned bytes, as the IBM i does.
"""
from __future__ import annotations

import enum
import os
import socket
import time
from typing import Any

import attrs

SEQUENCES = ("FIFO", "LIFO", "KEYED")
MAX_MAXLEN = 64512
KEY_PAD = b" "  # keys shorter than keylen are padded on the right with spaces by pad_key()


class QueueError(Exception):
    """A data queue operation was refused; the message names the queue."""


class QueueFull(QueueError):
    """The queue holds max_entries entries; ``send`` never blocks, it raises this at once."""


class DataTooLong(QueueError):
    pass


class BadKey(QueueError):
    pass


class NoSuchQueue(QueueError):
    pass


class Order(enum.Enum):
    """How a key selects entries of a keyed queue (QRCVDTAQ's key order)."""

    EQ = "EQ"
    NE = "NE"
    LT = "LT"
    LE = "LE"
    GT = "GT"
    GE = "GE"

    def matches(self, entry_key: bytes, key: bytes) -> bool:
        return {"EQ": entry_key == key, "NE": entry_key != key, "LT": entry_key < key,
                "LE": entry_key <= key, "GT": entry_key > key, "GE": entry_key >= key}[self.value]


def _in_range(low: int, high: int):
    def check(instance, attribute, value):
        if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
            raise ValueError(f"{attribute.name}: expected an integer {low}..{high}, got {value!r}")
    return check


@attrs.frozen
class QueueAttributes:
    """What CRTDTAQ fixes when a queue is created.

    ``lease`` > 0 turns on at-least-once delivery: a received entry stays hidden for ``lease`` seconds and comes
    back unless ``ack``-ed. ``dedup_seconds`` is how long a ``send(..., dedup=ID)`` remembers ID.
    """

    maxlen: int = attrs.field(default=2304, validator=_in_range(1, MAX_MAXLEN))
    sequence: str = attrs.field(default="FIFO", validator=attrs.validators.in_(SEQUENCES))
    keylen: int = attrs.field(default=0, validator=_in_range(0, 256))
    max_entries: int = attrs.field(default=0, validator=_in_range(0, 2**31 - 1))
    """0: limited only by storage (the seed's SIZE(*MAX2GB))."""
    sender_id: bool = False
    force: bool = False
    lease: float = 0.0
    dedup_seconds: float = 86400.0

    def __attrs_post_init__(self):
        if (self.sequence == "KEYED") != (self.keylen > 0):
            raise ValueError("keylen: a KEYED queue needs keylen 1..256, FIFO and LIFO queues keylen 0")
        if self.lease < 0:
            raise ValueError(f"lease: expected seconds >= 0, got {self.lease!r}")

    @property
    def keyed(self) -> bool:
        return self.sequence == "KEYED"

    def as_dict(self) -> dict[str, Any]:
        return attrs.asdict(self)


@attrs.frozen
class Entry:
    """A received entry. ``receipt`` identifies a leased entry for ``ack``; None when not leased."""

    data: bytes
    key: bytes = b""
    sender: str = ""
    sent_at: float = 0.0
    receipt: Any = None


def pad_key(key: bytes | str, keylen: int, encoding: str = "gbk") -> bytes:
    """A key of exactly ``keylen`` bytes: text is encoded, then padded on the right with spaces (KEY_PAD)."""
    raw = key.encode(encoding) if isinstance(key, str) else bytes(key)
    if len(raw) > keylen:
        raise BadKey(f"key {key!r} is {len(raw)} bytes, longer than keylen {keylen}")
    return raw.ljust(keylen, KEY_PAD)


def default_sender() -> str:
    """The sender id recorded when a queue has sender_id on: host/pid, like the IBM i's job name and number."""
    return f"{socket.gethostname()}/{os.getpid()}"


class DataQueue:
    """One named queue on a backend. Get it with ``backend.create(name, attrs)`` or ``backend.queue(name)``."""

    # Longest sleep between polls for backends that cannot block on this kind of receive.
    poll_max = 0.005

    def __init__(self, backend: Any, name: str, attributes: QueueAttributes):
        self.backend = backend
        self.name = name
        self.attributes = attributes

    def __repr__(self) -> str:
        return f"<DataQueue {self.name} {self.attributes.sequence} on {self.backend}>"

    # --- the public operations ---------------------------------------------------------------------------------
    def send(self, data: bytes, key: bytes | None = None, *, dedup: str | int | None = None) -> bool:
        """Add an entry. Returns False (and adds nothing) when ``dedup`` was already sent within dedup_seconds."""
        a = self.attributes
        data = bytes(data)
        if len(data) > a.maxlen:
            raise DataTooLong(f"queue {self.name}: {len(data)} bytes is over maxlen {a.maxlen}")
        key = self._check_key(key, "send")
        sender = default_sender() if a.sender_id else ""
        return self._put(data, key, sender, None if dedup is None else str(dedup))

    def receive(self, wait: float = 0, key: bytes | None = None, order: Order | str = Order.EQ, *,
                remove: bool = True) -> Entry | None:
        """The next entry, or None when ``wait`` runs out (wait < 0: forever, 0: do not wait, > 0: seconds)."""
        key = self._check_key(key, "receive") if self.attributes.keyed else self._no_key(key)
        order = Order(order)
        deadline = None if wait < 0 else time.monotonic() + wait
        blocking = self._take_blocking(deadline, key, order, remove)
        if blocking is not NotImplemented:
            return blocking
        delay = 0.0001
        while True:
            entry = self._take(key, order, remove)
            if entry is not None:
                return entry
            now = time.monotonic()
            if deadline is not None and now >= deadline:
                return None
            pause = delay if deadline is None else min(delay, deadline - now)
            self._wait_for_change(pause)
            delay = min(delay * 2, self.poll_max)

    def receive_many(self, wait: float, limit: int) -> list[Entry]:
        """Up to ``limit`` entries of a FIFO or LIFO queue in one backend operation, in queue order; waits
        (as ``receive``) only for the first. Each entry still goes to exactly one receiver; with lease each is
        leased on its own and must be acked (``ack_many``)."""
        if self.attributes.keyed:
            raise BadKey(f"queue {self.name}: receive_many takes from FIFO and LIFO queues, not KEYED ones")
        if limit < 1:
            raise ValueError(f"queue {self.name}: receive_many needs a limit >= 1, got {limit!r}")
        entries = self._take_many(limit)
        if entries or wait == 0:
            return entries
        first = self.receive(wait)
        if first is None:
            return []
        return [first, *self._take_many(limit - 1)] if limit > 1 else [first]

    def send_many(self, items: list[tuple[bytes, bytes | None, str | int | None]], *,
                  hand_over: bool = False) -> list[bool]:
        """Send ``(data, key, dedup)`` entries in one backend operation where the backend allows it; every entry
        is checked first, so a bad one sends nothing. On a full queue the entries before it are sent and
        QueueFull is raised. Returns, per entry, what ``send`` would have.

        ``hand_over``: the caller knows no other entry with these keys is on its way (a reply to a
        communication id), so a receiver already waiting on a key may be given its entry directly, without
        storing it (SQLite), or stored without the send script (Redis; memory ignores it). The entry still goes
        to exactly one receiver; one handed to a receiver that is leaving is stored as if sent normally."""
        a = self.attributes
        sender = default_sender() if a.sender_id else ""
        checked = self._checked(items)
        if not checked:
            return []
        return self._hand_over(checked, sender) if hand_over else self._put_many(checked, sender)

    def reply_and_receive_many(self, replies: "DataQueue",
                               items: list[tuple[bytes, bytes | None, str | int | None]], wait: float,
                               limit: int) -> list[Entry]:
        """``replies.send_many(items, hand_over=True)``, then ``receive_many(wait, limit)`` here: a worker's
        replies to one batch and its wait for the next, in one round trip where the backend allows it."""
        if items:
            replies.send_many(items, hand_over=True)
        return self.receive_many(wait, limit)

    def _checked(self, items: list[tuple[bytes, bytes | None, str | int | None]]
                 ) -> list[tuple[bytes, bytes, str | None]]:
        """Every entry checked (length, key) before any is sent, so a bad one sends nothing."""
        maxlen = self.attributes.maxlen
        checked = []
        for data, key, dedup in items:
            data = bytes(data)
            if len(data) > maxlen:
                raise DataTooLong(f"queue {self.name}: {len(data)} bytes is over maxlen {maxlen}")
            checked.append((data, self._check_key(key, "send"), None if dedup is None else str(dedup)))
        return checked

    def send_receive(self, data: bytes, replies: "DataQueue", key: bytes, wait: float) -> Entry | None:
        """``send(data)`` here, then ``replies.receive(wait, key)``: a client's request and its wait for the
        reply, in one round trip where the backend allows it."""
        if key is not None:  # a bad key is refused before anything is sent
            key = replies._check_key(key, "receive") if replies.attributes.keyed else replies._no_key(key)
        self.send(data)
        return replies.receive(wait, key)

    def send_receive_data(self, data: bytes, replies: "DataQueue", key: bytes, wait: float) -> bytes | None:
        """``send_receive``, giving only the reply's data (a backend may skip building the Entry)."""
        entry = self.send_receive(data, replies, key, wait)
        return None if entry is None else entry.data

    def ack(self, entry: Entry) -> None:
        """Confirm a leased entry was handled, so it is not delivered again (no-op without lease mode)."""
        if entry.receipt is not None:
            self._ack(entry.receipt)

    def ack_many(self, entries: list[Entry]) -> None:
        receipts = [e.receipt for e in entries if e.receipt is not None]
        if receipts:
            self._ack_many(receipts)

    def clear(self, key: bytes | None = None, order: Order | str = Order.EQ) -> int:
        """Remove all entries, or on a keyed queue those whose key matches; returns how many were removed."""
        if key is not None:
            key = self._check_key(key, "clear")
        return self._clear(key, Order(order))

    def describe(self) -> dict[str, Any]:
        """Depth (entries waiting, leased ones excluded), leased count, oldest entry's age, and the attributes."""
        depth, leased, oldest = self._describe()
        return {"name": self.name, "depth": depth, "leased": leased,
                "oldest_age": None if oldest is None else max(0.0, time.time() - oldest),
                **self.attributes.as_dict()}

    def depth(self) -> int:
        return self._describe()[0]

    # --- checks --------------------------------------------------------------------------------------------------
    def _check_key(self, key: bytes | None, what: str) -> bytes:
        a = self.attributes
        if not a.keyed:
            return self._no_key(key)
        if key is None:
            if what == "receive":
                return b""  # no key on a keyed queue: receive the lowest key (GE the empty key)
            raise BadKey(f"queue {self.name}: {what} on a KEYED queue needs a key of {a.keylen} bytes")
        key = bytes(key)
        if len(key) != a.keylen:
            raise BadKey(f"queue {self.name}: key {key!r} is {len(key)} bytes, keylen is {a.keylen} "
                         f"(pad it with pad_key())")
        return key

    def _no_key(self, key: bytes | None) -> bytes:
        if key:
            raise BadKey(f"queue {self.name} is {self.attributes.sequence}, not KEYED: it takes no key")
        return b""

    # --- what a backend provides ---------------------------------------------------------------------------------
    def _put(self, data: bytes, key: bytes, sender: str, dedup: str | None) -> bool:
        raise NotImplementedError

    def _take(self, key: bytes, order: Order, remove: bool) -> Entry | None:
        raise NotImplementedError

    def _take_blocking(self, deadline: float | None, key: bytes, order: Order, remove: bool) -> Any:
        """Wait in the backend's own blocking primitive, or return NotImplemented to poll ``_take``."""
        return NotImplemented

    def _wait_for_change(self, seconds: float) -> None:
        time.sleep(seconds)

    def _ack(self, receipt: Any) -> None:
        raise NotImplementedError

    # Batch forms: one operation each where the backend can; these defaults loop.
    def _take_many(self, limit: int) -> list[Entry]:
        entries = []
        while len(entries) < limit and (entry := self._take(b"", Order.EQ, True)) is not None:
            entries.append(entry)
        return entries

    def _put_many(self, items: list[tuple[bytes, bytes, str | None]], sender: str) -> list[bool]:
        return [self._put(data, key, sender, dedup) for data, key, dedup in items]

    def _ack_many(self, receipts: list[Any]) -> None:
        for receipt in receipts:
            self._ack(receipt)

    def _hand_over(self, items: list[tuple[bytes, bytes, str | None]], sender: str) -> list[bool]:
        return self._put_many(items, sender)

    def _clear(self, key: bytes | None, order: Order) -> int:
        raise NotImplementedError

    def _describe(self) -> tuple[int, int, float | None]:
        raise NotImplementedError


def matches(attributes: QueueAttributes, entry_key: bytes, key: bytes, order: Order) -> bool:
    """Whether an entry is eligible for a receive; a receive without key on a keyed queue takes any."""
    if not attributes.keyed or key == b"":
        return True
    return order.matches(entry_key, key)


def sort_key(attributes: QueueAttributes, key: bytes, seq: int) -> tuple[bytes, int]:
    """The order entries come out in: FIFO by sequence, LIFO newest first, KEYED by key then sequence."""
    if attributes.sequence == "LIFO":
        return (b"", -seq)
    return (key, seq)
