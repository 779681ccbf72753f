"""Counting for big tables: lists and search count their matches only up to a cap past the page
shown (CRM_COUNT_CAP, default 1,000), then say "1,000+". Counting every match of a filter
over 1,000,000 customers costs more than the page itself; the cap keeps the count an index
range read of bounded length, while paging still works (the count reaches past the page)."""
from __future__ import annotations

from flask import current_app
from sqlalchemy import func, select

from app.extensions import db


class CappedCount(int):
    """A count that stopped at ``shown``: the value (shown + 1) pages like "there is more"; the
    text reads "1,000+"."""

    capped = True

    def __new__(cls, shown: int):
        obj = super().__new__(cls, shown + 1)
        obj.shown = shown
        return obj

    def __str__(self) -> str:
        return f"{self.shown:,}+"

    __html__ = __str__

    def __format__(self, spec: str) -> str:
        return str(self) if not spec else int.__format__(self, spec)


def count_cap() -> int:
    return int(current_app.config.get("CRM_COUNT_CAP", 1_000))


def capped_count(query, offset: int = 0) -> int:
    """How many rows ``query`` (a Select or an ORM Query, no LIMIT) gives, counting no further
    than ``offset`` + the cap: past that, a CappedCount."""
    limit = max(0, int(offset or 0)) + count_cap()
    n = db.session.execute(select(func.count()).select_from(query.limit(limit + 1).subquery())).scalar()
    return CappedCount(limit) if n > limit else n


def is_capped(count: int) -> bool:
    return getattr(count, "capped", False)
