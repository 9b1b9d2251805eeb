"""`esomp batch pause|resume` from the command line, on a run whose jobs have not started."""
from datetime import datetime

from sqlalchemy import select

from esomp_core.repository.models import Job as JobRow
from esomp_core.repository.models import Run

DATE = "20261120"


def seeded_site(esomp_site):
    """A run of two batches, one job each, none started."""
    with esomp_site.repository.session() as s:
        run = Run(date=DATE, state="pending", created_at=datetime.now(), paused_batches=[])
        s.add(run)
        s.flush()
        s.add_all([JobRow(run_id=run.id, name=f"process-b{b}", stage="process", business_type="toy", batch=b)
                   for b in (1, 2)])
    return esomp_site


def batch_states(site):
    with site.repository.session() as s:
        paused = s.scalar(select(Run.paused_batches))
        return paused, dict(s.execute(select(JobRow.batch, JobRow.state)).all())


def test_batch_pause_and_resume_change_only_that_batch(esomp_site, esomp_cli):
    site = seeded_site(esomp_site)
    paused = esomp_cli(["batch", "pause", DATE, "2"], site=site)
    assert paused.exit_code == 0 and paused.output == f"batch 2 of {DATE} paused\n"
    assert batch_states(site) == ([2], {1: "pending", 2: "paused"})
    resumed = esomp_cli(["batch", "resume", DATE, "2"], site=site)
    assert resumed.exit_code == 0 and resumed.output == f"batch 2 of {DATE} resumed\n"
    assert batch_states(site) == ([], {1: "pending", 2: "pending"})


def test_batch_commands_on_a_date_without_a_run_say_how_to_start_it(esomp_site, esomp_cli):
    site = seeded_site(esomp_site)
    for change in ("pause", "resume"):
        result = esomp_cli(["batch", change, "20261121", "1"], site=site)
        assert result.exit_code == 1
        assert "no run for 20261121: start it with `esomp run --date 20261121`" in result.output
    assert esomp_cli(["batch", "pause", "2026-13-40", "1"], site=site).exit_code == 2
    assert batch_states(site) == ([], {1: "pending", 2: "pending"})
