"""Our security manager: FAB's, with our user model (department, language), the API login
rate-limited like the form login, and users' department shown and edited."""
from __future__ import annotations

from flask import g, has_request_context
from flask_appbuilder.models.sqla.filters import FilterEqual
from flask_appbuilder.widgets import ListWidget
from flask_appbuilder.security.sqla.models import assoc_permissionview_role
from flask_appbuilder.security.sqla.manager import SecurityManager
from flask_appbuilder.security.views import (
    PermissionViewModelView, RoleModelView, UserDBModelView, UserGroupModelView, UserStatsChartView,
)
from flask_babel import lazy_gettext as _l

from app.models import CrmUser
from app.models.access import role_name_label
from app.views.formatting import LocalizedValuesMixin
from app.views.lookup import PickersMixin


def _language_name(code: str | None) -> str:
    """A user's language as its name ("简体中文", "English") rather than its code."""
    from flask import current_app

    return current_app.config["LANGUAGES"].get(code, {}).get("name", code or "")


class CrmUserDBModelView(LocalizedValuesMixin, UserDBModelView):
    base_filters = [["is_system", FilterEqual, False]]
    list_columns = ["last_name", "first_name", "username", "email", "department", "active", "roles"]
    add_columns = UserDBModelView.add_columns[:5] + ["department", "roles", "groups", "password", "conf_password"]
    edit_columns = [
        "first_name", "last_name", "username", "active", "email", "department", "roles", "groups", "locale",
    ]
    search_columns = ["first_name", "last_name", "username", "email", "department", "active", "roles", "last_login"]
    # FAB's own (translated) labels plus ours: replacing the dict would leave English defaults.
    label_columns = {**UserDBModelView.label_columns, "department": _l("Department"), "locale": _l("Language")}
    formatters_columns = {"roles": lambda roles: "、".join(str(r) for r in roles or []), "locale": _language_name}
    show_fieldsets = [
        (_l("User info"), {"fields": ["username", "active", "department", "roles", "login_count"]}),
        (_l("Personal Info"), {"fields": ["first_name", "last_name", "email", "locale"], "expanded": True}),
        (_l("Audit Info"), {"fields": ["last_login", "fail_login_count", "created_on", "created_by",
                                       "changed_on", "changed_by"], "expanded": False}),
    ]
    user_show_fieldsets = [
        (_l("User info"), {"fields": ["username", "active", "department", "roles", "login_count"]}),
        (_l("Personal Info"), {"fields": ["first_name", "last_name", "email"], "expanded": True}),
    ]


class CrmRoleModelView(RoleModelView):
    """FAB's role view with labels for every searchable column (FAB leaves "user" and "groups"
    unlabelled, so they show in English). Same permission name as FAB's view."""

    class_permission_name = "RoleModelView"
    label_columns = {**RoleModelView.label_columns, "user": _l("Users"), "groups": _l("Groups")}
    # FAB lists every permission of every role as raw English text, squeezing the role names
    # into a sliver; the list shows names, the show page the permissions.
    # by the name users read (its English name on English screens): FAB's own role list widget
    # ignores formatters, the generic one does not. Its show and edit pages keep the stored name.
    list_columns = ["name"]
    list_widget = ListWidget
    search_exclude_columns = ["policy"]  # our crm_role_policy row: edited on 系统设置 › 数据范围
    formatters_columns = {"name": role_name_label}


class CrmGroupModelView(PickersMixin, LocalizedValuesMixin, UserGroupModelView):
    """FAB's group view with translated labels (FAB gives it none) and members picked by typing.
    Same permission name."""

    class_permission_name = "UserGroupModelView"
    label_columns = {"name": _l("Name"), "label": _l("Label"), "description": _l("Description"),
                     "users": _l("Users"), "roles": _l("Roles")}


class CrmUserStatsChartView(UserStatsChartView):
    """FAB's login statistics with its chart choices and filters translated (FAB prints both in
    English). Same permission name."""

    class_permission_name = "UserStatsChartView"
    route_base = "/userstatschartview"
    label_columns = {**CrmUserDBModelView.label_columns, **UserStatsChartView.label_columns}
    definitions = [
        {"label": _l("Login count"), "group": "username", "series": ["login_count"]},
        {"label": _l("Failed login count"), "group": "username", "series": ["fail_login_count"]},
    ]


class CrmPermissionViewModelView(PermissionViewModelView):
    """FAB's permissions-on-views list with its "role" filter labelled. Same permission name."""

    class_permission_name = "PermissionViewModelView"
    label_columns = {**PermissionViewModelView.label_columns, "role": _l("Role")}


class CrmSecurityManager(SecurityManager):
    user_model = CrmUser
    permissionviewmodelview = CrmPermissionViewModelView
    userstatschartview = CrmUserStatsChartView
    userdbmodelview = CrmUserDBModelView
    rolemodelview = CrmRoleModelView
    groupmodelview = CrmGroupModelView

    def exist_permission_on_roles(self, view_name: str, permission_name: str, role_ids: list[int]) -> bool:
        """FAB asks once per menu item and button (some 60 queries a list page): within a
        request, read the roles' permission pairs once and answer from them."""
        if not has_request_context():
            return super().exist_permission_on_roles(view_name, permission_name, role_ids)
        key = tuple(sorted(role_ids))
        cache = g.setdefault("_crm_role_permissions", {})
        if key not in cache:
            pv, assoc = self.permissionview_model, assoc_permissionview_role
            rows = self.session.query(self.viewmenu_model.name, self.permission_model.name).select_from(pv) \
                .join(assoc, pv.id == assoc.c.permission_view_id).join(self.permission_model) \
                .join(self.viewmenu_model).filter(assoc.c.role_id.in_(key)).all()
            cache[key] = {(v, p) for v, p in rows}
        return (view_name, permission_name) in cache[key]

    def register_views(self) -> None:
        super().register_views()
        # FAB limits only the login form; the JWT login at /api/v1/security/login is a second
        # door for password guessing, so it gets the same limit (POST only).
        if not self.is_auth_limited:
            return
        for view in self.appbuilder.baseviews:
            if isinstance(view, self.security_api):
                self.limiter.limit(self.auth_rate_limit, methods=["POST"])(view.blueprint)
