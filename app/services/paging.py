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


def merged_page(keys, pk, arms, offset: int, size: int) -> tuple[int, list]:
    """The capped count of ``keys`` (a query of ``pk`` alone, holding the OR of ``arms``
    already) and the ids (newest first) of the page at ``offset``, read over two disjoint arms:
    a big one read in id order by an index (a department's customers: scopes.department_arms)
    and a small one (its members' customers filed elsewhere). Each arm is counted apart; the
    small arm's first offset + size ids are read whole (none when it is empty), the big arm only
    from offset - (that many), so its deep OFFSET still skips index entries; both merged here."""
    limit = offset + count_cap()
    sizes = [db.session.execute(select(func.count()).select_from(keys.filter(arm).limit(limit + 1).subquery())).scalar()
             for arm in arms]
    count = CappedCount(limit) if sum(sizes) > limit else sum(sizes)
    big, small = (keys.filter(arm).order_by(pk.desc()) for arm in arms)
    few = [r[0] for r in small.limit(offset + size)] if sizes[1] else []
    start = max(0, offset - len(few))
    window = [r[0] for r in big.offset(start).limit(offset + size - start)]
    if start:
        if not window:  # the big arm ends before the page: so does the whole
            return count, []
        # the small arm's ids above the window all lie before the page (each has fewer than
        # offset - start small and at most start big ids above it)
        base = start + sum(1 for i in few if i > window[0])
        few = [i for i in few if i < window[0]]
    else:
        base = 0
    return count, sorted(window + few, reverse=True)[offset - base:offset - base + size]
