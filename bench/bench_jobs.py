"""Job throughput: our job runner on RQ (run-once bookkeeping in crm_job_run, app context,
system user) against raw RQ running a no-op function, measured in the same run.

    REDIS_URL=redis://127.0.0.1:6379/9 .venv/bin/python bench/bench_jobs.py [N]

Uses a throwaway SQLite instance dir and the given Redis DB (flushed). Prints jobs/s for both and
the ratio. Both use RQ's SimpleWorker in burst mode (no fork per job), so the difference is our
per-job overhead, not process start-up.
"""
from __future__ import annotations

import os
import platform
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("CRM_INSTANCE_DIR", tempfile.mkdtemp(prefix="crm-bench-"))
os.environ.setdefault("CRM_ADMIN_PASSWORD", "Bench-Admin-Pass-2024")
os.environ.pop("DATABASE_URL", None) if os.environ.get("BENCH_SQLITE") else None


def noop(*_args) -> None:
    return None


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 500
    if not os.environ.get("REDIS_URL"):
        sys.exit("set REDIS_URL (a Redis DB this benchmark may flush)")
    from rq import Queue, SimpleWorker

    from app import create_app
    from app.jobs import enqueue
    from app.jobs.queue import get_redis
    from app.services.bootstrap import initialise

    app = create_app()
    with app.app_context():
        initialise()
        conn = get_redis()
        conn.flushdb()

        q = Queue("default", connection=conn)
        t0 = time.perf_counter()
        for i in range(n):
            q.enqueue("bench.bench_jobs.noop", i)
        t_enq_raw = time.perf_counter() - t0
        t0 = time.perf_counter()
        SimpleWorker([q], connection=conn).work(burst=True, logging_level="WARNING")
        t_raw = time.perf_counter() - t0

        t0 = time.perf_counter()
        for i in range(n):
            enqueue("bench.bench_jobs:noop", i, run_key=f"bench-{i}")
        t_enq_ours = time.perf_counter() - t0
        t0 = time.perf_counter()
        SimpleWorker([q], connection=conn).work(burst=True, logging_level="WARNING")
        t_ours = time.perf_counter() - t0
        from app.extensions import db
        from app.models import JobRun

        done = db.session.query(JobRun).filter(JobRun.run_key.like("bench-%"), JobRun.status == "done").count()

    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}, "
          f"database {app.config['SQLALCHEMY_DATABASE_URI'].split(':')[0]}, {n} no-op jobs")
    print(f"{'':28}{'enqueue/s':>12}{'run/s':>12}")
    print(f"{'raw RQ (SimpleWorker)':28}{n / t_enq_raw:12.0f}{n / t_raw:12.0f}")
    print(f"{'ours (run-once, app ctx)':28}{n / t_enq_ours:12.0f}{n / t_ours:12.0f}")
    print(f"ratio ours/raw: enqueue {t_enq_raw / t_enq_ours:.2f}, run {t_raw / t_ours:.2f}; "
          f"runs recorded done: {done}/{n}")


if __name__ == "__main__":
    main()
