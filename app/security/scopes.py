"""Row and column scope, defined once: who may see which customers (and, through them, which
contacts and interactions) and which fields. Views, REST APIs, search, the home page counts and
the dedupe messages all ask here; exports and jobs must too.

The rules are data (crm_role_policy, seeded from seeds/roles.yaml): each role has a row scope
(own / department / all) and a list of hidden fields. A user with several roles gets the widest
scope and sees a field unless every one of their roles hides it. A role without a policy
contributes nothing; a user none of whose roles has one sees only their own customers. The
configured admin role (AUTH_ROLE_ADMIN) and the system user always see everything.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Iterable

from flask import current_app, g, has_app_context
from flask_appbuilder.models.filters import BaseFilter
from sqlalchemy import and_, false, or_, select, true

from app.models.access import SCOPES, RolePolicy

# Business fields (amounts; later opportunity data) a policy may hide, per model.
HIDEABLE_FIELDS = ("total_amount", "annual_revenue", "staff_count", "main_business")
# A policy may also hide admin-defined fields (字段配置): one by one (their key), or every one of
# a first-level category, present and future: "category:business" hides each custom field of
# 业务信息, so a field an admin adds there is hidden from service staff without editing roles.
CATEGORY_PREFIX = "category:"


def expand_hidden(names: frozenset[str]) -> frozenset[str]:
    """A policy's hidden names with each ``category:X`` replaced by the keys of the custom fields
    of category X (retired ones too: their history stays hidden)."""
    categories = {n[len(CATEGORY_PREFIX):] for n in names if n.startswith(CATEGORY_PREFIX)}
    if not categories:
        return names
    from app.services.fields import custom_fields

    keys = {s.key for s in custom_fields(include_retired=True) if s.category in categories}
    return frozenset(n for n in names if not n.startswith(CATEGORY_PREFIX)) | keys


@dataclass(frozen=True)
class Policy:
    scope: str  # own / department / all
    hidden: frozenset[str]
    user_id: int | None
    department_id: int | None
    work_scope: str = "own"  # whose tasks and reminders: own / department / all
    ticket_scope: str = "own"  # service tickets: own (handler, collaborator, creator) / department / all


NOTHING = Policy("none", frozenset(), None, None, "none", "none")


def current_user() -> Any:
    """The logged-in user (session or JWT), or None."""
    if not has_app_context():
        return None
    user = g.get("user")
    if user is None or not getattr(user, "is_authenticated", False) or getattr(user, "is_anonymous", False):
        return None
    return user


def policy_for(user: Any) -> Policy:
    """The effective policy of ``user`` (cached per request)."""
    if user is None:
        return NOTHING
    cache = g.setdefault("_crm_policies", {}) if has_app_context() else {}
    if user.id in cache:
        return cache[user.id]
    from app.extensions import db

    roles = list(getattr(user, "roles", []) or [])
    dept = getattr(user, "department_id", None)
    admin_role = current_app.config.get("AUTH_ROLE_ADMIN")
    if getattr(user, "is_system", False) or any(r.name == admin_role for r in roles):
        policy = Policy("all", frozenset(), user.id, dept, "all", "all")
    else:
        with db.session.no_autoflush:  # may run mid-write (pre_add): never flush a half-made row
            rows = db.session.query(RolePolicy).filter(RolePolicy.role_id.in_([r.id for r in roles])).all() if roles else []
        if rows:
            scope = max((r.scope for r in rows if r.scope in SCOPES), key=SCOPES.index, default="own")
            work = max((r.work_scope for r in rows if r.work_scope in SCOPES), key=SCOPES.index, default="own")
            tickets = max((r.ticket_scope for r in rows if r.ticket_scope in SCOPES), key=SCOPES.index, default="own")
            hidden = frozenset.intersection(*(expand_hidden(r.hidden) for r in rows))
        else:
            scope, work, tickets, hidden = "own", "own", "own", frozenset()
        policy = Policy(scope, hidden, user.id, dept, work, tickets)
    cache[user.id] = policy
    return policy


def current_policy() -> Policy:
    return policy_for(current_user())


def customer_clause(policy: Policy):
    """The SQL condition on Customer for a policy."""
    from app.models import Customer

    if policy.scope == "all":
        return true()
    if policy.user_id is None:
        return false()
    arms = customer_arms(policy)
    return _either(*arms) if arms else Customer.owner_id == policy.user_id


def customer_arms(policy: Policy) -> tuple | None:
    """The 'department' row scope as department_arms (the user's own customers with those of the
    members), or None for the other scopes (one condition, see customer_clause)."""
    if policy.scope != "department" or policy.department_id is None or policy.user_id is None:
        return None
    return department_arms(policy.department_id, policy.user_id)


def department_clause(department_id: int):
    """A department's customers: of that department, or owned by one of its members (the
    'department' row scope without the user's own; also what a department's tag audit covers)."""
    return _either(*department_arms(department_id))


def _either(home, elsewhere):
    """The two arms of department_arms as one condition. On SQLite the department's side reads
    no index (``+ 0``): its planner would otherwise collect both arms by their indexes (100,000
    customers of a department) and sort them, for a list sorted by last contact say, instead of
    reading that sort's index and stopping at the page. Each arm alone still reads its index."""
    from app.extensions import db

    if db.engine.dialect.name == "sqlite":
        home = home.left + 0 == home.right
    return or_(home, elsewhere)


