"""Service tickets (服务工单) imported as customers, contacts and interactions are
(app/services/importer.py): a company moving from another helpdesk brings its open and closed
tickets. What opening a ticket in the UI does (app/services/tickets.py) is done for each one:

* its number kept when the file gives one (not already taken, not repeated in the file), else
  the numbering rule gives one (in blocks, as for customers);
* its SLA policy and deadlines computed from its opening time by the SLA code the UI uses
  (so an old open ticket is overdue at once and the SLA alert job treats it like any other);
* handling hours of a resolved ticket as the flow computes them;
* a TicketEvent "imported" (file and batch no.) on its timeline;
* an open ticket with neither handler nor team goes through the automatic dispatch of a new
  ticket (one by one, through the ORM: rules, loads, round-robin); one with a team stays in
  that team's queue; the handlers' open-ticket counters move with them.

Times in the file are local (CRM_TIMEZONE, else BABEL_DEFAULT_TIMEZONE) and stored in UTC like
every ticket time.
"""
from __future__ import annotations

from datetime import datetime, timedelta
from types import SimpleNamespace
from zoneinfo import ZoneInfo

from flask import current_app
from flask_babel import force_locale, gettext
from sqlalchemy import delete, select, update
from sqlalchemy.orm import selectinload

from app.extensions import db
from app.models import AgentProfile, Customer, FieldChange, Team, Ticket, TicketEvent
from app.models.importing import ImportBatch, ImportItem
from app.models.service import ARCHIVED, ASSIGNED, CLOSED, IN_PROGRESS, NEW, OPEN_STATUSES, PENDING_REVIEW, STATUSES
from app.services import assignment, history, sla, tickets
from app.services.bulk import insert_columns, insert_rows, reserve_ids
from app.services.fields import N_, FieldSpec
from app.services.import_kinds import (
    _ITEM_COLUMNS, _ONE_OF, _UNKNOWN, CUSTOMER_REF, SLICE, _history_rows, _items, _problem, _slices,
    resolve_customers,
)
from app.services.importer import _HISTORY_COLUMNS, KINDS, Cancelled, Checker, ImportKind, Row, header_key
from app.services.numbering import next_numbers

TIMES = ("opened_at", "first_responded_at", "resolved_at", "closed_at")  # in the order they happen

TICKET_COLUMNS: tuple[FieldSpec, ...] = (
    FieldSpec("ticket_no", "text", "ticket", N_("Ticket No."),
              synonyms=("工单编号", "工单号", "单号", "ticket no", "ticket number", "ticket id")),
) + CUSTOMER_REF + (
    FieldSpec("title", "text", "ticket", N_("Subject"), required=True,
              synonyms=("标题", "工单标题", "问题", "title", "summary")),
    FieldSpec("description", "long_text", "ticket", N_("Description"),
              synonyms=("描述", "问题描述", "详情", "内容", "details")),
    FieldSpec("type", "single_choice", "ticket", N_("Type"), dictionary="ticket_type", required=True,
              synonyms=("类型", "工单类型", "ticket type")),
    FieldSpec("priority", "single_choice", "ticket", N_("Priority"), dictionary="priority",
              synonyms=("优先级", "紧急程度", "priority level")),
    FieldSpec("status", "text", "ticket", N_("Status"), synonyms=("状态", "工单状态", "ticket status", "state")),
    FieldSpec("team", "text", "ticket", N_("Team"), synonyms=("处理团队", "团队", "处理组", "team")),
    FieldSpec("handler", "user", "ticket", N_("Handler"),
              synonyms=("处理人", "受理人", "负责人", "assignee", "agent")),
    FieldSpec("opened_at", "timestamp", "ticket", N_("Opened"),
              synonyms=("创建时间", "开单时间", "提交时间", "created at", "created", "opened at")),
    FieldSpec("first_responded_at", "timestamp", "ticket", N_("First response"),
              synonyms=("首次响应时间", "首次响应", "响应时间", "first response at", "first responded at")),
    FieldSpec("resolved_at", "timestamp", "ticket", N_("Resolved at"),
              synonyms=("解决时间", "resolved", "resolution time")),
    FieldSpec("closed_at", "timestamp", "ticket", N_("Closed at"),
              synonyms=("关闭时间", "归档时间", "closed", "closed time")),
    FieldSpec("satisfaction_score", "integer", "ticket", N_("Satisfaction Score"),
              synonyms=("满意度评分", "满意度", "评分", "satisfaction", "rating")),
    FieldSpec("satisfaction_comment", "long_text", "ticket", N_("Satisfaction Comment"),
              synonyms=("满意度评价", "评价", "客户评价", "comment")),
)

