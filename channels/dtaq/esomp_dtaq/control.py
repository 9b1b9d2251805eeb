"""Control state shared through the backend: blacklist (CNJYKPF), CUTOFF, service run state, breaker, workers.

Reads are cached for ``ttl`` seconds per process (a call must not pay several round trips for control data);
writes go straight to the backend, so a CLI change is seen everywhere within ``ttl``.
"""
from __future__ import annotations

import json
import logging
import time
from typing import Any

from esomp_dtaq.backends import Backend

log = logging.getLogger(__name__)

CATEGORIES = {"01": "financial", "02": "non-financial"}
ANY = "*"


class Control:
    def __init__(self, backend: Backend, ttl: float = 0.2):
        self.backend = backend
        self.ttl = ttl
        self._cache: dict[str, tuple[float, dict[str, str]]] = {}
        self.writes = 0  # this process's writes so far: what was concluded from cached reads may be stale

    def fresh_until(self, *namespaces: str) -> float:
        """The monotonic time until which the cached reads of these namespaces are all still used (0: one is
        not cached), so whatever was concluded from them holds until then."""
        hits = [self._cache.get(ns) for ns in namespaces]
        return 0.0 if None in hits else min(hit[0] for hit in hits) + self.ttl  # type: ignore[index]

    def _read(self, ns: str) -> dict[str, str]:
        now = time.monotonic()
        hit = self._cache.get(ns)
        if hit is None or now - hit[0] > self.ttl:
            hit = (now, self.backend.state_all(ns))
            self._cache[ns] = hit
        return hit[1]

    def _write(self, ns: str, field: str, value: Any) -> None:
        if value is None:
            self.backend.state_delete(ns, field)
        else:
            self.backend.state_set(ns, field, value if isinstance(value, str) else json.dumps(value))
        self._cache.pop(ns, None)
        self.writes += 1

    # --- control blacklist (交易控制黑名单 CNJYKPF): category, channel, opcode --------------------------------
    def blacklist_add(self, category: str, channel: str, opcode: str, note: str = "") -> None:
        if category not in CATEGORIES:
            raise ValueError(f"category {category!r}: expected 01 (financial) or 02 (non-financial)")
        if not channel or not opcode:
            raise ValueError("channel and opcode are required (use * for any)")
        self._write("blacklist", f"{category}|{channel}|{opcode}", {"note": note, "added": time.time()})

    def blacklist_remove(self, category: str, channel: str, opcode: str) -> bool:
        field = f"{category}|{channel}|{opcode}"
        present = field in self.backend.state_all("blacklist")
        self._write("blacklist", field, None)
        return present

    def blacklist(self) -> list[dict[str, Any]]:
        rows = []
        for field, value in sorted(self.backend.state_all("blacklist").items()):
            category, channel, opcode = field.split("|", 2)
            rows.append({"category": category, "channel": channel, "opcode": opcode, **json.loads(value)})
        return rows

    def blacklisted(self, financial: bool, channel: str, opcode: str) -> bool:
        table = self._read("blacklist")
        if not table:
            return False
        category = "01" if financial else "02"
        return any(f"{category}|{c}|{o}" in table for c in (channel, ANY) for o in (opcode, ANY))

    # --- CUTOFF --------------------------------------------------------------------------------------------------
    def set_cutoff(self, on: bool) -> None:
        self._write("day", "cutoff", "1" if on else None)

    def cutoff(self) -> bool:
        return self._read("day").get("cutoff") == "1"

    # --- service run state: the monitor's end flag of 3.2.5 --------------------------------------------------------
    def set_running(self, code: str, running: bool) -> None:
        self._write("run", code, "running" if running else "stopped")

    def running(self, code: str) -> bool:
        return self._read("run").get(code, "running") == "running"

    # --- breaker: closed (queue), open (direct call), half-open (trial requests through the queue) ---------------
    def breaker(self, code: str) -> dict[str, Any]:
        value = self._read("breaker").get(code)
        return json.loads(value) if value else {"state": "closed", "since": 0.0, "reason": ""}

    def set_breaker(self, code: str, state: str, reason: str = "") -> None:
        self._write("breaker", code, {"state": state, "since": time.time(), "reason": reason})

    def allow(self, code: str, policy: Any) -> bool:
        """Whether a request may go through the queue (True) or must be called directly (False)."""
        b = self.breaker(code)
        if b["state"] == "closed":
            return True
        if b["state"] == "open":
            if time.time() - b["since"] < policy.open_seconds:
                return False
            self.set_breaker(code, "half-open", "trial requests")
            b = self.breaker(code)
        # half-open: the first trial_requests callers go through the queue, the rest are called directly
        return self.backend.next_id(f"trial:{code}:{b['since']}") <= policy.trial_requests

    def record(self, code: str, policy: Any, ok: bool, failures_in_a_row: int) -> None:
        b = self.breaker(code)
        if b["state"] == "half-open":
            if not ok:
                self.set_breaker(code, "open", "a trial request timed out")
            elif self.backend.next_id(f"trial-ok:{code}:{b['since']}") >= policy.trial_requests:
                self.set_breaker(code, "closed", "trial requests answered")
        elif b["state"] == "closed" and not ok and failures_in_a_row >= policy.failure_threshold:
            self.set_breaker(code, "open", f"{failures_in_a_row} calls timed out in a row")

    # --- late replies: a client that gave up marks its communication id ------------------------------------------
    def abandon(self, comid: int, code: str) -> None:
        self.backend.state_set("abandoned", str(comid), json.dumps({"service": code, "at": time.time()}))

    def abandoned(self) -> dict[int, dict[str, Any]]:
        return {int(k): json.loads(v) for k, v in self.backend.state_all("abandoned").items()}

    def forget_abandoned(self, comid: int) -> None:
        self.backend.state_delete("abandoned", str(comid))

    # --- requests dropped by a worker because their caller had given up ------------------------------------------
    def drop_request(self, comid: int, code: str, deadline: float) -> None:
        """Record a request not run because its deadline had passed: counted, and kept for status a while."""
        log.warning("service %s: dropped comid %s: its caller gave up at %s", code, comid,
                    time.strftime("%H:%M:%S", time.localtime(deadline)))
        self.count("expired-requests")
        self.count(f"expired-requests:{code}")
        self.backend.state_set("dropped", str(comid), json.dumps({"service": code, "deadline": deadline,
                                                                  "at": time.time()}))

    def dropped_requests(self, code: str | None = None, limit: int = 20) -> list[dict[str, Any]]:
        """The most recently dropped requests (newest first), of one service or all."""
        rows = [{"comid": int(comid), **json.loads(value)}
                for comid, value in self.backend.state_all("dropped").items()]
        rows = [r for r in rows if code is None or r["service"] == code]
        return sorted(rows, key=lambda r: (r["at"], r["comid"]), reverse=True)[:limit]

    def forget_dropped(self, older_than: float, keep: int = 1000) -> None:
        """Forget records of dropped requests older than ``older_than`` seconds, and all but the newest ``keep``
        (an outage may drop many; their counts stay)."""
        now = time.time()
        table = self.backend.state_all("dropped")
        records = sorted(((json.loads(value)["at"], int(comid)) for comid, value in table.items()), reverse=True)
        for i, (at, comid) in enumerate(records):
            if i >= keep or now - at > older_than:
                self.backend.state_delete("dropped", str(comid))

    def count(self, name: str) -> int:
        return self.backend.next_id(f"count:{name}")

    def counted(self, name: str) -> int:
        """The current value of a counter (reading a counter does not advance it)."""
        return self.backend.counter(f"count:{name}")

    # --- worker table ------------------------------------------------------------------------------------------------
    def beat(self, worker_id: str, info: dict[str, Any]) -> None:
        self.backend.state_set("workers", worker_id, json.dumps({**info, "beat": time.time()}))

    def workers(self) -> dict[str, dict[str, Any]]:
        return {k: json.loads(v) for k, v in self.backend.state_all("workers").items()}

    def forget_worker(self, worker_id: str) -> None:
        self.backend.state_delete("workers", worker_id)
