"""The ASGI app: pages, the JSON API, server-sent events, login, roles, CSRF and the audit of every change."""
from __future__ import annotations

import asyncio
import hmac
import json
import re
import secrets
import time
from datetime import datetime
from functools import wraps
from pathlib import Path
from typing import Any, Awaitable, Callable

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
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


def create_app(site, options: DashboardOptions | None = None, *,
               launch: actions.Launcher = actions.launch_detached) -> Starlette:
    """The dashboard for ``site``; ``launch(argv, log_path)`` starts an engine process when a rerun needs one."""
    options = options or DashboardOptions()
    repository = site.repository
    users.ensure_tables(repository)
    secret = session_secret(site, options.secret_env, options.secret_file)
    templates = Jinja2Templates(directory=str(HERE / "templates"))
    templates.env.globals["state_colour"] = lambda state: STATE_COLOURS.get(state, "grey")
    templates.env.filters["duration"] = format_duration
    templates.env.filters["size"] = format_size
    templates.env.filters["when"] = format_when

    # --- who is asking ---------------------------------------------------------------------------------------
    async def user_of(request: Request) -> dict | None:
        """The session's user as stored now: an ended session, a removed user or a changed role shows at once."""
        token = request.session.get("sid")
        return await run_in_threadpool(users.session_user, repository, token) if token else None

    def address_of(request: Request) -> str:
        return request.client.host if request.client else "unknown"

    async def audited(request: Request, actor: str, action: str, target: str, outcome: str, **note: Any) -> None:
        await run_in_threadpool(lambda: audit.record(repository, actor=actor, action=action, target=target,
                                                     outcome=outcome, origin=address_of(request), **note))

    def csrf_token(request: Request) -> str:
        if "csrf" not in request.session:
            request.session["csrf"] = secrets.token_urlsafe(32)
        return request.session["csrf"]

    def csrf_ok(request: Request, sent: str | None) -> bool:
        expected = request.session.get("csrf")
        return bool(expected and sent and hmac.compare_digest(expected, sent))

    def page(fn: Callable[..., Awaitable[Response]]) -> Callable[[Request], Awaitable[Response]]:
        @wraps(fn)
        async def endpoint(request: Request) -> Response:
            user = await user_of(request)
            if user is None:
                return RedirectResponse(f"/login?next={request.url.path}", status_code=303)
            try:
                return await fn(request, user)
            except data.NotFound as exc:
                return render(request, user, "message.html", {"message": str(exc)}, status=404)
            except BadRequest as exc:
                return render(request, user, "message.html", {"message": str(exc)}, status=400)
        return endpoint

    def api(action: str | None = None, *, operators_only: bool = False, may: str = ""):
        """A JSON endpoint. ``action`` names a change: it needs an operator and the CSRF header, and every
        attempt is audited with its outcome. ``operators_only`` keeps a read for operators (``may`` says what)."""
        def decorate(fn: Callable[..., Awaitable[Any]]) -> Callable[[Request], Awaitable[Response]]:
            @wraps(fn)
            async def endpoint(request: Request) -> Response:
                user = await user_of(request)
                if user is None:
                    return _error(401, "log in first (POST /login)")
                if action is None:
                    if operators_only and user["role"] != "operator":
                        return _error(403, f"user {user['username']} is a {user['role']}: only operators may {may}")
                    return await answer(request, user, fn)
                request.state.audit = await audit_note(request)  # the endpoint may name its target better
                try:
                    response = await guarded_change(request, user, fn)
                except Exception as exc:  # a failure we did not foresee is audited too, then reported as usual
                    await audited(request, user["username"], action, request.state.audit.pop("target"), "error",
                                  detail=f"{type(exc).__name__}: {exc}", **request.state.audit)
                    raise
                outcome = {200: "ok", 403: "denied"}.get(response.status_code, "error")
                detail = json.loads(response.body).get("error") if outcome != "ok" else None
                await audited(request, user["username"], action, request.state.audit.pop("target"), outcome,
                              detail=detail, **request.state.audit)
                return response
            return endpoint
        return decorate

    async def guarded_change(request: Request, user: dict, fn) -> Response:
        if user["role"] != "operator":
            return _error(403, f"user {user['username']} is a {user['role']}: only operators may "
                               "pause, resume, rerun or acknowledge")
        if not csrf_ok(request, request.headers.get("x-csrf-token")):
            return _error(403, "missing or wrong X-CSRF-Token header (take it from /api/me)")
        return await answer(request, user, fn)

    async def answer(request: Request, user: dict, fn) -> Response:
        try:
            return _json(await fn(request, user))
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
        params, date = request.path_params, body.get("date")
        if "batch" in params:
            known_date = isinstance(date, str) and DATE_RE.fullmatch(date)
            target = f"batch {params['batch']}" + (f" of {date}" if known_date else "")
        else:
            kind = "job" if "job_id" in params else "alert"
            target = f"{kind} {params.get('job_id', params.get('alert_id'))}"
        reason = body.get("reason", body.get("comment"))
        ticket = body.get("ticket")
        return {"target": target, "reason": reason.strip()[:2000] if isinstance(reason, str) else None,
                "ticket": ticket.strip()[:100] if isinstance(ticket, str) else None}

    def render(request: Request, user: dict | None, name: str, context: dict, status: int = 200) -> Response:
        context = {"user": user, "csrf": csrf_token(request), "operator": bool(user and user["role"] == "operator"),
                   "runs": data.runs(site) if user and not name.startswith("_") else [], **context}
        return templates.TemplateResponse(request, name, context, status_code=status)

    async def chosen_date(request: Request) -> str:
        date = request.query_params.get("date")
        if date:
            if not DATE_RE.fullmatch(date):
                raise BadRequest(f"date {date!r}: expected CCYYMMDD")
            return date
        latest = await run_in_threadpool(data.latest_date, site)
        if latest is None:
            raise data.NotFound("no run yet: start one with `esomp run --date D`")
        return latest

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

    # --- login ---------------------------------------------------------------------------------------------------
    async def login(request: Request) -> Response:
        next_url = request.query_params.get("next", "/")
        if request.method == "GET":
            return render(request, None, "login.html", {"next": next_url, "error": None})
        form = await request.form()
        next_url = str(form.get("next") or "/")
        if not next_url.startswith("/") or next_url.startswith("//"):
            next_url = "/"
        name, address, now = str(form.get("username", ""))[:100], address_of(request), datetime.now()

        async def refuse(outcome: str, message: str, status: int, detail: str | None = None) -> Response:
            await audited(request, name, "login", "session", outcome, detail=detail or message)
            return render(request, None, "login.html", {"next": next_url, "error": message}, status=status)

        if not csrf_ok(request, str(form.get("csrf", ""))):
            return await refuse("denied", "The form expired; try again.", 403)
        refusal = await run_in_threadpool(logins.refusal, repository, name, address, now)
        if refusal:  # the password is not even checked while locked out
            return await refuse("locked", refusal, 429)
        user = await run_in_threadpool(users.authenticate, repository, name, str(form.get("password", "")))
        if user is None:
            locked = await run_in_threadpool(logins.record_failure, site, name, address, now, options)
            detail = "wrong user name or password" + (f"; locks out {' and '.join(locked)}" if locked else "")
            return await refuse("failed", "Wrong user name or password.", 401, detail)
        await run_in_threadpool(logins.record_success, repository, name, now)
        await run_in_threadpool(users.end_session, repository, request.session.get("sid"))
        token = await run_in_threadpool(users.start_session, repository, user["username"], options.session_hours,
                                        address)
        request.session.clear()  # a fresh session (and CSRF token) at every login
        request.session.update(sid=token, csrf=secrets.token_urlsafe(32))
        await audited(request, user["username"], "login", "session", "ok")
        return RedirectResponse(next_url, status_code=303)

    async def logout(request: Request) -> Response:
        form = await request.form()
        user = await user_of(request)
        if csrf_ok(request, str(form.get("csrf", ""))):
            await run_in_threadpool(users.end_session, repository, request.session.get("sid"))
            request.session.clear()
            if user:
                await audited(request, user["username"], "logout", "session", "ok")
        elif user:
            await audited(request, user["username"], "logout", "session", "denied",
                          detail="missing or wrong CSRF token")
        return RedirectResponse("/login", status_code=303)

    # --- pages -----------------------------------------------------------------------------------------------
    @page
    async def overview_page(request: Request, user: dict) -> Response:
        date = await chosen_date(request)
        view = await run_in_threadpool(data.overview, site, date)
        name = "_overview.html" if request.query_params.get("fragment") else "overview.html"
        # without an explicit date the wall screen follows the latest run, day after day
        return render(request, user, name, {"o": view, "date": date, "follow": "date" not in request.query_params})

    @page
    async def monitor_page(request: Request, user: dict) -> Response:
        date = await chosen_date(request)
        return render(request, user, "monitor.html", {"date": date, "states": JOB_STATES})

    @page
    async def job_page(request: Request, user: dict) -> Response:
        job = await run_in_threadpool(data.job_detail, site, path_int(request, "job_id"))
        name = "_job.html" if request.query_params.get("fragment") else "job.html"
        return render(request, user, name, {"job": job, "date": job["date"]})

    @page
    async def alerts_page(request: Request, user: dict) -> Response:
        state = request.query_params.get("state") or None
        severity = request.query_params.get("severity") or None
        rows = await run_in_threadpool(lambda: alerts.list_alerts(site, state=state, severity=severity))
        name = "_alerts.html" if request.query_params.get("fragment") else "alerts.html"
        return render(request, user, name, {"alerts": rows, "state": state, "severity": severity,
                                            "states": alerts.STATES, "severities": alerts.SEVERITIES,
                                            "date": None})

    async def events(request: Request) -> Response:
        """Server-sent events: a ``change`` event whenever the day or the alerts change."""
        if await user_of(request) is None:
            return _error(401, "log in first")
        date = request.query_params.get("date")
        if date and not DATE_RE.fullmatch(date):
            return _error(400, f"date {date!r}: expected CCYYMMDD")

        first = await run_in_threadpool(data.fingerprint, site, date)  # what the page was rendered from

        async def stream():
            last, quiet_since, ends = first, time.monotonic(), time.monotonic() + options.stream_seconds
            yield f"retry: {int(options.poll * 1000)}\n\n"
            while time.monotonic() < ends and not await request.is_disconnected():
                if await user_of(request) is None:  # logged out, removed or role changed meanwhile
                    yield "event: logout\ndata: {}\n\n"
                    return
                mark = await run_in_threadpool(data.fingerprint, site, date)
                if mark != last:
                    yield f"event: change\ndata: {json.dumps({'at': time.time()})}\n\n"
                    last, quiet_since = mark, time.monotonic()
                elif time.monotonic() - quiet_since > 15:
                    yield ": still here\n\n"  # keeps proxies from closing an idle stream
                    quiet_since = time.monotonic()
                await asyncio.sleep(options.poll)

        return StreamingResponse(stream(), media_type="text/event-stream",
                                 headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"})

    # --- API -------------------------------------------------------------------------------------------------
    @api()
    async def api_me(request: Request, user: dict) -> Any:
        return {**user, "csrf": csrf_token(request)}

    @api()
    async def api_runs(request: Request, user: dict) -> Any:
        return await run_in_threadpool(data.runs, site)

    @api()
    async def api_overview(request: Request, user: dict) -> Any:
        return await run_in_threadpool(data.overview, site, await chosen_date(request))

    @api()
    async def api_tree(request: Request, user: dict) -> Any:
        return await run_in_threadpool(data.tree, site, await chosen_date(request))

    @api()
    async def api_jobs(request: Request, user: dict) -> Any:
        date = await chosen_date(request)
        params = request.query_params
        state = params.get("state") or None
        if state and state not in JOB_STATES:
            raise BadRequest(f"state {state!r}: expected one of {', '.join(JOB_STATES)}")
        limit = int_param(request, "limit", 200, 1, 1000)
        return await run_in_threadpool(lambda: jobs_query(site, date, query=params.get("q") or None,
                                                          category=params.get("category") or None, state=state,
                                                          limit=limit))

    @api()
    async def api_suggest(request: Request, user: dict) -> Any:
        if "q" not in request.query_params:
            raise BadRequest("q is required: the text typed so far")
        date = await chosen_date(request)
        return await run_in_threadpool(data.suggest, site, date, request.query_params["q"][:200])

    @api()
    async def api_job(request: Request, user: dict) -> Any:
        return await run_in_threadpool(data.job_detail, site, path_int(request, "job_id"))

    @api("job.rerun")
    async def api_rerun(request: Request, user: dict) -> Any:
        job_id = path_int(request, "job_id")
        check_note(await json_body(request, {"reason", "ticket"}))
        return await run_in_threadpool(actions.rerun, site, job_id, launch)

    async def batch_action(request: Request, action: Callable[..., None]) -> Any:
        batch = path_int(request, "batch")
        body = check_note(await json_body(request, {"date", "reason", "ticket"}))
        date = body_date(body) or await chosen_date(request)
        request.state.audit["target"] = f"batch {batch} of {date}"
        await run_in_threadpool(action, site, date, batch)
        return await run_in_threadpool(lambda: {"date": date, "batch": batch,
                                                "paused_batches": data.tree(site, date)["paused_batches"]})

    @api("batch.pause")
    async def api_pause(request: Request, user: dict) -> Any:
        return await batch_action(request, actions.pause)

    @api("batch.resume")
    async def api_resume(request: Request, user: dict) -> Any:
        return await batch_action(request, actions.resume)

    @api()
    async def api_alerts(request: Request, user: dict) -> Any:
        state = request.query_params.get("state") or None
        if state and state not in alerts.STATES:
            raise BadRequest(f"state {state!r}: expected one of {', '.join(alerts.STATES)}")
        limit = int_param(request, "limit", 200, 1, 1000)
        severity = request.query_params.get("severity") or None
        return await run_in_threadpool(lambda: alerts.list_alerts(site, state=state, severity=severity,
                                                                  limit=limit))

    @api("alert.acknowledge")
    async def api_acknowledge(request: Request, user: dict) -> Any:
        alert_id = path_int(request, "alert_id")
        body = check_note(await json_body(request, {"comment", "ticket"}))
        comment = body.get("comment")
        if not isinstance(comment, str) or not comment.strip() or len(comment) > 2000:
            raise BadRequest("comment: say why the alert is acknowledged (1-2000 characters)")
        return await run_in_threadpool(alerts.acknowledge, site, alert_id, user["username"], comment.strip())

    @api(operators_only=True, may="read the audit")
    async def api_audit(request: Request, user: dict) -> Any:
        params = request.query_params
        limit = int_param(request, "limit", 200, 1, 1000)
        return await run_in_threadpool(lambda: audit.entries(repository, limit=limit, actor=params.get("actor"),
                                                             action=params.get("action")))

    @api()
    async def openapi(request: Request, user: dict) -> Any:
        return document()

    routes = [
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
    middleware = [Middleware(SessionMiddleware, secret_key=secret,
                             session_cookie="esomp_session", max_age=int(options.session_hours * 3600),
                             same_site="strict", https_only=options.secure_cookies),
                  Middleware(SecurityHeaders)]
    return Starlette(routes=routes, middleware=middleware)


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
