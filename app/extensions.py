"""Unbound extensions, bound to an app by create_app().

Each app gets its own AppBuilder (FAB keeps views and menus on the instance, so a shared one
would pile up duplicates when tests build several apps); ``appbuilder`` here is a proxy to the
current app's.
"""
from __future__ import annotations

from flask import current_app
from flask_appbuilder import AppBuilder
from flask_appbuilder.utils.legacy import get_sqla_class
from flask_migrate import Migrate
from flask_wtf.csrf import CSRFProtect
from werkzeug.local import LocalProxy

db = get_sqla_class()()
migrate = Migrate()
# Every non-API POST needs a CSRF token, our own forms included; FAB exempts its API blueprints
# itself when this is registered before the views.
csrf = CSRFProtect()
appbuilder: AppBuilder = LocalProxy(lambda: current_app.appbuilder)  # type: ignore[assignment]
