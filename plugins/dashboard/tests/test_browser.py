"""The pages in Debian's headless Chromium driven by Playwright, against uvicorn on 127.0.0.1 in a thread."""
import contextlib
import os
import threading
from pathlib import Path

import pytest
from sqlalchemy import select

from esomp_core import BusinessType, JobResult, JobRow, JobSpec, StageHooks, hookimpl
from esomp_core.engine import Engine
from esomp_dashboard import users
from esomp_dashboard.app import create_app
from esomp_dashboard.config import DashboardOptions
from esomp_dashboard.testing import DATE, PASSWORD, seed_day, serve_in_thread

CHROMIUM = "/usr/bin/chromium"
WAIT_MS = 20_000


@pytest.fixture(scope="module")
def browser():
    if not Path(CHROMIUM).exists():
        message = f"{CHROMIUM} is missing (apt-get install chromium)"
        if os.environ.get("CI") == "true":
            pytest.fail(message + " (under CI=true a missing browser is a failure)")
        pytest.skip(message)
    try:
        from playwright import sync_api
    except ImportError:
        if os.environ.get("CI") == "true":
            raise
        pytest.skip("playwright is not installed (pip install -e 'plugins/dashboard[test]')")
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM, headless=True,
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                  "--disable-sync", "--no-first-run"])
        yield browser
        browser.close()


@pytest.fixture
def launched():
    return []


@pytest.fixture
def serve(launched):
    """``serve(site)`` -> base URL; servers stop after the pages that use them have closed."""
    with contextlib.ExitStack() as stack:
        yield lambda site: stack.enter_context(serve_in_thread(create_app(
            site, DashboardOptions(poll=0.2, stream_seconds=60), launch=lambda argv, log: launched.append(argv))))


@pytest.fixture
def open_page(browser, serve):
    contexts = []

    def open_as(base, username):
        context = browser.new_context(viewport={"width": 1600, "height": 1000})
        context.set_default_timeout(WAIT_MS)
        contexts.append(context)
        page = context.new_page()
        page.goto(base + "/login")
        page.fill("input[name=username]", username)
        page.fill("input[name=password]", PASSWORD)
        page.click("button[type=submit]")
        page.wait_for_url(base + "/")
        return page

    yield open_as
    for context in contexts:
        context.close()


def state_of(page, job_name):
    return page.locator(f'tr.job-row[data-job="{job_name}"]').get_attribute("data-state")


class Gated(StageHooks):
    """A small business type whose collection job waits for the test to open its gate."""

    def __init__(self):
        self.gate = threading.Event()

    @hookimpl
    def register_business_types(self, register):
        register(BusinessType("gated", "Gated", plan=self.plan))

    def plan(self, site, date):
        specs = [JobSpec("gated-collect", "collect", "gated", category="gated/采集")]
        for batch in (1, 2):
            specs.append(JobSpec(f"gated-process-b{batch}", "process", "gated", batch=batch,
                                 category=f"gated/加工/批次{batch}", products=(f"G{batch}",),
                                 depends_on=("gated-collect",)))
        return specs

    def work(self, job, site):
        if job.stage == "collect" and not self.gate.wait(timeout=60):
            raise TimeoutError("the test never opened the gate")
        return JobResult(files=1, records=1, bytes=10)


def test_login_and_watch_a_running_day_update_without_reload(open_page, serve, esomp_site_factory, esomp_pm_factory):
    gated = Gated()
    site = esomp_site_factory(esomp_pm_factory(gated), engine={"poll": 0.05})
    users.add_user(site.repository, "olga", PASSWORD, "operator")
    engine = Engine(site, DATE, executor="inline")
    outcome = {}
    runner = threading.Thread(target=lambda: outcome.update(summary=engine.run()), daemon=True)
    base = serve(site)
    runner.start()
    try:
        page = open_page(base, "olga")
        page.goto(base + "/jobs")
        page.wait_for_selector('tr.job-row[data-job="gated-collect"][data-state="running"]')
        page.evaluate("window.__sameDocument = true")
        gated.gate.set()
        page.wait_for_selector('tr.job-row[data-job="gated-process-b2"][data-state="succeeded"]')
        assert page.evaluate("window.__sameDocument") is True  # updated in place, never reloaded
        page.goto(base + "/")
        page.wait_for_selector("#day-percent:has-text('100.0%')")
    finally:
        gated.gate.set()
        runner.join(timeout=60)
    assert outcome["summary"].state == "succeeded"


def test_search_suggests_jobs_and_picking_one_shows_it(open_page, serve, day_site):
    base = serve(day_site)
    page = open_page(base, "olga")
    page.goto(base + "/jobs")
    page.wait_for_selector("tr.job-row")
    page.keyboard.press("/")
    assert page.evaluate("document.activeElement.id") == "search"
    page.keyboard.type("send-b3-2")
    page.click('li.suggestion[data-kind="job"][data-value="trust-send-b3-2"]')
    page.wait_for_function("document.querySelectorAll('tr.job-row').length === 1")
    assert page.locator("tr.job-row").get_attribute("data-job") == "trust-send-b3-2"
    page.keyboard.press("/")
    page.keyboard.type("P0004")
    page.click('li.suggestion[data-kind="product"][data-value="P00042"]')
    page.wait_for_selector('tr.product-row[data-product="P00042"]')
    assert page.locator("tr.job-row").count() == 2  # its processing and its sending job


