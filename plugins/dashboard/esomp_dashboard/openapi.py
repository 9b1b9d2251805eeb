"""The JSON API's OpenAPI 3.0 document, written out by hand so it says exactly what the API answers."""
from __future__ import annotations

from esomp_core import JOB_STATES

DATE = {"name": "date", "in": "query", "required": False, "description": "Business date CCYYMMDD (default: latest run)",
        "schema": {"type": "string", "pattern": "^[0-9]{8}$"}}
ERROR = {"description": "error", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}
OBJECT = {"type": "object"}
NOTE = {"reason": {"type": "string", "maxLength": 2000, "description": "Why (recorded in the audit)"},
        "ticket": {"type": "string", "maxLength": 100, "description": "Ticket number (TD单号), recorded in the audit"}}


def document() -> dict:
    return {
        "openapi": "3.0.3",
        "info": {"title": "E-SOMP dashboard API", "version": "0.1.0",
                 "description": "Log in at /login (session cookie). Changes need the X-CSRF-Token header from "
                                "/api/me and the operator role."},
        "paths": {**_day_paths(), **_batch_paths(), **_alert_and_audit_paths()},
        "components": {"schemas": _schemas()},
    }


def _ok(schema: dict, description: str = "ok") -> dict:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _op(summary: str, ok: dict, *, params: list | None = None, body: dict | None = None, change: bool = False,
        missing: bool = True, operators: bool = False, body_required: bool = True) -> dict:
    responses = {"200": ok, "400": ERROR, "401": ERROR}
    if missing:
        responses["404"] = ERROR
    if change or operators:
        responses["403"] = ERROR
    if change:
        responses["409"] = ERROR
    op = {"summary": summary, "parameters": params or [], "responses": responses}
    if change:
        op["parameters"] = [*op["parameters"], {"name": "X-CSRF-Token", "in": "header", "required": True,
                                                "schema": {"type": "string"}}]
    if body:
        op["requestBody"] = {"required": body_required, "content": {"application/json": {"schema": body}}}
    return op


def _path_int(name: str) -> dict:
    return {"name": name, "in": "path", "required": True, "schema": {"type": "integer", "minimum": 1,
                                                                     "maximum": 2 ** 31 - 1}}


def _limit() -> dict:
    return {"name": "limit", "in": "query", "schema": {"type": "integer", "minimum": 1, "maximum": 1000}}


def _day_paths() -> dict:
    """The day's run, its jobs and the search box; rerunning a job."""
    jobs_params = [DATE, {"name": "q", "in": "query", "schema": {"type": "string", "maxLength": 200}},
                   {"name": "category", "in": "query", "schema": {"type": "string", "maxLength": 200}},
                   {"name": "state", "in": "query", "schema": {"type": "string", "enum": list(JOB_STATES)}},
                   _limit()]
    rerun_body = {"type": "object", "properties": NOTE, "additionalProperties": False}
    return {
        "/api/me": {"get": _op("The logged-in user and the CSRF token", _ok({"$ref": "#/components/schemas/Me"}),
                               missing=False)},
        "/api/runs": {"get": _op("Business dates with a run", _ok({"type": "array", "items": OBJECT}),
                                 missing=False)},
        "/api/overview": {"get": _op("The wall screen's data", _ok({"$ref": "#/components/schemas/Overview"}),
                                     params=[DATE])},
        "/api/tree": {"get": _op("Business type -> batch -> job -> product", _ok(
            {"$ref": "#/components/schemas/Tree"}), params=[DATE])},
        "/api/jobs": {"get": _op("Find jobs by name, product, category or id", _ok(
            {"type": "array", "items": OBJECT}), params=jobs_params)},
        "/api/suggest": {"get": _op("Suggestions for the search box", _ok(
            {"type": "array", "items": {"$ref": "#/components/schemas/Suggestion"}}),
            params=[DATE, {"name": "q", "in": "query", "required": True,
                           "schema": {"type": "string", "maxLength": 200}}])},
        "/api/jobs/{job_id}": {"get": _op("One job with files, packages and events", _ok(
            {"$ref": "#/components/schemas/JobDetail"}), params=[_path_int("job_id")])},
        "/api/jobs/{job_id}/rerun": {"post": _op("Rerun a job and its dependents (operators)", _ok(OBJECT),
                                                 params=[_path_int("job_id")], body=rerun_body,
                                                 body_required=False, change=True)},
    }


