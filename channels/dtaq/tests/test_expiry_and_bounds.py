"""What a caller that gave up, a full queue and a changed service mean on every backend: a request carries its
deadline and is dropped (and recorded) rather than run after it; request queues are bounded and a full one
falls back to direct call; a service whose queue attributes changed gets new queues when they are empty and is
refused by name otherwise, while the other services run on."""
import os
import time
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from esomp_core import Service
from esomp_direct import messages as m
from esomp_direct.messages import MessageError, Reply, Request
from esomp_dtaq.channel import CallTimeout, QueuesChanged, open_entry, request_entry
from esomp_dtaq.testing import ECHO, SLOW, make_channel
from esomp_dtaq.supervisor import service_status

POST = ("T", "POST", "01")


def posting(request):
    """A financial posting that writes down every time it runs: running twice would post twice."""
    with Path(request.data.decode()).open("a") as ledger:
        ledger.write("posted\n")
    return b"posted"


def posting_channel(backend, **policy):
    return make_channel(backend, {POST: Service(*POST, posting, financial=True)}, **{"T.POST.01": policy})


def test_a_request_whose_caller_gave_up_is_dropped_and_recorded_never_run(backend, pool, tmp_path):
    ledger = tmp_path / "ledger"
    channel = posting_channel(backend)
    channel.queues(POST)  # no worker yet: the request waits in the queue past its caller's timeout
    with pytest.raises(CallTimeout) as timed_out:
        channel.call(Request(*POST, data=str(ledger).encode()), timeout=0.2)
    comid = int(str(timed_out.value).split("comid ")[1].split()[0])
    supervisor = pool(channel, [POST])
    # the worker answers a later request, so it has long since taken (and dropped) the abandoned one
    reply = channel.call(Request(*POST, data=str(tmp_path / "other").encode()), timeout=20)
    assert reply.ok
    assert not ledger.exists()  # the retried request's first attempt never posted
    assert channel.control.counted("expired-requests") == 1
    dropped = channel.control.dropped_requests()
    assert [(d["comid"], d["service"]) for d in dropped] == [(comid, "T.POST.01")]
    status = service_status(channel, [POST])[0]
    assert status["expired_requests"] == 1 and status["dropped"][0]["comid"] == comid
    supervisor.poll()  # the abandoned id, with nothing left to expire, stays until it is old


def test_a_request_already_past_its_deadline_is_dropped_in_a_batch_the_others_answered(backend, tmp_path):
    channel = posting_channel(backend)
    service, policy = channel.services[POST], channel.policy(POST)
    _, outq = channel.queues(POST)
    late = request_entry(Request(*POST, comid=1, data=str(tmp_path / "late").encode()).encode(), time.time() - 1)
    fresh = request_entry(Request(*POST, comid=2, data=str(tmp_path / "fresh").encode()).encode(),
                          time.time() + 60)
    channel.answer_many(service, policy, outq, [late, fresh])
    assert not (tmp_path / "late").exists() and (tmp_path / "fresh").exists()
    assert outq.receive(0, m.comid_key(1)) is None
    assert Reply.decode(outq.receive(0, m.comid_key(2)).data).data == b"posted"
    assert [d["comid"] for d in channel.control.dropped_requests()] == [1]


def test_a_request_without_a_deadline_is_refused_as_bad(backend, tmp_path):
    channel = posting_channel(backend)
    _, outq = channel.queues(POST)
    bare = Request(*POST, comid=3, data=str(tmp_path / "bare").encode()).encode()
    channel.answer_many(channel.services[POST], channel.policy(POST), outq, [bare])
    assert not (tmp_path / "bare").exists() and channel.control.counted("bad-requests") == 1


def test_a_full_request_queue_falls_back_to_direct_call(backend):
    channel = make_channel(backend, **{"ECHO.ECHO.01": {"max_entries": 2}})
    inq, _ = channel.queues(ECHO)  # no workers: the queue fills up
    assert inq.attributes.max_entries == 2
    with pytest.raises(CallTimeout):
        channel.call(Request(*ECHO, data=b"a"), timeout=0.1)
    with pytest.raises(CallTimeout):
        channel.call(Request(*ECHO, data=b"b"), timeout=0.1)
    assert inq.depth() == 2
    # a long timeout: the full queue must be noticed at once, not after the wait
    reply = channel.call(Request(*ECHO, data=b"c"), timeout=30)
    assert reply.data == b"c" and channel.last_route.via == "direct"
    assert channel.last_route.reason == f"request queue {inq.name} full"
    assert inq.depth() == 2


def test_request_queues_are_bounded_by_default(backend):
    channel = make_channel(backend)
    inq, _ = channel.queues(ECHO)
    assert 0 < inq.attributes.max_entries == channel.policy(ECHO).max_entries


def test_changed_attributes_rebuild_empty_queues(backend):
    old = make_channel(backend)
    old_inq, _ = old.queues(ECHO)
    new = make_channel(backend, **{"ECHO.ECHO.01": {"lease": 5.0, "max_entries": 50}})
    inq, _ = new.queues(ECHO)
    assert (inq.attributes.lease, inq.attributes.max_entries) == (5.0, 50)
    assert backend.queue(inq.name).attributes == inq.attributes


