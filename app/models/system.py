"""Bookkeeping for seeds and jobs: which seeded record is which, and which job ran when."""
from __future__ import annotations

from datetime import datetime

from flask_appbuilder import Model
from sqlalchemy import Boolean, Column, DateTime, Integer, String, Text, UniqueConstraint


class SeedRecord(Model):
    """Maps a seed's stable key to the row it created, so loading twice changes nothing."""

    __tablename__ = "crm_seed_record"
    __table_args__ = (UniqueConstraint("kind", "key", name="uq_seed_record_kind_key"),)
    id = Column(Integer, primary_key=True)
    kind = Column(String(64), nullable=False)
    key = Column(String(200), nullable=False)
    record_id = Column(Integer, nullable=False)
    source = Column(String(255), nullable=False)
    noupdate = Column(Boolean, nullable=False, default=False)
    loaded_at = Column(DateTime, nullable=False, default=datetime.utcnow)


class JobRun(Model):
    """One run of a job. The unique (name, run_key) makes a periodic slot run once, even when
    two schedulers enqueue it or a worker retries it."""

    __tablename__ = "crm_job_run"
    __table_args__ = (UniqueConstraint("name", "run_key", name="uq_job_run_name_key"),)
    id = Column(Integer, primary_key=True)
    name = Column(String(100), nullable=False, index=True)
    run_key = Column(String(100), nullable=False)
    status = Column(String(20), nullable=False, default="running")  # running/done/failed
    mode = Column(String(20), nullable=False)  # rq / inline
    started_at = Column(DateTime, nullable=False, default=datetime.utcnow)
    finished_at = Column(DateTime)
    attempts = Column(Integer, nullable=False, default=1)
    result = Column(Text)
    error = Column(Text)
