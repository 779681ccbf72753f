"""Jobs: one registry, two ways to run.

With ``REDIS_URL`` a job is enqueued on RQ and run by ``flask crm worker`` (retries with
backoff; periodic jobs come from ``flask crm cron``, RQ's cron scheduler). Without it the same
function runs in-process, and ``python run.py`` ticks the periodic jobs itself. Either way a job
takes ids, runs inside an app context as the system user, and is recorded in ``crm_job_run``
under a run key, so a periodic slot runs once however many schedulers or workers see it.
"""
from __future__ import annotations

import hashlib
import importlib
import re
from dataclasses import dataclass
from typing import Any, Callable

from flask import current_app
from flask_babel import lazy_gettext as _l


@dataclass(frozen=True)
class PeriodicJob:
    name: str
    func: str  # "module:function"
    interval: int  # seconds between slots
    description: Any  # lazy string

    def callable(self) -> Callable[..., Any]:
        module, _, attr = self.func.partition(":")
        return getattr(importlib.import_module(module), attr)


# Later capabilities add their periodic jobs here (reminders, tagging rules, SLA clocks ...).
PERIODIC: dict[str, PeriodicJob] = {
    job.name: job
    for job in [
        PeriodicJob("session_cleanup", "app.security.sessions:purge_expired", 3600,
                    _l("Delete expired login sessions")),
        PeriodicJob("job_history_cleanup", "app.jobs.runner:purge_job_history", 86400,
                    _l("Delete job run records older than 90 days")),
        PeriodicJob("export_cleanup", "app.services.export:purge_expired", 3600,
                    _l("Delete export files past their expiry (CRM_EXPORT_KEEP_DAYS)")),
        PeriodicJob("import_cleanup", "app.services.importer:purge_uploads", 86400,
                    _l("Delete uploaded import files kept longer than CRM_IMPORT_KEEP_DAYS")),
        PeriodicJob("tagging_rules", "app.services.tag_rules:apply_all_rules", 86400,
                    _l("Apply the active tagging rules to every customer")),
        PeriodicJob("task_reminders", "app.services.reminders:task_reminders", 300,
                    _l("Remind of tasks coming due and overdue (marks them overdue)")),
        PeriodicJob("no_contact_reminders", "app.services.reminders:no_contact_reminders", 3600,
                    _l("Remind owners of customers not contacted for their level's number of days")),
        PeriodicJob("key_info_reminders", "app.services.reminders:key_info_reminders", 86400,
                    _l("Remind owners of customers whose contact info has not been updated for 30 days")),
        PeriodicJob("sla_check", "app.services.sla:run_sla_check", 300,
                    _l("Warn ticket handlers before an SLA deadline and escalate breaches to the supervisor")),
        PeriodicJob("feedback_mail", "app.services.mail_intake:read_mailbox", 300,
                    _l("Read the feedback mailbox (IMAP) into feedback")),
        PeriodicJob("satisfaction_followup", "app.services.satisfaction:send_due_surveys", 900,
                    _l("Send satisfaction links for feedback and tickets resolved in the last 24 hours")),
        PeriodicJob("feedback_reminders", "app.services.reminders:feedback_reminders", 3600,
                    _l("Remind handlers of feedback past its promised date")),
    ]
}


def mode() -> str:
    return "rq" if current_app.config.get("REDIS_URL") else "inline"


def job_id_for(func: str, run_key: str) -> str:
    """RQ job ids allow letters, digits, _ and -: a readable slug plus a hash against clashes."""
    raw = f"{func}-{run_key}"
    slug = re.sub(r"[^A-Za-z0-9_-]+", "_", raw)[:80]
    return f"{slug}-{hashlib.sha1(raw.encode()).hexdigest()[:10]}"


def enqueue(func: str, *args: Any, run_key: str, queue: str = "default") -> str:
    """Run ``func`` ("module:function", taking ids) once for ``run_key``.

    RQ mode: enqueued with job id ``func:run_key`` (enqueuing twice keeps one job) and retries
    with backoff. Inline mode: run now, in this process. Returns the job id.
    """
    from app.jobs import runner

    job_id = job_id_for(func, run_key)
    if mode() == "inline":
        runner.execute(func, run_key, list(args), mode="inline")
        return job_id
    from rq import Retry

    from app.jobs.queue import get_queue

    q = get_queue(queue)
    existing = q.fetch_job(job_id)
    if existing is not None and existing.get_status(refresh=True) in ("queued", "started", "scheduled", "deferred"):
        return job_id
    q.enqueue(runner.execute, func, run_key, list(args), "rq", job_id=job_id,
              retry=Retry(max=len(current_app.config["CRM_JOB_RETRY_INTERVALS"]),
                          interval=current_app.config["CRM_JOB_RETRY_INTERVALS"]),
              failure_ttl=7 * 86400, result_ttl=86400)
    return job_id
