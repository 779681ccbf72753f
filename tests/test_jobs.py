"""Jobs: through the real Redis and a real `flask crm worker`, in-process without Redis, the
system status page, the `crm jobs` commands and RQ's cron scheduler (`flask crm cron`)."""
from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import time
import uuid
from html import unescape

from conftest import as_system, ADMIN_PASSWORD, ROOT, flask_cmd, subprocess_env

PROBE = "tests.jobfuncs:probe"
BOOM = "tests.jobfuncs:boom"
SLOW = "tests.jobfuncs:slow"


def wait_for(predicate, timeout: float, what: str):
    deadline = time.time() + timeout
    while time.time() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


def run_row(app, name: str, run_key: str) -> dict | None:
    """The crm_job_run row as plain values, read in a fresh session."""
    from app.extensions import db
    from app.models import JobRun

    with app.app_context():
        rows = db.session.query(JobRun).filter_by(name=name, run_key=run_key).all()
        assert len(rows) <= 1
        if not rows:
            return None
        r = rows[0]
        return {"status": r.status, "mode": r.mode, "attempts": r.attempts, "error": r.error,
                "result": json.loads(r.result) if r.result else None}


def wait_status(app, name: str, run_key: str, status: str, timeout: float = 20) -> dict:
    return wait_for(lambda: (r := run_row(app, name, run_key)) and r["status"] == status and r,
                    timeout, f"{name} [{run_key}] to be {status}")


def lines(path) -> list[str]:
    return path.read_text(encoding="utf-8").splitlines() if path.exists() else []


def enqueue(app, func: str, *args, run_key: str, queue: str = "default") -> str:
    from app.jobs import enqueue as _enqueue

    with app.app_context():
        return _enqueue(func, *args, run_key=run_key, queue=queue)


def key() -> str:
    return f"t-{uuid.uuid4().hex[:10]}"


# -- RQ mode: a real worker process ---------------------------------------------------------

def test_enqueued_job_runs_in_worker_as_system_user(app, rq_worker, tmp_path):
    out, k = tmp_path / "probe.txt", key()
    job_id = enqueue(app, PROBE, str(out), "one", run_key=k)

    row = wait_status(app, PROBE, k, "done")
    assert row["mode"] == "rq" and row["attempts"] == 1
    assert row["result"]["user"] == "system"
    assert row["result"]["pid"] != os.getpid(), "ran in the test process, not in the worker"
    assert lines(out) == [f"one system {row['result']['pid']}"]
    assert k in job_id


def test_same_run_key_twice_does_the_work_once(app, rq_worker, tmp_path):
    out, k = tmp_path / "probe.txt", key()
    enqueue(app, PROBE, str(out), "dup", run_key=k)
    enqueue(app, PROBE, str(out), "dup", run_key=k)  # while the first is queued or running
    wait_status(app, PROBE, k, "done")
    enqueue(app, PROBE, str(out), "dup", run_key=k)  # after it finished
    # let the worker drain the queue: then the file tells how often the work happened
    from app.jobs.queue import get_queue

    with app.app_context():
        q = get_queue("default")
        wait_for(lambda: q.count == 0 and q.started_job_registry.count == 0, 20, "an empty queue")
    time.sleep(0.3)
    assert len(lines(out)) == 1, lines(out)
    assert run_row(app, PROBE, k)["attempts"] == 1


def test_same_periodic_slot_twice_runs_once(app, tmp_path):
    from app.extensions import db
    from app.jobs import PERIODIC
    from app.jobs.runner import execute, run_periodic, slot_key
    from app.models import JobRun

    job = PERIODIC["job_history_cleanup"]
    slot = slot_key(job.interval)
    with app.app_context():  # given: nothing has run in this slot yet
        db.session.query(JobRun).filter_by(name=job.func, run_key=slot).delete()
        db.session.commit()
        first = run_periodic("job_history_cleanup")
        second = run_periodic("job_history_cleanup")
    assert first != {"skipped": True} and second == {"skipped": True}
    row = run_row(app, job.func, slot)
    assert row["status"] == "done" and row["attempts"] == 1

    # the same through execute() with a job whose work we can count
    out, k = tmp_path / "probe.txt", key()
    with app.app_context():
        execute(PROBE, k, [str(out), "slot"], mode="inline")
        assert execute(PROBE, k, [str(out), "slot"], mode="inline") == {"skipped": True}
    assert len(lines(out)) == 1


