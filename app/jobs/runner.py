"""Executes a job: app context, system user, run-once bookkeeping, failure logging."""
from __future__ import annotations

import importlib
import json
import logging
import os
import time
import traceback
from datetime import datetime, timedelta
from typing import Any

from flask import Flask, current_app, g, has_app_context
from sqlalchemy import update
from sqlalchemy.exc import IntegrityError

log = logging.getLogger(__name__)
_engine_pid: int | None = None
_app: Flask | None = None
STALE_AFTER = timedelta(hours=2)


def _get_app() -> Flask:
    global _app
    if has_app_context():
        return current_app._get_current_object()
    if _app is None:
        from app import create_app

        _app = create_app()
    return _app


def _fresh_connections() -> None:
    """A forked RQ work horse must not reuse its parent's database sockets."""
    global _engine_pid
    from app.extensions import db

    if _engine_pid != os.getpid():
        db.engine.dispose(close=False)
        _engine_pid = os.getpid()


def _claim(name: str, run_key: str, mode: str):
    """Insert the run row, or take over a failed/stale one. None when it is done or running."""
    from app.extensions import db
    from app.models import JobRun

    try:
        run = JobRun(name=name, run_key=run_key, status="running", mode=mode)
        db.session.add(run)
        db.session.commit()
        return run
    except IntegrityError:
        db.session.rollback()
    now = datetime.utcnow()
    res = db.session.execute(
        update(JobRun)
        .where(JobRun.name == name, JobRun.run_key == run_key)
        .where((JobRun.status == "failed") | ((JobRun.status == "running") & (JobRun.started_at < now - STALE_AFTER)))
        .values(status="running", started_at=now, mode=mode, attempts=JobRun.attempts + 1, error=None)
    )
    db.session.commit()
    if res.rowcount != 1:
        return None
    return db.session.query(JobRun).filter_by(name=name, run_key=run_key).one()


def _resolve(func: str):
    module, _, attr = func.partition(":")
    return getattr(importlib.import_module(module), attr)


def execute(func: str, run_key: str, args: list[Any] | None = None, mode: str = "inline") -> Any:
    """Run ``func(*args)`` once for ``run_key``. Re-raises failures so RQ retries them."""
    app = _get_app()
    with app.app_context():
        _fresh_connections()
        from app.extensions import db

        from app.services.actor import system_user

        g.user = system_user()
        run = _claim(func, run_key, mode)
        if run is None:
            log.info("job %s [%s] already done or running elsewhere: skipped", func, run_key)
            return {"skipped": True}
        try:
            result = _resolve(func)(*(args or []))
        except Exception:
            db.session.rollback()
            run.status, run.error, run.finished_at = "failed", traceback.format_exc()[-4000:], datetime.utcnow()
            db.session.commit()
            log.exception("job %s [%s] failed", func, run_key)
            raise
        run.status, run.finished_at = "done", datetime.utcnow()
        run.result = json.dumps(result, ensure_ascii=False, default=str)[:4000]
        db.session.commit()
        return result


def slot_key(interval: int, now: float | None = None) -> str:
    """The periodic slot a moment falls in: every scheduler computes the same key."""
    now = time.time() if now is None else now
    start = int(now // interval) * interval
    return "slot-" + datetime.utcfromtimestamp(start).strftime("%Y%m%dT%H%M%S")


def run_periodic(name: str) -> Any:
    """Entry point that RQ's cron scheduler enqueues: run the named job for the current slot."""
    from app.jobs import PERIODIC

    job = PERIODIC[name]
    return execute(job.func, slot_key(job.interval), [], mode="rq" if has_redis() else "inline")


def has_redis() -> bool:
    return bool(_get_app().config.get("REDIS_URL"))


def purge_job_history(days: int = 90) -> int:
    from app.extensions import db
    from app.models import JobRun

    n = db.session.query(JobRun).filter(JobRun.started_at < datetime.utcnow() - timedelta(days=days)).delete()
    db.session.commit()
    return n
