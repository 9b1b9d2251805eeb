"""The service pool of seed 003 on every backend: calls, late replies, CUTOFF, blacklist, sentinels, scaling,
the breaker, and a worker killed mid-request."""
import os
import signal
import time
from pathlib import Path

import pytest

from esomp_core import Service
from esomp_direct import messages as m
from esomp_direct.messages import Reply, Request
from esomp_dtaq.channel import CallTimeout, request_entry
from esomp_dtaq.testing import ECHO, SLOW, make_channel
from esomp_dtaq.supervisor import service_status



def queued(request, seconds=60.0):
    """A request queue entry as a client sends it: waited for ``seconds`` from now."""
    return request_entry(request.encode(), time.time() + seconds)


def wait_until(condition, seconds=20.0):
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "condition not reached in time"
        time.sleep(0.05)


def test_call_goes_through_the_queues_and_back(backend, pool):
    channel = make_channel(backend)
    pool(channel, [ECHO, ("YHT", "CTR", "01")])
    reply = channel.call(Request(*ECHO, data=b"hello"), timeout=20)
    assert (reply.code, reply.data, channel.last_route.via) == ("0000", b"hello", "dtaq")
    first = reply.comid
    reply = channel.call(Request("YHT", "CTR", "01", data="12345678|10.50".encode("gbk")), timeout=20)
    assert reply.data == b"POSTED|12345678|10.50" and reply.comid > first  # ids are never reused
    bad = channel.call(Request("YHT", "CTR", "01", data=b"12|x"), timeout=20)
    assert bad.code == "1001" and "账号无效" in bad.message


def test_late_reply_expires_and_is_never_handed_to_a_later_request(backend, pool):
    channel = make_channel(backend)
    supervisor = pool(channel, [SLOW])
    with pytest.raises(CallTimeout, match="no reply to comid"):
        channel.call(Request(*SLOW, data=b"0.5"), timeout=0.1)
    reply = channel.call(Request(*SLOW, data=b"0"), timeout=20)  # queued behind the slow one
    assert reply.data == b"slept"
    wait_until(lambda: (supervisor.poll(), channel.control.counted("expired"))[1] == 1)
    assert channel.queues(SLOW)[1].depth() == 0


def test_cutoff_refuses_financial_requests_only(backend, pool):
    channel = make_channel(backend)
    pool(channel, [("YHT", "CTR", "01"), ("YHT", "CTR", "02")])
    channel.control.set_cutoff(True)
    reply = channel.call(Request("YHT", "CTR", "01", data=b"12345678|1"), timeout=20)
    assert (reply.code, reply.message) == (m.RC_CUTOFF, "系统状态为CUTOFF,不能做此交易")
    assert channel.call(Request("YHT", "CTR", "02", data=b"12345678"), timeout=20).ok
    channel.control.set_cutoff(False)
    assert channel.call(Request("YHT", "CTR", "01", data=b"12345678|1"), timeout=20).ok


def test_blacklist_forces_direct_call(backend):
    channel = make_channel(backend)  # no workers at all: only a direct call can answer
    channel.control.blacklist_add("02", "*", "YHTCTR02", "MSGW seen")
    reply = channel.call(Request("YHT", "CTR", "02", data=b"12345678"), timeout=0.2)
    assert reply.ok and channel.last_route.reason == "blacklisted (CNJYKPF)"
    with pytest.raises(CallTimeout):  # financial: category 01 is not blacklisted
        channel.call(Request("YHT", "CTR", "01", data=b"12345678|1"), timeout=0.2)
    channel.control.blacklist_add("01", "teller", "*")
    assert channel.call(Request("YHT", "CTR", "01", data=b"12345678|1"), channel="teller").ok
    assert channel.control.blacklist_remove("02", "*", "YHTCTR02")
    assert [r["channel"] for r in channel.control.blacklist()] == ["teller"]


def test_stop_by_one_end_sentinel_per_worker_and_day_start_rebuild(backend, pool):
    channel = make_channel(backend, **{"ECHO.ECHO.01": {"min_workers": 2}})
    supervisor = pool(channel, [ECHO])
    wait_until(lambda: len(channel.control.workers()) == 2)
    supervisor.stop_service(ECHO)
    assert channel.control.workers() == {} and not channel.control.running("ECHO.ECHO.01")
    assert channel.queues(ECHO)[0].depth() == 0  # every sentinel was consumed
    reply = channel.call(Request(*ECHO, data=b"x"), timeout=0.2)
    assert reply.ok and channel.last_route.reason == "service stopped"
    assert channel.start_service(ECHO) is True  # empty: rebuilt
    supervisor.poll()
    assert channel.call(Request(*ECHO, data=b"y"), timeout=20).data == b"y"


