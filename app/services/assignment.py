"""Automatic assignment (自动分派): rules (data, crm_assignment_rule) choose a team from the
ticket's type, the customer's industry/region/level and keywords; within the team the
least-loaded member (or the next one, round-robin) with the needed skill, serving the customer's
region, not away, and allowed to handle tickets, gets it.

The load is a counter per agent (crm_agent_profile.open_tickets), not a COUNT per new ticket:
every flush that gives a ticket a handler, takes it away, or moves it between open and finished
states adds or subtracts 1 with an atomic UPDATE in the same transaction, so concurrent openings
and transitions keep it exact (``recount_loads`` rebuilds it from the tickets)."""
from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import event, func, inspect, select, update
from sqlalchemy.orm import Session

from app.extensions import appbuilder, db
from app.models import AgentProfile, AssignmentRule, CrmUser, Ticket
from app.models.service import OPEN_STATUSES

HANDLE = ("can_handle_ticket", "ServiceDesk")  # who may be a ticket's handler
ASSIGN = ("can_assign_ticket", "ServiceDesk")  # supervisors: assign and reassign
REVIEW = ("can_review_ticket", "ServiceDesk")  # supervisors: approve, send back, close, reopen
DESK_PERMISSIONS = (HANDLE, ASSIGN, REVIEW)


@dataclass
class Choice:
    rule: AssignmentRule | None
    handler_id: int | None


def _codes(text: str | None) -> set[str]:
    return {c.strip().lower() for c in (text or "").replace("，", ",").split(",") if c.strip()}


def _matches(rule: AssignmentRule, ticket: Ticket, customer) -> bool:
    for attr, value in (("ticket_type_id", ticket.type_id), ("industry_id", customer.industry_id),
                        ("region_id", customer.region_id), ("level_id", customer.level_id)):
        wanted = getattr(rule, attr)
        if wanted is not None and wanted != value:
            return False
    words = _codes(rule.keywords)
    text = f"{ticket.title or ''} {ticket.description or ''}".lower()
    return not words or any(w in text for w in words)


def rules() -> list[AssignmentRule]:
    return db.session.execute(select(AssignmentRule).where(AssignmentRule.active.is_(True))
                              .order_by(AssignmentRule.sort, AssignmentRule.id)).scalars().all()


def _handlers():
    """SELECT of the active users holding a role with the handle permission (one SQL query)."""
    sm = appbuilder.sm
    user_role = CrmUser.roles.property.secondary
    pv_role = sm.role_model.permissions.property.secondary
    pv, perm, menu = sm.permissionview_model, sm.permission_model, sm.viewmenu_model
    return (select(user_role.c.user_id).join(pv_role, pv_role.c.role_id == user_role.c.role_id)
            .join(pv, pv.id == pv_role.c.permission_view_id).join(perm, perm.id == pv.permission_id)
            .join(menu, menu.id == pv.view_menu_id).join(CrmUser, CrmUser.id == user_role.c.user_id)
            .where(perm.name == HANDLE[0], menu.name == HANDLE[1], CrmUser.active.is_(True)))


def handler_user_ids() -> set[int]:
    return set(db.session.execute(_handlers()).scalars())


def may_handle(user_id: int) -> bool:
    return db.session.execute(_handlers().where(CrmUser.id == user_id).limit(1)).first() is not None


def _load_key(state, side: str) -> int | None:
    """The handler whose load the ticket counts in, before (side "old") or after the flush.
    (handler_id and status keep their old value when set: active_history on the model.)"""
    values = {}
    for attr in ("handler_id", "status"):
        hist = state.attrs[attr].history
        values[attr] = hist.deleted[0] if side == "old" and hist.deleted else state.attrs[attr].value
        if side == "old" and hist.added and not hist.deleted:  # it had no value before (a new row)
            values[attr] = None
    return values["handler_id"] if values["status"] in OPEN_STATUSES else None


@event.listens_for(Session, "after_flush")
def _count_loads(session, flush_context) -> None:  # noqa: ARG001
    """Keep crm_agent_profile.open_tickets in step with the tickets this flush wrote."""
    delta: dict[int, int] = {}
    for obj, created, deleted in ([(o, True, False) for o in session.new] + [(o, False, False) for o in session.dirty]
                                  + [(o, False, True) for o in session.deleted]):
        if not isinstance(obj, Ticket):
            continue
        state = inspect(obj)
        old = None if created else _load_key(state, "old")
        new = None if deleted else _load_key(state, "new")
        if old == new:
            continue
        for uid, d in ((old, -1), (new, 1)):
            if uid is not None:
                delta[uid] = delta.get(uid, 0) + d
    for uid, d in sorted(delta.items()):  # a fixed order: two transactions lock rows alike
        if d:
            session.execute(update(AgentProfile).where(AgentProfile.user_id == uid)
                            .values(open_tickets=AgentProfile.open_tickets + d))


def recount_loads() -> dict[str, int]:
    """Rebuild every agent's open-ticket counter from the tickets (after bulk SQL edits)."""
    real = (select(func.count(Ticket.id)).where(Ticket.handler_id == AgentProfile.user_id,
                                                Ticket.status.in_(OPEN_STATUSES)).scalar_subquery())
    n = db.session.execute(update(AgentProfile).values(open_tickets=real)).rowcount
    db.session.commit()
    return {"agents": n}


def choose(ticket: Ticket, customer) -> Choice:
    """The rule that matches and the member it picks (handler None: nobody available)."""
    for rule in rules():
        if not _matches(rule, ticket, customer):
            continue
        region = customer.region.code.lower() if customer.region is not None else None
        skill = (rule.skill or "").strip().lower()
        profiles = db.session.execute(select(AgentProfile.user_id, AgentProfile.skills, AgentProfile.regions,
                                             AgentProfile.open_tickets).where(
            AgentProfile.team_id == rule.team_id, AgentProfile.away.is_(False),
            AgentProfile.user_id.in_(_handlers()))).all()
        load = {uid: n for uid, skills, regions, n in profiles
                if (not skill or skill in _codes(skills)) and (not _codes(regions) or region in _codes(regions))}
        members = sorted(load)
        if not members:
            return Choice(rule, None)
        team = rule.team
        if team.round_robin:
            after = [m for m in members if team.last_assigned_id is None or m > team.last_assigned_id]
            pick = (after or members)[0]
        else:
            pick = min(members, key=lambda m: (load[m], m))
        team.last_assigned_id = pick
        return Choice(rule, pick)
    return Choice(None, None)