# Other helpdesks' words for our states (besides our own labels, in Chinese and English).
STATUS_SYNONYMS = {"待处理": NEW, "未分配": NEW, "open": NEW, "处理中": IN_PROGRESS, "进行中": IN_PROGRESS,
                   "已解决": ARCHIVED, "已完成": ARCHIVED, "resolved": ARCHIVED, "solved": ARCHIVED,
                   "done": ARCHIVED, "待确认": PENDING_REVIEW}
NEEDS_HANDLER = (ASSIGNED, IN_PROGRESS, PENDING_REVIEW)
NEEDS = {PENDING_REVIEW: ("resolved_at",), ARCHIVED: ("resolved_at", "closed_at"), CLOSED: ("closed_at",)}


def status_lookup() -> dict[str, str]:
    """header_key(label or code) -> status: the labels the UI shows in both languages, the
    codes, then the synonyms."""
    out: dict[str, str] = {}
    for loc in ("zh", "en"):
        with force_locale(loc):
            for status in STATUSES:
                out.setdefault(header_key(tickets.status_label(status)), status)
    for status in STATUSES:
        out.setdefault(header_key(status), status)
    for word, status in STATUS_SYNONYMS.items():
        out.setdefault(header_key(word), status)
    return out


def _tz() -> ZoneInfo:
    return ZoneInfo(current_app.config.get("CRM_TIMEZONE") or current_app.config.get("BABEL_DEFAULT_TIMEZONE")
                    or "Asia/Shanghai")


def _utc(local: datetime, tz: ZoneInfo) -> datetime:
    return local.replace(tzinfo=tz).astimezone(ZoneInfo("UTC")).replace(tzinfo=None)


def _lookups(checker: Checker) -> dict:
    """Loaded once per batch: statuses, teams by name, who may handle tickets, agents' teams."""
    seen = checker.seen
    if "statuses" not in seen:
        teams: dict[str, Team] = {}
        for team in db.session.execute(select(Team)).scalars():
            for name in (team.name, team.name_en, team.key):
                if name:
                    teams.setdefault(header_key(name), team)
        seen.update(statuses=status_lookup(), teams=teams, handlers=assignment.handler_user_ids(),
                    agent_team=dict(db.session.execute(select(AgentProfile.user_id, AgentProfile.team_id)).all()),
                    ticket_no={}, tz=_tz())
    return seen


def _ticket_checks(checker: Checker, rows: list[Row]) -> None:
    """The customer; the ticket no. new; status, team and handler known and consistent; the
    times in the past, in order, and those the status needs present."""
    resolve_customers(checker, rows)
    col_of, seen = checker.col_of, _lookups(checker)

    def cell(r: Row, key: str):
        return r.cells[col_of[key][0]] if key in col_of else ""

    _check_numbers(checker, rows, seen["ticket_no"])
    now, tz = datetime.utcnow(), seen["tz"]
    latest = now + timedelta(minutes=1)
    for r in rows:
        v = r.values
        if v.get("status"):
            status = seen["statuses"].get(header_key(v["status"]))
            if status is None:
                _problem(r, col_of, "status", v["status"], "unknown_status",
                         N_("'%(value)s' is not a ticket status: use one of %(choices)s."),
                         value=v["status"], choices={loc: _both_labels(loc) for loc in ("zh", "en")})
            v["status"] = status
        else:
            v["status"] = NEW
        if v.get("team"):
            team = seen["teams"].get(header_key(v["team"]))
            if team is None:
                _problem(r, col_of, "team", v["team"], "unknown_team", N_("There is no team '%(value)s'."),
                         value=v["team"])
            v["team"] = team
        handler = v.get("handler")
        if handler is not None:
            agent_team = seen["agent_team"].get(handler.id)
            if handler.id not in seen["handlers"]:
                _problem(r, col_of, "handler", cell(r, "handler"), "not_handler",
                         N_("%(user)s cannot handle tickets: their role does not include handling tickets."),
                         user=str(handler))
            elif v.get("team") is not None and agent_team is not None and agent_team != v["team"].id:
                _problem(r, col_of, "handler", cell(r, "handler"), "not_in_team",
                         N_("%(user)s is not an agent of team %(team)s."), user=str(handler), team=str(v["team"]))
        if v["status"] in NEEDS_HANDLER and handler is None and not _has_error(r, col_of, "handler"):
            _problem(r, col_of, "status" if "status" in col_of else "handler", cell(r, "status"), "needs_handler",
                     N_("A ticket that is %(status)s needs a handler (column %(column)s)."),
                     status=_label(v["status"]), column=_column_name(col_of, "handler"))
        for key in TIMES:
            if v.get(key) is not None:
                v[key] = _utc(v[key], tz)
                if v[key] > latest:
                    _problem(r, col_of, key, cell(r, key), "future_date",
                             N_("%(value)s is in the future: a ticket's times must have happened."),
                             value=text_time(cell(r, key)))
        _check_times(r, col_of, cell)


