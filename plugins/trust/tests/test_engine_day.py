"""The trust day through the real engine and worker processes: killed workers lose nothing, reruns are exact."""
import hashlib
import os
import signal

from sqlalchemy import func, select

from esomp_core import JobRow, hookimpl
from esomp_core.engine import Engine
from esomp_trust import PackageRow as Package, ReceiptRow as Receipt
from esomp_trust.testing import DATE, new_day


class KillAfterWork:
    """SIGKILLs the worker right after a job's hook has done its work, before the engine hears of it: the worst
    moment, with outputs written and receipts committed but the job still 'running'."""

    def __init__(self, marker_dir, names):
        self.marker_dir, self.names = marker_dir, names

    def _maybe_die(self, job):
        marker = self.marker_dir / f"{job.name}.killed"
        if job.name in self.names and not marker.exists():
            marker.write_text("killed once")
            os.kill(os.getpid(), signal.SIGKILL)

    @hookimpl(wrapper=True)
    def process(self, job):
        result = yield
        self._maybe_die(job)
        return result

    @hookimpl(wrapper=True)
    def send(self, job):
        result = yield
        self._maybe_die(job)
        return result


def tree_digests(root):
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


def test_process_and_send_survive_sigkilled_workers_with_identical_packages(tmp_path):
    killed, _ = new_day(tmp_path / "killed", 50)
    killed.pm.register(KillAfterWork(tmp_path, {"trust-process-b1-j2", "trust-send-b2-j1"}))
    summary = Engine(killed, DATE, executor="local", workers=2).run()
    assert summary.state == "succeeded", summary.counts
    with killed.repository.session() as s:
        attempts = dict(s.execute(select(JobRow.name, JobRow.attempts)).all())
        packages = s.scalar(select(func.count()).select_from(Package))
        receipts = s.scalar(select(func.count()).select_from(Receipt))
    assert attempts["trust-process-b1-j2"] == attempts["trust-send-b2-j1"] == 2
    assert packages == receipts == 50  # one package per product, delivered once

    clean, _ = new_day(tmp_path / "clean", 50)
    assert Engine(clean, DATE, executor="inline").run().state == "succeeded"
    delivered = tree_digests(killed.root / "outbox")
    assert delivered and delivered == tree_digests(clean.root / "outbox")
    clearing = killed.root / "data" / "clearing" / DATE
    products = [p for p in clearing.glob("*/*") if p.is_dir() and not p.name.startswith(".")]
    assert len(products) == 50
    assert all(len([f for f in p.iterdir() if f.is_file()]) == 32 for p in products)
