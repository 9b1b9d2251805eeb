"""Operator actions: pause, resume and rerun, through the engine's own functions."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
from datetime import datetime
from pathlib import Path
from typing import Callable

from sqlalchemy import select

from esomp_core import JobRow, RunRow as Run, pause_batch, reset_for_rerun, resume_batch

from esomp_dashboard.data import NotFound, engine_alive

Launcher = Callable[[list[str], Path], None]


def _check_batch(site, date: str, batch: int) -> None:
    with site.repository.session() as s:
        run = s.scalar(select(Run).where(Run.date == date))
        if run is None:
            raise NotFound(f"no run for {date}")
        if s.scalar(select(JobRow.id).where(JobRow.run_id == run.id, JobRow.batch == batch).limit(1)) is None:
            raise NotFound(f"no batch {batch} in the run of {date}")


def pause(site, date: str, batch: int) -> None:
    _check_batch(site, date, batch)
    pause_batch(site, date, batch)


def resume(site, date: str, batch: int) -> None:
    _check_batch(site, date, batch)
    resume_batch(site, date, batch)


def run_command(site, date: str) -> list[str]:
    """The command that runs ``date``'s plan for this site in its own process."""
    esomp = shutil.which("esomp", path=str(Path(sys.executable).parent)) or shutil.which("esomp")
    prefix = [esomp] if esomp else [sys.executable, "-c", "from esomp_core.cli import main; main()"]
    return [*prefix, "--site", str(site.root), "run", "--date", date]


def launch_detached(argv: list[str], log_path: Path) -> None:
    """Start the engine in a session of its own, so it outlives a dashboard restart; its output goes to a log."""
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with open(log_path, "ab") as log:
        subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                         start_new_session=True, close_fds=True, env=os.environ.copy())


def rerun(site, job_id: int, launch: Launcher) -> dict:
    """Reset the job and its dependents; start an engine unless one already holds the day (it picks them up)."""
    with site.repository.session() as s:
        row = s.get(JobRow, job_id)
        if row is None:
            raise NotFound(f"no job {job_id}")
        if row.state == "running":
            raise ValueError(f"job {row.name} is running; rerun it when it has finished")
        run = s.get(Run, row.run_id)
        date, holder = run.date, run.lock_holder if engine_alive(site, run, datetime.now()) else None
    jobs = reset_for_rerun(site, date, job_id=job_id)
    started = None
    if holder is None:
        started = run_command(site, date)
        log = Path(site.directory("monitoring_centre")) / f"dashboard-run-{date}-{datetime.now():%H%M%S}.log"
        launch(started, log)
    return {"date": date, "jobs": jobs, "engine": holder or "started", "command": started}
