"""/api/v1/task/: tasks, row-scoped like the task list (own; supervisors their department's).
A due time in the past answers 422 with the message; PUT {"status": "done"} completes a task
and its plan schedules the next one."""
from __future__ import annotations

from app.models import Task
from app.views.customer import _CUSTOMER_IN_SCOPE, _CheckedApi
from app.views.followup import TaskSavingMixin
from app.views.formatting import CrmSQLAInterface


class TaskApi(TaskSavingMixin, _CheckedApi):
    resource_name = "task"
    datamodel = CrmSQLAInterface(Task)
    allow_browser_login = True
    add_query_rel_fields = edit_query_rel_fields = _CUSTOMER_IN_SCOPE
    list_columns = ["id", "title", "customer.id", "customer.name", "assignee.username", "due_at", "status",
                    "done_at", "plan_id", "interaction_id"]
    show_columns = list_columns + ["created_on"]
    add_columns = ["title", "customer", "assignee", "due_at"]
    edit_columns = ["title", "customer", "assignee", "due_at", "status"]
    search_columns = ["title", "status", "due_at", "assignee", "customer"]
    order_columns = ["due_at", "id", "created_on"]
    base_order = ("due_at", "asc")