def department_arms(department_id: int, also_owner: int | None = None) -> tuple:
    """A department's customers (and ``also_owner``'s) as two disjoint conditions, each an index
    read: filed in the department (index (department_id, archived, id): a page of them in id order
    from the index alone), and owned by a member but filed in another department or none (index
    (owner_id, department_id): three ranges per member, usually empty). Both name only
    department_id and id, so a page of the first arm needs no table row, whatever the second
    holds; capped_query reads each arm apart and merges them (app/services/paging.py)."""
    from app.extensions import db

    return _department_arms(db.engine.dialect.name, department_id, also_owner)


@lru_cache(maxsize=1024)
def _department_arms(dialect: str, department_id: int, also_owner: int | None) -> tuple:
    """department_arms, built once per process for each department and user (SQL expressions
    are immutable: building this one cost ~1.5 ms per supervisor page)."""
    from sqlalchemy import any_, func, union_all
    from sqlalchemy.orm import aliased

    from app.models import Customer, CrmUser

    who = CrmUser.department_id == department_id
    members = select(CrmUser.id).where(or_(who, CrmUser.id == also_owner) if also_owner is not None else who)
    other = aliased(Customer)
    if dialect == "postgresql":  # an array: the planner then reads the index per member
        # instead of hashing the members and scanning every customer filed elsewhere (most of them)
        owned = other.owner_id == any_(func.array(members.scalar_subquery()))
    else:
        owned = other.owner_id.in_(members)
    elsewhere = union_all(*(select(other.id).where(owned, cond) for cond in (
        other.department_id < department_id, other.department_id > department_id, other.department_id.is_(None))))
    return Customer.department_id == department_id, Customer.id.in_(elsewhere)


# Work items belong to a person rather than to a customer: tasks to their assignee, reminders
# to their recipient. Staff see their own; supervisors (work_scope department) their department's.
WORK_OWNER = {"Task": "assignee_id", "Reminder": "user_id"}


def work_clause(model: type, policy: Policy | None = None):
    """The SQL condition limiting a work item model (WORK_OWNER) to the policy's work scope."""
    from app.models import CrmUser

    policy = policy or current_policy()
    owner = getattr(model, WORK_OWNER[model.__name__])
    if policy.work_scope == "all":
        return true()
    if policy.user_id is None:
        return false()
    if policy.work_scope == "department" and policy.department_id is not None:
        members = select(CrmUser.id).where(CrmUser.department_id == policy.department_id)
        return or_(owner == policy.user_id, owner.in_(members))
    return owner == policy.user_id


