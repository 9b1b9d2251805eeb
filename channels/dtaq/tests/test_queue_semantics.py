"""IBM i data-queue semantics, one suite run against every backend (SQLite, Redis, memory)."""
import threading
import time

import pytest

from esomp_dtaq.queues import BadKey, DataTooLong, Order, QueueAttributes, QueueFull, pad_key


def keyed(backend, name="OUTQ", keylen=4, **kw):
    return backend.create(name, QueueAttributes(maxlen=64, sequence="KEYED", keylen=keylen, **kw))


def test_fifo_order_and_timeout_returns_none(backend):
    q = backend.create("INQ", QueueAttributes(maxlen=16))
    for data in (b"a", b"b", b"c"):
        q.send(data)
    assert [q.receive(0).data for _ in range(3)] == [b"a", b"b", b"c"]
    assert q.receive(0) is None
    assert q.receive(0.05) is None


def test_lifo_order(backend):
    q = backend.create("STACK", QueueAttributes(maxlen=16, sequence="LIFO"))
    for data in (b"a", b"b", b"c"):
        q.send(data)
    assert [q.receive(0).data for _ in range(3)] == [b"c", b"b", b"a"]


@pytest.mark.parametrize("order, key, expected", [
    ("EQ", b"0002", [b"2a", b"2b"]),
    ("NE", b"0002", [b"1", b"3"]),
    ("LT", b"0002", [b"1"]),
    ("LE", b"0002", [b"1", b"2a", b"2b"]),
    ("GT", b"0002", [b"3"]),
    ("GE", b"0002", [b"2a", b"2b", b"3"]),
])
def test_keyed_orders_lowest_key_first_fifo_within_key(backend, order, key, expected):
    q = keyed(backend)
    for k, data in ((b"0003", b"3"), (b"0002", b"2a"), (b"0001", b"1"), (b"0002", b"2b")):
        q.send(data, k)
    got = []
    while (entry := q.receive(0, key, order)) is not None:
        got.append(entry.data)
    assert got == expected
    assert q.depth() == 4 - len(expected)


def test_keyed_receive_without_key_takes_lowest(backend):
    q = keyed(backend)
    q.send(b"b", b"0009")
    q.send(b"a", b"0001")
    entry = q.receive(0)
    assert (entry.key, entry.data) == (b"0001", b"a")


def test_peek_leaves_the_entry(backend):
    q = keyed(backend)
    q.send(b"x", b"0001")
    assert q.receive(0, b"0001", remove=False).data == b"x"
    assert q.depth() == 1
    assert q.receive(0, b"0001").data == b"x"
    assert q.depth() == 0


def test_key_must_have_keylen_and_pad_key_pads_with_spaces(backend):
    q = keyed(backend)
    with pytest.raises(BadKey, match="keylen is 4"):
        q.send(b"x", b"01")
    with pytest.raises(BadKey, match="needs a key"):
        q.send(b"x")
    assert pad_key("01", 4) == b"01  "
    q.send(b"x", pad_key("01", 4))
    assert q.receive(0, b"01  ").data == b"x"
    fifo = backend.create("F", QueueAttributes(maxlen=4))
    with pytest.raises(BadKey, match="not KEYED"):
        fifo.send(b"x", b"k")


def test_maxlen_refused(backend):
    q = backend.create("SMALL", QueueAttributes(maxlen=4))
    q.send(b"1234")
    with pytest.raises(DataTooLong, match="SMALL: 5 bytes is over maxlen 4"):
        q.send(b"12345")


def test_full_queue_raises_at_once(backend):
    q = backend.create("FULL", QueueAttributes(maxlen=4, max_entries=2))
    q.send(b"1")
    q.send(b"2")
    with pytest.raises(QueueFull, match="FULL is full"):
        q.send(b"3")
    q.receive(0)
    q.send(b"3")


def test_waiting_receive_gets_an_entry_sent_later(backend):
    q = keyed(backend)
    timer = threading.Timer(0.1, lambda: q.send(b"late", b"0007"))
    timer.start()
    try:
        entry = q.receive(10, b"0007")
    finally:
        timer.join()
    assert entry.data == b"late"