def test_scaling_by_depth_between_min_and_max(backend, pool):
    channel = make_channel(backend, **{"T.SLOW.01": {"min_workers": 1, "max_workers": 3, "target_depth": 2,
                                                     "increment": 2, "cooldown": 0}})
    supervisor = pool(channel, [SLOW])
    inq, _ = channel.queues(SLOW)
    for _ in range(12):
        inq.send(queued(Request(*SLOW, comid=0, data=b"0.2")))
    supervisor.poll()
    supervisor.poll()
    assert len(supervisor.workers[SLOW]) == 3  # capped at max
    wait_until(lambda: inq.depth() == 0)
    for _ in range(3):
        supervisor.poll()
        time.sleep(0.3)
    wait_until(lambda: (supervisor.poll(), len(supervisor.workers[SLOW]))[1] == 1)


def test_breaker_opens_under_overload_and_closes_after_trials(backend, pool):
    channel = make_channel(backend, **{"T.SLOW.01": {"min_workers": 1, "max_workers": 1, "target_depth": 1,
                                                     "open_seconds": 0.3, "trial_requests": 1}})
    supervisor = pool(channel, [SLOW])
    inq, _ = channel.queues(SLOW)
    for _ in range(4):
        inq.send(queued(Request(*SLOW, data=b"0.3")))
    supervisor.poll()
    assert channel.control.breaker("T.SLOW.01")["state"] == "open"
    reply = channel.call(Request(*SLOW, data=b"0"), timeout=0.2)
    assert reply.ok and channel.last_route.reason == "breaker open"
    inq.clear()
    time.sleep(0.4)
    reply = channel.call(Request(*SLOW, data=b"0"), timeout=20)  # the half-open trial goes through the queue
    assert reply.ok and channel.last_route.via == "dtaq"
    assert channel.control.breaker("T.SLOW.01")["state"] == "closed"
    status = service_status(channel, [SLOW])[0]
    assert status["breaker"]["state"] == "closed" and status["service"] == "T.SLOW.01"


def test_client_timeouts_in_a_row_open_the_breaker(backend):
    channel = make_channel(backend, **{"T.SLOW.01": {"failure_threshold": 2}})
    for _ in range(2):
        with pytest.raises(CallTimeout):
            channel.call(Request(*SLOW, data=b"0"), timeout=0.05)
    assert channel.control.breaker("T.SLOW.01")["state"] == "open"
    assert channel.call(Request(*SLOW, data=b"0")).ok and channel.last_route.via == "direct"


@pytest.fixture
def process_backend(backend):
    if backend.kind == "memory":
        pytest.skip("memory queues cannot be shared with a worker process")
    return backend


def marked(tmp: Path):
    def handler(request):
        calls = tmp / "calls"
        with calls.open("a") as f:
            f.write(f"{os.getpid()}\n")
        if len(calls.read_text().split()) == 1:
            time.sleep(60)  # the first delivery hangs until it is killed
        return request.data
    return handler


def test_worker_killed_mid_request_is_replaced_and_the_request_answered_once(process_backend, pool, tmp_path):
    key = ("T", "KILL", "01")
    channel = make_channel(process_backend, {key: Service(*key, marked(tmp_path))},
                           **{"T.KILL.01": {"lease": 1.0, "handling": 3, "min_workers": 1, "max_workers": 2}})
    supervisor = pool(channel, [key])
    inq, outq = channel.queues(key)
    # the client's two handshakes by hand, so no thread is busy in SQLite while the supervisor forks
    inq.send(queued(Request(*key, comid=77, data=b"pay 1")))
    wait_until(lambda: (tmp_path / "calls").exists())
    victim = supervisor.workers[key][0]
    os.kill(victim.pid, signal.SIGKILL)
    victim.process.join(5)
    supervisor.poll()  # sees the crash, handling 3: submits another worker
    assert victim not in supervisor.workers[key] and len(supervisor.workers[key]) == 1
    assert any("ended abnormally" in e.what for e in supervisor.events)
    reply = Reply.decode(outq.receive(30, m.comid_key(77)).data)
    assert reply.data == b"pay 1"
    pids = (tmp_path / "calls").read_text().split()
    assert len(pids) == 2 and pids[0] == str(victim.pid)  # delivered twice, answered once
    wait_until(lambda: channel.queues(key)[0].describe()["leased"] == 0)  # the worker acks after replying
    assert channel.queues(key)[1].depth() == 0 and channel.queues(key)[0].depth() == 0