def _has_error(r: Row, col_of, key: str) -> bool:
    return key in col_of and any(e["col"] == col_of[key][0] for e in r.errors)


def _label(status: str) -> dict:
    out = {}
    for loc in ("zh", "en"):
        with force_locale(loc):
            out[loc] = tickets.status_label(status)
    return out


def _both_labels(loc: str) -> str:
    with force_locale(loc):
        return ("、" if loc == "zh" else ", ").join(tickets.status_label(s) for s in STATUSES)


def _column_name(col_of, key: str) -> dict:
    """The file's header of a column, else the column's label in both languages."""
    if key in col_of:
        return col_of[key][1]
    spec = next(s for s in TICKET_COLUMNS if s.key == key)
    return dict(zip(("zh", "en"), spec.labels()))


def text_time(v) -> str:
    return v.strftime("%Y-%m-%d %H:%M") if isinstance(v, datetime) else str(v)


def _check_times(r: Row, col_of, cell) -> None:
    """A status's times present (a closed one its closing time ...), an open ticket without
    resolution or closing times, and no time before the one it follows (reported on the later)."""
    v, status = r.values, r.values["status"]
    for key in NEEDS.get(status, ()):
        if v.get(key) is None and not _has_error(r, col_of, key):
            _problem(r, col_of, key if key in col_of else "status", cell(r, key) or cell(r, "status"), "missing_time",
                     N_("A ticket that is %(status)s needs %(column)s."), status=_label(status),
                     column=_column_name(col_of, key))
    unexpected = ("resolved_at", "closed_at") if status in (NEW, ASSIGNED, IN_PROGRESS) else \
        ("closed_at",) if status == PENDING_REVIEW else ()
    for key in unexpected:
        if v.get(key) is not None:
            _problem(r, col_of, key, cell(r, key), "open_with_time",
                     N_("A ticket that is %(status)s has no %(column)s: leave it empty or give the status."),
                     status=_label(status), column=_column_name(col_of, key))
    before = None
    for key in TIMES:
        if v.get(key) is None:
            continue
        if before is not None and v[key] < v[before]:
            _problem(r, col_of, key, cell(r, key), "time_order", N_("%(column)s is before %(earlier)s."),
                     column=_column_name(col_of, key), earlier=_column_name(col_of, before))
        before = key
    score = v.get("satisfaction_score")
    if score is not None and not 1 <= score <= 5:
        _problem(r, col_of, "satisfaction_score", cell(r, "satisfaction_score"), "bad_score",
                 N_("The satisfaction score is a whole number from 1 to 5."))


def _check_numbers(checker: Checker, rows: list[Row], first: dict[str, int]) -> None:
    col_of = checker.col_of
    given = []
    for r in rows:
        no = r.values.get("ticket_no")
        if not no:
            continue
        earlier = first.setdefault(no, r.row)
        if earlier != r.row:
            _problem(r, col_of, "ticket_no", no, "duplicate_in_file", N_("Same ticket no. as row %(row)s of this file."),
                     row=earlier)
        else:
            given.append(r)
    taken: set[str] = set()
    for part in _slices({r.values["ticket_no"] for r in given}):
        taken.update(db.session.execute(select(Ticket.ticket_no).where(Ticket.ticket_no.in_(part))).scalars())
    for r in given:
        if r.values["ticket_no"] in taken:
            _problem(r, col_of, "ticket_no", r.values["ticket_no"], "duplicate_existing",
                     N_("Ticket %(value)s already exists."), value=r.values["ticket_no"])


