"""E-SOMP direct call: transaction services called in-process, with the request and reply types of seed 003."""
from esomp_direct.direct import DirectChannel, ServiceError, answer, invoke
from esomp_direct.messages import (
    ENCODING,
    KEY_LEN,
    REPLY_HEADER_LEN,
    REPLY_MAXLEN,
    REQUEST_HEADER_LEN,
    REQUEST_MAXLEN,
    MessageError,
    Reply,
    Request,
    comid_key,
)

# Other distributions (the DTAQ channel) use only these names: see docs/plugins.md, "Boundaries".
__all__ = [
    "ENCODING",
    "KEY_LEN",
    "REPLY_HEADER_LEN",
    "REPLY_MAXLEN",
    "REQUEST_HEADER_LEN",
    "REQUEST_MAXLEN",
    "DirectChannel",
    "MessageError",
    "Reply",
    "Request",
    "ServiceError",
    "answer",
    "comid_key",
    "invoke",
]
