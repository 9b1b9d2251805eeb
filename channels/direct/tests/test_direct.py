"""Direct call: the handler runs in-process and answers like a DTAQ worker would."""
import pytest

from esomp_core import Service
from esomp_direct import DirectChannel, Request, ServiceError, invoke
from esomp_direct import messages as m
from esomp_direct import plugin


def upper(request):
    if not request.data:
        raise ServiceError("1001", "empty")
    if request.data == b"boom":
        raise RuntimeError("handler bug")
    return request.data.upper()


SERVICES = {("T", "UP", "01"): Service("T", "UP", "01", upper, financial=True)}


def test_call_runs_the_handler():
    reply = DirectChannel(SERVICES).call(Request("T", "UP", "01", 5, data=b"abc"))
    assert (reply.code, reply.comid, reply.data) == ("0000", 5, b"ABC")


@pytest.mark.parametrize("data, code, message", [
    (b"", "1001", "empty"),
    (b"boom", m.RC_HANDLER_FAILED, "RuntimeError: handler bug"),
])
def test_handler_errors_become_return_codes(data, code, message):
    reply = invoke(SERVICES[("T", "UP", "01")], Request("T", "UP", "01", data=data))
    assert (reply.code, reply.message) == (code, message)


def test_unknown_service_and_cutoff():
    assert DirectChannel(SERVICES).call(Request("T", "NO", "01")).code == m.RC_NO_SERVICE
    reply = DirectChannel(SERVICES, cutoff=lambda: True).call(Request("T", "UP", "01", data=b"a"))
    assert (reply.code, reply.message) == (m.RC_CUTOFF, "系统状态为CUTOFF,不能做此交易")


class ServicesPlugin:
    from esomp_core import hookimpl

    @hookimpl
    def register_services(self, register):
        register(SERVICES[("T", "UP", "01")])


def test_hook_register_channel_kinds_direct(esomp_site_factory, esomp_pm_factory):
    pm = esomp_pm_factory(plugin, ServicesPlugin())
    site = esomp_site_factory(pm, channels={"counter": {"kind": "direct", "services": ["T.UP.01"]}})
    channel = site.channel("counter")
    assert channel.call(Request("T", "UP", "01", data=b"x")).data == b"X"
    site = esomp_site_factory(pm, channels={"bad": {"kind": "direct", "services": ["T.NO.01"]}})
    with pytest.raises(ValueError, match=r"channels\.bad\.services: not registered: T\.NO\.01"):
        site.channel("bad")
