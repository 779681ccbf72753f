"""SLA clocks (SLA策略): deadlines counted in working time of a calendar, paused while a ticket
waits on the customer, and the periodic job that warns before a breach and escalates on it.

Times in the database are naive UTC; a calendar's working periods are local to its timezone.
Deadlines are computed once (on opening, on resuming after a pause) and stored, so the periodic
job is a pair of indexed SQL statements, not a calendar walk per ticket.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from flask_babel import lazy_gettext as _l
from sqlalchemy import and_, event, exists, or_, select
from sqlalchemy.orm import Session

from app.extensions import db
from app.models import SlaAlert, SlaPolicy, Team, Ticket, WorkCalendar
from app.models.service import OPEN_STATUSES

MAX_DAYS = 3660  # a calendar with no working time at all must not loop forever

ALERT_KINDS = {
    "first_response_warning": _l("First response due soon"),
    "first_response_breach": _l("First response overdue (escalated)"),
    "resolution_warning": _l("Resolution due soon"),
    "resolution_breach": _l("Resolution overdue (escalated)"),
}


class CalendarError(ValueError):
    pass


@dataclass(frozen=True)
class Clock:
    """A calendar in memory: answers 'working periods of this day' without the database."""

    tz: ZoneInfo
    weekdays: frozenset[int]
    periods: tuple[tuple[time, time], ...]
    off: frozenset[date]  # holidays
    on: frozenset[date]  # make-up working days

    def day_periods(self, day: date) -> tuple[tuple[time, time], ...]:
        working = day in self.on or (day.isoweekday() in self.weekdays and day not in self.off)
        return self.periods if working else ()

    def local(self, utc: datetime) -> datetime:
        """A stored (UTC) moment as the calendar's wall-clock time."""
        return self._local(utc)

    def _local(self, utc: datetime) -> datetime:
        return utc.replace(tzinfo=ZoneInfo("UTC")).astimezone(self.tz).replace(tzinfo=None)

    def _utc(self, local: datetime) -> datetime:
        return local.replace(tzinfo=self.tz).astimezone(ZoneInfo("UTC")).replace(tzinfo=None)

    def add(self, start: datetime, minutes: float) -> datetime:
        """The UTC moment ``minutes`` working minutes after ``start`` (UTC); negative goes back."""
        if minutes < 0:
            return self._back(start, -minutes)
        local, left = self._local(start), timedelta(minutes=minutes)
        day = local.date()
        for _ in range(MAX_DAYS):
            for a, b in self.day_periods(day):
                lo, hi = max(datetime.combine(day, a), local), datetime.combine(day, b)
                if hi <= lo:
                    continue
                if hi - lo >= left:
                    return self._utc(lo + left)
                left -= hi - lo
            day += timedelta(days=1)
        raise CalendarError("the calendar has no working time")

    def _back(self, end: datetime, minutes: float) -> datetime:
        local, left = self._local(end), timedelta(minutes=minutes)
        day = local.date()
        for _ in range(MAX_DAYS):
            for a, b in reversed(self.day_periods(day)):
                lo, hi = datetime.combine(day, a), min(datetime.combine(day, b), local)
                if hi <= lo:
                    continue
                if hi - lo >= left:
                    return self._utc(hi - left)
                left -= hi - lo
            day -= timedelta(days=1)
        raise CalendarError("the calendar has no working time")

    def between(self, a: datetime, b: datetime) -> float:
        """Working minutes from ``a`` to ``b`` (UTC); negative when b is before a."""
        if b < a:
            return -self.between(b, a)
        la, lb = self._local(a), self._local(b)
        total, day = timedelta(), la.date()
        while day <= lb.date():
            for p, q in self.day_periods(day):
                lo, hi = max(datetime.combine(day, p), la), min(datetime.combine(day, q), lb)
                if hi > lo:
                    total += hi - lo
            day += timedelta(days=1)
        return total.total_seconds() / 60


def parse_periods(text: str) -> tuple[tuple[time, time], ...]:
    out = []
    for part in (text or "").replace("，", ",").split(","):
        if not part.strip():
            continue
        try:
            a, b = (time.fromisoformat(x.strip()) for x in part.split("-"))
        except ValueError as exc:
            raise CalendarError(f"bad period '{part.strip()}' (use 09:00-12:00)") from exc
        if b <= a:
            raise CalendarError(f"period '{part.strip()}' ends before it starts")
        out.append((a, b))
    return tuple(sorted(out))