def ticket_clause(policy: Policy):
    """The SQL condition on Ticket: own = the user handles it, collaborates on it or opened it;
    department = also every ticket of the user's department (its team's, or handled by a
    member); all. Tickets have their own scope: service staff read every customer, not every
    ticket."""
    from app.models import CrmUser, Ticket
    from app.models.service import ticket_collaborators as tc

    if policy.ticket_scope == "all":
        return true()
    if policy.user_id is None:
        return false()
    own = or_(Ticket.handler_id == policy.user_id, Ticket.created_by_fk == policy.user_id,
              Ticket.id.in_(select(tc.c.ticket_id).where(tc.c.user_id == policy.user_id)))
    if policy.ticket_scope == "department" and policy.department_id is not None:
        members = select(CrmUser.id).where(CrmUser.department_id == policy.department_id)
        return or_(own, Ticket.department_id == policy.department_id, Ticket.handler_id.in_(members))
    return own


def row_clause(model: type, policy: Policy | None = None):
    """The SQL condition limiting ``model`` (Customer, Ticket (ticket_clause), a work item of
    WORK_OWNER, or anything with a customer_id or a ticket_id) to what the policy (default: the
    current user's) may see. Attachments: their customer's scope; a ticket's files the ticket's
    scope (its handler, collaborators, team), like the ticket itself."""
    from app.models import Customer, Ticket

    policy = policy or current_policy()
    if model.__name__ in WORK_OWNER:
        return work_clause(model, policy)
    if model is Ticket:
        return ticket_clause(policy)
    clause = customer_clause(policy)
    if model is Customer or policy.scope == "all":
        return clause
    if not hasattr(model, "customer_id") or model.__name__ == "FieldChange":
        # field history outlives ids (a deleted customer's id is reused): it follows customer_no
        return model.customer_no.in_(select(Customer.customer_no).where(clause))
    by_customer = model.customer_id.in_(select(Customer.id).where(clause))
    if model.__name__ == "Attachment":  # a ticket's files follow the ticket, the others the customer
        return or_(and_(model.ticket_id.is_(None), by_customer),
                   model.ticket_id.in_(select(Ticket.id).where(ticket_clause(policy))))
    return by_customer


def scoped(query, model: type, policy: Policy | None = None):
    """A Query/Select limited to the rows the policy may see."""
    return query.filter(row_clause(model, policy)) if hasattr(query, "filter") else query.where(row_clause(model, policy))


def in_scope(customer: Any, user: Any = None) -> bool:
    """Whether ``customer`` (a Customer object, saved or not) lies in the user's row scope:
    the Python twin of customer_clause, for rows about to be written."""
    policy = policy_for(user) if user is not None else current_policy()
    if customer is None or policy.scope == "none":
        return False
    if policy.scope == "all":
        return True
    owner_id = customer.owner_id if customer.owner_id is not None else getattr(customer.owner, "id", None)
    if owner_id == policy.user_id:
        return True
    if policy.scope == "department" and policy.department_id is not None:
        dept_id = customer.department_id if customer.department_id is not None else getattr(customer.department, "id", None)
        owner = customer.owner
        if owner is None and owner_id is not None:
            from app.extensions import db
            from app.models import CrmUser

            with db.session.no_autoflush:
                owner = db.session.get(CrmUser, owner_id)
        return dept_id == policy.department_id or getattr(owner, "department_id", None) == policy.department_id
    return False


def hidden_fields(policy: Policy | None = None) -> frozenset[str]:
    return (policy or current_policy()).hidden


def visible(columns: Iterable[str], policy: Policy | None = None) -> list[str]:
    """``columns`` without the hidden fields (a dotted column counts by its first part)."""
    hidden = hidden_fields(policy)
    return [c for c in columns if c.split(".")[0] not in hidden]


