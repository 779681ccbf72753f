"""Daily follow-up work: recording interactions (their to-dos become tasks, the customer's last
contact time moves), completing tasks (a plan schedules the next one) and the cadence of a plan
(from the customer's level and the plan's stage, both data in crm_cadence).

Times are the server's local wall-clock time, as typed into forms (``now()``)."""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from flask_babel import gettext
from sqlalchemy import inspect as sa_inspect

from app.extensions import db
from app.models import Cadence, Customer, FollowupPlan, Interaction, Task

DEFAULT_CADENCE_DAYS = 30
PAST_TOLERANCE = timedelta(minutes=1)  # the time it takes to fill in a form


def now() -> datetime:
    return datetime.now().replace(microsecond=0)


@dataclass
class TaskInputError(ValueError):
    """Every problem of a write carrying tasks, keyed by field ("due_at", "todos[1].due_at" ...)."""

    errors: dict[str, list[str]] = field(default_factory=dict)

    def __str__(self) -> str:
        return "; ".join(m for msgs in self.errors.values() for m in msgs)


def due_problem(due_at: datetime | None) -> str | None:
    """Why a task's due time is refused, or None."""
    if due_at is None:
        return gettext("A due time is required.")
    if due_at < now() - PAST_TOLERANCE:
        return gettext("The due time %(due)s is in the past; choose a time from now on.",
                       due=due_at.strftime("%Y-%m-%d %H:%M"))
    return None


def check_task(task: Task) -> None:
    """Refuse a new task, or a changed due time, in the past (nothing is saved)."""
    state = sa_inspect(task)
    if state.persistent and not state.attrs.due_at.history.has_changes():
        return
    problem = due_problem(task.due_at)
    if problem:
        raise TaskInputError({"due_at": [problem]})


def cadence_days(customer: Customer | None, stage_id: int | None) -> int:
    """Days between a plan's tasks: the shorter of the level's and the stage's cadence."""
    item_ids = [i for i in (getattr(customer, "level_id", None), stage_id) if i]
    days = dict(db.session.query(Cadence.item_id, Cadence.cadence_days)
                .filter(Cadence.item_id.in_(item_ids), Cadence.cadence_days.isnot(None))) if item_ids else {}
    return _shortest(days, item_ids)


def _shortest(days: dict[int, int], item_ids) -> int:
    found = [days[i] for i in item_ids if i in days]
    return min(found) if found else DEFAULT_CADENCE_DAYS


def cadence_reader():
    """cadence_days of many plans (an export of the plan list): the cadence table read once,
    then a function of a plan (its customer loaded with it)."""
    days = dict(db.session.query(Cadence.item_id, Cadence.cadence_days).filter(Cadence.cadence_days.isnot(None)))
    return lambda plan: _shortest(days, (getattr(plan.customer, "level_id", None), plan.stage_id))


def _customer_of(item: Any) -> Customer | None:
    if item.customer is not None:
        return item.customer
    return db.session.get(Customer, item.customer_id) if item.customer_id else None


def todo_errors(todos: list[dict]) -> dict[str, list[str]]:
    """Every problem of an interaction's to-dos ({"title", "due_at", "assignee_id"}, optional
    "row": the number the user sees), keyed "todos[n].field": text, a due time from now on, an
    active owner."""
    from app.models import CrmUser

    errors: dict[str, list[str]] = {}
    for n, todo in enumerate(todos, start=1):
        n = todo.get("row", n)
        if not str(todo.get("title") or "").strip():
            errors.setdefault(f"todos[{n}].title", []).append(gettext("To-do %(n)d has no text.", n=n))
        problem = due_problem(todo.get("due_at"))
        if problem:
            errors.setdefault(f"todos[{n}].due_at", []).append(gettext("To-do %(n)d: %(problem)s", n=n, problem=problem))
        owner = todo.get("assignee_id")
        if owner and db.session.query(CrmUser.id).filter(CrmUser.id == owner, CrmUser.active.is_(True),
                                                         CrmUser.is_system.is_(False)).first() is None:
            errors.setdefault(f"todos[{n}].assignee_id", []).append(
                gettext("To-do %(n)d: the owner must be an active user.", n=n))
    return errors


def record_interaction(item: Interaction, todos: list[dict], user_id: int) -> list[Task]:
    """Before an interaction is saved: its owner, the customer's last contact time, and one task
    per to-do ({"title", "due_at", "assignee_id"}; default assignee: the recorder). Every to-do is
    checked first: one bad one refuses the whole record. Its contacts must be the customer's."""
    errors = todo_errors(todos)
    customer_id = item.customer.id if item.customer is not None else item.customer_id
    strangers = [c.name for c in item.contacts or [] if c.customer_id != customer_id]
    if strangers:
        errors["contacts"] = [gettext("%(names)s is not a contact of this customer.", names="、".join(strangers))]
    if errors:
        raise TaskInputError(errors)
    item.owner_id = item.owner_id or user_id
    item.occurred_at = item.occurred_at or now()
    customer = _customer_of(item)
    if customer is not None and (customer.last_contact_at is None or customer.last_contact_at < item.occurred_at):
        customer.last_contact_at = item.occurred_at
    tasks = [Task(title=str(t["title"]).strip()[:255], due_at=t["due_at"], customer=customer,
                  assignee_id=t.get("assignee_id") or user_id, created_by_id=user_id, interaction=item)
             for t in todos]
    db.session.add_all(tasks)
    return tasks


def task_saved(task: Task, user_id: int | None) -> Task | None:
    """Before a task is saved: check it; when it has just been completed, stamp it and let its
    plan schedule the next one (returned)."""
    check_task(task)
    task.created_by_id = task.created_by_id or user_id
    status = sa_inspect(task).attrs.status.history
    if task.status != "done" or (sa_inspect(task).persistent and not status.has_changes()):
        return None
    task.done_at = task.done_at or now()
    return schedule_next(task.plan) if task.plan is not None else None


def complete_task(task: Task, user_id: int | None) -> Task | None:
    """Mark a task done (once); returns the plan's next task, if any. The caller commits."""
    if task.status == "done":
        return None
    task.status = "done"
    return task_saved(task, user_id)


def schedule_next(plan: FollowupPlan) -> Task | None:
    """The plan's next follow-up task, cadence days from now, unless one is still open."""
    if not plan.active:
        return None
    open_task = db.session.query(Task.id).filter(Task.plan_id == plan.id, Task.status != "done").first() \
        if plan.id else None
    if open_task:
        return None
    customer = _customer_of(plan)
    task = Task(title=gettext("Follow up with %(customer)s", customer=str(customer or "")),
                customer=customer, assignee_id=plan.assignee_id or getattr(plan.assignee, "id", None), plan=plan,
                due_at=now() + timedelta(days=cadence_days(customer, plan.stage_id or getattr(plan.stage, "id", None))))
    db.session.add(task)
    return task
