"""The ``direct`` plugin: channel kind ``direct`` (services called in-process)."""
from __future__ import annotations

from typing import Any

import attrs

from esomp_core import ChannelKind, ConfigError, hookimpl

from esomp_direct.direct import DirectChannel


@attrs.frozen
class DirectOptions:
    """``[channels.NAME]`` with ``kind = "direct"``: ``services`` limits the callable services (``"YHT.CTR.01"``)."""

    services: list[str] | None = None


def open_direct(name: str, options: DirectOptions, site: Any) -> DirectChannel:
    services = site.registry.services
    if options.services is not None:
        wanted = {tuple(code.split(".")) for code in options.services}
        unknown = sorted(".".join(k) for k in wanted - set(services))
        if unknown:
            raise ConfigError(site.config.source, f"channels.{name}.services",
                              f"not registered: {', '.join(unknown)} (registered: "
                              f"{', '.join(sorted('.'.join(k) for k in services))})")
        services = {key: service for key, service in services.items() if key in wanted}
    return DirectChannel(services, name=name)


@hookimpl
def register_channel_kinds(register) -> None:
    register(ChannelKind("direct", DirectOptions, open_direct,
                         "Transaction services called in-process (seed 003 direct call)"))