def _batch_paths() -> dict:
    batch = {"name": "batch", "in": "path", "required": True, "schema": {"type": "integer", "minimum": 0,
                                                                        "maximum": 999}}
    date_body = {"type": "object", "properties": {"date": {"type": "string", "pattern": "^[0-9]{8}$"}, **NOTE},
                 "additionalProperties": False}
    return {
        "/api/batches/{batch}/pause": {"post": _op("Pause a batch (operators)", _ok(OBJECT), params=[batch],
                                                   body=date_body, change=True)},
        "/api/batches/{batch}/resume": {"post": _op("Resume a batch (operators)", _ok(OBJECT), params=[batch],
                                                    body=date_body, change=True)},
    }


def _alert_and_audit_paths() -> dict:
    ack_body = {"type": "object", "required": ["comment"], "additionalProperties": False,
                "properties": {"comment": {"type": "string", "minLength": 1, "maxLength": 2000},
                               "ticket": NOTE["ticket"]}}
    alert_params = [{"name": "state", "in": "query", "schema": {"type": "string",
                                                                "enum": ["open", "acknowledged", "resolved"]}},
                    {"name": "severity", "in": "query", "schema": {"type": "string", "maxLength": 16}},
                    _limit()]
    audit_params = [{"name": "actor", "in": "query", "schema": {"type": "string", "maxLength": 100}},
                    {"name": "action", "in": "query", "schema": {"type": "string", "maxLength": 40}},
                    _limit()]
    return {
        "/api/alerts": {"get": _op("Alerts, newest first", _ok({"type": "array", "items": {
            "$ref": "#/components/schemas/Alert"}}), params=alert_params, missing=False)},
        "/api/alerts/{alert_id}/acknowledge": {"post": _op("Acknowledge an open alert (operators)", _ok(
            {"$ref": "#/components/schemas/Alert"}), params=[_path_int("alert_id")], body=ack_body,
            change=True)},
        "/api/audit": {"get": _op("The audit trail, newest first (operators)", _ok(
            {"type": "array", "items": {"$ref": "#/components/schemas/AuditEntry"}}), params=audit_params,
            missing=False, operators=True)},
    }


def _schemas() -> dict:
    return {
        "Error": {"type": "object", "required": ["error"], "properties": {"error": {"type": "string"}}},
        "Me": {"type": "object", "required": ["username", "role", "csrf"],
               "properties": {"username": {"type": "string"}, "role": {"type": "string",
                                                                      "enum": ["viewer", "operator"]},
                              "csrf": {"type": "string"}}},
        "Overview": {"type": "object", "required": ["run", "jobs", "percent", "stages", "batches", "counts",
                                                    "alerts", "timeline"],
                     "properties": {"run": OBJECT, "jobs": {"type": "integer"}, "percent": {"type": "number"},
                                    "stages": {"type": "array", "items": OBJECT},
                                    "batches": {"type": "array", "items": OBJECT}, "counts": OBJECT,
                                    "alerts": OBJECT, "timeline": OBJECT,
                                    "daemon": {"type": "object", "nullable": True}}},
        "Tree": {"type": "object", "required": ["date", "business_types", "batches", "categories"],
                 "properties": {"date": {"type": "string"}, "business_types": {"type": "array", "items": OBJECT},
                                "batches": {"type": "array", "items": {"type": "integer"}},
                                "categories": {"type": "array", "items": {"type": "string"}}}},
        "Suggestion": {"type": "object", "required": ["kind", "value", "label"],
                       "properties": {"kind": {"type": "string", "enum": ["job", "category", "product"]},
                                      "value": {"type": "string"}, "label": {"type": "string"}}},
        "JobDetail": {"type": "object", "required": ["id", "name", "state", "events", "file_list"],
                      "properties": {"id": {"type": "integer"}, "name": {"type": "string"},
                                     "state": {"type": "string"}, "events": {"type": "array", "items": OBJECT},
                                     "file_list": {"type": "array", "items": OBJECT}}},
        "AuditEntry": _audit_entry_schema(),
        "Alert": {"type": "object", "required": ["id", "rule", "severity", "state", "message"],
                  "properties": {"id": {"type": "integer"}, "rule": {"type": "string"},
                                 "severity": {"type": "string"}, "state": {"type": "string"},
                                 "message": {"type": "string"}}},
    }


def _audit_entry_schema() -> dict:
    nullable_text = {"type": "string", "nullable": True}
    return {"type": "object", "required": ["id", "at", "actor", "action", "target", "outcome", "origin"],
            "properties": {"id": {"type": "integer"}, "at": {"type": "string"}, "actor": {"type": "string"},
                           "action": {"type": "string"}, "target": {"type": "string"},
                           "outcome": {"type": "string", "enum": ["ok", "denied", "failed", "locked", "error"]},
                           "origin": {"type": "string"}, "reason": dict(nullable_text),
                           "ticket": dict(nullable_text), "detail": dict(nullable_text)}}