def test_changed_attributes_with_waiting_requests_are_refused_and_other_services_run_on(backend, pool):
    old = make_channel(backend)
    old.queues(ECHO)
    slow = SLOW
    old_inq, _ = old.queues(slow)
    old_inq.send(request_entry(Request(*slow, data=b"0").encode(), time.time() + 60))
    new = make_channel(backend, **{"T.SLOW.01": {"lease": 5.0}})
    with pytest.raises(QueuesChanged, match=r"service T\.SLOW\.01: queue TSLOW01I holds 1 entr.*lease"):
        new.queues(slow)
    supervisor = pool(new, [ECHO, slow])  # starts ECHO, refuses SLOW by name
    assert any("T.SLOW.01" in e.service and "holds 1" in e.what for e in supervisor.events)
    assert new.call(Request(*ECHO, data=b"still here"), timeout=20).data == b"still here"
    supervisor.poll()
    reply = new.call(Request(*slow, data=b"0"), timeout=20)  # its queues are refused: answered directly
    assert reply.ok and new.last_route.via == "direct" and "TSLOW01I" in new.last_route.reason
    rows = {r["service"]: r for r in service_status(new, [ECHO, slow])}
    assert rows["T.SLOW.01"]["error"].startswith("service T.SLOW.01: queue TSLOW01I holds 1")
    assert rows["ECHO.ECHO.01"]["error"] == ""
    assert backend.queue("TSLOW01I").depth() == 1  # nothing waiting was thrown away


def test_call_refuses_a_timeout_that_would_never_end(backend):
    channel = make_channel(backend)
    for timeout in (-1, 0):
        with pytest.raises(ValueError, match=r"ECHO\.ECHO\.01: timeout"):
            channel.call(Request(*ECHO, data=b"x"), timeout=timeout)


def test_send_receive_on_a_full_queue_raises_queue_full_at_once(backend):
    from esomp_dtaq.queues import QueueAttributes, QueueFull
    inq = backend.create("FULLQ", QueueAttributes(maxlen=100, max_entries=1))
    outq = backend.create("FULLR", QueueAttributes(maxlen=100, sequence="KEYED", keylen=12))
    inq.send(b"first")
    with pytest.raises(QueueFull, match="FULLQ is full"):
        inq.send_receive(b"second", outq, m.comid_key(1), 30)  # at once, not after the 30 s wait
    with pytest.raises(QueueFull):
        inq.send_receive_data(b"second", outq, m.comid_key(2), 30)
    assert inq.depth() == 1 and outq.depth() == 0  # nothing left under the reply keys either
    assert inq.receive(0).data == b"first"
    outq.send(b"reply", key=m.comid_key(3))
    assert inq.send_receive_data(b"third", outq, m.comid_key(3), 30) == b"reply"
    assert inq.receive(0).data == b"third"


def test_records_of_dropped_requests_are_kept_a_while_and_bounded(backend):
    channel = make_channel(backend)
    for comid in range(5):
        channel.control.drop_request(comid, "ECHO.ECHO.01", time.time() - 1)
    channel.control.forget_dropped(3600, keep=3)
    assert [d["comid"] for d in channel.control.dropped_requests()] == [4, 3, 2]
    channel.control.forget_dropped(-1)
    assert channel.control.dropped_requests() == []
    assert channel.control.counted("expired-requests") == 5  # the count stays


def hangs_first_time(tmp: Path):
    def handler(request):
        calls = tmp / "calls"
        with calls.open("a") as f:
            f.write("called\n")
        if len(calls.read_text().split()) == 1:
            time.sleep(60)  # the first delivery hangs until it is killed
        return request.data
    return handler


def test_a_leased_request_redelivered_after_its_deadline_is_dropped_not_run_again(backend, pool, tmp_path):
    if backend.kind == "memory":
        pytest.skip("memory queues cannot be shared with a worker process")
    import signal

    key = ("T", "KILL", "01")
    channel = make_channel(backend, {key: Service(*key, hangs_first_time(tmp_path), financial=True)},
                           **{"T.KILL.01": {"lease": 6.0, "handling": 3, "min_workers": 1, "max_workers": 2}})
    supervisor = pool(channel, [key])
    inq, outq = channel.queues(key)
    deadline = time.monotonic() + 20
    while not channel.control.workers():  # the worker is serving: it takes the request well before 4 s
        assert time.monotonic() < deadline, "the worker never started"
        time.sleep(0.05)
    # the lease (6 s) runs out after the caller's deadline (4 s): the redelivery comes too late to run
    inq.send(request_entry(Request(*key, comid=88, data=b"pay 1").encode(), time.time() + 4))
    while not (tmp_path / "calls").exists():
        assert time.monotonic() < deadline, "the worker never took the request"
        time.sleep(0.05)
    victim = supervisor.workers[key][0]
    os.kill(victim.pid, signal.SIGKILL)
    victim.process.join(5)
    supervisor.poll()  # a new worker, which gets the request again when its lease runs out: past its deadline
    deadline = time.monotonic() + 20
    while channel.control.counted("expired-requests") == 0:
        assert time.monotonic() < deadline, "the redelivered request was never dropped"
        time.sleep(0.05)
    assert (tmp_path / "calls").read_text().split() == ["called"]  # run once, by the killed worker only
    assert [d["comid"] for d in channel.control.dropped_requests()] == [88]
    assert outq.depth() == 0


@pytest.mark.fuzz
@settings(max_examples=int(os.environ.get("ESOMP_FUZZ_EXAMPLES", "300")), deadline=None)
@given(st.binary(max_size=2400), st.floats(allow_nan=True, allow_infinity=True))
def test_open_entry_of_any_bytes_raises_only_message_error(data, deadline):
    """The worker's first look at an entry: any bytes raise MessageError or give a deadline and a request;
    an enveloped packet gives back what was put in."""
    for entry in (data, request_entry(data, deadline)):
        try:
            found, request = open_entry(entry)
        except MessageError:
            continue
        assert isinstance(request, Request)
    try:
        request = Request.decode(data)
    except MessageError:
        return
    found, decoded = open_entry(request_entry(data, deadline))
    assert decoded == request and (found == deadline or (found != found and deadline != deadline))
