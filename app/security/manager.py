"""Our security manager: FAB's, with our user model (department, language), the API login
rate-limited like the form login, and users' department shown and edited."""
from __future__ import annotations

from flask_appbuilder.models.sqla.filters import FilterEqual
from flask_appbuilder.security.sqla.manager import SecurityManager
from flask_appbuilder.security.views import UserDBModelView
from flask_babel import lazy_gettext as _l

from app.models import CrmUser


class CrmUserDBModelView(UserDBModelView):
    base_filters = [["is_system", FilterEqual, False]]
    list_columns = ["first_name", "last_name", "username", "email", "department", "active", "roles"]
    add_columns = UserDBModelView.add_columns[:5] + ["department", "roles", "groups", "password", "conf_password"]
    edit_columns = [
        "first_name", "last_name", "username", "active", "email", "department", "roles", "groups", "locale",
    ]
    search_columns = ["first_name", "last_name", "username", "email", "department", "active", "roles", "last_login"]
    label_columns = {"department": _l("Department"), "locale": _l("Language")}
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


class CrmSecurityManager(SecurityManager):
    user_model = CrmUser
    userdbmodelview = CrmUserDBModelView

    def register_views(self) -> None:
        super().register_views()
        # FAB limits only the login form; the JWT login at /api/v1/security/login is a second
        # door for password guessing, so it gets the same limit (POST only).
        if not self.is_auth_limited:
            return
        for view in self.appbuilder.baseviews:
            if isinstance(view, self.security_api):
                self.limiter.limit(self.auth_rate_limit, methods=["POST"])(view.blueprint)
