"""Queue backends: SQLite (embedded default), Redis (shared), memory (in-process).

Every backend offers the same surface: ``create(name, attributes, replace=False)``, ``queue(name)``,
``delete(name)``, ``names()``; a small state store (``state_get/state_set/state_delete/state_all`` by namespace
and field, string values) and never-reused counters (``next_id``), so the blacklist, CUTOFF, breaker and worker
table are seen by every process using the backend.
"""
from __future__ import annotations

import json
import os
import threading
from typing import Any

from esomp_dtaq.queues import DataQueue, NoSuchQueue, QueueAttributes

BACKENDS = ("sqlite", "redis", "memory")

# Forks so far in this process's line, bumped in every child: what a process set up before a fork (a connection,
# a block of communication ids) belongs to its parent. Cheaper to compare on every call than os.getpid().
FORKS = [0]
os.register_at_fork(after_in_child=lambda: FORKS.__setitem__(0, FORKS[0] + 1))


class Backend:
    kind = "?"

    def __init__(self) -> None:
        self._queues: dict[str, DataQueue] = {}
        self._lock = threading.Lock()

    # queues -----------------------------------------------------------------------------------------------------
    def create(self, name: str, attributes: QueueAttributes, *, replace: bool = False) -> DataQueue:
        """Create queue ``name``; an existing queue with other attributes is an error unless ``replace``."""
        existing = self._load_attributes(name)
        if existing is not None and (replace or existing != attributes):
            if not replace:
                raise ValueError(f"queue {name} exists with other attributes {existing.as_dict()}; "
                                 f"delete it first (or create with replace=True)")
            self.delete(name)
            existing = None
        if existing is None:
            self._create(name, attributes)
        return self.queue(name)

    def attributes_of(self, name: str) -> QueueAttributes | None:
        """The attributes queue ``name`` was created with, or None when there is no such queue."""
        return self._load_attributes(name)

    def queue(self, name: str) -> DataQueue:
        with self._lock:
            if name in self._queues:
                return self._queues[name]
        attributes = self._load_attributes(name)
        if attributes is None:
            raise NoSuchQueue(f"no data queue {name!r} on {self}")
        q = self._make_queue(name, attributes)
        with self._lock:
            return self._queues.setdefault(name, q)

    def delete(self, name: str) -> None:
        with self._lock:
            self._queues.pop(name, None)
        self._delete(name)

    def forget(self) -> None:
        """Drop cached queue objects (after a fork: the child opens its own connections)."""
        with self._lock:
            self._queues.clear()

    @staticmethod
    def encode_attributes(attributes: QueueAttributes) -> str:
        return json.dumps(attributes.as_dict(), sort_keys=True)

    @staticmethod
    def decode_attributes(text: str | bytes | None) -> QueueAttributes | None:
        return None if text is None else QueueAttributes(**json.loads(text))

    # what each backend provides ---------------------------------------------------------------------------------
    def names(self) -> list[str]: raise NotImplementedError
    def _create(self, name: str, attributes: QueueAttributes) -> None: raise NotImplementedError
    def _delete(self, name: str) -> None: raise NotImplementedError
    def _load_attributes(self, name: str) -> QueueAttributes | None: raise NotImplementedError
    def _make_queue(self, name: str, attributes: QueueAttributes) -> DataQueue: raise NotImplementedError
    def state_get(self, ns: str, field: str) -> str | None: raise NotImplementedError
    def state_set(self, ns: str, field: str, value: str) -> None: raise NotImplementedError
    def state_delete(self, ns: str, field: str) -> None: raise NotImplementedError
    def state_all(self, ns: str) -> dict[str, str]: raise NotImplementedError
    def next_id(self, name: str) -> int: raise NotImplementedError
    def counter(self, name: str) -> int: raise NotImplementedError
    def close(self) -> None: pass

    def state_json(self, ns: str, field: str, default: Any = None) -> Any:
        value = self.state_get(ns, field)
        return default if value is None else json.loads(value)

    def set_json(self, ns: str, field: str, value: Any) -> None:
        self.state_set(ns, field, json.dumps(value, ensure_ascii=False, sort_keys=True))


def open_backend(kind: str = "sqlite", *, path: str | None = None, url: str | None = None,
                 prefix: str = "esomp:dtaq") -> Backend:
    """Open a backend by kind: sqlite needs ``path``, redis ``url`` (default redis://127.0.0.1:6379/0)."""
    if kind == "sqlite":
        from esomp_dtaq.backends.sqlite import SqliteBackend

        if not path:
            raise ValueError("the sqlite backend needs a database path")
        return SqliteBackend(path)
    if kind == "redis":
        from esomp_dtaq.backends.redis import RedisBackend

        return RedisBackend(url or "redis://127.0.0.1:6379/0", prefix=prefix)
    if kind == "memory":
        from esomp_dtaq.backends.memory import MemoryBackend

        return MemoryBackend()
    raise ValueError(f"unknown backend {kind!r} (expected one of: {', '.join(BACKENDS)})")
