"""Direct call (直接调用, seed 003 3.2.1): the service's handler runs in the caller's process.

``invoke`` is the one place a handler is called, so a DTAQ server worker and a direct call answer a request
identically: CUTOFF refusal for financial services, return codes for unknown services and failing handlers.
"""
from __future__ import annotations

import logging
from typing import Any, Callable, Mapping

import attrs

from esomp_direct import messages as m
from esomp_direct.messages import Reply, Request

log = logging.getLogger(__name__)


class ServiceError(Exception):
    """Raised by a handler to answer with a return code (4A) and message (42A) of its own choosing."""

    def __init__(self, code: str, message: str, data: bytes = b""):
        super().__init__(f"{code} {message}")
        self.code, self.message, self.data = code, message, data


def as_reply(request: Request, result: Any) -> Reply:
    """A handler may return a Reply, bytes or str (the reply data, code 0000), or None (no data)."""
    if type(result) is bytes:  # the usual case first
        return request.reply(result)
    if isinstance(result, Reply):
        return attrs.evolve(result, comid=request.comid)
    if result is None:
        return request.reply()
    if isinstance(result, str):
        result = result.encode(m.ENCODING)
    if isinstance(result, (bytes, bytearray, memoryview)):
        return request.reply(bytes(result))
    raise TypeError(f"handler returned {type(result).__name__}; expected Reply, bytes, str or None")


def invoke(service: Any, request: Request, *, cutoff: bool = False) -> Reply:
    """Answer ``request`` with ``service`` (an ``esomp_core.model.Service``), never raising for handler faults."""
    return _invoke(service, request, cutoff)[0]


def answer(service: Any, request: Request, *, cutoff: bool = False) -> tuple[Reply, bytes]:
    """``invoke``, and the reply's packet: a server worker sends it, and a handler's reply is encoded only once."""
    reply, packet = _invoke(service, request, cutoff)
    return reply, reply.encode() if packet is None else packet


def _invoke(service: Any, request: Request, cutoff: bool) -> tuple[Reply, bytes | None]:
    if service is None:
        return request.reply(code=m.RC_NO_SERVICE,
                             message=f"无此服务 {request.domain} {request.name} {request.type}"), None
    if cutoff and service.financial:
        return request.reply(code=m.RC_CUTOFF, message=m.CUTOFF_MESSAGE), None
    try:
        reply = as_reply(request, service.handler(request))
        # a reply that does not fit the packet is the handler's fault, reported as such
        return reply, reply.encode()
    except ServiceError as exc:
        return request.reply(exc.data, code=exc.code, message=exc.message), None
    except Exception as exc:  # one bad request must not take the worker (or the caller) down
        log.exception("service %s %s %s failed on comid %s", *request.service, request.comid)
        return request.reply(code=m.RC_HANDLER_FAILED, message=f"{type(exc).__name__}: {exc}"), None


@attrs.define
class DirectChannel:
    """A channel whose ``call`` runs the handler in-process; ``cutoff`` tells whether the day is cut off."""

    services: Mapping[tuple[str, str, str], Any]
    cutoff: Callable[[], bool] = lambda: False
    name: str = "direct"

    def call(self, request: Request, timeout: float | None = None) -> Reply:
        """Answer ``request``; ``timeout`` is accepted for symmetry with the DTAQ channel and not enforced."""
        return invoke(self.services.get(request.service), request, cutoff=self.cutoff())
