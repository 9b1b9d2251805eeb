"""The transaction packets of seed 003 (3.2.3): fixed-width headers in GBK, then the data.

Request  = header 44 bytes (SrvDmn 10A, SrvNam 10A, SrvTyp 2A, ComID 12S0, Note 10A) + data; at most 2304 bytes.
Reply    = header 90 bytes (SrvDmn, SrvNam, SrvTyp, ComID, RtnCde 4A, RtnMsg 42A, Note 10A) + data; at most 1280.

Text fields are GBK, left-aligned and padded with spaces (the IBM i ``A`` type); the communication id is a
zoned decimal without sign written as 12 ASCII digits. The seed gives the reply data as 1268 bytes, which with the
90-byte header would exceed its own 1280 maxlen: the maxlen wins, so reply data holds at most 1190 bytes.
"""
from __future__ import annotations

import functools

import attrs

ENCODING = "gbk"
REQUEST_MAXLEN = 2304
REPLY_MAXLEN = 1280
INTERFACE_LEN = 1024  # 交易接口结构
LOCAL_DATA_LEN = 1024  # 柜台局部数据区
KEY_LEN = 12  # the reply queue is keyed by the communication id

REQUEST_FIELDS = (("domain", 10), ("name", 10), ("type", 2), ("comid", 12), ("note", 10))
REPLY_FIELDS = (("domain", 10), ("name", 10), ("type", 2), ("comid", 12), ("code", 4), ("message", 42),
                ("note", 10))
REQUEST_HEADER_LEN = sum(width for _, width in REQUEST_FIELDS)  # 44
REPLY_HEADER_LEN = sum(width for _, width in REPLY_FIELDS)  # 90

# Return codes (RtnCde 4A). The seed names none; these are ours and documented in docs.md.
RC_OK = "0000"
RC_CUTOFF = "9001"
RC_NO_SERVICE = "9002"
RC_BAD_REQUEST = "9003"
RC_HANDLER_FAILED = "9009"
CUTOFF_MESSAGE = "系统状态为CUTOFF,不能做此交易"


class MessageError(ValueError):
    """A packet or field that does not fit the seed's layout; the message names the field."""


def text_field(name: str, value: str, width: int, *, truncate: bool = False) -> bytes:
    """``value`` in GBK, space-padded to ``width``; too long is an error unless ``truncate`` (at a character)."""
    try:
        raw = value.encode(ENCODING)
    except UnicodeEncodeError as exc:
        raise MessageError(f"field {name}: {value!r} cannot be written in {ENCODING}: {exc.reason}") from None
    if len(raw) > width:
        if not truncate:
            raise MessageError(f"field {name}: {value!r} is {len(raw)} bytes in {ENCODING}, at most {width}")
        while len(raw) > width:  # drop whole characters so no double-byte character is cut in half
            value = value[:-1]
            raw = value.encode(ENCODING)
    return raw.ljust(width, b" ")


@functools.lru_cache(maxsize=1024)
def service_header(domain: str, name: str, type: str) -> bytes:
    """SrvDmn, SrvNam and SrvTyp as written in both packets (the same few services, so kept)."""
    return text_field("domain", domain, 10) + text_field("name", name, 10) + text_field("type", type, 2)


@functools.lru_cache(maxsize=1024)
def note_field(note: str) -> bytes:
    return text_field("note", note, 10)


@functools.lru_cache(maxsize=1024)
def _service_fields(text: str) -> tuple[str, str, str]:
    return text[:10].rstrip(" "), text[10:20].rstrip(" "), text[20:22].rstrip(" ")


def comid_field(comid: int) -> bytes:
    if type(comid) is int and 0 <= comid <= 999_999_999_999:  # the usual case, checked first
        return b"%012d" % comid
    if not isinstance(comid, int) or isinstance(comid, bool) or not 0 <= comid <= 999_999_999_999:
        raise MessageError(f"field comid: expected an integer 0..999999999999 (12S0), got {comid!r}")
    return b"%012d" % comid


def comid_key(comid: int) -> bytes:
    """The reply queue's 12-byte key for a communication id."""
    return comid_field(comid)


def _decode_text(name: str, raw: bytes) -> str:
    try:
        return raw.decode(ENCODING).rstrip(" ")
    except UnicodeDecodeError:
        raise MessageError(f"field {name}: {raw!r} is not valid {ENCODING}") from None


def _checked(packet: bytes, what: str, header_len: int, maxlen: int) -> bytes:
    if not isinstance(packet, bytes):
        if not isinstance(packet, (bytearray, memoryview)):
            raise MessageError(f"{what}: expected bytes, got {type(packet).__name__}")
        packet = bytes(packet)
    if len(packet) < header_len:
        raise MessageError(f"{what}: {len(packet)} bytes is shorter than its {header_len}-byte header")
    if len(packet) > maxlen:
        raise MessageError(f"{what}: {len(packet)} bytes is over its maxlen {maxlen}")
    return packet


def _comid(text: str, what: str) -> int:
    if not text.isdigit():
        raise MessageError(f"{what}: field comid: expected 12 digits (12S0), got {text.encode()!r}")
    return int(text)


