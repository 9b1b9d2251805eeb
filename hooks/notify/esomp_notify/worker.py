"""The background worker: one thread per site and process, woken by new alerts and otherwise every ``interval``.

Hooks only wake it, so raising an alert never waits on a slow SMTP server or a dead webhook.
"""
from __future__ import annotations

import logging
import os
import threading
from datetime import datetime
from typing import Callable

from esomp_notify.delivery import deliver_once
from esomp_notify.options import notify_options

log = logging.getLogger("esomp.notify")


class Notifier:
    def __init__(self, site, clock: Callable[[], datetime] = datetime.now):
        self.site, self.clock = site, clock
        self.options = notify_options(site)
        self.wakeup = threading.Event()
        self.stopped = threading.Event()
        self.passes = 0
        self.thread = threading.Thread(target=self._run, name="esomp-notify", daemon=True)
        self.thread.start()

    def wake(self) -> None:
        self.wakeup.set()

    def stop(self, timeout: float | None = None) -> None:
        self.stopped.set()
        self.wakeup.set()
        self.thread.join(timeout)

    def _run(self) -> None:
        while not self.stopped.is_set():
            self.wakeup.wait(self.options.interval)
            self.wakeup.clear()
            if self.stopped.is_set():
                break
            try:
                deliver_once(self.site, self.clock(), self.options)
            except Exception:  # the database was busy, a config went bad ...: the next pass tries again
                log.exception("notification pass failed")
            self.passes += 1


_NOTIFIERS: dict[tuple[str, int], Notifier] = {}
_LOCK = threading.Lock()


def notifier_for(site, clock: Callable[[], datetime] | None = None) -> Notifier:
    """This process's notifier for ``site`` (a forked worker process gets its own); ``clock`` sets the clock of
    a notifier made now (the daemon passes its own)."""
    key = (str(site.root), os.getpid())
    with _LOCK:
        notifier = _NOTIFIERS.get(key)
        if notifier is None or not notifier.thread.is_alive():
            notifier = _NOTIFIERS[key] = Notifier(site, clock or datetime.now)
        return notifier


def stop_all(timeout: float | None = None) -> None:
    with _LOCK:
        notifiers = list(_NOTIFIERS.values())
        _NOTIFIERS.clear()
    for notifier in notifiers:
        notifier.stop(timeout)