def test_each_entry_goes_to_exactly_one_receiver(backend):
    q = backend.create("INQ", QueueAttributes(maxlen=16))
    got, lock = [], threading.Lock()

    def receiver():
        while (entry := q.receive(0.3)) is not None:
            with lock:
                got.append(entry.data)

    threads = [threading.Thread(target=receiver) for _ in range(4)]
    for t in threads:
        t.start()
    for i in range(200):
        q.send(b"%d" % i)
    for t in threads:
        t.join()
    assert sorted(got) == sorted(b"%d" % i for i in range(200))


def test_clear_all_and_by_key(backend):
    q = keyed(backend)
    for k in (b"0001", b"0002", b"0003"):
        q.send(b"x", k)
    assert q.clear(b"0002", Order.GE) == 2
    assert q.describe()["depth"] == 1
    assert q.clear() == 1
    assert q.receive(0) is None


def test_describe_reports_depth_age_and_attributes(backend):
    q = backend.create("D", QueueAttributes(maxlen=8, sender_id=True))
    assert q.describe()["oldest_age"] is None
    q.send(b"x")
    time.sleep(0.02)
    info = q.describe()
    assert info["depth"] == 1 and info["oldest_age"] > 0 and info["maxlen"] == 8 and info["sequence"] == "FIFO"
    assert q.receive(0).sender.endswith(f"/{__import__('os').getpid()}")


def test_queue_is_found_again_by_name_and_attributes_conflict(backend):
    backend.create("A", QueueAttributes(maxlen=8))
    assert backend.queue("A").attributes.maxlen == 8
    assert "A" in backend.names()
    with pytest.raises(ValueError, match="exists with other attributes"):
        backend.create("A", QueueAttributes(maxlen=9))
    assert backend.create("A", QueueAttributes(maxlen=9), replace=True).attributes.maxlen == 9


def test_lease_redelivers_until_acked(backend):
    q = backend.create("L", QueueAttributes(maxlen=8, lease=0.2))
    q.send(b"job")
    first = q.receive(0)
    assert first.data == b"job" and q.receive(0) is None
    assert q.describe()["leased"] == 1
    again = q.receive(5)  # the lease runs out without an ack: delivered again
    assert again.data == b"job"
    q.ack(first)  # a stale receipt does not remove the entry leased again
    q.ack(again)
    time.sleep(0.3)
    assert q.receive(0) is None and q.describe()["leased"] == 0


def test_dedup_by_communication_id(backend):
    q = keyed(backend, keylen=12)
    assert q.send(b"reply", b"000000000001", dedup=1) is True
    assert q.send(b"reply again", b"000000000001", dedup=1) is False
    assert q.depth() == 1


def test_bad_attributes_are_refused():
    with pytest.raises(ValueError, match="maxlen"):
        QueueAttributes(maxlen=70000)
    with pytest.raises(ValueError, match="keylen"):
        QueueAttributes(sequence="KEYED")
    with pytest.raises(ValueError, match="sequence"):
        QueueAttributes(sequence="RANDOM")


# --- batch operations: what a server worker uses ----------------------------------------------------------------
@pytest.mark.parametrize("sequence, expected", [("FIFO", [b"0", b"1", b"2"]), ("LIFO", [b"4", b"3", b"2"])])
def test_receive_many_takes_up_to_limit_in_queue_order(backend, sequence, expected):
    q = backend.create("B", QueueAttributes(maxlen=8, sequence=sequence))
    assert q.receive_many(0, 3) == [] and q.receive_many(0.05, 3) == []  # a timeout is no error
    assert q.send_many([(b"%d" % i, None, None) for i in range(5)]) == [True] * 5
    assert [e.data for e in q.receive_many(0, 3)] == expected
    assert len(q.receive_many(5, 3)) == 2 and q.depth() == 0
    with pytest.raises(BadKey, match="not KEYED"):
        keyed(backend).receive_many(0, 3)


def test_receive_many_waits_for_the_first_entry(backend):
    q = backend.create("B", QueueAttributes(maxlen=8))
    timer = threading.Timer(0.1, lambda: q.send_many([(b"a", None, None), (b"b", None, None)]))
    timer.start()
    try:
        entries = q.receive_many(10, 8)
    finally:
        timer.join()
    assert entries and entries[0].data == b"a"
    assert [e.data for e in entries] + [e.data for e in q.receive_many(0, 8)] == [b"a", b"b"]


