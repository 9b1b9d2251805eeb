"""The fixed-width packets of seed 003: lengths, fields, GBK text and clear errors."""
import pytest

from esomp_direct import messages as m
from esomp_direct.messages import MessageError, Reply, Request


def test_request_header_is_44_bytes_and_round_trips():
    request = Request("YHT", "CTR", "01", 42, "备注", b"x" * 2260)
    packet = request.encode()
    assert m.REQUEST_HEADER_LEN == 44 and len(packet) == 2304
    assert packet[:44] == b"YHT       CTR       01000000000042" + "备注".encode("gbk") + b"      "
    assert Request.decode(packet) == request
    assert request.interface == b"x" * 1024 and request.local_data == b"x" * 1024


def test_reply_header_is_90_bytes_note_last_and_round_trips():
    reply = Reply("YHT", "CTR", "01", 7, m.RC_CUTOFF, m.CUTOFF_MESSAGE, "N1", b"data")
    packet = reply.encode()
    assert m.REPLY_HEADER_LEN == 90 and len(packet) == 94
    assert packet[34:38] == b"9001"
    assert packet[38:80].decode("gbk").rstrip() == m.CUTOFF_MESSAGE
    assert packet[80:90] == b"N1        "
    assert Reply.decode(packet) == reply and not reply.ok


def test_long_return_message_is_cut_at_a_character_not_in_half():
    reply = Reply("YHT", "CTR", "01", 1, "9009", "错" * 30)
    decoded = Reply.decode(reply.encode())
    assert decoded.message == "错" * 21


@pytest.mark.parametrize("request_, error", [
    (Request("TOOLONGDOMAIN", "CTR", "01"), "field domain: 'TOOLONGDOMAIN' is 13 bytes"),
    (Request("YHT", "CTR", "001"), "field type"),
    (Request("YHT", "CTR", "01", comid=10**12), "field comid"),
    (Request("YHT", "CTR", "01", comid=-1), "field comid"),
    (Request("YHT", "CTR", "01", data=b"x" * 2261), "request data: 2261 bytes, at most 2260"),
    (Request("YHT", "CTR", "01", note="\u20ac" * 2), "cannot be written in gbk"),
])
def test_encode_errors_name_the_field(request_, error):
    with pytest.raises(MessageError, match=error):
        request_.encode()


def test_reply_data_limited_by_maxlen_1280():
    with pytest.raises(MessageError, match="reply data: 1191 bytes, at most 1190"):
        Reply("YHT", "CTR", "01", data=b"x" * 1191).encode()


@pytest.mark.parametrize("packet, error", [
    (b"short", "request: 5 bytes is shorter than its 44-byte header"),
    (b"Y" * 2305, "over its maxlen 2304"),
    (b"YHT       CTR       01" + b"00000000004X" + b" " * 10, "field comid: expected 12 digits"),
    (b"\xff\xff" + b" " * 42, "field domain"),
    ("text", "expected bytes"),
])
def test_decode_errors(packet, error):
    with pytest.raises(MessageError, match=error):
        Request.decode(packet)


def test_encode_as_writes_the_given_comid_field_and_checks_it():
    request = Request("YHT", "CTR", "01", 5, "n", b"data")
    assert request.encode_as(m.comid_key(42)) == request.encode(42)
    with pytest.raises(MessageError, match="comid"):
        request.encode_as(b"12")
    with pytest.raises(MessageError, match="request data"):
        Request("YHT", "CTR", "01", data=b"x" * 2261).encode_as(m.comid_key(1))


def test_decode_of_a_bytearray_or_a_bad_comid_is_handled_as_before():
    packet = Request("YHT", "CTR", "01", 9, "", b"d").encode()
    assert Request.decode(bytearray(packet)).comid == 9
    with pytest.raises(MessageError, match="comid"):
        Request.decode(packet[:22] + b"00000000000x" + packet[34:])
    with pytest.raises(MessageError, match="shorter"):
        Reply.decode(b"short")