def test_failing_job_is_retried_with_backoff_then_listed_as_failed(app, rq_worker, admin_client,
                                                                    tmp_path, monkeypatch):
    # (RQ schedules retries on whole seconds, so a retry may come up to 1 s early)
    monkeypatch.setitem(app.config, "CRM_JOB_RETRY_INTERVALS", [2, 3])
    out, k = tmp_path / "boom.txt", key()
    job_id = enqueue(app, BOOM, str(out), run_key=k)

    wait_for(lambda: len(lines(out)) >= 1, 20, "the first attempt")
    # between attempts the retry waits, and the status page says so
    wait_for(lambda: _queue_cells(admin_client.get("/system/status/").get_data(as_text=True),
                                  "default")["scheduled"] == 1, 5, "a scheduled retry on the status page")
    wait_for(lambda: len(lines(out)) >= 3, 30, "three attempts")
    row = wait_status(app, BOOM, k, "failed")
    from app.jobs.queue import get_queue
    from rq.registry import FailedJobRegistry

    with app.app_context():
        failed = FailedJobRegistry(queue=get_queue("default"))
        wait_for(lambda: job_id in failed.get_job_ids(), 10, "the job in the failed registry")
    time.sleep(1.5)  # no fourth attempt after the last retry
    times = [float(t) for t in lines(out)]
    assert len(times) == 3, "1 try + 2 retries (CRM_JOB_RETRY_INTERVALS=[2, 3])"
    assert times[1] - times[0] >= 1.0 and times[2] - times[1] >= 2.0, f"no backoff: {times}"

    row = run_row(app, BOOM, k)
    assert row["status"] == "failed" and row["attempts"] == 3
    assert "boom: probe job failed on purpose" in row["error"]

    html = admin_client.get("/system/status/").get_data(as_text=True)
    table = re.search(r'<table[^>]*id="failed-jobs".*?</table>', html, re.S).group(0)
    assert job_id in unescape(table)
    assert "RuntimeError: boom: probe job failed on purpose" in unescape(table)


def _queue_cells(html: str, name: str) -> dict[str, int]:
    row = re.search(rf'<tr data-queue="{name}">(.*?)</tr>', html, re.S).group(1)
    cells = [int(c) for c in re.findall(r"<td[^>]*>(\d+)</td>", row)]
    return {"queued": cells[0], "started": cells[1], "scheduled": cells[2], "failed": cells[3]}


def test_status_page_shows_rq_mode_queues_and_worker(app, rq_worker, admin_client, tmp_path):
    from app.jobs.queue import get_queue

    out = tmp_path / "probe.txt"
    enqueue(app, SLOW, 3, run_key=key())
    with app.app_context():
        wait_for(lambda: get_queue("default").started_job_registry.count == 1, 10, "the slow job to start")
    for i in range(3):  # they wait: the only worker is busy with the slow job
        enqueue(app, PROBE, str(out), f"q{i}", run_key=key(), queue="reports")

    resp = admin_client.get("/system/status/")
    assert resp.status_code == 200
    html = resp.get_data(as_text=True)
    assert 'data-mode="rq"' in html
    assert _queue_cells(html, "reports")["queued"] == 3
    assert _queue_cells(html, "default")["started"] == 1
    workers = re.search(r'<table[^>]*id="workers".*?</table>', html, re.S)
    assert workers and f"test-worker-{os.getpid()}" in workers.group(0)

    wait_for(lambda: len(lines(out)) == 3, 20, "the waiting jobs to run")


# -- in-process mode (no REDIS_URL) ---------------------------------------------------------

def test_without_redis_jobs_run_in_process(app, tmp_path):
    from app import create_app
    from app.jobs import enqueue as _enqueue
    from app.jobs import mode
    from config import TestConfig
    from conftest import login

    inline_app = create_app({**{k: getattr(TestConfig, k) for k in dir(TestConfig) if k.isupper()},
                             "REDIS_URL": None})
    out, k = tmp_path / "probe.txt", key()
    with inline_app.app_context():
        assert mode() == "inline"
        _enqueue(PROBE, str(out), "inline", run_key=k)
        # ran right away, in this very process, as the system user, and was recorded
        assert lines(out) == [f"inline system {os.getpid()}"]
    row = run_row(inline_app, PROBE, k)
    assert row["status"] == "done" and row["mode"] == "inline"

    c = inline_app.test_client()
    c.environ_base["REMOTE_ADDR"] = "10.254.0.1"
    assert login(c, "admin", ADMIN_PASSWORD).status_code == 302
    html = c.get("/system/status/").get_data(as_text=True)
    assert 'data-mode="inline"' in html
    assert 'id="queues"' not in html and 'id="workers"' not in html


