"""Redis queues: shared by every machine that reaches the server.

Layout under ``PREFIX:q:NAME``: one sorted set per key (``:k:KEY``; FIFO and LIFO queues use the empty key)
scored by sequence (negated for LIFO) whose members carry the entry; ``:keys`` indexes the keys of a keyed queue
(cleaned lazily); ``:lease`` holds leased entries scored by their deadline; ``:dd:ID`` remembers de-duplication
ids. The common receives — FIFO, LIFO and keyed EQ without lease — block in BZPOPMIN; the others run one Lua
script (atomic) and poll with a backoff.

Member layout: sequence (16 digits) + sent time in microseconds (16 digits) + sender length (3 digits) + sender
+ data. Lease members are key length (3 digits) + key + member.
"""
from __future__ import annotations

import os
import threading
import time
from typing import Any

import hiredis
import redis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import NoScriptError, ResponseError

from esomp_dtaq.backends import FORKS, Backend
from esomp_dtaq.queues import DataQueue, Entry, Order, QueueAttributes, QueueFull, default_sender

SEND = """
local qp, sender, now, lifo, keyed, maxe, ddms = ARGV[1], ARGV[2], tonumber(ARGV[3]), ARGV[4], ARGV[5],
  tonumber(ARGV[6]), ARGV[7]
local n = 0
if maxe > 0 then
  n = redis.call('ZCARD', qp .. ':lease')
  if keyed == '1' then
    for _, k in ipairs(redis.call('ZRANGE', qp .. ':keys', 0, -1)) do n = n + redis.call('ZCARD', qp .. ':k:' .. k) end
  else
    n = n + redis.call('ZCARD', qp .. ':k:')
  end
end
local results = {}
for i = 8, #ARGV, 3 do
  local key, data, dedup = ARGV[i], ARGV[i + 1], ARGV[i + 2]
  if dedup ~= '' and redis.call('EXISTS', qp .. ':dd:' .. dedup) == 1 then
    results[#results + 1] = 0
  elseif maxe > 0 and n >= maxe then
    results[#results + 1] = -1
    return results
  else
    if dedup ~= '' then redis.call('SET', qp .. ':dd:' .. dedup, '1', 'PX', ddms) end
    local seq = redis.call('INCR', qp .. ':seq')
    local score = seq
    if lifo == '1' then score = -seq end
    redis.call('ZADD', qp .. ':k:' .. key, score, string.format('%016d%016d%03d', seq, now, #sender) .. sender .. data)
    if keyed == '1' then redis.call('ZADD', qp .. ':keys', 0, key) end
    n = n + 1
    results[#results + 1] = 1
  end
end
return results
"""

# send() on a FIFO or LIFO queue without de-duplication or sender id: the client's pipelined send. Its reply
# is skipped, so a queue at max_entries (ARGV[3]) says so where the client waits: FULL under its reply key
SEND_PLAIN = """
local maxe = tonumber(ARGV[3])
if maxe > 0 and redis.call('ZCARD', ARGV[1] .. ':k:') + redis.call('ZCARD', ARGV[1] .. ':lease') >= maxe then
  redis.call('ZADD', ARGV[4], 0, ARGV[7])
  return 0
end
local seq = redis.call('INCR', ARGV[1] .. ':seq')
local score = seq
if ARGV[2] == '1' then score = -seq end
redis.call('ZADD', ARGV[1] .. ':k:', score, string.format('%016d%016d000', seq, tonumber(ARGV[5])) .. ARGV[6])
return 1
"""
# the member a full queue leaves under the waiting client's reply key: sequence and sent time 0 and no data,
# which no entry ever sent has (its sent time is the clock's)
FULL = b"%016d%016d000" % (0, 0)

_FULL_BULK = b"\r\n$%d\r\n%s" % (len(FULL), FULL)
SKIP = ("CLIENT", "REPLY", "SKIP")  # the next command sends no reply
_SKIP_PACKED = hiredis.pack_command(SKIP)

