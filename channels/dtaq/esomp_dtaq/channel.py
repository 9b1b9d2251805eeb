"""The DTAQ channel of seed 003 (3.2.3): per service a FIFO request queue and a keyed reply queue.

A client call sends the request, then waits on the reply queue for the key of its communication id — the two
handshakes of the seed. Before sending it checks the control blacklist, the service's run state and its
breaker, and calls the handler directly (esomp_direct) when any of them says so.
"""
from __future__ import annotations

import logging
import math
import os
import struct
import threading
import time
from typing import Any, Mapping

import attrs

import esomp_direct as m
from esomp_direct import DirectChannel, MessageError, Reply, Request, answer, invoke
from esomp_dtaq.backends import FORKS, Backend
from esomp_dtaq.config import DtaqOptions, ServicePolicy, service_code
from esomp_dtaq.control import Control
from esomp_dtaq.queues import DataQueue, QueueAttributes, QueueError, QueueFull

log = logging.getLogger(__name__)

END = b"*END-OF-SERVICE*"  # the end sentinel: shorter than a request header, so never a request
BATCH_BUDGET = 0.005  # a worker takes no more requests at once than it answers in about this many seconds
COMID_BLOCK = 1000  # communication ids are reserved in blocks so a call does not pay a counter round trip
# A request queue entry is ENVELOPE (a mark, then the caller's deadline in seconds since the epoch) and the
# packet: the worker drops a request whose caller has given up instead of running it. 0xFF never starts a GBK
# field, so a bare packet is told apart and refused.
ENVELOPE = struct.Struct(">Bd")
ENVELOPE_MARK = 0xFF


class CallTimeout(TimeoutError):
    """No reply within the timeout; the communication id is abandoned and a late reply will be discarded."""


class QueuesChanged(QueueError):
    """A service's queues hold entries under other attributes than its policy now asks for (lease, lengths,
    max_entries): they are not rebuilt, since that would throw the entries away."""


def request_entry(packet: bytes, deadline: float) -> bytes:
    """What goes on a request queue: the envelope with the caller's ``deadline`` (time.time()), then the packet."""
    return ENVELOPE.pack(ENVELOPE_MARK, deadline) + packet


def open_entry(entry: bytes) -> tuple[float, Request]:
    """A request queue entry's deadline and request; MessageError for an entry without the envelope."""
    if len(entry) < ENVELOPE.size or entry[0] != ENVELOPE_MARK:
        raise MessageError(f"request queue entry: {len(entry)} bytes without a deadline "
                           f"({ENVELOPE.size}-byte envelope marked 0x{ENVELOPE_MARK:X} before the packet)")
    return ENVELOPE.unpack_from(entry)[1], Request.decode(entry[ENVELOPE.size:])


def request_attributes(policy: ServicePolicy) -> QueueAttributes:
    return QueueAttributes(maxlen=ENVELOPE.size + m.REQUEST_MAXLEN, sequence="FIFO", lease=policy.lease,
                           max_entries=policy.max_entries)


def reply_attributes(policy: ServicePolicy) -> QueueAttributes:
    return QueueAttributes(maxlen=m.REPLY_MAXLEN, sequence="KEYED", keylen=m.KEY_LEN)


def queue_names(key: tuple[str, str, str], policy: ServicePolicy) -> tuple[str, str]:
    base = "".join(key)
    return policy.request_queue or f"{base}I", policy.reply_queue or f"{base}O"


@attrs.frozen
class Route:
    """Where a call went: ``dtaq`` or ``direct``, and why."""

    via: str
    reason: str = ""


VIA_DTAQ = Route("dtaq")
ROUTE_STATE = ("blacklist", "run", "breaker")  # the control state a route is read from


