"""Channel config: the kind is registered, and bad options fail with the file and key path, never a secret."""
from __future__ import annotations

import pytest

from esomp_core import ConfigError, Registry
from esomp_fs import FsChannel, FsOptions, mask_url


def test_hook_register_channel_kinds_registers_fs(pm, site_with, tmp_path):
    registry = Registry.collect(pm)
    assert registry.errors == []
    kind = registry.channel_kinds["fs"]
    assert kind.options is FsOptions and kind.description
    site = site_with(inbox={"kind": "fs", "url": "incoming/szse", "patterns": ["SJS*{date}.DBF"]})
    channel = site.channel("inbox")
    assert isinstance(channel, FsChannel)
    assert channel.endpoint.root == str(site.root / "incoming" / "szse")  # relative to the site
    assert channel.options.patterns == ["SJS*{date}.DBF"]


@pytest.mark.parametrize("table, path, words", [
    ({"url": "/x", "colour": "red"}, "channels.inbox.colour", "unknown key"),
    ({"url": "gopher://host/x"}, "channels.inbox.url", "unsupported scheme 'gopher'"),
    ({"url": "ftp:///no-host"}, "channels.inbox.url", "no host"),
    ({"url": "sftp://h:99999/x"}, "channels.inbox.url", "bad port"),
    ({"url": ""}, "channels.inbox.url", "expected a path or a URL"),
    ({"patterns": ["*"]}, "channels.inbox.url", "missing required key"),
    ({"url": "/x", "retries": "three"}, "channels.inbox.retries", "expected an integer"),
    ({"url": "/x", "retries": -1}, "channels.inbox.retries", "expected a number of 0 or more"),
    ({"url": "/x", "patterns": ["a/b*"]}, "channels.inbox.patterns", "expected file-name wildcards"),
    ({"url": "/x", "deadline": "25:00", "expected": ["a"]}, "channels.inbox.deadline", "expected a time HH:MM"),
    ({"url": "/x", "expected": ["a"], "optional": ["b"]}, "channels.inbox.optional", "not both"),
    ({"url": "/x", "path_template": "{institution}/{product}/{name}"}, "channels.inbox.path_template",
     "unknown placeholder {product}"),
    ({"url": "/x", "path_template": "../{name}"}, "channels.inbox.path_template", "without '..'"),
    ({"url": "/x", "path_template": "{institution}/{date}"}, "channels.inbox.path_template", "must contain {name}"),
    ({"url": "/x", "username": "u"}, "channels.inbox.username", "only ftp:// and sftp://"),
    ({"url": "/x", "transfer": "move"}, "channels.inbox.transfer", "expected one of 'copy', 'link', got 'move'"),
    ({"url": "sftp://h/x", "transfer": "link"}, "channels.inbox.transfer", "'link' needs a local directory"),
    ({"url": "memory://x", "transfer": "link"}, "channels.inbox.transfer", "'link' needs a local directory"),
    ({"url": "/x", "unpack": {"max_ratio": 0}}, "channels.inbox.unpack.max_ratio", "expected a number above 0"),
    ({"url": "/x", "unpack": {"max_size": 1}}, "channels.inbox.unpack.max_size", "unknown key"),
])
def test_bad_config_fails_with_key_path(site_with, table, path, words):
    site = site_with(inbox={"kind": "fs", **table})
    with pytest.raises(ConfigError) as info:
        site.channel("inbox")
    assert info.value.path == path
    assert words in info.value.message
    assert str(info.value).startswith(str(site.root / "esomp.toml"))


def test_no_secret_in_config_errors(site_with, password):
    site = site_with(inbox={"kind": "fs", "url": f"ftp://esomp:{password}@127.0.0.1/in"})
    with pytest.raises(ConfigError) as info:
        site.channel("inbox")
    assert "password_env" in info.value.message and password not in str(info.value)
    assert "esomp:***@127.0.0.1" in str(info.value)

    # A secret pasted where the variable's name belongs is refused without being echoed.
    site = site_with(inbox={"kind": "fs", "url": "ftp://127.0.0.1/in", "password_env": password})
    with pytest.raises(ConfigError) as info:
        site.channel("inbox")
    assert "NAME of an environment variable" in info.value.message and password not in str(info.value)


def test_missing_secret_variable_names_the_variable(site_with, monkeypatch):
    monkeypatch.delenv("ESOMP_TEST_NO_SUCH", raising=False)
    site = site_with(out={"kind": "fs", "url": "ftp://127.0.0.1:1/x", "password_env": "ESOMP_TEST_NO_SUCH"})
    with pytest.raises(Exception) as info:
        site.channel("out").check()
    assert "ESOMP_TEST_NO_SUCH is not set" in str(info.value)
    assert "channels.out.password_env" in str(info.value)


def test_mask_url():
    assert mask_url("sftp://ops:pw@host:2222/out") == "sftp://ops:***@host:2222/out"
    assert mask_url("sftp://ops@host/out") == "sftp://ops@host/out"
    assert mask_url("/data/in") == "/data/in"