def test_handling_mode_2_ends_a_stuck_worker_without_submitting(process_backend, pool):
    channel = make_channel(process_backend, **{"T.SLOW.01": {"handling": 2, "stuck_after": 0.5,
                                                             "min_workers": 1, "max_workers": 1}})
    supervisor = pool(channel, [SLOW])
    channel.queues(SLOW)[0].send(queued(Request(*SLOW, data=b"30")))
    worker = supervisor.workers[SLOW][0]
    wait_until(lambda: (supervisor.poll(), not worker.process.is_alive())[1])
    assert supervisor.workers[SLOW] == [] or supervisor.workers[SLOW][0] is not worker
    assert any("no heartbeat" in e.what for e in supervisor.events)


def hangs_once_on(tmp: Path, word: bytes):
    def handler(request):
        calls = tmp / "calls"
        with calls.open("a") as f:
            f.write(f"{os.getpid()} {request.data.decode()}\n")
        if request.data == word and calls.read_text().split().count(word.decode()) == 1:
            time.sleep(60)  # the first delivery of this request hangs until it is killed
        return request.data
    return handler


def test_worker_killed_mid_batch_in_lease_mode_every_request_redelivered_and_answered_once(
        process_backend, pool, tmp_path):
    key = ("T", "BATCH", "01")
    channel = make_channel(process_backend, {key: Service(*key, hangs_once_on(tmp_path, b"hang"))},
                           **{"T.BATCH.01": {"lease": 1.0, "handling": 3, "min_workers": 1, "max_workers": 1,
                                             "batch": 8}})
    supervisor = pool(channel, [key])
    inq, outq = channel.queues(key)
    for comid in (1, 2, 3):  # the worker learns its handler is fast, so it takes several requests at once
        inq.send(queued(Request(*key, comid=comid, data=b"warm")))
        assert Reply.decode(outq.receive(30, m.comid_key(comid)).data).data == b"warm"
    words = [b"a", b"b", b"c", b"hang"]
    inq.send_many([(queued(Request(*key, comid=10 + i, data=w)), None, None) for i, w in enumerate(words)])
    wait_until(lambda: b"hang" in (tmp_path / "calls").read_bytes())
    victim = supervisor.workers[key][0]
    batch = inq.describe()["leased"]  # the victim's batch: the hanging request and those taken with it
    assert batch >= 2
    os.kill(victim.pid, signal.SIGKILL)
    victim.process.join(5)
    supervisor.poll()  # handling 3: another worker, which gets the batch again when the leases run out
    for i, word in enumerate(words):
        assert Reply.decode(outq.receive(30, m.comid_key(10 + i)).data).data == word
    wait_until(lambda: inq.describe()["leased"] == 0)
    assert outq.depth() == 0 and inq.depth() == 0  # one reply per request, nothing left over
    handled = [line.split()[1] for line in (tmp_path / "calls").read_text().splitlines()][3:]
    twice = sorted(w for w in set(handled) if handled.count(w) == 2)
    assert sorted(set(handled)) == sorted(w.decode() for w in words)
    assert twice == sorted(w.decode() for w in words[-batch:])  # every request of the batch was redelivered


def test_duplicate_replies_of_a_redelivered_batch_are_dropped(backend):
    channel = make_channel(backend, **{"ECHO.ECHO.01": {"lease": 5.0}})
    service = channel.services[ECHO]
    policy = channel.policy(ECHO)
    _, outq = channel.queues(ECHO)
    packets = [queued(Request(*ECHO, comid=c, data=b"%d" % c)) for c in (5, 6)]
    channel.answer_many(service, policy, outq, packets)
    channel.answer_many(service, policy, outq, packets)  # the same batch answered again after a redelivery
    assert outq.depth() == 2
    assert [Reply.decode(outq.receive(0, m.comid_key(c)).data).data for c in (5, 6)] == [b"5", b"6"]


def test_a_route_is_reused_only_while_the_control_reads_behind_it_are(backend, pool):
    channel = make_channel(backend)
    channel.control.ttl = 0.3
    pool(channel, [ECHO])
    assert channel.call(Request(*ECHO, data=b"a"), timeout=20).ok and channel.last_route.via == "dtaq"
    # another process (its own Control) blacklists ECHO: seen once this process's reads are older than ttl
    from esomp_dtaq.control import Control
    Control(backend).blacklist_add("02", "*", "ECHOECHO01")
    time.sleep(0.35)
    assert channel.call(Request(*ECHO, data=b"b"), timeout=20).ok and channel.last_route.via == "direct"
    channel.control.blacklist_remove("02", "*", "ECHOECHO01")  # this process's own write: seen at once
    assert channel.call(Request(*ECHO, data=b"c"), timeout=20).ok and channel.last_route.via == "dtaq"
    channel.control.set_running("ECHO.ECHO.01", False)
    assert channel.call(Request(*ECHO, data=b"d"), timeout=20).ok and channel.last_route.reason == "service stopped"