_CLOCKS: dict[int, tuple[float, Clock]] = {}
CLOCK_TTL = 60.0  # seconds: a calendar edited in another process counts within a minute


def clock_of(calendar: WorkCalendar) -> Clock:
    """The calendar as a Clock, cached per process (dropped at once when this process saves a
    calendar or holiday, within CLOCK_TTL otherwise)."""
    import time as _time

    hit = _CLOCKS.get(calendar.id)
    if hit is not None and _time.monotonic() - hit[0] < CLOCK_TTL:
        return hit[1]
    days = calendar.holidays
    clock = Clock(ZoneInfo(calendar.timezone or "Asia/Shanghai"),
                  frozenset(int(d) for d in (calendar.weekdays or "").replace("，", ",").split(",") if d.strip()),
                  parse_periods(calendar.periods), frozenset(h.day for h in days if not h.workday),
                  frozenset(h.day for h in days if h.workday))
    _CLOCKS[calendar.id] = (_time.monotonic(), clock)
    return clock


@event.listens_for(Session, "after_flush")
def _forget_clocks(session, flush_context) -> None:  # noqa: ARG001
    from app.models import Holiday

    if any(isinstance(o, (WorkCalendar, Holiday)) for o in (*session.new, *session.dirty, *session.deleted)):
        _CLOCKS.clear()


def policy_for(ticket: Ticket) -> SlaPolicy | None:
    """The most specific active policy for the ticket's type and priority."""
    rows = db.session.execute(
        select(SlaPolicy).where(SlaPolicy.active.is_(True), SlaPolicy.ticket_type_id == ticket.type_id,
                                or_(SlaPolicy.priority_id == ticket.priority_id, SlaPolicy.priority_id.is_(None)))
    ).scalars().all()
    return max(rows, key=lambda p: p.priority_id is not None, default=None)


def schedule(ticket: Ticket) -> None:
    """Set the ticket's deadlines and warning moments from its policy (pauses shift them)."""
    policy = ticket.sla_policy
    if policy is None:
        return
    clock = clock_of(policy.calendar)
    paused = ticket.paused_minutes or 0
    start = ticket.opened_at
    ticket.first_response_due = clock.add(start, policy.first_response_minutes + paused)
    ticket.resolution_due = clock.add(start, policy.resolution_minutes + paused)
    warn = policy.warn_before_minutes or 0
    ticket.first_response_warn_at = clock.add(ticket.first_response_due, -warn)
    ticket.resolution_warn_at = clock.add(ticket.resolution_due, -warn)


def start_clock(ticket: Ticket) -> None:
    ticket.sla_policy = policy_for(ticket)
    schedule(ticket)


def pause(ticket: Ticket, now: datetime) -> None:
    ticket.waiting_since = now


def resume(ticket: Ticket, now: datetime) -> None:
    """Waiting on the customer is over: the paused working time moves the deadlines."""
    if ticket.waiting_since is None:
        return
    if ticket.sla_policy is not None:
        ticket.paused_minutes = (ticket.paused_minutes or 0) + round(
            clock_of(ticket.sla_policy.calendar).between(ticket.waiting_since, now))
    ticket.waiting_since = None
    schedule(ticket)


@dataclass
class Deadline:
    label: object
    due: datetime | None
    done_at: datetime | None
    minutes_left: float | None  # working minutes; negative = overdue
    state: str  # ok / warning / breached / met / paused / none


def deadlines(ticket: Ticket, now: datetime | None = None) -> list[Deadline]:
    """What the ticket page shows: each deadline, working time left and breach status."""
    now = now or datetime.utcnow()
    policy = ticket.sla_policy
    clock = clock_of(policy.calendar) if policy is not None else None
    out = []
    for label, due, warn_at, done in (
            (_l("First response"), ticket.first_response_due, ticket.first_response_warn_at, ticket.first_responded_at),
            (_l("Resolution"), ticket.resolution_due, ticket.resolution_warn_at, ticket.resolved_at)):
        if due is None or clock is None:
            out.append(Deadline(label, None, done, None, "none"))
            continue
        if done is not None:
            out.append(Deadline(label, due, done, clock.between(done, due), "met" if done <= due else "breached"))
            continue
        at = ticket.waiting_since or now
        left = clock.between(at, due)
        if ticket.waiting_since is not None:
            state = "paused" if left >= 0 else "breached"
        else:
            state = "breached" if now > due else "warning" if warn_at and now >= warn_at else "ok"
        out.append(Deadline(label, due, None, left, state))
    return out


