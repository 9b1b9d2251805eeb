"""The ASGI app: pages, the JSON API, server-sent events, login, roles, CSRF and the audit of every change.

``create_app`` assembles module-level handlers and middleware; what the handlers share (the site, the options,
the templates, the engine launcher) is one ``Dashboard`` object kept on ``app.state``."""
from __future__ import annotations

import asyncio
import hmac
import json
import re
import secrets
import time
from datetime import datetime
from functools import partial, wraps
from pathlib import Path
from typing import Any, AsyncIterator, Awaitable, Callable

import attrs
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData
from starlette.middleware import Middleware
from starlette.middleware.sessions import SessionMiddleware
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response, StreamingResponse
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.templating import Jinja2Templates

from esomp_core import JOB_STATES, jobs_query

from esomp_dashboard import actions, alerts, audit, data, logins, users
from esomp_dashboard.config import DashboardOptions
from esomp_dashboard.openapi import document
from esomp_dashboard.secret import session_secret

HERE = Path(__file__).resolve().parent
DATE_RE = re.compile(r"[0-9]{8}")
STATE_COLOURS = {"pending": "grey", "waiting": "grey", "running": "blue", "succeeded": "green", "failed": "red",
                 "paused": "amber", "cancelled": "grey", "skipped": "amber"}


class BadRequest(ValueError):
    pass


def _json(value: Any, status: int = 200) -> JSONResponse:
    return JSONResponse(json.loads(json.dumps(value, default=str, ensure_ascii=False)), status_code=status)


def _error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status)


# --- assembly --------------------------------------------------------------------------------------------------
def create_app(site, options: DashboardOptions | None = None, *,
               launch: actions.Launcher = actions.launch_detached) -> Starlette:
    """The dashboard for ``site``; ``launch(argv, log_path)`` starts an engine process when a rerun needs one."""
    options = options or DashboardOptions()
    users.ensure_tables(site.repository)
    secret = session_secret(site, options.secret_env, options.secret_file)
    app = Starlette(routes=routes(), middleware=middleware(options, secret))
    app.state.dashboard = Dashboard(site, options, make_templates(), launch)
    return app


def routes() -> list:
    return [
        Route("/login", login, methods=["GET", "POST"]),
        Route("/logout", logout, methods=["POST"]),
        Route("/", overview_page),
        Route("/jobs", monitor_page),
        Route("/jobs/{job_id:int}", job_page),
        Route("/alerts", alerts_page),
        Route("/events", events),
        Route("/openapi.json", openapi),
        Route("/api/me", api_me),
        Route("/api/runs", api_runs),
        Route("/api/overview", api_overview),
        Route("/api/tree", api_tree),
        Route("/api/jobs", api_jobs),
        Route("/api/suggest", api_suggest),
        Route("/api/jobs/{job_id:int}", api_job),
        Route("/api/jobs/{job_id:int}/rerun", api_rerun, methods=["POST"]),
        Route("/api/batches/{batch:int}/pause", api_pause, methods=["POST"]),
        Route("/api/batches/{batch:int}/resume", api_resume, methods=["POST"]),
        Route("/api/alerts", api_alerts),
        Route("/api/alerts/{alert_id:int}/acknowledge", api_acknowledge, methods=["POST"]),
        Route("/api/audit", api_audit),
        Mount("/static", StaticFiles(directory=str(HERE / "static")), name="static"),
    ]


def middleware(options: DashboardOptions, secret: str) -> list[Middleware]:
    return [Middleware(SessionMiddleware, secret_key=secret,
                       session_cookie="esomp_session", max_age=int(options.session_hours * 3600),
                       same_site="strict", https_only=options.secure_cookies),
            Middleware(SecurityHeaders)]


def make_templates() -> Jinja2Templates:
    templates = Jinja2Templates(directory=str(HERE / "templates"))
    templates.env.globals["state_colour"] = lambda state: STATE_COLOURS.get(state, "grey")
    templates.env.filters["duration"] = format_duration
    templates.env.filters["size"] = format_size
    templates.env.filters["when"] = format_when
    return templates