def visible_specs(specs, policy: Policy | None = None) -> list:
    """Field specs (app/services/fields.py) without those hidden from the user."""
    hidden = hidden_fields(policy)
    return [s for s in specs if s.key not in hidden]


class RowScopeFilter(BaseFilter):
    """FAB base filter applying row_clause for the current user. Put it on every ModelView AND
    every ModelRestApi of a scoped model (the API does not inherit a view's base_filters):
    ``base_filters = [["id", RowScopeFilter, None]]``. FAB uses base filters for lists, search,
    show, edit and delete, so a row outside the scope answers 404 everywhere."""

    name = "row scope"

    def apply(self, query, value):  # noqa: ARG002
        return query.filter(row_clause(self.model))


ROW_SCOPE = [["id", RowScopeFilter, None]]


def scope_arms(model: type, filters) -> tuple | None:
    """customer_arms of the current user when ``filters`` (FAB's joined filters of a list of
    customers) hold the row scope: the list may then be read arm by arm."""
    from app.models import Customer

    if model is not Customer or not any(isinstance(f, RowScopeFilter) for f in getattr(filters, "filters", [])):
        return None
    return customer_arms(current_policy())


class HistoryScopeFilter(BaseFilter):
    """Field history follows its customer's row scope, and changes to a field hidden from the
    user (column scope) are not shown at all."""

    name = "history scope"

    def apply(self, query, value):  # noqa: ARG002
        from sqlalchemy import and_, not_

        query = query.filter(row_clause(self.model))
        hidden = hidden_fields()
        if hidden:
            query = query.filter(not_(and_(self.model.entity == "customer", self.model.field.in_(sorted(hidden)))))
        return query


HISTORY_SCOPE = [["id", HistoryScopeFilter, None]]


def feedback_clause(policy: Policy | None = None):
    """Feedback: those of customers in scope (all of them, unknown senders included, for the
    'all' scope), plus those handled by the user."""
    from app.models import Feedback

    policy = policy or current_policy()
    return or_(row_clause(Feedback, policy), Feedback.handler_id == policy.user_id) if policy.user_id else row_clause(Feedback, policy)


def subject_clause(model: type, policy: Policy | None = None):
    """Surveys and revisits follow their subject's scope (and a revisit its assignee)."""
    from app.models import Feedback, Ticket

    policy = policy or current_policy()
    clause = or_((model.subject_kind == "feedback") & model.subject_id.in_(select(Feedback.id).where(feedback_clause(policy))),
                 (model.subject_kind == "ticket") & model.subject_id.in_(select(Ticket.id).where(row_clause(Ticket, policy))))
    if hasattr(model, "assignee_id") and policy.user_id:
        clause = or_(clause, model.assignee_id == policy.user_id)
    return clause


class FeedbackScopeFilter(BaseFilter):
    """Feedback in scope; for a model with a feedback_id (progress notes): its feedback's scope."""

    name = "feedback scope"

    def apply(self, query, value):  # noqa: ARG002
        from app.models import Feedback

        if self.model is Feedback:
            return query.filter(feedback_clause())
        return query.filter(self.model.feedback_id.in_(select(Feedback.id).where(feedback_clause())))


class SubjectScopeFilter(BaseFilter):
    name = "subject scope"

    def apply(self, query, value):  # noqa: ARG002
        return query.filter(subject_clause(self.model))


FEEDBACK_SCOPE = [["id", FeedbackScopeFilter, None]]
SUBJECT_SCOPE = [["id", SubjectScopeFilter, None]]


class OutOfScopeError(Exception):
    """A write that would put (or find) a record outside the user's row scope."""


def require_in_scope(customer: Any) -> None:
    """Refuse a write whose customer lies outside the current user's row scope."""
    from flask_babel import gettext

    if current_user() is not None and not in_scope(customer):
        from app.extensions import db

        db.session.rollback()  # nothing of the refused change may be written later
        raise OutOfScopeError(gettext("This customer is outside the records you may manage."))
