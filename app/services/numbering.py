"""Allocate the next number of a sequence (客户编号 C20240501001, ...).

The increment is one UPDATE inside the caller's transaction, so the row lock (PostgreSQL) or
the write lock (SQLite) serialises concurrent writers; a missing counter row is inserted and a
lost insert race is retried. Numbers are never reused.
"""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError

from app.extensions import db
from app.models import SequenceCounter

_PERIODS = {"daily": "%Y%m%d", "monthly": "%Y%m", "yearly": "%Y", "never": None}


def next_value(rule_key: str, period: str) -> int:
    session = db.session
    for _attempt in range(5):
        res = session.execute(
            update(SequenceCounter)
            .where(SequenceCounter.rule_key == rule_key, SequenceCounter.period == period)
            .values(value=SequenceCounter.value + 1)
        )
        if res.rowcount:
            return session.execute(
                select(SequenceCounter.value).where(
                    SequenceCounter.rule_key == rule_key, SequenceCounter.period == period)
            ).scalar_one()
        try:
            with session.begin_nested():
                session.add(SequenceCounter(rule_key=rule_key, period=period, value=1))
            return 1
        except IntegrityError:
            continue  # another writer created the row first: increment it instead
    raise RuntimeError(f"could not allocate a number for {rule_key}")


def next_number(prefix: str, reset: str = "daily", width: int = 3, rule_key: str | None = None,
                now: datetime | None = None) -> str:
    """prefix + date part + zero-padded sequence, e.g. C + 20240501 + 001."""
    now = now or datetime.now()
    fmt = _PERIODS[reset]
    period = now.strftime(fmt) if fmt else "-"
    value = next_value(rule_key or prefix, period)
    return f"{prefix}{period if fmt else ''}{value:0{width}d}"