# --- what the handlers share ---------------------------------------------------------------------------------
@attrs.frozen
class Dashboard:
    """The site a dashboard serves, its options, its templates and how it starts an engine process."""

    site: Any
    options: DashboardOptions
    templates: Jinja2Templates
    launch: actions.Launcher

    @property
    def repository(self):
        return self.site.repository

    async def user_of(self, request: Request) -> dict | None:
        """The session's user as stored now: an ended session, a removed user or a changed role shows at once."""
        token = request.session.get("sid")
        return await run_in_threadpool(users.session_user, self.repository, token) if token else None

    async def audited(self, request: Request, actor: str, action: str, target: str, outcome: str,
                      **note: Any) -> None:
        await run_in_threadpool(lambda: audit.record(self.repository, actor=actor, action=action, target=target,
                                                     outcome=outcome, origin=address_of(request), **note))

    def render(self, request: Request, user: dict | None, name: str, context: dict, status: int = 200) -> Response:
        context = {"user": user, "csrf": csrf_token(request), "operator": bool(user and user["role"] == "operator"),
                   "runs": data.runs(self.site) if user and not name.startswith("_") else [], **context}
        return self.templates.TemplateResponse(request, name, context, status_code=status)

    async def chosen_date(self, request: Request) -> str:
        """The ``date`` asked for, else the latest run's."""
        date = request.query_params.get("date")
        if date:
            if not DATE_RE.fullmatch(date):
                raise BadRequest(f"date {date!r}: expected CCYYMMDD")
            return date
        latest = await run_in_threadpool(data.latest_date, self.site)
        if latest is None:
            raise data.NotFound("no run yet: start one with `esomp run --date D`")
        return latest


def dashboard_of(request: Request) -> Dashboard:
    return request.app.state.dashboard


Handler = Callable[[Dashboard, Request, dict], Awaitable[Any]]


# --- who is asking -----------------------------------------------------------------------------------------------
def address_of(request: Request) -> str:
    return request.client.host if request.client else "unknown"


def csrf_token(request: Request) -> str:
    if "csrf" not in request.session:
        request.session["csrf"] = secrets.token_urlsafe(32)
    return request.session["csrf"]


def csrf_ok(request: Request, sent: str | None) -> bool:
    expected = request.session.get("csrf")
    return bool(expected and sent and hmac.compare_digest(expected, sent))


# --- pages and API endpoints: login, roles, CSRF and audit in one place ------------------------------------------
def page(fn: Handler) -> Callable[[Request], Awaitable[Response]]:
    """An HTML page: a visitor who is not logged in goes to the login form."""
    @wraps(fn)
    async def endpoint(request: Request) -> Response:
        dashboard = dashboard_of(request)
        user = await dashboard.user_of(request)
        if user is None:
            return RedirectResponse(f"/login?next={request.url.path}", status_code=303)
        try:
            return await fn(dashboard, request, user)
        except data.NotFound as exc:
            return dashboard.render(request, user, "message.html", {"message": str(exc)}, status=404)
        except BadRequest as exc:
            return dashboard.render(request, user, "message.html", {"message": str(exc)}, status=400)
    return endpoint


def api(action: str | None = None, *, operators_only: bool = False, may: str = ""):
    """A JSON endpoint. ``action`` names a change: it needs an operator and the CSRF header, and every
    attempt is audited with its outcome. ``operators_only`` keeps a read for operators (``may`` says what)."""
    def decorate(fn: Handler) -> Callable[[Request], Awaitable[Response]]:
        @wraps(fn)
        async def endpoint(request: Request) -> Response:
            dashboard = dashboard_of(request)
            user = await dashboard.user_of(request)
            if user is None:
                return _error(401, "log in first (POST /login)")
            if action is not None:
                return await audited_change(dashboard, request, user, action, fn)
            if operators_only and user["role"] != "operator":
                return _error(403, f"user {user['username']} is a {user['role']}: only operators may {may}")
            return await answer(dashboard, request, user, fn)
        return endpoint
    return decorate


