"""What the 系统状态 page shows: job mode, queues, workers, failed jobs, recent runs."""
from __future__ import annotations

from typing import Any
from urllib.parse import urlparse

from flask import current_app
from sqlalchemy import text

from app.extensions import db
from app.jobs import PERIODIC, mode
from app.models import JobRun


def _masked_url(url: str) -> str:
    p = urlparse(url)
    netloc = p.hostname or ""
    if p.port:
        netloc += f":{p.port}"
    return f"{p.scheme}://{'***@' if p.password else ''}{netloc}{p.path}"


def status() -> dict[str, Any]:
    engine = db.engine
    info: dict[str, Any] = {
        "mode": mode(),
        "database": {"dialect": engine.dialect.name, "url": _masked_url(str(engine.url))},
        "queues": [], "workers": [], "failed": [], "redis_error": None,
        "periodic": [], "runs": db.session.query(JobRun).order_by(JobRun.started_at.desc()).limit(20).all(),
    }
    if engine.dialect.name == "sqlite":
        info["database"]["journal_mode"] = db.session.execute(text("PRAGMA journal_mode")).scalar()
    for job in PERIODIC.values():
        last = db.session.query(JobRun).filter_by(name=job.func).order_by(JobRun.started_at.desc()).first()
        info["periodic"].append({"job": job, "last": last})
    if info["mode"] == "rq":
        info["redis_url"] = _masked_url(current_app.config["REDIS_URL"])
        try:
            from rq import Worker
            from rq.registry import FailedJobRegistry, ScheduledJobRegistry, StartedJobRegistry

            from app.jobs.queue import all_queues, get_redis

            for q in all_queues():
                failed = FailedJobRegistry(queue=q)
                info["queues"].append({
                    "name": q.name, "queued": q.count, "started": StartedJobRegistry(queue=q).count,
                    "scheduled": ScheduledJobRegistry(queue=q).count, "failed": failed.count,
                })
                for job in q.job_class.fetch_many(failed.get_job_ids(0, 19), connection=q.connection):
                    if job is not None:
                        exc = (job.latest_result().exc_string if job.latest_result() else "") or ""
                        info["failed"].append({"id": job.id, "queue": q.name, "func": job.func_name,
                                               "ended_at": job.ended_at,
                                               "error": exc.strip().splitlines()[-1] if exc.strip() else ""})
            for w in Worker.all(connection=get_redis()):
                info["workers"].append({"name": w.name, "state": w.get_state(), "queues": ", ".join(w.queue_names())})
        except Exception as exc:  # Redis down: say so on the page instead of failing it
            info["redis_error"] = str(exc)
    return info
