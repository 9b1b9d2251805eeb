"""E-SOMP direct call: transaction services called in-process, with the request and reply types of seed 003."""
from esomp_direct.direct import DirectChannel, ServiceError, invoke
from esomp_direct.messages import MessageError, Reply, Request

__all__ = ["DirectChannel", "MessageError", "Reply", "Request", "ServiceError", "invoke"]