async def audited_change(dashboard: Dashboard, request: Request, user: dict, action: str, fn: Handler) -> Response:
    """Run a change and audit the attempt with its outcome."""
    request.state.audit = await audit_note(request)  # the endpoint may name its target better
    try:
        response = await guarded_change(dashboard, request, user, fn)
    except Exception as exc:  # a failure we did not foresee is audited too, then reported as usual
        await record_change(dashboard, request, user, action, "error", f"{type(exc).__name__}: {exc}")
        raise
    outcome = {200: "ok", 403: "denied"}.get(response.status_code, "error")
    detail = json.loads(response.body).get("error") if outcome != "ok" else None
    await record_change(dashboard, request, user, action, outcome, detail)
    return response


async def record_change(dashboard: Dashboard, request: Request, user: dict, action: str, outcome: str,
                        detail: str | None) -> None:
    note = request.state.audit
    await dashboard.audited(request, user["username"], action, note.pop("target"), outcome, detail=detail, **note)


async def guarded_change(dashboard: Dashboard, request: Request, user: dict, fn: Handler) -> Response:
    if user["role"] != "operator":
        return _error(403, f"user {user['username']} is a {user['role']}: only operators may "
                           "pause, resume, rerun or acknowledge")
    if not csrf_ok(request, request.headers.get("x-csrf-token")):
        return _error(403, "missing or wrong X-CSRF-Token header (take it from /api/me)")
    return await answer(dashboard, request, user, fn)


async def answer(dashboard: Dashboard, request: Request, user: dict, fn: Handler) -> Response:
    try:
        return _json(await fn(dashboard, request, user))
    except BadRequest as exc:
        return _error(400, str(exc))
    except KeyError:
        raise  # a bug, not a missing run, job or alert
    except (data.NotFound, alerts.AlertNotFound, LookupError) as exc:
        return _error(404, str(exc).strip("'\""))
    except (alerts.AlertNotOpen, ValueError) as exc:
        return _error(409, str(exc))


async def audit_note(request: Request) -> dict:
    """What the audit records of a change before it runs: its target, and the reason and ticket given
    (read leniently here; the endpoint itself refuses a bad body)."""
    try:
        body = json.loads(await request.body() or b"{}")
    except ValueError:
        body = {}
    body = body if isinstance(body, dict) else {}
    reason, ticket = body.get("reason", body.get("comment")), body.get("ticket")
    return {"target": change_target(request.path_params, body.get("date")),
            "reason": reason.strip()[:2000] if isinstance(reason, str) else None,
            "ticket": ticket.strip()[:100] if isinstance(ticket, str) else None}


def change_target(params: dict, date: Any) -> str:
    if "batch" in params:
        known_date = isinstance(date, str) and DATE_RE.fullmatch(date)
        return f"batch {params['batch']}" + (f" of {date}" if known_date else "")
    kind = "job" if "job_id" in params else "alert"
    return f"{kind} {params.get('job_id', params.get('alert_id'))}"


# --- reading a request -----------------------------------------------------------------------------------------
def int_param(request: Request, name: str, default: int, low: int, high: int) -> int:
    raw = request.query_params.get(name)
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise BadRequest(f"{name} {raw!r}: expected an integer") from None
    if not low <= value <= high:
        raise BadRequest(f"{name} {value}: expected {low}..{high}")
    return value


def path_int(request: Request, name: str) -> int:
    value = request.path_params[name]
    if not 0 <= value < 2 ** 31:
        raise BadRequest(f"{name} {value}: out of range")
    return value


async def json_body(request: Request, allowed: set[str]) -> dict:
    raw = await request.body()
    if not raw:
        return {}
    try:
        body = json.loads(raw)
    except ValueError:
        raise BadRequest("the request body is not JSON") from None
    if not isinstance(body, dict):
        raise BadRequest("the request body must be a JSON object")
    unknown = sorted(set(body) - allowed)
    if unknown:
        raise BadRequest(f"unknown field {unknown[0]!r} (expected: {', '.join(sorted(allowed))})")
    return body


def check_note(body: dict) -> dict:
    """The optional reason and ticket (TD单号) an operator gives with a change, recorded in the audit."""
    for field, longest in (("reason", 2000), ("ticket", 100)):
        value = body.get(field)
        if value is not None and not (isinstance(value, str) and len(value) <= longest):
            raise BadRequest(f"{field}: a string of at most {longest} characters")
    return body


def body_date(body: dict) -> str | None:
    date = body.get("date")
    if date is not None and not (isinstance(date, str) and DATE_RE.fullmatch(date)):
        raise BadRequest(f"date {date!r}: expected CCYYMMDD")
    return date


