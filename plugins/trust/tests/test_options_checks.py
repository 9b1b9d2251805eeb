"""``[business.trust]`` is checked when the trust plan loads it: every bad value named by its key path."""
import pytest

from esomp_core import ConfigError
from esomp_trust.options import load_options
from esomp_trust.testing import site_tables


def options_error(esomp_site_factory, **trust):
    site = esomp_site_factory(**site_tables(**trust))
    with pytest.raises(ConfigError) as info:
        load_options(site)
    assert str(info.value).startswith(site.config.source)
    return info.value


@pytest.mark.parametrize("trust, expected", [
    ({"compression_level": 99}, "1 to 22"),
    ({"compression_level": 0}, "1 to 22"),
    ({"compression_level": -3}, "1 to 22"),
    ({"compression_level": 12, "package_format": "zip"}, "1 to 9"),
])
def test_compression_level_is_checked_for_the_package_format(esomp_site_factory, trust, expected):
    error = options_error(esomp_site_factory, **trust)
    assert error.path == "business.trust.compression_level"
    assert expected in error.message


def test_delivery_channel_must_be_a_configured_channel(esomp_site_factory):
    error = options_error(esomp_site_factory, delivery_channel="outbxo")
    assert error.path == "business.trust.delivery_channel"
    assert "'outbxo'" in error.message and "out" in error.message


def test_bcp_types_must_be_registered_file_types(esomp_site_factory):
    error = options_error(esomp_site_factory, bcp_types=["SJSMX0", "NOSUCH"])
    assert error.path == "business.trust.bcp_types"
    assert "NOSUCH" in error.message


def test_collect_channels_are_names(esomp_site_factory):
    error = options_error(esomp_site_factory, collect_channels=["szse", "../x"])
    assert error.path == "business.trust.collect_channels"


@pytest.mark.parametrize("template", [
    "{clearing_root}/../{product}/{name}",           # a parent segment climbs out of the clearing root
    "{clearing_root}/{date}/../../x/{product}/{name}",
    "{clearing_root}x/{product}/{name}",             # a sibling of the clearing root
    "{clearing_root}/{date}/./{product}/{name}",
    "{clearing_root}//{product}/{name}",
])
def test_a_split_path_that_could_leave_the_clearing_root_is_refused_at_load(esomp_site_factory, template):
    error = options_error(esomp_site_factory, split_path=template)
    assert error.path == "business.trust.split_path"


def test_good_options_load(esomp_site_factory):
    site = esomp_site_factory(**site_tables(compression_level=19, bcp_types=["SJSMX0"],
                                            split_path="{clearing_root}/{date}/{institution}-{product}/{name}"))
    options = load_options(site)
    assert options.compression_level == 19
