"""In-process queues: a sorted list per queue under a condition variable (tests, direct use, the bench)."""
from __future__ import annotations

import bisect
import itertools
import threading
import time
from typing import Any

from esomp_dtaq.backends import Backend
from esomp_dtaq.queues import DataQueue, Entry, Order, QueueAttributes, QueueFull, matches, sort_key


class MemoryQueue(DataQueue):
    def __init__(self, backend: "MemoryBackend", name: str, attributes: QueueAttributes):
        super().__init__(backend, name, attributes)
        self.cond = threading.Condition()
        self.items: list[tuple[tuple[bytes, int], int, Entry]] = []  # (sort key, seq, entry), sorted
        self.leased: dict[int, tuple[float, tuple, Entry]] = {}  # seq -> (deadline, item)
        self.dedup: dict[str, float] = {}

    def _put(self, data: bytes, key: bytes, sender: str, dedup: str | None) -> bool:
        now = time.time()
        with self.cond:
            if dedup is not None:
                if self.dedup.get(dedup, 0) > now:
                    return False
            self._requeue_expired()
            limit = self.attributes.max_entries
            if limit and len(self.items) + len(self.leased) >= limit:
                raise QueueFull(f"queue {self.name} is full ({limit} entries)")
            if dedup is not None:
                self.dedup[dedup] = now + self.attributes.dedup_seconds
            seq = next(self.backend.seq)
            bisect.insort(self.items, (sort_key(self.attributes, key, seq), seq, Entry(data, key, sender, now)))
            self.cond.notify_all()
        return True

    def _requeue_expired(self) -> None:
        now = time.monotonic()
        for seq, (deadline, item) in list(self.leased.items()):
            if deadline <= now:
                del self.leased[seq]
                bisect.insort(self.items, item)
                self.cond.notify_all()

    def _find(self, key: bytes, order: Order) -> int | None:
        start = 0
        if key and order in (Order.EQ, Order.GE):
            start = bisect.bisect_left(self.items, ((key, -1),))
        elif key and order is Order.GT:
            start = bisect.bisect_left(self.items, ((key + b"\x00", -1),))
        for i in range(start, len(self.items)):
            item_key = self.items[i][2].key
            if matches(self.attributes, item_key, key, order):
                return i
            if order is Order.EQ or (order in (Order.LT, Order.LE) and item_key > key):
                return None
        return None

    def _take(self, key: bytes, order: Order, remove: bool) -> Entry | None:
        with self.cond:
            return self._take_locked(key, order, remove)

    def _take_locked(self, key: bytes, order: Order, remove: bool) -> Entry | None:
        if self.leased:
            self._requeue_expired()
        i = self._find(key, order)
        if i is None:
            return None
        item = self.items[i]
        if not remove:
            return item[2]
        del self.items[i]
        if self.attributes.lease:
            deadline = time.monotonic() + self.attributes.lease
            self.leased[item[1]] = (deadline, item)
            # the deadline tells this lease from a later one of the same entry: a stale receipt acks nothing
            return Entry(item[2].data, item[2].key, item[2].sender, item[2].sent_at, receipt=(item[1], deadline))
        return item[2]

    def _take_blocking(self, deadline: float | None, key: bytes, order: Order, remove: bool) -> Any:
        with self.cond:
            while True:
                entry = self._take_locked(key, order, remove)
                if entry is not None:
                    return entry
                timeout = None if deadline is None else deadline - time.monotonic()
                if timeout is not None and timeout <= 0:
                    return None
                if self.leased:  # wake up in time to redeliver an expired lease
                    lease_due = min(d for d, _ in self.leased.values()) - time.monotonic()
                    timeout = max(lease_due, 0.001) if timeout is None else min(timeout, max(lease_due, 0.001))
                self.cond.wait(timeout)

    def _ack(self, receipt: Any) -> None:
        seq, deadline = receipt
        with self.cond:
            if seq in self.leased and self.leased[seq][0] == deadline:
                del self.leased[seq]

    def _clear(self, key: bytes | None, order: Order) -> int:
        with self.cond:
            if key is None:
                removed = len(self.items)
                self.items.clear()
                return removed
            keep = [item for item in self.items if not order.matches(item[2].key, key)]
            removed = len(self.items) - len(keep)
            self.items[:] = keep
            return removed

    def _describe(self) -> tuple[int, int, float | None]:
        with self.cond:
            self._requeue_expired()
            times = [item[2].sent_at for item in self.items]
            return len(self.items), len(self.leased), min(times) if times else None


class MemoryBackend(Backend):
    kind = "memory"

    def __init__(self) -> None:
        super().__init__()
        self.seq = itertools.count(1)
        self.attributes: dict[str, QueueAttributes] = {}
        self.state: dict[str, dict[str, str]] = {}
        self.counters: dict[str, int] = {}
        self.guard = threading.Lock()

    def __repr__(self) -> str:
        return "memory"

    def names(self) -> list[str]:
        return sorted(self.attributes)

    def _create(self, name: str, attributes: QueueAttributes) -> None:
        self.attributes[name] = attributes

    def _delete(self, name: str) -> None:
        self.attributes.pop(name, None)

    def _load_attributes(self, name: str) -> QueueAttributes | None:
        return self.attributes.get(name)

    def _make_queue(self, name: str, attributes: QueueAttributes) -> DataQueue:
        return MemoryQueue(self, name, attributes)

    def state_get(self, ns: str, field: str) -> str | None:
        return self.state.get(ns, {}).get(field)

    def state_set(self, ns: str, field: str, value: str) -> None:
        with self.guard:
            self.state.setdefault(ns, {})[field] = value

    def state_delete(self, ns: str, field: str) -> None:
        with self.guard:
            self.state.get(ns, {}).pop(field, None)

    def state_all(self, ns: str) -> dict[str, str]:
        with self.guard:
            return dict(self.state.get(ns, {}))

    def counter(self, name: str) -> int:
        return self.counters.get(name, 0)

    def next_id(self, name: str) -> int:
        with self.guard:
            self.counters[name] = self.counters.get(name, 0) + 1
            return self.counters[name]