# --- login and logout --------------------------------------------------------------------------------------------
async def login(request: Request) -> Response:
    if request.method == "GET":
        next_url = request.query_params.get("next", "/")
        return dashboard_of(request).render(request, None, "login.html", {"next": next_url, "error": None})
    return await submit_login(request)


async def submit_login(request: Request) -> Response:
    dashboard, form = dashboard_of(request), await request.form()
    next_url, name = safe_next(form), str(form.get("username", ""))[:100]
    address, now = address_of(request), datetime.now()
    refuse = partial(refuse_login, dashboard, request, name, next_url)
    if not csrf_ok(request, str(form.get("csrf", ""))):
        return await refuse("denied", "The form expired; try again.", 403)
    refusal = await run_in_threadpool(logins.refusal, dashboard.repository, name, address, now)
    if refusal:  # the password is not even checked while locked out
        return await refuse("locked", refusal, 429)
    user = await run_in_threadpool(users.authenticate, dashboard.repository, name, str(form.get("password", "")))
    if user is None:
        locked = await run_in_threadpool(logins.record_failure, dashboard.site, name, address, now,
                                         dashboard.options)
        detail = "wrong user name or password" + (f"; locks out {' and '.join(locked)}" if locked else "")
        return await refuse("failed", "Wrong user name or password.", 401, detail)
    await run_in_threadpool(logins.record_success, dashboard.repository, name, now)
    await start_session(dashboard, request, user["username"])
    return RedirectResponse(next_url, status_code=303)


def safe_next(form: FormData) -> str:
    """Where to go after logging in: a path on this site, never another host."""
    next_url = str(form.get("next") or "/")
    return next_url if next_url.startswith("/") and not next_url.startswith("//") else "/"


async def refuse_login(dashboard: Dashboard, request: Request, name: str, next_url: str, outcome: str,
                       message: str, status: int, detail: str | None = None) -> Response:
    await dashboard.audited(request, name, "login", "session", outcome, detail=detail or message)
    return dashboard.render(request, None, "login.html", {"next": next_url, "error": message}, status=status)


async def start_session(dashboard: Dashboard, request: Request, username: str) -> None:
    """End the browser's old session and start a fresh one (and a fresh CSRF token) at every login."""
    await run_in_threadpool(users.end_session, dashboard.repository, request.session.get("sid"))
    token = await run_in_threadpool(users.start_session, dashboard.repository, username,
                                    dashboard.options.session_hours, address_of(request))
    request.session.clear()
    request.session.update(sid=token, csrf=secrets.token_urlsafe(32))
    await dashboard.audited(request, username, "login", "session", "ok")


async def logout(request: Request) -> Response:
    dashboard, form = dashboard_of(request), await request.form()
    user = await dashboard.user_of(request)
    if csrf_ok(request, str(form.get("csrf", ""))):
        await run_in_threadpool(users.end_session, dashboard.repository, request.session.get("sid"))
        request.session.clear()
        if user:
            await dashboard.audited(request, user["username"], "logout", "session", "ok")
    elif user:
        await dashboard.audited(request, user["username"], "logout", "session", "denied",
                                detail="missing or wrong CSRF token")
    return RedirectResponse("/login", status_code=303)


# --- pages -----------------------------------------------------------------------------------------------------
def fragment_or(request: Request, name: str) -> str:
    """The part of a page a live update swaps in (``?fragment=1``), else the whole page."""
    return f"_{name}" if request.query_params.get("fragment") else name


@page
async def overview_page(dashboard: Dashboard, request: Request, user: dict) -> Response:
    date = await dashboard.chosen_date(request)
    view = await run_in_threadpool(data.overview, dashboard.site, date)
    # without an explicit date the wall screen follows the latest run, day after day
    return dashboard.render(request, user, fragment_or(request, "overview.html"),
                            {"o": view, "date": date, "follow": "date" not in request.query_params})


@page
async def monitor_page(dashboard: Dashboard, request: Request, user: dict) -> Response:
    date = await dashboard.chosen_date(request)
    return dashboard.render(request, user, "monitor.html", {"date": date, "states": JOB_STATES})