def _save_tickets(rows: list[Row], batch: ImportBatch, user, specs, progress, cancelled,  # noqa: ARG001
                  offset: int) -> tuple[int, int]:
    """Bulk inserts column by column (tickets, their import events, items, field history), the
    handlers' open-ticket counters in one UPDATE each, then the automatic dispatch of open
    tickets that have neither handler nor team, one by one through the ORM."""
    if cancelled():
        raise Cancelled()
    now, n, conn = datetime.utcnow(), len(rows), db.session.connection()
    table = Ticket.__table__
    agent_team = _agent_teams()
    records, policies = [], {}
    for r in rows:
        v = r.values
        status = ASSIGNED if v["status"] == NEW and v.get("handler") is not None else v["status"]
        team = v.get("team")
        team_id = team.id if team is not None else agent_team.get(getattr(v.get("handler"), "id", None))
        t = SimpleNamespace(customer=SimpleNamespace(customer_no=v["_customer"][1]), customer_id=v["_customer"][0],
                            type=v["type"], type_id=v["type"].id, priority_id=getattr(v.get("priority"), "id", None),
                            opened_at=v.get("opened_at") or now, paused_minutes=0, status=status, team_id=team_id,
                            first_response_due=None, resolution_due=None, first_response_warn_at=None,
                            resolution_warn_at=None, handling_hours=None)
        key = (t.type_id, t.priority_id)
        if key not in policies:
            policies[key] = sla.policy_for(t)
        t.sla_policy = policies[key]
        sla.schedule(t)
        if v.get("resolved_at") is not None:
            t.handling_hours = sla.handling_hours(t, v["resolved_at"])
        records.append(t)
    missing = [i for i, r in enumerate(rows) if not r.values.get("ticket_no")]
    numbers = dict(zip(missing, next_numbers("ticket", [records[i] for i in missing], now)))
    departments = _team_departments()
    data: dict[str, list] = {
        "ticket_no": [r.values.get("ticket_no") or numbers[i] for i, r in enumerate(rows)],
        "customer_id": [t.customer_id for t in records], "type_id": [t.type_id for t in records],
        "priority_id": [t.priority_id for t in records], "status": [t.status for t in records],
        "team_id": [t.team_id for t in records],
        "handler_id": [getattr(r.values.get("handler"), "id", None) for r in rows],
        "department_id": [departments.get(t.team_id) or user.department_id for t in records],
        "sla_policy_id": [getattr(t.sla_policy, "id", None) for t in records],
        "opened_at": [t.opened_at for t in records], "paused_minutes": [0] * n, "version": [1] * n,
        "handling_hours": [t.handling_hours for t in records],
    }
    for key in ("first_response_due", "resolution_due", "first_response_warn_at", "resolution_warn_at"):
        data[key] = [getattr(t, key) for t in records]
    for key in ("title", "description", "first_responded_at", "resolved_at", "closed_at", "satisfaction_score",
                "satisfaction_comment"):
        data[key] = [r.values.get(key) for r in rows]
    data["created_on"] = data["changed_on"] = [now] * n
    data["created_by_fk"] = data["changed_by_fk"] = [user.id] * n
    ids = data["id"] = reserve_ids(conn, table, n)
    insert_columns(conn, table, data)
    comment = gettext("Imported from %(file)s (import batch #%(batch)s)", file=batch.file_name, batch=batch.id)
    insert_rows(conn, TicketEvent.__table__, ("ticket_id", "at", "user_id", "action", "to_status", "comment"),
                [(i, now, user.id, "import", s, comment) for i, s in zip(ids, data["status"])])
    _move_loads(data["handler_id"], data["status"], conn)
    insert_rows(conn, ImportItem.__table__, _ITEM_COLUMNS, _items(batch, "ticket", rows, ids))
    insert_rows(conn, FieldChange.__table__, _HISTORY_COLUMNS, _history_rows(
        history.changeset_id(db.session), "create", "ticket",
        [(i, f"{no} {r.values['title']}", *reversed(r.values["_customer"]))
         for i, no, r in zip(ids, data["ticket_no"], rows)], f"{batch.file_name} (#{batch.id})", user.id, now))
    _dispatch([i for i, s, h, t in zip(ids, data["status"], data["handler_id"], data["team_id"])
               if s == NEW and h is None and t is None], now)
    progress(saved=offset + n)
    return n, 0