def _split(packet: bytes, fields: tuple[tuple[str, int], ...], what: str, header_len: int,
           maxlen: int) -> tuple[dict[str, str | int], bytes]:
    packet = _checked(packet, what, header_len, maxlen)
    header = packet[:header_len]
    if header.isascii():  # the usual header: one character per byte, so one decode and slices
        text = header.decode("ascii")
        values = {}
        offset = 0
        for name, width in fields:
            value = text[offset:offset + width]
            offset += width
            if name != "comid":
                values[name] = value.rstrip(" ")
            elif value.isdigit():
                values[name] = int(value)
            else:
                raise MessageError(f"{what}: field comid: expected 12 digits (12S0), got {value.encode()!r}")
        return values, packet[header_len:]
    values: dict[str, str | int] = {}
    offset = 0
    for name, width in fields:
        raw = packet[offset:offset + width]
        offset += width
        if name == "comid":
            if not raw.isdigit():
                raise MessageError(f"{what}: field comid: expected 12 digits (12S0), got {raw!r}")
            values[name] = int(raw)
        else:
            values[name] = _decode_text(name, raw)
    return values, packet[header_len:]


@attrs.frozen
class Request:
    """A request packet. ``data`` is the seed's interface (1024) + counter local data area (1024), up to 2260."""

    domain: str
    name: str
    type: str
    comid: int = 0
    note: str = ""
    data: bytes = b""

    @property
    def service(self) -> tuple[str, str, str]:
        return (self.domain, self.name, self.type)

    @property
    def interface(self) -> bytes:
        return self.data[:INTERFACE_LEN]

    @property
    def local_data(self) -> bytes:
        return self.data[INTERFACE_LEN:INTERFACE_LEN + LOCAL_DATA_LEN]

    def encode(self, comid: int | None = None) -> bytes:
        """The packet; ``comid`` writes that communication id instead of the request's own."""
        if len(self.data) > REQUEST_MAXLEN - REQUEST_HEADER_LEN:
            raise MessageError(f"request data: {len(self.data)} bytes, at most "
                               f"{REQUEST_MAXLEN - REQUEST_HEADER_LEN} after the {REQUEST_HEADER_LEN}-byte header")
        return b"".join((service_header(self.domain, self.name, self.type),
                         comid_field(self.comid if comid is None else comid), note_field(self.note), self.data))

    def encode_as(self, comid_key: bytes) -> bytes:
        """The packet with communication id field ``comid_key`` (``comid_key(comid)``: 12 digits)."""
        if len(self.data) > REQUEST_MAXLEN - REQUEST_HEADER_LEN:
            return self.encode()  # raises, naming the data's length
        if type(comid_key) is not bytes or len(comid_key) != 12 or not comid_key.isdigit():
            raise MessageError(f"field comid: expected 12 digits (12S0), got {comid_key!r}")
        return b"".join((service_header(self.domain, self.name, self.type), comid_key, note_field(self.note),
                         self.data))

    @classmethod
    def decode(cls, packet: bytes) -> "Request":
        if type(packet) is not bytes or not REQUEST_HEADER_LEN <= len(packet) <= REQUEST_MAXLEN:
            packet = _checked(packet, "request", REQUEST_HEADER_LEN, REQUEST_MAXLEN)  # raises, or makes bytes
        header = packet[:REQUEST_HEADER_LEN]
        if header.isascii():  # the usual header: one character per byte, so one decode and slices
            text = header.decode("ascii")
            comid = text[22:34]
            if not comid.isdigit():
                _comid(comid, "request")  # raises
            return cls(*_service_fields(text[:22]), int(comid), text[34:44].rstrip(" "),
                       packet[REQUEST_HEADER_LEN:])
        values, data = _split(packet, REQUEST_FIELDS, "request", REQUEST_HEADER_LEN, REQUEST_MAXLEN)
        return cls(data=data, **values)  # type: ignore[arg-type]

    def reply(self, data: bytes = b"", code: str = RC_OK, message: str = "") -> "Reply":
        """The reply to this request: same service, communication id and note."""
        return Reply(self.domain, self.name, self.type, self.comid, code, message, self.note, data)


@attrs.frozen
class Reply:
    """A reply packet; ``ok`` when the return code is 0000."""

    domain: str
    name: str
    type: str
    comid: int = 0
    code: str = RC_OK
    message: str = ""
    note: str = ""
    data: bytes = b""

    @property
    def ok(self) -> bool:
        return self.code == RC_OK

    def encode(self) -> bytes:
        if len(self.data) > REPLY_MAXLEN - REPLY_HEADER_LEN:
            raise MessageError(f"reply data: {len(self.data)} bytes, at most "
                               f"{REPLY_MAXLEN - REPLY_HEADER_LEN} after the {REPLY_HEADER_LEN}-byte header")
        return b"".join((service_header(self.domain, self.name, self.type), comid_field(self.comid),
                         _status_fields(self.code, self.message), note_field(self.note), self.data))

    @classmethod
    def decode(cls, packet: bytes) -> "Reply":
        if type(packet) is not bytes or not REPLY_HEADER_LEN <= len(packet) <= REPLY_MAXLEN:
            packet = _checked(packet, "reply", REPLY_HEADER_LEN, REPLY_MAXLEN)  # raises, or makes bytes
        header = packet[:REPLY_HEADER_LEN]
        if header.isascii():
            text = header.decode("ascii")
            comid = text[22:34]
            if not comid.isdigit():
                _comid(comid, "reply")  # raises
            return cls(*_service_fields(text[:22]), int(comid), text[34:38].rstrip(" "),
                       text[38:80].rstrip(" "), text[80:90].rstrip(" "), packet[REPLY_HEADER_LEN:])
        values, data = _split(packet, REPLY_FIELDS, "reply", REPLY_HEADER_LEN, REPLY_MAXLEN)
        return cls(data=data, **values)  # type: ignore[arg-type]


@functools.lru_cache(maxsize=1024)
def _status_fields(code: str, message: str) -> bytes:
    """RtnCde and RtnMsg (a few codes and messages recur; a long message is cut at a whole character)."""
    return text_field("code", code, 4) + text_field("message", message, 42, truncate=True)
