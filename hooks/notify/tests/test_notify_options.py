"""``[notify]`` values that cannot work are refused when the options are loaded, by key path."""
import pytest

from esomp_core import ConfigError
from esomp_notify.options import notify_options

EMAIL = {"kind": "email", "host": "smtp.example", "sender": "esomp@example.com", "to": ["ops@example.com"]}


def notify_error(esomp_site_factory, **notify):
    site = esomp_site_factory(notify=notify)
    with pytest.raises(ConfigError) as info:
        notify_options(site)
    return info.value


@pytest.mark.parametrize("target, path, expected", [
    ({**EMAIL, "port": 0}, "notify.targets.m.port", "1 to 65535"),
    ({**EMAIL, "port": 70000}, "notify.targets.m.port", "1 to 65535"),
    ({**EMAIL, "timeout": -1}, "notify.targets.m.timeout", "above 0"),
    ({**EMAIL, "sender": "esomp"}, "notify.targets.m.sender", "e-mail address"),
    ({**EMAIL, "to": ["ops@example.com", "oncall"]}, "notify.targets.m.to", "'oncall'"),
    ({**EMAIL, "backoff": 60.0, "max_backoff": 5.0}, "notify.targets.m.max_backoff", "at least backoff"),
])
def test_target_values_that_cannot_work_are_refused(esomp_site_factory, target, path, expected):
    error = notify_error(esomp_site_factory, targets={"m": target})
    assert error.path == path
    assert expected in error.message


def test_a_route_naming_an_unknown_target_names_the_route_key(esomp_site_factory):
    error = notify_error(esomp_site_factory, routes=[{"targets": ["log"]}, {"targets": ["pager"]}])
    assert error.path == "notify.routes[1].targets"
    assert "unknown target 'pager'" in error.message


def test_good_email_target_loads(esomp_site_factory):
    site = esomp_site_factory(notify={"targets": {"m": {**EMAIL, "port": 587}}})
    assert notify_options(site).targets["m"].port == 587