def test_each_entry_goes_to_exactly_one_batch_receiver(backend):
    q = backend.create("INQ", QueueAttributes(maxlen=16))
    got, lock = [], threading.Lock()

    def receiver():
        while entries := q.receive_many(0.3, 7):
            with lock:
                got.extend(e.data for e in entries)

    threads = [threading.Thread(target=receiver) for _ in range(4)]
    for t in threads:
        t.start()
    for i in range(0, 300, 3):
        q.send_many([(b"%d" % j, None, None) for j in range(i, i + 3)])
    for t in threads:
        t.join()
    assert sorted(got) == sorted(b"%d" % i for i in range(300))


def test_send_many_checks_every_entry_first_dedups_each_and_stops_at_a_full_queue(backend):
    q = keyed(backend, keylen=12)
    with pytest.raises(DataTooLong):
        q.send_many([(b"ok", b"000000000001", None), (b"x" * 65, b"000000000002", None)])
    with pytest.raises(BadKey):
        q.send_many([(b"ok", b"000000000001", None), (b"ok", b"short", None)])
    assert q.depth() == 0  # a bad entry sent nothing
    assert q.send_many([(b"a", b"000000000001", 1), (b"b", b"000000000002", 2), (b"a", b"000000000001", 1)]) \
        == [True, True, False]
    assert q.depth() == 2
    full = backend.create("FULL", QueueAttributes(maxlen=4, max_entries=2))
    with pytest.raises(QueueFull, match="FULL is full"):
        full.send_many([(b"1", None, None), (b"2", None, None), (b"3", None, None)])
    assert [e.data for e in full.receive_many(0, 5)] == [b"1", b"2"]


def test_receive_many_leases_each_entry_until_acked(backend):
    q = backend.create("L", QueueAttributes(maxlen=8, lease=0.3))
    q.send_many([(b"a", None, None), (b"b", None, None), (b"c", None, None)])
    batch = q.receive_many(0, 3)
    assert [e.data for e in batch] == [b"a", b"b", b"c"] and q.describe()["leased"] == 3
    q.ack_many(batch[:1])  # the holder dies after answering only the first
    again = q.receive_many(5, 3)  # the other two come back when their leases run out
    assert sorted(e.data for e in again) == [b"b", b"c"]
    q.ack_many(batch)  # stale receipts remove nothing
    assert q.describe()["leased"] == 2
    q.ack_many(again)
    assert q.describe()["leased"] == 0 and q.receive_many(0.5, 3) == []


def test_send_receive_sends_then_waits_for_the_reply_by_key(backend):
    requests = backend.create("REQ", QueueAttributes(maxlen=16))
    replies = keyed(backend, "REP", keylen=12)
    replies.send(b"other", b"000000000002")

    def worker():
        entry = requests.receive(10)
        replies.send(b"re:" + entry.data, b"000000000001")

    thread = threading.Thread(target=worker)
    thread.start()
    try:
        entry = requests.send_receive(b"hello", replies, b"000000000001", 10)
    finally:
        thread.join()
    assert entry.data == b"re:hello" and replies.depth() == 1  # the other key's reply stays
    assert requests.send_receive(b"again", replies, b"000000000003", 0.05) is None  # no reply: timeout, None
    assert requests.depth() == 1


def test_keys_received_by_key_leave_no_trace(backend):
    replies = keyed(backend, "REP", keylen=12)
    requests = backend.create("REQ", QueueAttributes(maxlen=16))
    for comid in range(20):
        key = b"%012d" % comid
        replies.send(b"r", key)
        assert replies.receive(1, key).data == b"r"
        threading.Timer(0.01, lambda k=key: replies.send(b"r", k)).start()
        assert requests.send_receive(b"q", replies, key, 10).data == b"r"
    assert replies.describe()["depth"] == 0 and replies.receive(0) is None
    if backend.kind == "redis":  # the keyed queue's index of keys does not keep every key ever used
        assert backend.client.zcard(replies.qp + b":keys") == 0


