"""E-SOMP core: hookspecs, plugin manager, config, repository and CLI.

What plugins may use is listed in ``__all__`` and documented in docs/plugins.md ("The core's public API"); a
plugin imports those names from ``esomp_core`` itself, never from the core's modules. The names are resolved on
first use (module ``__getattr__``) so that ``import esomp_core`` stays cheap for ``esomp --help`` and the core's
own modules can import this package without cycles.
"""
from __future__ import annotations

import importlib
from typing import Any

import pluggy

__version__ = "0.1.0"

hookimpl = pluggy.HookimplMarker("esomp")
"""Decorator for plugin hook implementations: ``@hookimpl def register_file_types(register): ...``"""

# Public name -> (core module, name in that module). Rows of the database carry a ``Row`` suffix so they never
# shadow the model's classes of the same name (``Job`` is what a stage receives, ``JobRow`` what the database holds).
_EXPORTS: dict[str, tuple[str, str]] = {
    # Registration and job types (esomp_core.model)
    "BusinessType": ("model", "BusinessType"),
    "ChannelKind": ("model", "ChannelKind"),
    "FileType": ("model", "FileType"),
    "FieldSpec": ("model", "FieldSpec"),
    "layout": ("model", "layout"),
    "expand_date_tokens": ("model", "expand_date_tokens"),
    "Executor": ("model", "Executor"),
    "ExecutorProtocol": ("model", "ExecutorProtocol"),
    "BaseExecutor": ("model", "BaseExecutor"),
    "Monitor": ("model", "Monitor"),
    "monitor_options": ("monitoring", "monitor_options"),
    "Service": ("model", "Service"),
    "JobSpec": ("model", "JobSpec"),
    "Job": ("model", "Job"),
    "JobResult": ("model", "JobResult"),
    "Finding": ("model", "Finding"),
    "Alert": ("model", "Alert"),
    # The alert store: findings into alerts, acknowledgement (esomp_core.alerts)
    "sync_alerts": ("alerts", "sync"),
    "acknowledge_alert": ("alerts", "acknowledge"),
    "ALERT_STATES": ("alerts", "STATES"),
    "ACTIVE_ALERT_STATES": ("alerts", "ACTIVE"),
    "ALERT_SEVERITIES": ("alerts", "SEVERITIES"),
    "JOB_STATES": ("model", "JOB_STATES"),
    "STAGES": ("model", "STAGES"),
    # The plan: who owns a job, and why a plan is refused (esomp_core.plan)
    "PlanError": ("plan", "PlanError"),
    "owning_plugin": ("plan", "owning_plugin"),
    "run_stage": ("plan", "run_stage"),
    # Checked configuration (esomp_core.config)
    "ConfigError": ("config", "ConfigError"),
    "structure": ("config", "structure"),
    "secret": ("config", "secret"),
    "env_name": ("config", "env_name"),
    "check_name": ("config", "check_name"),
    "hhmm": ("config", "hhmm"),
    "ConfigTable": ("config", "ConfigTable"),
    "Directory": ("config", "Directory"),
    # Schema: a distribution's own migration branch (esomp_core.repository)
    "Migrations": ("repository", "Migrations"),
    "DIRECTORIES": ("config", "DIRECTORIES"),
    # The site and the plugin registries
    "Site": ("site", "Site"),
    "create_site": ("site", "create_site"),
    "Registry": ("plugins", "Registry"),
    "make_plugin_manager": ("plugins", "make_plugin_manager"),
    # Command-line helpers for plugins' commands (esomp_core.cli)
    "pass_site": ("cli", "pass_site"),
    "pass_context": ("cli", "pass_context"),
    "CliContext": ("cli", "Context"),
    "json_option": ("cli", "json_option"),
    "print_json": ("cli", "print_json"),
    "print_table": ("cli", "print_table"),
    # Running a day and the operator's actions on it (esomp_core.engine, esomp_core.builtin.day)
    "Engine": ("engine", "Engine"),
    "RunSummary": ("engine", "RunSummary"),
    "RunLocked": ("engine", "RunLocked"),
    "engine_options": ("engine", "engine_options"),
    "pause_batch": ("engine", "pause_batch"),
    "resume_batch": ("engine", "resume_batch"),
    "cancel_run": ("engine", "cancel_run"),
    "reset_for_rerun": ("engine", "reset_for_rerun"),
    "run_engine": ("builtin.day", "run_engine"),
    "show_status": ("builtin.day", "show_status"),
    # Read-only status queries, as `esomp status --json` and `esomp jobs --json` print them (esomp_core.status)
    "run_status": ("status", "run_status"),
    "jobs_query": ("status", "jobs_query"),
    # File-system primitives: whole outputs or none (esomp_core.files)
    "atomic_open": ("files", "atomic_open"),
    "atomic_write": ("files", "atomic_write"),
    "replace_directory": ("files", "replace_directory"),
    "sha256_file": ("files", "sha256_file"),
    "temp_name": ("files", "temp_name"),
    # Business dates (esomp_core.calendar)
    "parse_date": ("calendar", "parse_date"),
    "ymd": ("calendar", "ymd"),
    "TradingCalendar": ("calendar", "TradingCalendar"),
    # The products master (esomp_core.products)
    "PRODUCT_COLUMNS": ("products", "COLUMNS"),
    "ProductImportError": ("products", "ImportError_"),
    "import_products": ("products", "import_products"),
    "sync_classifications": ("products", "sync_classifications"),
    "query_products": ("products", "query_products"),
    "account_map": ("products", "account_map"),
    # Core database rows plugins read (esomp_core.repository.models)
    "InstitutionRow": ("repository.models", "Institution"),
    "ProductRow": ("repository.models", "Product"),
    "AccountRow": ("repository.models", "Account"),
    "RunRow": ("repository.models", "Run"),
    "JobRow": ("repository.models", "Job"),
    "JobEventRow": ("repository.models", "JobEvent"),
    "FileRow": ("repository.models", "File"),
    "AlertRow": ("repository.models", "Alert"),
    "MonitorRunRow": ("repository.models", "MonitorRun"),
    # Test kit (esomp_core.testing, also a pytest plugin; importing it imports pytest)
    "StageHooks": ("testing", "StageHooks"),
}

__all__ = ["__version__", "hookimpl", *_EXPORTS]


def __getattr__(name: str) -> Any:
    try:
        module_name, attribute = _EXPORTS[name]
    except KeyError:
        raise AttributeError(f"module 'esomp_core' has no attribute {name!r}; "
                             f"the public names are listed in docs/plugins.md") from None
    value = getattr(importlib.import_module(f"esomp_core.{module_name}"), attribute)
    globals()[name] = value  # later look-ups skip __getattr__
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