class DtaqChannel:
    """Client side and worker side of the DTAQ services on one backend."""

    def __init__(self, backend: Backend, services: Mapping[tuple[str, str, str], Any], options: DtaqOptions,
                 name: str = "dtaq"):
        self.backend = backend
        self.services = services
        self.options = options
        self.name = name
        self.control = Control(backend, options.state_ttl)
        self.direct = DirectChannel(services, cutoff=self.control.cutoff, name=f"{name}-direct")
        self._ids = iter(())
        self._ids_forks = -1
        self._ids_lock = threading.Lock()
        self._failures: dict[str, int] = {}
        self.last_route = VIA_DTAQ
        # per service: code, policy, request and reply queue (dropped when queues() makes a new pair)
        self._keys: dict[tuple[str, str, str], tuple[str, ServicePolicy, DataQueue, DataQueue]] = {}
        self._routed: dict[tuple, tuple[float, int]] = {}  # (key, channel, opcode): (until, control writes)
        self._queues: dict[tuple[str, str, str], tuple[DataQueue, DataQueue]] = {}

    # --- queues --------------------------------------------------------------------------------------------------
    def policy(self, key: tuple[str, str, str]) -> ServicePolicy:
        return self.options.policy(key)

    def queues(self, key: tuple[str, str, str], *, rebuild: bool = False) -> tuple[DataQueue, DataQueue]:
        """The service's (request, reply) queues, created on first use; ``rebuild`` recreates them. Queues
        made with other attributes than the policy now asks for are rebuilt when both are empty; otherwise
        QueuesChanged names the service, the queue, what it holds and what changed."""
        pair = None if rebuild else self._queues.get(key)
        if pair is None or pair[0].backend is not self.backend:
            policy = self.policy(key)
            inq, outq = queue_names(key, policy)
            wanted = ((inq, request_attributes(policy)), (outq, reply_attributes(policy)))
            changed = [self._changed(name, attributes) for name, attributes in wanted]
            held = [problem for _, problem in changed if problem]
            if held:  # checked for both queues before either is touched
                raise QueuesChanged(f"service {service_code(key)}: {'; '.join(held)}; let the workers it was "
                                    f"started with drain it, or clear it, then start the service again")
            for (name, _), (was, _) in zip(wanted, changed):
                if was is not None:
                    log.warning("service %s: queue %s rebuilt (empty): %s", service_code(key), name, was)
            pair = tuple(self.backend.create(name, attributes, replace=rebuild or was is not None)
                         for (name, attributes), (was, _) in zip(wanted, changed))
            self._queues[key] = pair
            self._keys.pop(key, None)  # call's cached pair
        return pair

    def _changed(self, name: str, attributes: QueueAttributes) -> tuple[str | None, str | None]:
        """(what changed, why it cannot be rebuilt) for queue ``name``; (None, None) when it is as wanted or
        does not exist yet."""
        existing = self.backend.attributes_of(name)
        if existing is None or existing == attributes:
            return None, None
        old, new = existing.as_dict(), attributes.as_dict()
        what = ", ".join(f"{field} {old[field]!r} -> {new[field]!r}" for field in new if old[field] != new[field])
        info = self.backend.queue(name).describe()
        if info["depth"] or info["leased"]:
            return what, (f"queue {name} holds {info['depth']} entries ({info['leased']} leased) made with "
                          f"other attributes than the policy now asks for ({what})")
        return what, None

    def next_comid(self) -> int:
        with self._ids_lock:
            if self._ids_forks != FORKS[0]:  # a forked child must not share its parent's block
                self._ids, self._ids_forks = iter(()), FORKS[0]
            comid = next(self._ids, None)
            if comid is None:
                block = self.backend.next_id("comid-block")
                self._ids = iter(range(block * COMID_BLOCK, (block + 1) * COMID_BLOCK))
                comid = next(self._ids)
            return comid

    # --- client ------------------------------------------------------------------------------------------------
    def route(self, service: Any, channel: str = "", opcode: str = "") -> Route:
        key = (service.domain, service.name, service.type)
        code = service_code(key)
        if self.control.blacklisted(service.financial, channel or self.name, opcode or "".join(key)):
            return Route("direct", "blacklisted (CNJYKPF)")
        if not self.control.running(code):
            return Route("direct", "service stopped")
        if not self.control.allow(code, self.policy(key)):
            return Route("direct", f"breaker {self.control.breaker(code)['state']}")
        return VIA_DTAQ

    def call(self, request: Request, timeout: float | None = None, *, channel: str = "",
             opcode: str = "") -> Reply:
        """Answer ``request`` through its service's queues (or directly, see ``route``); raises CallTimeout."""
        key = request.service
        service = self.services.get(key)
        if service is None:
            return invoke(None, request)
        if timeout is not None and not 0 < timeout < math.inf:  # a wait of 0 or less would never end
            raise ValueError(f"service {service_code(key)}: timeout: expected seconds > 0, got {timeout!r}")
        control = self.control
        # a route through the queues with the breaker closed holds as long as the control reads it came from
        routed = self._routed.get((key, channel, opcode))
        cached = routed is not None and routed[1] == control.writes and time.monotonic() < routed[0]
        if not cached:
            route = self.route(service, channel, opcode)
            if route.via == "direct":
                self.last_route = route
                return self.direct.call(request)
            if control.breaker(service_code(key))["state"] == "closed":
                self._routed[(key, channel, opcode)] = (control.fresh_until(*ROUTE_STATE), control.writes)
        self.last_route = VIA_DTAQ
        known = self._keys.get(key)
        if known is None or known[2].backend is not self.backend:
            try:
                known = self._keys[key] = (service_code(key), self.policy(key), *self.queues(key))
            except QueuesChanged as exc:  # this service's queues are held back; the call is still answered
                self.last_route = Route("direct", str(exc))
                return self.direct.call(request)
        code, policy, inq, outq = known
        comid = self.next_comid()
        reply_key = m.comid_key(comid)
        wait = policy.timeout if timeout is None else timeout
        try:
            # the deadline travels with the request: a worker never starts it once this caller has given up
            data = inq.send_receive_data(request_entry(request.encode_as(reply_key), time.time() + wait), outq,
                                         reply_key, wait)
        except QueueFull:
            self.last_route = Route("direct", f"request queue {inq.name} full")
            return self.direct.call(attrs.evolve(request, comid=comid))
        if data is None:
            self.control.abandon(comid, code)
            # a reply that slipped in between the timeout and the mark is expired here, not left behind
            expired = outq.clear(reply_key)
            for _ in range(expired):
                self.control.count("expired")
            failures = self._failures[code] = self._failures.get(code, 0) + 1
            self.control.record(code, policy, False, failures)
            raise CallTimeout(f"service {code}: no reply to comid {comid} within {wait}s "
                              f"(queue {inq.name} depth {inq.depth()})")
        if self._failures:
            self._failures.pop(code, None)
        if not cached and control.breaker(code)["state"] == "half-open":
            control.record(code, policy, True, 0)
        return Reply.decode(data)

    # --- server -----------------------------------------------------------------------------------------------------
    def serve(self, key: tuple[str, str, str], worker_id: str, *, stop: threading.Event | None = None) -> str:
        """A server worker's loop: answer requests until an end sentinel (or ``stop``); returns why it ended.

        It takes up to ``policy.batch`` waiting requests per queue operation — fewer when its handler is slow,
        so a batch holds about BATCH_BUDGET seconds of work — and sends their replies in one operation. With
        lease it acks them only after their replies are sent, so a worker killed mid-batch leaves every request
        of the batch to be delivered again (and a reply already sent is de-duplicated)."""
        service = self.services[key]
        policy = self.policy(key)
        inq, outq = self.queues(key)
        info = {"service": service_code(key), "pid": os.getpid(), "thread": threading.get_ident(),
                "started": time.time(), "handled": 0}
        self.control.beat(worker_id, info)
        last_beat = time.monotonic()
        limit = 1  # until the handler's speed is known
        leased = inq.attributes.lease > 0  # without lease there is nothing to ack
        pending: list[tuple[bytes, bytes, int | None]] = []  # replies without lease go with the next receive
        try:
            while stop is None or not stop.is_set():
                if pending:
                    entries = inq.reply_and_receive_many(outq, pending, self.options.heartbeat, limit)
                    pending = []
                else:
                    entries = inq.receive_many(self.options.heartbeat, limit)
                if time.monotonic() - last_beat >= self.options.heartbeat:
                    self.control.beat(worker_id, info)
                    last_beat = time.monotonic()
                if not entries:
                    continue
                packets = [e.data for e in entries]
                ends = packets.count(END)
                if ends:
                    packets = [p for p in packets if p != END]
                if packets:
                    replies, handling = self.handle_many(service, policy, packets)
                    if policy.lease:  # sent (and de-duplicated) before the requests are acked
                        self.send_replies(policy, outq, replies)
                    else:
                        pending = replies
                    info["handled"] += len(packets)
                    limit = max(1, min(policy.batch, int(BATCH_BUDGET * len(packets) / max(handling, 1e-6))))
                if ends > 1:  # one sentinel ends one worker: pass the others on
                    inq.send_many([(END, None, None)] * (ends - 1))
                if leased:
                    inq.ack_many(entries)
                if ends:
                    return "end sentinel"
            return "stopped"
        finally:
            try:
                self.send_replies(policy, outq, pending)
            finally:
                self.control.forget_worker(worker_id)

    def answer(self, service: Any, policy: ServicePolicy, outq: DataQueue, packet: bytes) -> None:
        self.answer_many(service, policy, outq, [packet])

    def answer_many(self, service: Any, policy: ServicePolicy, outq: DataQueue, packets: list[bytes]) -> float:
        """Handle request packets and send their replies to ``outq`` in one operation; returns the seconds
        spent on the batch (decode, handler, encode)."""
        replies, handling = self.handle_many(service, policy, packets)
        self.send_replies(policy, outq, replies)
        return handling

    def handle_many(self, service: Any, policy: ServicePolicy,
                    packets: list[bytes]) -> tuple[list[tuple[bytes, bytes, int | None]], float]:
        """The replies to request packets as (packet, key, dedup id), and the seconds the batch took
        (decode, handler, encode)."""
        cutoff = self.control.cutoff()
        lease = policy.lease
        replies = []
        started = time.perf_counter()  # the batch's time, codec included: what the next batch size is judged by
        for entry in packets:
            try:
                deadline, request = open_entry(entry)
            except MessageError as exc:  # nothing to reply to: the header names no communication id we can trust
                log.error("service %s: dropped a bad request: %s",
                          service_code((service.domain, service.name, service.type)), exc)
                self.control.count("bad-requests")
                continue
            if not deadline > time.time():  # its caller has given up: running it now could post it twice
                self.control.drop_request(request.comid, service_code((service.domain, service.name, service.type)),
                                          deadline)
                continue
            _, packet = answer(service, request, cutoff=cutoff)
            # with lease a redelivered request may be answered twice: the reply queue keeps only the first.
            # The key is comid_key's: decode gave an int of at most 12 digits
            replies.append((packet, b"%012d" % request.comid, request.comid if lease else None))
        return replies, time.perf_counter() - started

    @staticmethod
    def send_replies(policy: ServicePolicy, outq: DataQueue, replies: list[tuple[bytes, bytes, int | None]]) -> None:
        if replies:
            # a communication id has one reply (with lease, de-duplicated): a waiting client may get it directly
            outq.send_many(replies, hand_over=not policy.lease)

    def stop_service(self, key: tuple[str, str, str], workers: int) -> int:
        """Mark the service stopped and send one end sentinel per live worker (3.2.5)."""
        self.control.set_running(service_code(key), False)
        inq, _ = self.queues(key)
        for _ in range(workers):
            inq.send(END)
        return workers

    def expire_late_replies(self, keep_seconds: float = 3600.0) -> int:
        """Remove replies whose client gave up, counting each as expired; forget ids older than keep_seconds
        (by then their worker has long answered or died). The supervisor calls this every poll."""
        expired = 0
        self.control.forget_dropped(keep_seconds)
        for comid, info in self.control.abandoned().items():
            key = next((k for k in self.services if service_code(k) == info["service"]), None)
            try:
                removed = self.queues(key)[1].clear(m.comid_key(comid)) if key else 0
            except QueuesChanged:  # held back: its late replies are removed once its queues are usable
                continue
            for _ in range(removed):
                self.control.count("expired")
            expired += removed
            if removed or time.time() - info["at"] > keep_seconds:
                self.control.forget_abandoned(comid)
        return expired

    def stop_one(self, key: tuple[str, str, str]) -> None:
        """Shrink the pool by one: the first worker to read the sentinel ends."""
        self.queues(key)[0].send(END)

    def start_service(self, key: tuple[str, str, str]) -> bool:
        """Day start (3.2.5): rebuild the queues if the request queue is empty (and rebuild is on), mark running.
        Returns whether the queues were rebuilt."""
        policy = self.policy(key)
        inq, _ = self.queues(key)
        rebuilt = False
        if policy.rebuild and inq.depth() == 0 and inq.describe()["leased"] == 0:
            self.queues(key, rebuild=True)
            rebuilt = True
        self.control.set_running(service_code(key), True)
        self.control.set_breaker(service_code(key), "closed", "day start")
        return rebuilt