def test_pause_batch_3_holds_its_jobs_and_resume_releases_them(open_page, serve, day_site, tmp_path):
    base = serve(day_site)
    page = open_page(base, "olga")
    page.screenshot(path=str(tmp_path / "overview.png"), full_page=True)
    page.goto(base + "/jobs")
    page.click("#pause-batch-3")
    page.wait_for_selector("#resume-batch-3")
    page.wait_for_selector('tr.job-row[data-job="trust-process-b3-1"][data-state="paused"]')
    with day_site.repository.session() as s:
        held = set(s.scalars(select(JobRow.state).where(JobRow.batch == 3)))
        others = set(s.scalars(select(JobRow.state).where(JobRow.batch == 2)))
    assert held == {"paused"} and others == {"pending"}
    page.screenshot(path=str(tmp_path / "monitor.png"), full_page=True)
    page.click("#resume-batch-3")
    page.wait_for_selector("#pause-batch-3")
    page.wait_for_selector('tr.job-row[data-job="trust-process-b3-1"][data-state="pending"]')
    for name in ("overview.png", "monitor.png"):
        data = (tmp_path / name).read_bytes()
        assert data.startswith(b"\x89PNG\r\n\x1a\n") and len(data) > 10_000


def test_acknowledge_an_alert_with_a_comment(open_page, serve, day_site, heard):
    base = serve(day_site)
    page = open_page(base, "olga")
    page.goto(base + "/alerts")
    first = page.locator("form.ack").first
    alert_id = int(first.get_attribute("data-alert"))
    first.locator("input[name=comment]").fill("exchange file late, confirmed by phone")
    first.locator("button").click()
    page.wait_for_selector(f"#alert-{alert_id}:has-text('olga: exchange file late, confirmed by phone')")
    assert page.locator(f"#alert-{alert_id} form.ack").count() == 0
    assert heard.events == [("acknowledged", alert_id, "olga", "exchange file late, confirmed by phone")]


def test_viewer_cannot_pause(open_page, serve, day_site):
    base = serve(day_site)
    page = open_page(base, "victor")
    page.goto(base + "/jobs")
    page.wait_for_selector(".batch-status")
    assert page.locator("button.batch-action").count() == 0
    status = page.evaluate("""async () => {
        const csrf = document.querySelector('meta[name="csrf-token"]').content;
        const r = await fetch('/api/batches/3/pause', {method: 'POST', headers: {'X-CSRF-Token': csrf,
            'Content-Type': 'application/json'}, body: JSON.stringify({date: '%s'})});
        return r.status; }""" % DATE)
    assert status == 403
    page.goto(base + "/alerts")
    assert page.locator("form.ack").count() == 0


def test_the_date_picker_switches_days(open_page, serve, day_site):
    seed_day(day_site, "20240108", 10, finished=True, files_per_product=1, alerts=0, first_product=100)
    base = serve(day_site)
    page = open_page(base, "olga")  # the wall screen follows the latest run
    page.wait_for_selector("h1:has-text('20240108')")
    page.select_option("#date-select", DATE)
    page.wait_for_url(base + f"/?date={DATE}")
    page.wait_for_selector(f"h1:has-text('{DATE}')")
    page.goto(base + "/jobs/1")
    page.select_option("#date-select", "20240108")
    page.wait_for_url(base + "/jobs?date=20240108")
    page.wait_for_selector('tr.job-row[data-state="succeeded"]')


def test_rerun_a_failed_job_from_its_page(open_page, serve, day_site, launched):
    with day_site.repository.session() as s:
        row = s.scalar(select(JobRow).where(JobRow.name == "trust-process-b1-2"))
        row.state, row.error, job_id = "failed", "ValueError: input szse/SJSMX1.DBF is truncated", row.id
    base = serve(day_site)
    page = open_page(base, "olga")
    page.goto(base + f"/jobs/{job_id}")
    assert "SJSMX1.DBF is truncated" in page.inner_text("pre.error")
    page.click("button.rerun")
    page.wait_for_selector(".action-note:has-text('2 job(s) reset; engine started')")
    assert launched and launched[0][-2:] == ["--date", DATE]
    page.wait_for_selector("#job-state:has-text('pending')")  # the page updated itself


def test_an_open_page_goes_to_the_login_when_the_users_role_changes(open_page, serve, day_site):
    base = serve(day_site)
    page = open_page(base, "olga")
    page.goto(base + "/jobs")
    page.wait_for_selector("button.batch-action")
    users.set_role(day_site.repository, "olga", "viewer")  # what `esomp users role olga viewer` does
    page.wait_for_url(base + "/login?next=%2Fjobs")  # the live-update stream says the session ended
    page.goto(base + "/jobs")
    assert page.url.startswith(base + "/login")