def test_force_queue_works_the_same_and_leaves_the_connection_as_it_was(backend):
    q = backend.create("F", QueueAttributes(maxlen=8, force=True, lease=5.0))
    q.send(b"a")
    assert q.send_many([(b"b", None, 1), (b"b", None, 1), (b"c", None, None)]) == [True, False, True]
    first = q.receive(0)
    rest = q.receive_many(0, 5)
    assert [e.data for e in [first, *rest]] == [b"a", b"b", b"c"] and q.describe()["leased"] == 3
    q.ack(first)
    q.ack_many(rest)
    q.send(b"d")
    assert q.describe()["leased"] == 0 and q.clear() == 1
    if backend.kind == "sqlite":  # FULL only around a forced commit: other queues keep NORMAL
        assert backend.connection().execute("PRAGMA synchronous").fetchone()[0] == 1


def test_hand_over_gives_a_waiting_receiver_its_entry_and_stores_it_otherwise(backend):
    q = keyed(backend, keylen=12, sender_id=True)
    assert q.send_many([(b"nobody waits", b"000000000001", None)], hand_over=True) == [True]
    assert q.depth() == 1  # no receiver waiting on that key: stored as usual
    timer = threading.Timer(0.1, lambda: q.send_many([(b"waited for", b"000000000002", None)], hand_over=True))
    timer.start()
    try:
        entry = q.receive(10, b"000000000002")
    finally:
        timer.join()
    assert entry.data == b"waited for" and entry.key == b"000000000002"
    assert entry.sender.endswith(f"/{__import__('os').getpid()}") and entry.sent_at > 0
    assert q.receive(0, b"000000000002") is None and q.receive(0, b"000000000001").data == b"nobody waits"


def test_an_entry_handed_to_a_receiver_that_leaves_is_stored(backend):
    if backend.kind != "sqlite":
        pytest.skip("only SQLite hands entries over")
    q = keyed(backend, keylen=12)
    key = b"000000000003"
    left_over = []
    with backend.waker.listen(q.name, key, left_over) as bell:
        assert bell is not None
        q.send_many([(b"handed", key, None)], hand_over=True)
        assert q.depth() == 0  # it went to the socket, not the table
    assert len(left_over) == 1  # the receiver left without reading it ...
    q._put_back(key, left_over)
    assert q.receive(0, key).data == b"handed"  # ... so it is stored, not lost


def test_redis_commands_survive_an_error_and_a_server_without_our_scripts(backend):
    if backend.kind != "redis":
        pytest.skip("Redis only")
    from redis.exceptions import ResponseError

    with pytest.raises(ResponseError):
        backend.exchange(("NO-SUCH-COMMAND",))
    assert backend.exchange(("PING",), ("PING",)) == [b"PONG", b"PONG"]  # the failed connection was replaced
    q = backend.create("S", QueueAttributes(maxlen=8))
    backend.scripts["send"].sha = "0" * 40  # as if the server had lost the script: sent again by its text
    assert q.send_many([(b"a", None, None)]) == [True] and q.receive(0).data == b"a"


def test_reply_and_receive_many_sends_the_replies_then_takes_the_next_batch(backend):
    requests = backend.create("REQ", QueueAttributes(maxlen=16))
    replies = keyed(backend, "REP", keylen=12)
    for data in (b"q1", b"q2"):
        requests.send(data)
    batch = requests.reply_and_receive_many(replies, [(b"r0", b"000000000000", None)], 1, 5)
    assert [e.data for e in batch] == [b"q1", b"q2"]
    assert replies.receive(0, b"000000000000").data == b"r0"
    assert requests.reply_and_receive_many(replies, [], 0.05, 5) == []  # nothing to send, nothing waiting
    with pytest.raises(DataTooLong):  # checked before anything is sent
        requests.reply_and_receive_many(replies, [(b"x" * 65, b"000000000001", None)], 0, 5)
    assert replies.describe()["depth"] == 0
    if backend.kind == "redis":
        assert backend.client.zcard(replies.qp + b":keys") == 0


def test_a_handed_over_reply_nobody_took_stays_visible_and_clearable(backend):
    requests = backend.create("REQ", QueueAttributes(maxlen=16))
    replies = keyed(backend, "REP", keylen=12)
    key = b"000000000009"
    assert requests.send_receive(b"q", replies, key, 0.05) is None  # the client gave up
    assert replies.send_many([(b"late", key, None)], hand_over=True) == [True]
    assert replies.describe()["depth"] == 1 and replies.receive(0, order="GE", key=b"000000000000").data == b"late"
    replies.send_many([(b"late again", key, None)], hand_over=True)
    assert replies.clear(key) == 1 and replies.describe()["depth"] == 0
    if backend.kind == "redis":
        assert backend.client.zcard(replies.qp + b":keys") == 0


