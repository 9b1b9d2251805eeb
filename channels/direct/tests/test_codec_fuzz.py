"""Fuzz targets of the packet codec: decoding any bytes raises only MessageError, and what encodes decodes back.
A few hundred examples in `make test`; `make fuzz` sets ESOMP_FUZZ_EXAMPLES (20000)."""
import os

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from esomp_direct import messages as m
from esomp_direct.messages import MessageError, Reply, Request

EXAMPLES = int(os.environ.get("ESOMP_FUZZ_EXAMPLES", "300"))
fuzz = settings(max_examples=EXAMPLES, deadline=None)

# text as the seed's fields hold it: GBK-encodable, no trailing spaces (padding is not part of the value)
gbk_text = st.text(st.characters(codec="gbk", exclude_categories=("Cs",)), max_size=5).map(str.rstrip)
comids = st.integers(0, 999_999_999_999)


def fits(width):
    return gbk_text.filter(lambda text: len(text.encode("gbk")) <= width)


def header_like(length):
    """Bytes that often pass the header's checks, so decoding goes past them: digits where the comid is."""
    return st.tuples(st.binary(min_size=22, max_size=22), st.from_regex(rb"\A[0-9]{12}\Z"),
                     st.binary(min_size=length - 34, max_size=length - 34)).map(b"".join)


def packets(header_len, maxlen):
    return st.one_of(st.binary(max_size=maxlen + 8),
                     st.tuples(header_like(header_len), st.binary(max_size=maxlen - header_len + 4)).map(b"".join))


@pytest.mark.fuzz
@pytest.mark.parametrize("kind, header_len, maxlen", [(Request, m.REQUEST_HEADER_LEN, m.REQUEST_MAXLEN),
                                                      (Reply, m.REPLY_HEADER_LEN, m.REPLY_MAXLEN)])
@fuzz
@given(data=st.data())
def test_decode_of_any_bytes_raises_only_message_error(kind, header_len, maxlen, data):
    packet = data.draw(packets(header_len, maxlen))
    try:
        decoded = kind.decode(packet)
    except MessageError:
        return
    assert len(packet) <= maxlen
    assert kind.decode(decoded.encode()) == decoded  # what decodes also encodes again


@pytest.mark.fuzz
@fuzz
@given(fits(10), fits(10), fits(2), comids, fits(10), st.binary(max_size=m.REQUEST_MAXLEN - m.REQUEST_HEADER_LEN))
def test_request_encode_decode_round_trips(domain, name, type, comid, note, data):
    request = Request(domain, name, type, comid, note, data)
    packet = request.encode()
    assert Request.decode(packet) == request
    assert Request.decode(bytearray(packet)) == request
    assert request.encode_as(m.comid_key(comid)) == packet


@pytest.mark.fuzz
@fuzz
@given(fits(10), fits(10), fits(2), comids, fits(4), fits(42), fits(10),
       st.binary(max_size=m.REPLY_MAXLEN - m.REPLY_HEADER_LEN))
def test_reply_encode_decode_round_trips(domain, name, type, comid, code, message, note, data):
    reply = Reply(domain, name, type, comid, code, message, note, data)
    assert Reply.decode(reply.encode()) == reply


@pytest.mark.fuzz
@fuzz
@given(st.text(max_size=12), st.text(max_size=60), st.binary(max_size=m.REQUEST_MAXLEN))
def test_encode_of_any_fields_raises_only_message_error(name, note, data):
    for make in (lambda: Request("YHT", name, "01", 1, note, data).encode(),
                 lambda: Reply("YHT", name, "01", 1, "0000", note, "", data[:1200]).encode()):
        try:
            packet = make()
        except MessageError:
            continue
        assert len(packet) <= m.REQUEST_MAXLEN