@page
async def job_page(dashboard: Dashboard, request: Request, user: dict) -> Response:
    job = await run_in_threadpool(data.job_detail, dashboard.site, path_int(request, "job_id"))
    return dashboard.render(request, user, fragment_or(request, "job.html"), {"job": job, "date": job["date"]})


@page
async def alerts_page(dashboard: Dashboard, request: Request, user: dict) -> Response:
    state = request.query_params.get("state") or None
    severity = request.query_params.get("severity") or None
    rows = await run_in_threadpool(lambda: alerts.list_alerts(dashboard.site, state=state, severity=severity))
    return dashboard.render(request, user, fragment_or(request, "alerts.html"),
                            {"alerts": rows, "state": state, "severity": severity, "states": alerts.STATES,
                             "severities": alerts.SEVERITIES, "date": None})


# --- live updates ----------------------------------------------------------------------------------------------
async def events(request: Request) -> Response:
    """Server-sent events: a ``change`` event whenever the day or the alerts change."""
    dashboard = dashboard_of(request)
    if await dashboard.user_of(request) is None:
        return _error(401, "log in first")
    date = request.query_params.get("date")
    if date and not DATE_RE.fullmatch(date):
        return _error(400, f"date {date!r}: expected CCYYMMDD")
    first = await run_in_threadpool(data.fingerprint, dashboard.site, date)  # what the page was rendered from
    return StreamingResponse(changes(dashboard, request, date, first), media_type="text/event-stream",
                             headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"})


async def changes(dashboard: Dashboard, request: Request, date: str | None, first: Any) -> AsyncIterator[str]:
    """The event stream: ends after ``stream_seconds`` (the browser reconnects) or when the session ends."""
    options = dashboard.options
    last, quiet_since, ends = first, time.monotonic(), time.monotonic() + options.stream_seconds
    yield f"retry: {int(options.poll * 1000)}\n\n"
    while time.monotonic() < ends and not await request.is_disconnected():
        if await dashboard.user_of(request) is None:  # logged out, removed or role changed meanwhile
            yield "event: logout\ndata: {}\n\n"
            return
        mark = await run_in_threadpool(data.fingerprint, dashboard.site, date)
        if mark != last:
            yield f"event: change\ndata: {json.dumps({'at': time.time()})}\n\n"
            last, quiet_since = mark, time.monotonic()
        elif time.monotonic() - quiet_since > 15:
            yield ": still here\n\n"  # keeps proxies from closing an idle stream
            quiet_since = time.monotonic()
        await asyncio.sleep(options.poll)


# --- API: reads ------------------------------------------------------------------------------------------------
@api()
async def api_me(dashboard: Dashboard, request: Request, user: dict) -> Any:
    return {**user, "csrf": csrf_token(request)}


@api()
async def api_runs(dashboard: Dashboard, request: Request, user: dict) -> Any:
    return await run_in_threadpool(data.runs, dashboard.site)


@api()
async def api_overview(dashboard: Dashboard, request: Request, user: dict) -> Any:
    return await run_in_threadpool(data.overview, dashboard.site, await dashboard.chosen_date(request))


@api()
async def api_tree(dashboard: Dashboard, request: Request, user: dict) -> Any:
    return await run_in_threadpool(data.tree, dashboard.site, await dashboard.chosen_date(request))


@api()
async def api_jobs(dashboard: Dashboard, request: Request, user: dict) -> Any:
    date = await dashboard.chosen_date(request)
    params = request.query_params
    state = params.get("state") or None
    if state and state not in JOB_STATES:
        raise BadRequest(f"state {state!r}: expected one of {', '.join(JOB_STATES)}")
    limit = int_param(request, "limit", 200, 1, 1000)
    return await run_in_threadpool(lambda: jobs_query(dashboard.site, date, query=params.get("q") or None,
                                                      category=params.get("category") or None, state=state,
                                                      limit=limit))


@api()
async def api_suggest(dashboard: Dashboard, request: Request, user: dict) -> Any:
    if "q" not in request.query_params:
        raise BadRequest("q is required: the text typed so far")
    date = await dashboard.chosen_date(request)
    return await run_in_threadpool(data.suggest, dashboard.site, date, request.query_params["q"][:200])


@api()
async def api_job(dashboard: Dashboard, request: Request, user: dict) -> Any:
    return await run_in_threadpool(data.job_detail, dashboard.site, path_int(request, "job_id"))


@api()
async def api_alerts(dashboard: Dashboard, request: Request, user: dict) -> Any:
    state = request.query_params.get("state") or None
    if state and state not in alerts.STATES:
        raise BadRequest(f"state {state!r}: expected one of {', '.join(alerts.STATES)}")
    limit = int_param(request, "limit", 200, 1, 1000)
    severity = request.query_params.get("severity") or None
    return await run_in_threadpool(lambda: alerts.list_alerts(dashboard.site, state=state, severity=severity,
                                                              limit=limit))


@api(operators_only=True, may="read the audit")
async def api_audit(dashboard: Dashboard, request: Request, user: dict) -> Any:
    params = request.query_params
    limit = int_param(request, "limit", 200, 1, 1000)
    return await run_in_threadpool(lambda: audit.entries(dashboard.repository, limit=limit,
                                                         actor=params.get("actor"), action=params.get("action")))


@api()
async def openapi(dashboard: Dashboard, request: Request, user: dict) -> Any:
    return document()


# --- API: changes (operators, CSRF header, audited) ------------------------------------------------------------
@api("job.rerun")
async def api_rerun(dashboard: Dashboard, request: Request, user: dict) -> Any:
    job_id = path_int(request, "job_id")
    check_note(await json_body(request, {"reason", "ticket"}))
    return await run_in_threadpool(actions.rerun, dashboard.site, job_id, dashboard.launch)


@api("batch.pause")
async def api_pause(dashboard: Dashboard, request: Request, user: dict) -> Any:
    return await batch_action(dashboard, request, actions.pause)


@api("batch.resume")
async def api_resume(dashboard: Dashboard, request: Request, user: dict) -> Any:
    return await batch_action(dashboard, request, actions.resume)


async def batch_action(dashboard: Dashboard, request: Request, action: Callable[..., None]) -> Any:
    site, batch = dashboard.site, path_int(request, "batch")
    body = check_note(await json_body(request, {"date", "reason", "ticket"}))
    date = body_date(body) or await dashboard.chosen_date(request)
    request.state.audit["target"] = f"batch {batch} of {date}"
    await run_in_threadpool(action, site, date, batch)
    return await run_in_threadpool(lambda: {"date": date, "batch": batch,
                                            "paused_batches": data.tree(site, date)["paused_batches"]})


@api("alert.acknowledge")
async def api_acknowledge(dashboard: Dashboard, request: Request, user: dict) -> Any:
    alert_id = path_int(request, "alert_id")
    body = check_note(await json_body(request, {"comment", "ticket"}))
    comment = body.get("comment")
    if not isinstance(comment, str) or not comment.strip() or len(comment) > 2000:
        raise BadRequest("comment: say why the alert is acknowledged (1-2000 characters)")
    return await run_in_threadpool(alerts.acknowledge, dashboard.site, alert_id, user["username"],
                                   comment.strip())


# --- middleware and template filters ---------------------------------------------------------------------------
class SecurityHeaders:
    """No framing, no sniffing, scripts only from our own static files."""

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        async def send_with_headers(message):
            if message["type"] == "http.response.start":
                message.setdefault("headers", [])
                message["headers"] = [*message["headers"],
                                      (b"x-frame-options", b"DENY"), (b"x-content-type-options", b"nosniff"),
                                      (b"content-security-policy",
                                       b"default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'")]
            await send(message)
        await self.app(scope, receive, send_with_headers if scope["type"] == "http" else send)


def format_duration(value: float | None) -> str:
    if value is None:
        return "-"
    value = int(round(value))
    hours, rest = divmod(value, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


def format_when(value: Any) -> str:
    return value.strftime("%Y-%m-%d %H:%M:%S") if isinstance(value, datetime) else str(value or "")


def format_size(value: int | None) -> str:
    if not value:
        return "0"
    for unit in ("B", "KB", "MB", "GB"):
        if value < 1024 or unit == "GB":
            return f"{value:,.0f} {unit}" if unit == "B" else f"{value:,.1f} {unit}"
        value /= 1024
    return str(value)