def _agent_teams() -> dict[int, int]:
    return dict(db.session.execute(select(AgentProfile.user_id, AgentProfile.team_id)).all())


def _team_departments() -> dict[int, int]:
    return dict(db.session.execute(select(Team.id, Team.department_id)).all())


def _move_loads(handlers: list, statuses: list, conn, sign: int = 1) -> None:
    """Each handler's open-ticket counter up (or down) by the open tickets given them."""
    delta: dict[int, int] = {}
    for h, s in zip(handlers, statuses):
        if h is not None and s in OPEN_STATUSES:
            delta[h] = delta.get(h, 0) + sign
    for uid, d in sorted(delta.items()):
        conn.execute(update(AgentProfile).where(AgentProfile.user_id == uid)
                     .values(open_tickets=AgentProfile.open_tickets + d))


def _dispatch(ids: list[int], now: datetime) -> None:
    """What opening a ticket in the UI does next: the assignment rules, one ticket at a time
    (each choice sees the loads the previous ones left)."""
    for part in _slices(ids):
        found = db.session.execute(select(Ticket).options(selectinload(Ticket.events)).where(Ticket.id.in_(part))
                                   .order_by(Ticket.id)).scalars().all()
        customers = {c.id: c for c in db.session.execute(
            select(Customer).options(selectinload(Customer.region)).where(
                Customer.id.in_({t.customer_id for t in found}))).scalars()}
        with db.session.no_autoflush:
            for ticket in found:
                tickets.dispatch(ticket, customers[ticket.customer_id], now)
                if ticket.handler_id is not None:
                    db.session.flush()  # the handler's load counts in the next choice
    db.session.flush()


def _undo_tickets(batch: ImportBatch, items: list[ImportItem], user) -> tuple[int, int]:
    """The batch's tickets deleted with their events, alerts and reminders (the database
    cascades), their handlers' counters down again, a field history delete row each."""
    created = [i for i in items if i.action == "create" and i.entity == "ticket"]
    now, changeset, conn = datetime.utcnow(), history.changeset_id(db.session), db.session.connection()
    removed = 0
    db.session.flush()
    for start in range(0, len(created), SLICE):
        part = created[start:start + SLICE]
        found = db.session.execute(select(Ticket.id, Ticket.ticket_no, Ticket.handler_id, Ticket.status)
                                   .where(Ticket.id.in_([i.entity_id for i in part]))).all()
        _move_loads([f.handler_id for f in found], [f.status for f in found], conn, sign=-1)
        conn.execute(delete(Ticket.__table__).where(Ticket.__table__.c.id.in_([f.id for f in found])))
        nos = {f.id: f.ticket_no for f in found}
        insert_rows(conn, FieldChange.__table__, _HISTORY_COLUMNS, [
            (changeset, "delete", "ticket", i.entity_id, nos[i.entity_id], i.customer_no, i.customer_id, "imported",
             f"{batch.file_name} (#{batch.id})", user.id, now) for i in part if i.entity_id in nos])
        removed += len(found)
    db.session.expire_all()
    return removed, 0


def _template_lists() -> dict[str, list[str]]:
    """The template's dropdowns: the states as the ticket pages name them, the teams by name."""
    return {"status": [str(tickets.status_label(status)) for status in STATUSES],
            "team": [name for (name,) in db.session.execute(select(Team.name).order_by(Team.id))]}


KINDS["tickets"] = ImportKind("tickets", N_("Service ticket"), N_("Service Tickets"), lambda: list(TICKET_COLUMNS),
                              _ticket_checks, _save_tickets, _undo_tickets, _UNKNOWN, Ticket.__table__, _ONE_OF,
                              add_view="TicketModelView", needs=(assignment.ASSIGN, assignment.REVIEW),
                              template_lists=_template_lists)