REQUEUE = """
local function requeue(qp, now, keyed, lifo)
  for _, lm in ipairs(redis.call('ZRANGEBYSCORE', qp .. ':lease', '-inf', now)) do
    local klen = tonumber(string.sub(lm, 1, 3))
    local k = string.sub(lm, 4, 3 + klen)
    local m = string.sub(lm, 4 + klen)
    local score = tonumber(string.sub(m, 1, 16))
    if lifo == '1' then score = -score end
    redis.call('ZADD', qp .. ':k:' .. k, score, m)
    if keyed == '1' then redis.call('ZADD', qp .. ':keys', 0, k) end
    redis.call('ZREM', qp .. ':lease', lm)
  end
end
"""

CANDIDATES = """
local function candidates(qp, key, order)
  local idx = qp .. ':keys'
  if key == '' or order == 'NE' then return redis.call('ZRANGEBYLEX', idx, '-', '+') end
  if order == 'EQ' then return {key} end
  if order == 'GE' then return redis.call('ZRANGEBYLEX', idx, '[' .. key, '+') end
  if order == 'GT' then return redis.call('ZRANGEBYLEX', idx, '(' .. key, '+') end
  if order == 'LT' then return redis.call('ZRANGEBYLEX', idx, '-', '(' .. key) end
  return redis.call('ZRANGEBYLEX', idx, '-', '[' .. key)
end
"""

RECEIVE = REQUEUE + CANDIDATES + """
local qp, key, order, remove, lease, now, keyed, lifo = ARGV[1], ARGV[2], ARGV[3], ARGV[4], tonumber(ARGV[5]),
  tonumber(ARGV[6]), ARGV[7], ARGV[8]
requeue(qp, now, keyed, lifo)
local keys = {''}
if keyed == '1' then keys = candidates(qp, key, order) end
local limit = tonumber(ARGV[9])
local taken, count = {}, 0  -- taken, flat: key, member, lease member, lease deadline
for _, k in ipairs(keys) do
  if not (order == 'NE' and key ~= '' and k == key) then
    local zkey = qp .. ':k:' .. k
    local first = redis.call('ZRANGE', zkey, 0, limit - count - 1)
    if #first == 0 and keyed == '1' then redis.call('ZREM', qp .. ':keys', k) end
    for _, m in ipairs(first) do
      local lm, deadline = '', ''
      if remove == '1' then
        redis.call('ZREM', zkey, m)
        if lease > 0 then
          lm = string.format('%03d', #k) .. k .. m
          deadline = tostring(now + lease)
          redis.call('ZADD', qp .. ':lease', now + lease, lm)
        end
      end
      taken[#taken + 1] = k
      taken[#taken + 1] = m
      taken[#taken + 1] = lm
      taken[#taken + 1] = deadline
      count = count + 1
    end
    if count >= limit then return taken end
  end
end
return taken
"""

ACK = """
local n = 0
for i = 2, #ARGV, 2 do
  local score = redis.call('ZSCORE', ARGV[1], ARGV[i])
  if score and tonumber(score) == tonumber(ARGV[i + 1]) then n = n + redis.call('ZREM', ARGV[1], ARGV[i]) end
end
return n
"""

CLEAR = CANDIDATES + """
local qp, key, order, keyed = ARGV[1], ARGV[2], ARGV[3], ARGV[4]
local keys = {''}
if keyed == '1' then keys = candidates(qp, key, order) end
local n = 0
for _, k in ipairs(keys) do
  if not (order == 'NE' and key ~= '' and k == key) then
    n = n + redis.call('ZCARD', qp .. ':k:' .. k)
    redis.call('DEL', qp .. ':k:' .. k)
    if keyed == '1' then redis.call('ZREM', qp .. ':keys', k) end
  end
end
return n
"""


def _bulk(value: bytes) -> bytes:
    return b"$%d\r\n%s\r\n" % (len(value), value)


def _entry(key: bytes, member: bytes, receipt: Any = None) -> Entry:
    sender_len = int(member[32:35])
    return Entry(member[35 + sender_len:], key, member[35:35 + sender_len].decode(), int(member[16:32]) / 1e6,
                 receipt)


