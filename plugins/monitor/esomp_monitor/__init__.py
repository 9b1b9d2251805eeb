"""E-SOMP monitoring centre (运营监控中心): runs monitors on their schedules, manages alerts (silences, grouped
and repeated notifications, inhibition) and runs the day unattended (``esomp daemon``).

The alert store itself (findings into alerts, acknowledgement, the alert events) is the core's: ``sync_alerts``
and ``acknowledge_alert`` in ``esomp_core``. Other distributions use only the names below (docs/plugins.md,
"Boundaries").
"""
from esomp_monitor.cleanup import CleanupOptions, remove_older
from esomp_monitor.daemon import Daemon, DaemonOptions, daemon_options, serve, shifted_clock
from esomp_monitor.listing import as_dict, list_alerts
from esomp_monitor.notifications import AlertPolicy, InhibitRule, Notification, alert_policy, due_notifications
from esomp_monitor.runner import MonitorOutcome, all_monitors, check_config, last_runs, run_due, run_monitor
from esomp_monitor.schedules import SCHEDULE_KEYS, Schedule, is_due, parse_cron, schedule_of
from esomp_monitor.silences import add_silence, expire_silence, list_silences

__version__ = "0.1.0"

__all__ = ["AlertPolicy", "CleanupOptions", "Daemon", "DaemonOptions", "InhibitRule", "MonitorOutcome",
           "Notification", "SCHEDULE_KEYS", "Schedule", "add_silence", "alert_policy", "all_monitors", "as_dict",
           "check_config", "daemon_options", "due_notifications", "expire_silence", "is_due", "last_runs",
           "list_alerts", "list_silences", "parse_cron", "remove_older", "run_due", "run_monitor", "schedule_of",
           "serve", "shifted_clock"]