def risk(ticket: Ticket, now: datetime | None = None) -> str:
    """The worst state of the ticket's open deadlines: breached / warning / ok / none."""
    states = {d.state for d in deadlines(ticket, now)}
    for state in ("breached", "warning", "paused", "ok"):
        if state in states:
            return state
    return "none"


def handling_hours(ticket: Ticket, end: datetime) -> float | None:
    if ticket.sla_policy is None:
        return round((end - ticket.opened_at).total_seconds() / 3600, 2)
    minutes = clock_of(ticket.sla_policy.calendar).between(ticket.opened_at, end) - (ticket.paused_minutes or 0)
    return round(max(minutes, 0) / 60, 2)


# -- the periodic job ---------------------------------------------------------------------------

def _insert_alerts(kind: str, due_col, done_col, warn: bool, now: datetime) -> list[int]:
    """One INSERT .. SELECT: an alert row for every open, running ticket past the moment that
    has none of this kind yet. The unique (ticket_id, kind) makes a concurrent second run add
    nothing: it loses the race and its statement is retried without the taken rows."""
    cond = [Ticket.status.in_(OPEN_STATUSES), Ticket.waiting_since.is_(None), done_col.is_(None), due_col <= now,
            ~exists().where(and_(SlaAlert.ticket_id == Ticket.id, SlaAlert.kind == kind))]
    if warn:
        recipient = Ticket.handler_id
    else:  # escalate: the handling team's supervisor, else the handler
        recipient = db.func.coalesce(
            select(Team.supervisor_id).where(Team.id == Ticket.team_id).scalar_subquery(), Ticket.handler_id)
    from sqlalchemy import literal

    if db.session.get_bind().dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    else:
        from sqlalchemy.dialects.sqlite import insert
    stmt = insert(SlaAlert).from_select(
        ["ticket_id", "kind", "user_id", "created_at"],
        select(Ticket.id, literal(kind), recipient, literal(now)).where(*cond)).on_conflict_do_nothing().returning(SlaAlert.id)
    return list(db.session.execute(stmt).scalars())


def run_sla_check(now: datetime | None = None) -> dict:
    """Warn handlers before a breach and escalate to the team supervisor on breach, once each;
    each new alert is also a reminder in the recipient's 我的工作台 (same transaction)."""
    from app.services.reminders import sla_reminders

    now = now or datetime.utcnow()
    made = {
        "first_response_warning": _insert_alerts("first_response_warning", Ticket.first_response_warn_at,
                                                 Ticket.first_responded_at, True, now),
        "resolution_warning": _insert_alerts("resolution_warning", Ticket.resolution_warn_at, Ticket.resolved_at, True, now),
        "first_response_breach": _insert_alerts("first_response_breach", Ticket.first_response_due,
                                                Ticket.first_responded_at, False, now),
        "resolution_breach": _insert_alerts("resolution_breach", Ticket.resolution_due, Ticket.resolved_at, False, now),
    }
    counts = {kind: len(ids) for kind, ids in made.items()}
    counts["reminders"] = sla_reminders([i for ids in made.values() for i in ids])
    db.session.commit()
    return counts


def service_stats(user) -> dict:
    """The home page's service figures: my open tickets, and the SLA alerts addressed to me on
    tickets still open (newest first)."""
    from app.security.scopes import row_clause

    mine = db.session.execute(select(db.func.count(Ticket.id)).where(
        row_clause(Ticket), Ticket.handler_id == user.id, Ticket.status.in_(OPEN_STATUSES))).scalar()
    alerts = db.session.execute(
        select(SlaAlert).join(Ticket).where(SlaAlert.user_id == user.id, Ticket.status.in_(OPEN_STATUSES))
        .order_by(SlaAlert.id.desc()).limit(10)).scalars().all()
    from app.extensions import appbuilder

    return {"my_tickets": mine, "sla_alerts": alerts, "alert_labels": ALERT_KINDS,
            "can_my_tickets": bool(appbuilder.sm.has_access("can_list", "MyTicketModelView"))}