class RedisQueue(DataQueue):
    backend: "RedisBackend"
    poll_max = 0.02

    def __init__(self, backend: "RedisBackend", name: str, attributes: QueueAttributes):
        super().__init__(backend, name, attributes)
        self.qp = f"{backend.prefix}:q:{name}".encode()
        self.flags = (b"1" if attributes.keyed else b"0", b"1" if attributes.sequence == "LIFO" else b"0")
        # SKIP, then EVAL SEND_PLAIN 0 qp lifo max_entries and four arguments to come (the reply's key, sent
        # time, data, FULL)
        self._send_plain = b"".join((hiredis.pack_command(SKIP), b"*10\r\n$4\r\nEVAL\r\n",
                                     _bulk(SEND_PLAIN.encode()), _bulk(b"0"), _bulk(self.qp), _bulk(self.flags[1]),
                                     _bulk(b"%d" % attributes.max_entries)))
        self._pop_parts: dict[DataQueue, Any] = {}  # send_receive's prepared write per reply queue
        self._reply_parts: dict[DataQueue, Any] = {}  # reply_and_receive_many's, likewise

    def _put(self, data: bytes, key: bytes, sender: str, dedup: str | None) -> bool:
        return self._put_many([(data, key, dedup)], sender)[0]

    def _send_args(self, items: list[tuple[bytes, bytes, str | None]], sender: str) -> list[Any]:
        a = self.attributes
        args = [self.qp, sender.encode(), int(time.time() * 1e6), self.flags[1], self.flags[0], a.max_entries,
                int(a.dedup_seconds * 1000)]
        for data, key, dedup in items:
            args += (key, data, dedup or "")
        return args

    def _put_many(self, items: list[tuple[bytes, bytes, str | None]], sender: str) -> list[bool]:
        results = self.backend.run("send", self._send_args(items, sender))
        if results and results[-1] == -1:
            raise QueueFull(f"queue {self.name} is full ({self.attributes.max_entries} entries)")
        return [r == 1 for r in results]

    def _take(self, key: bytes, order: Order, remove: bool) -> Entry | None:
        entries = self._take_keyed(key, order, remove, 1)
        return entries[0] if entries else None

    def _take_many(self, limit: int) -> list[Entry]:
        return self._take_keyed(b"", Order.EQ, True, limit)

    def _take_keyed(self, key: bytes, order: Order, remove: bool, limit: int) -> list[Entry]:
        flat = self.backend.run("receive", [
            self.qp, key, order.value, b"1" if remove else b"0", int(self.attributes.lease * 1000),
            int(time.time() * 1000), self.flags[0], self.flags[1], limit])
        return [_entry(flat[i], flat[i + 1], (flat[i + 2], int(flat[i + 3])) if flat[i + 2] else None)
                for i in range(0, len(flat), 4)]

    def _take_blocking(self, deadline: float | None, key: bytes, order: Order, remove: bool) -> Any:
        if self.attributes.lease or not remove or (self.attributes.keyed and (not key or order is not Order.EQ)):
            return NotImplemented
        zkey = self.qp + b":k:" + key
        if deadline is None:
            pop: tuple = ("BZPOPMIN", zkey, 0)  # 0: wait for ever
        else:
            # a timeout that has run out pops without blocking (BZPOPMIN's 0 would wait for ever)
            timeout = deadline - time.monotonic()
            pop = ("ZPOPMIN", zkey) if timeout <= 0 else ("BZPOPMIN", zkey, max(timeout, 0.001))
        if self.attributes.keyed:
            popped = self.backend.pop_keyed(pop, self.qp, key)
        else:
            (popped,) = self.backend.exchange(pop)
        if not popped:
            return None
        return _entry(key, popped[0] if pop[0] == "ZPOPMIN" else popped[1])

    def receive_many(self, wait: float, limit: int) -> list[Entry]:
        if self.attributes.lease or self.attributes.keyed or limit < 1 or not self.backend.has_mpop():
            return super().receive_many(wait, limit)
        # FIFO and LIFO (negated scores) both come out lowest score first: one blocking pop of up to limit
        if wait == 0:
            (popped,) = self.backend.exchange(("ZMPOP", 1, self.qp + b":k:", "MIN", "COUNT", limit))
        else:
            (popped,) = self.backend.exchange(self._bzmpop(wait, limit))
        return [_entry(b"", member) for member, _ in popped[1]] if popped else []

    def _bzmpop(self, wait: float, limit: int) -> tuple:
        return ("BZMPOP", 0 if wait < 0 else max(wait, 0.001), 1, self.qp + b":k:", "MIN", "COUNT", limit)

    def send_receive(self, data: bytes, replies: DataQueue, key: bytes, wait: float) -> Entry | None:
        """One pipeline: the send script, then a blocking pop of the reply's key. Only where the send cannot
        be refused for a full queue (the pop would then wait for nothing) and the reply needs no lease."""
        member = self._send_pop(data, replies, key, wait)
        if member is NotImplemented:
            return super().send_receive(data, replies, key, wait)
        return None if member is None else _entry(bytes(key), member)

    def send_receive_data(self, data: bytes, replies: DataQueue, key: bytes, wait: float) -> bytes | None:
        member = self._send_pop(data, replies, key, wait)
        if member is NotImplemented:
            return super().send_receive_data(data, replies, key, wait)
        return None if member is None else member[35 + int(member[32:35]):]

    def _send_pop(self, data: bytes, replies: DataQueue, key: bytes, wait: float) -> Any:
        """The reply's member, None when none came within ``wait``, NotImplemented where the general path
        must run (see send_receive)."""
        parts = self._pop_parts.get(replies)
        if parts is None:
            parts = self._pop_parts[replies] = self._prepare_pop(replies)
        if parts is False or wait == 0:
            return NotImplemented
        if type(key) is not bytes or len(key) != replies.attributes.keylen:
            key = replies._check_key(key, "receive")  # raises for a bad key, before anything is sent
        if type(data) is not bytes:
            data = bytes(data)
        if len(data) > self.attributes.maxlen:
            return NotImplemented  # the general path's send raises DataTooLong
        pop_head, zrem_heads, exists_head, zkey_head = parts
        zrem_head = zrem_heads.get(wait)
        if zrem_head is None:
            zrem_head = zrem_heads[wait] = b"\r\n" + _bulk(b"%r" % float(0 if wait < 0 else max(wait, 0.001))) \
                + b"*3\r\n$4\r\nZREM\r\n" + _bulk(replies.qp + b":keys") + b"$%d\r\n" % len(key)
        # as pop_keyed, packed here (a client's every call): the send's reply is skipped, since it would come
        # at once and wake this process a second time per call. So EVAL with the text (no NOSCRIPT to miss);
        # an error of the send shows as no reply within the wait
        now = b"%d" % (time.time_ns() // 1000)
        packed = b"".join((self._send_plain, zkey_head, key,
                           b"\r\n$%d\r\n%s\r\n$%d\r\n" % (len(now), now, len(data)), data, _FULL_BULK,
                           pop_head, key, zrem_head, key, exists_head, key, b"\r\n"))
        popped, _, left = self.backend.exchange_packed(packed, 3)
        if left:
            self.backend.exchange(("ZADD", replies.qp + b":keys", 0, key))
        if popped and popped[1] == FULL:
            raise QueueFull(f"queue {self.name} is full ({self.attributes.max_entries} entries)")
        return popped[1] if popped else None

    def _prepare_pop(self, replies: DataQueue) -> Any:
        """The fixed parts of send_receive's write for ``replies``, or False where it cannot be used (queue
        attributes never change, so this is asked once per pair)."""
        if (self.attributes.sender_id or self.attributes.keyed
                or not isinstance(replies, RedisQueue) or replies.backend is not self.backend
                or replies.attributes.lease or not replies.attributes.keyed):
            return False
        zkey_head = b"$%d\r\n%s:k:" % (len(replies.qp) + 3 + replies.attributes.keylen, replies.qp)
        return (b"\r\n*3\r\n$8\r\nBZPOPMIN\r\n" + zkey_head, {},
                b"\r\n*2\r\n$6\r\nEXISTS\r\n" + zkey_head, zkey_head)

    def _hand_over(self, items: list[tuple[bytes, bytes, str | None]], sender: str) -> list[bool]:
        commands = self._hand_over_commands(items, sender)
        if commands is None:
            return self._put_many(items, sender)
        self.backend.exchange(*commands)
        return [True] * len(items)

    def _hand_over_commands(self, items: list[tuple[bytes, bytes, str | None]], sender: str,
                            quiet: bool = False) -> list[tuple] | None:
        """Replies to communication ids (one entry per key, see send_many) as plain ZADDs, no script; None
        where the send script must run (dedup, max_entries, lease, sender id). The key joins the index before
        its entry appears, so the receiver's forgetting it comes after. ``quiet``: no replies to them."""
        a = self.attributes
        if not a.keyed or a.max_entries or a.lease or sender or any(dedup is not None for _, _, dedup in items):
            return None
        # sequence 0: a key holds this one entry, so nothing to order it against
        head = b"%016d%016d000" % (0, int(time.time() * 1e6))
        commands = [("ZADD", self.qp + b":keys", *(x for _, key, _ in items for x in (0, key)))]
        commands += [("ZADD", self.qp + b":k:" + key, 0, head + data) for data, key, _ in items]
        return [c for command in commands for c in (SKIP, command)] if quiet else commands

    def reply_and_receive_many(self, replies: DataQueue, items: list[tuple[bytes, bytes, str | None]],
                               wait: float, limit: int) -> list[Entry]:
        """The replies' ZADDs (their answers skipped, so the blocking pop's answer is the one that wakes the
        worker) and the next BZMPOP in one write."""
        packed = self._replies_packed(replies, items, wait, limit) if items and wait != 0 and limit >= 1 else None
        if packed is None:
            return self._reply_and_receive_general(replies, items, wait, limit)
        (popped,) = self.backend.exchange_packed(packed, 1)
        return [_entry(b"", member) for member, _ in popped[1]] if popped else []

    def _replies_packed(self, replies: DataQueue, items: list[tuple[bytes, bytes, str | None]], wait: float,
                        limit: int) -> bytes | None:
        """A worker's every write, packed from prepared parts: as _hand_over_commands(quiet=True) then BZMPOP.
        None where an item needs the checks or the send script of the general path."""
        parts = self._reply_parts.get(replies)
        if parts is None:
            parts = self._reply_parts[replies] = self._prepare_replies(replies)
        if parts is False:
            return None
        index_head, zadd_head, maxlen, keylen, pops = parts
        for data, key, dedup in items:
            if (dedup is not None or type(data) is not bytes or len(data) > maxlen or type(key) is not bytes
                    or len(key) != keylen):
                return None
        pop = pops.get((wait, limit))
        if pop is None:
            pop = pops[(wait, limit)] = hiredis.pack_command(self._bzmpop(wait, limit))
        # sequence 0: a key holds this one entry, so nothing to order it against
        head = b"%016d%016d000" % (0, time.time_ns() // 1000)
        out = [_SKIP_PACKED, b"*%d\r\n" % (2 + 2 * len(items)), index_head]
        for _, key, _ in items:
            out += (b"$1\r\n0\r\n$%d\r\n" % keylen, key, b"\r\n")
        for data, key, _ in items:
            out += (_SKIP_PACKED, zadd_head, key, b"\r\n$1\r\n0\r\n$%d\r\n" % (len(head) + len(data)), head, data,
                    b"\r\n")
        out.append(pop)
        return b"".join(out)

    def _prepare_replies(self, replies: DataQueue) -> Any:
        """The fixed parts of _replies_packed for ``replies``, or False where it cannot be used (attributes
        never change, so this is asked once per pair)."""
        a = replies.attributes
        if (not isinstance(replies, RedisQueue) or replies.backend is not self.backend or not a.keyed
                or a.max_entries or a.lease or a.sender_id or self.attributes.lease or self.attributes.keyed
                or not self.backend.has_mpop()):
            return False
        return (b"$4\r\nZADD\r\n" + _bulk(replies.qp + b":keys"),
                b"*4\r\n$4\r\nZADD\r\n$%d\r\n%s:k:" % (len(replies.qp) + 3 + a.keylen, replies.qp),
                a.maxlen, a.keylen, {})

    def _reply_and_receive_general(self, replies: DataQueue, items: list[tuple[bytes, bytes, str | None]],
                                   wait: float, limit: int) -> list[Entry]:
        sender = default_sender() if replies.attributes.sender_id else ""
        commands = (replies._hand_over_commands(replies._checked(items), sender, quiet=True)
                    if items and isinstance(replies, RedisQueue) and replies.backend is self.backend else None)
        if (commands is None or self.attributes.lease or self.attributes.keyed or limit < 1 or wait == 0
                or not self.backend.has_mpop()):
            return super().reply_and_receive_many(replies, items, wait, limit)
        (popped,) = self.backend.exchange(*commands, self._bzmpop(wait, limit))
        return [_entry(b"", member) for member, _ in popped[1]] if popped else []

    def _ack_many(self, receipts: list[Any]) -> None:
        self.backend.run("ack", [self.qp + b":lease", *(x for receipt in receipts for x in receipt)])

    def _ack(self, receipt: Any) -> None:
        self._ack_many([receipt])

    def _clear(self, key: bytes | None, order: Order) -> int:
        return self.backend.run("clear", [self.qp, key or b"", order.value, self.flags[0]])

    def _describe(self) -> tuple[int, int, float | None]:
        client = self.backend.client
        keys = [k for k in client.zrange(self.qp + b":keys", 0, -1)] if self.attributes.keyed else [b""]
        pipe = client.pipeline(transaction=False)
        for k in keys:
            pipe.zcard(self.qp + b":k:" + k)
            pipe.zrange(self.qp + b":k:" + k, 0, 0)
            pipe.zrange(self.qp + b":k:" + k, -1, -1)
        pipe.zcard(self.qp + b":lease")
        results = pipe.execute()
        depth = sum(results[0:-1:3])
        times = [int(m[16:32]) / 1e6 for r in results[1:-1:3] + results[2:-1:3] for m in r]
        return depth, results[-1], min(times) if times else None




class _Link:
    """One thread's connection: redis-py opens it (authentication, database, protocol as the URL says), then
    commands go straight through its socket and a hiredis reader."""

    __slots__ = ("connection", "sock", "reader", "buffer")

    def __init__(self, client: redis.Redis):
        self.connection = client.connection_pool.make_connection()
        self.connection.connect()
        self.sock = self.connection._sock
        self.reader = hiredis.Reader()
        self.buffer = bytearray(65536)  # reused: a fresh large bytes object per read costs more than the read

    def exchange(self, packed: bytes, count: int) -> list[Any]:
        self.sock.sendall(packed)
        reader, replies = self.reader, []
        while len(replies) < count:
            reply = reader.gets()
            if reply is False:
                size = self.sock.recv_into(self.buffer)
                if not size:
                    raise RedisConnectionError("Redis closed the connection")
                reader.feed(self.buffer, 0, size)
            elif isinstance(reply, hiredis.ReplyError):
                message = str(reply)
                raise (NoScriptError if message.startswith("NOSCRIPT") else ResponseError)(message)
            else:
                replies.append(reply)
        return replies

    def close(self) -> None:
        self.connection.disconnect()


class RedisBackend(Backend):
    kind = "redis"

    def __init__(self, url: str, prefix: str = "esomp:dtaq"):
        super().__init__()
        self.url = url
        self.prefix = prefix
        self.client = redis.Redis.from_url(url)
        self.scripts = {name: self.client.register_script(text)
                        for name, text in (("send", SEND), ("receive", RECEIVE), ("ack", ACK), ("clear", CLEAR))}
        self._mpop: bool | None = None
        self._local = threading.local()

    def run(self, name: str, args: list[Any]) -> Any:
        """Run one of our scripts by its SHA, sending its text only when the server does not know it."""
        script = self.scripts[name]
        try:
            (result,) = self.exchange(("EVALSHA", script.sha, 0, *args))
        except NoScriptError:
            (result,) = self.exchange(("EVAL", script.script, 0, *args))
        return result

    def exchange(self, *commands: tuple) -> list[Any]:
        """Send commands in one write and read their replies in order, on this thread's own connection (a
        socket and a hiredis reader: redis-py's pool and per-command machinery cost more CPU than the commands
        here). An error reply or a failure drops the connection (it reconnects on next use), so no reply is
        left unread on it, nor a blocking command queued after a failed one."""
        link = self._link()
        try:
            skipped = 2 * sum(1 for command in commands if command is SKIP)  # SKIP itself and the next
            return link.exchange(b"".join(map(hiredis.pack_command, commands)), len(commands) - skipped)
        except BaseException:
            self._drop_link()
            raise

    def exchange_packed(self, packed: bytes, replies: int) -> list[Any]:
        """``exchange`` of commands already packed, expecting ``replies`` replies."""
        link = self._link()
        try:
            return link.exchange(packed, replies)
        except BaseException:
            self._drop_link()
            raise

    def pop_keyed(self, pop: tuple, qp: bytes, key: bytes, *before: tuple) -> Any:
        """``before`` then a pop of keyed queue ``qp``'s entry with ``key``, then the key leaves the queue's
        index, all in one pipeline; the key is indexed again in the rare case an entry is left (or came in
        after a timeout). Without this the index would keep every communication id ever used."""
        index = qp + b":keys"
        popped, _, left = self.exchange(*before, pop, ("ZREM", index, key), ("EXISTS", qp + b":k:" + key))
        if left:
            self.exchange(("ZADD", index, 0, key))
        return popped

    def _link(self) -> "_Link":
        local = self._local
        link = getattr(local, "link", None)
        if link is None or local.forks != FORKS[0]:  # a forked child opens its own
            link = local.link = _Link(self.client)
            local.forks = FORKS[0]
        return link

    def _drop_link(self) -> None:
        link, self._local.link = getattr(self._local, "link", None), None
        if link is not None:
            link.close()

    def has_mpop(self) -> bool:
        """Whether the server has ZMPOP/BZMPOP (Redis 7): batch receives pop in one blocking command."""
        if self._mpop is None:
            version = self.client.info("server").get("redis_version", "0")
            self._mpop = int(str(version).split(".")[0]) >= 7
        return self._mpop

    def __repr__(self) -> str:
        return f"redis:{self.url} prefix {self.prefix}"

    def close(self) -> None:
        if getattr(self._local, "forks", None) == FORKS[0]:
            self._drop_link()
        self.client.close()

    def names(self) -> list[str]:
        return sorted(k.decode() for k in self.client.hkeys(f"{self.prefix}:meta"))

    def _create(self, name: str, attributes: QueueAttributes) -> None:
        self.client.hset(f"{self.prefix}:meta", name, self.encode_attributes(attributes))

    def _delete(self, name: str) -> None:
        keys = list(self.client.scan_iter(match=f"{self.prefix}:q:{name}:*", count=1000))
        if keys:
            self.client.delete(*keys)
        self.client.hdel(f"{self.prefix}:meta", name)

    def _load_attributes(self, name: str) -> QueueAttributes | None:
        return self.decode_attributes(self.client.hget(f"{self.prefix}:meta", name))

    def _make_queue(self, name: str, attributes: QueueAttributes) -> DataQueue:
        return RedisQueue(self, name, attributes)

    def state_get(self, ns: str, field: str) -> str | None:
        value = self.client.hget(f"{self.prefix}:state:{ns}", field)
        return None if value is None else value.decode()

    def state_set(self, ns: str, field: str, value: str) -> None:
        self.client.hset(f"{self.prefix}:state:{ns}", field, value)

    def state_delete(self, ns: str, field: str) -> None:
        self.client.hdel(f"{self.prefix}:state:{ns}", field)

    def state_all(self, ns: str) -> dict[str, str]:
        return {k.decode(): v.decode() for k, v in sorted(self.client.hgetall(f"{self.prefix}:state:{ns}").items())}

    def counter(self, name: str) -> int:
        return int(self.client.get(f"{self.prefix}:ctr:{name}") or 0)

    def next_id(self, name: str) -> int:
        return int(self.client.incr(f"{self.prefix}:ctr:{name}"))

    def drop_all(self) -> None:
        """Delete every key under this backend's prefix (tests, and `esomp dtaq` rebuilds)."""
        keys = list(self.client.scan_iter(match=f"{self.prefix}:*", count=1000))
        for i in range(0, len(keys), 500):
            self.client.delete(*keys[i:i + 500])