# -- `flask crm jobs` -----------------------------------------------------------------------

def _flask(*args, timeout=60, **env):
    return subprocess.run(flask_cmd(*args), cwd=ROOT, env=subprocess_env(**env), capture_output=True,
                          text=True, timeout=timeout)


def test_cli_jobs_list_run_and_unknown(app):
    from app.jobs import PERIODIC

    listed = _flask("crm", "jobs", "list")
    assert listed.returncode == 0, listed.stderr[-2000:]
    names = [line.split()[0] for line in listed.stdout.splitlines() if line.strip()]
    assert names == list(PERIODIC)

    ran = _flask("crm", "jobs", "run", "session_cleanup")
    assert ran.returncode == 0, ran.stderr[-2000:]
    out = json.loads(ran.stdout.strip().splitlines()[-1])
    assert out["job"] == "session_cleanup" and isinstance(out["result"], int)
    from app.extensions import db
    from app.models import JobRun

    with app.app_context():
        manual = db.session.query(JobRun).filter_by(name=PERIODIC["session_cleanup"].func, mode="manual").all()
        assert [r.status for r in manual] == ["done"]

    unknown = _flask("crm", "jobs", "run", "no_such_job")
    assert unknown.returncode != 0
    assert "no_such_job" in unknown.stderr and "session_cleanup" in unknown.stderr


# -- `flask crm cron` -----------------------------------------------------------------------

def test_cron_enqueues_periodic_jobs_once_per_slot_even_with_two_schedulers(app, rq_worker, tmp_path):
    from rq.cron import get_cron_job_ids
    from rq.job import Job

    from app.extensions import db
    from app.jobs import PERIODIC
    from app.jobs.queue import get_redis
    from app.jobs.runner import slot_key
    from app.models import JobRun

    slots = {name: slot_key(job.interval) for name, job in PERIODIC.items()}
    with app.app_context():  # given: nothing has run in the current slots
        for name, job in PERIODIC.items():
            db.session.query(JobRun).filter(JobRun.name == job.func, JobRun.run_key.like("slot-%")).delete(
                synchronize_session=False)
        db.session.commit()
        conn = get_redis()
        before = {name: set(get_cron_job_ids(name, conn)) for name in PERIODIC}

    logs = [open(tmp_path / f"cron{i}.log", "w") for i in range(2)]
    procs = [subprocess.Popen(flask_cmd("crm", "cron"), cwd=ROOT, env=subprocess_env(), stdout=log,
                              stderr=subprocess.STDOUT) for log in logs]
    try:
        with app.app_context():
            def enqueued():
                return {n: set(get_cron_job_ids(n, conn)) - before[n] for n in PERIODIC}
            # both schedulers enqueue every interval job as they start
            ids = wait_for(lambda: (e := enqueued()) and all(len(v) >= 2 for v in e.values()) and e, 30,
                           "both cron schedulers to enqueue every periodic job")
            assert all(p.poll() is None for p in procs)

            def finished():
                jobs = {n: [Job.fetch(i, connection=conn) for i in v] for n, v in ids.items()}
                return all(j.get_status() == "finished" for js in jobs.values() for j in js) and jobs
            jobs = wait_for(finished, 30, "the worker to run the cron jobs")
    finally:
        for p in procs:
            p.send_signal(signal.SIGTERM)
        for p in procs:
            try:
                p.wait(10)
            except subprocess.TimeoutExpired:
                p.kill()
        for log in logs:
            log.close()

    for name, job in PERIODIC.items():
        results = [j.return_value() for j in jobs[name]]
        did_work = [r for r in results if r != {"skipped": True}]
        with app.app_context():
            runs = db.session.query(JobRun).filter(JobRun.name == job.func, JobRun.run_key.like("slot-%")).all()
        assert len(runs) == len({r.run_key for r in runs})
        assert all(r.status == "done" and r.attempts == 1 and r.mode == "rq" for r in runs)
        assert len(did_work) == len(runs), f"{name}: {results}"
        if slot_key(job.interval) == slots[name]:  # no slot boundary crossed during the test
            assert [r.run_key for r in runs] == [slots[name]]
            assert len(did_work) == 1 and len(results) - len(did_work) >= 1