def test_sqlite_hands_a_request_to_a_waiting_worker_and_stores_it_otherwise(backend):
    if backend.kind != "sqlite":
        pytest.skip("only SQLite hands requests over")
    requests = backend.create("REQ", QueueAttributes(maxlen=16))
    assert requests._hand_request(b"nobody waits") is False  # then the caller sends it as usual
    leased = backend.create("LEASED", QueueAttributes(maxlen=16, lease=5.0))
    assert leased._hand_request(b"q") is False  # lease: every request goes through the table
    got = []
    worker = threading.Thread(target=lambda: got.extend(requests.receive_many(5, 4)))
    worker.start()
    try:
        deadline = time.monotonic() + 5
        while not requests._hand_request(b"handed") and time.monotonic() < deadline:
            time.sleep(0.01)  # until the worker waits on its socket
    finally:
        worker.join(10)
    assert [e.data for e in got] == [b"handed"] and requests.depth() == 0


def test_sqlite_a_request_handed_to_a_worker_that_leaves_is_stored(backend):
    if backend.kind != "sqlite":
        pytest.skip("only SQLite hands requests over")
    requests = backend.create("REQ", QueueAttributes(maxlen=16))
    left_over = []
    with backend.waker.listen(requests.name, None, left_over) as bell:
        assert bell is not None and requests._hand_request(b"handed")
    assert len(left_over) == 1 and requests._hand_request(b"nobody now") is False
    requests._put_back(b"", left_over)
    assert requests.receive(0).data == b"handed"


def test_sqlite_a_peek_on_a_fifo_queue_is_never_handed_an_entry(backend):
    if backend.kind != "sqlite":
        pytest.skip("only SQLite hands requests over")
    requests = backend.create("REQ", QueueAttributes(maxlen=16))
    threading.Timer(0.1, requests.send, (b"a",)).start()
    assert requests.receive(5, remove=False).data == b"a"
    assert requests.receive(0).data == b"a"


def test_a_receive_that_waits_for_ever_waits_until_an_entry_comes(backend):
    fifo = backend.create("INQ", QueueAttributes(maxlen=16))
    replies = keyed(backend, "REP", keylen=12)
    threading.Timer(0.3, fifo.send, (b"late",)).start()
    threading.Timer(0.3, replies.send, (b"late reply", b"000000000001")).start()
    assert fifo.receive(-1).data == b"late"
    assert replies.receive(-1, b"000000000001").data == b"late reply"


def test_send_receive_data_gives_the_reply_data_and_checks_as_send(backend):
    requests = backend.create("REQ", QueueAttributes(maxlen=16))
    replies = keyed(backend, "REP", keylen=12)
    key = b"000000000007"
    threading.Timer(0.01, lambda: replies.send_many([(b"answer", key, None)], hand_over=True)).start()
    assert requests.send_receive_data(b"q", replies, key, 10) == b"answer"
    assert requests.send_receive_data(bytearray(b"q2"), replies, b"000000000008", 0.05) is None  # timeout
    with pytest.raises(DataTooLong):
        requests.send_receive_data(b"x" * 17, replies, b"000000000009", 0.05)
    with pytest.raises(BadKey):
        requests.send_receive_data(b"q", replies, b"short", 0.05)
    assert [e.data for e in requests.receive_many(0, 5)] == [b"q", b"q2"]


def test_reply_and_receive_many_checks_every_reply_of_a_batch_before_sending_any(backend):
    requests = backend.create("REQ", QueueAttributes(maxlen=16))
    replies = keyed(backend, "REP", keylen=12)
    requests.send(b"q1")
    with pytest.raises(BadKey):
        requests.reply_and_receive_many(replies, [(b"ok", b"000000000001", None), (b"bad", b"1", None)], 0.05, 5)
    assert replies.describe()["depth"] == 0
    batch = requests.reply_and_receive_many(
        replies, [(b"r1", b"000000000001", None), (bytearray(b"r2"), b"000000000002", None)], 1, 5)
    assert [e.data for e in batch] == [b"q1"]
    assert [replies.receive(0, k).data for k in (b"000000000001", b"000000000002")] == [b"r1", b"r2"]
