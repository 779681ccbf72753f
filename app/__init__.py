"""The application factory: binds extensions, registers views, CLI and hooks. No seeding here."""
from __future__ import annotations

import logging

from flask import Flask
from sqlalchemy import event
from sqlalchemy.engine import Engine

from config import BASE_DIR, INSTANCE_DIR, Config

log = logging.getLogger(__name__)


@event.listens_for(Engine, "connect")
def _sqlite_pragmas(dbapi_connection, connection_record) -> None:  # noqa: ARG001
    """WAL, a busy timeout and foreign keys on every SQLite connection; on PostgreSQL custom plans
    only and no JIT."""
    if type(dbapi_connection).__module__.startswith("sqlite3"):
        cur = dbapi_connection.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA busy_timeout=15000")
        cur.execute("PRAGMA foreign_keys=ON")
        cur.execute("PRAGMA synchronous=NORMAL")
        cur.close()
    elif type(dbapi_connection).__module__.startswith("psycopg"):
        # Prepared statements planned for their values each time: psycopg prepares a query run 5
        # times on a connection, and PostgreSQL would then plan it once for any values (a generic
        # plan), which for a search's list of ids or a scope's department costs 10x (25 -> 270 ms).
        # (Imports keep the prepared INSERTs of their executemany.)
        # No JIT compilation: our queries are index reads of a few rows, but the planner's cost of a
        # guarded arm (a scope's "members' customers filed elsewhere", a search's token) can pass
        # jit_above_cost, and compiling then costs 30-80 ms for a query that runs in 1 ms
        cur = dbapi_connection.cursor()
        cur.execute("SET plan_cache_mode = force_custom_plan")
        cur.execute("SET jit = off")
        cur.close()
        dbapi_connection.commit()  # a SET in a transaction rolled back on the pool's reset would be undone


def create_app(config: type[Config] | dict | None = None) -> Flask:
    INSTANCE_DIR.mkdir(parents=True, exist_ok=True)
    app = Flask(
        __name__,
        instance_path=str(INSTANCE_DIR),
        template_folder=str(BASE_DIR / "templates"),
    )
    app.config.from_object(Config)
    if isinstance(config, dict):
        app.config.update(config)
    elif config is not None:
        app.config.from_object(config)

    app.json.ensure_ascii = False  # Chinese stays readable in API answers
    from app.security.passwords import validate_password

    app.config["FAB_PASSWORD_COMPLEXITY_VALIDATOR"] = validate_password
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")

    from flask_appbuilder import AppBuilder

    from app.extensions import csrf, db, migrate
    from app.security import csrf as api_csrf
    from app.security import sessions

    db.init_app(app)
    migrate.init_app(app, db, directory=str(BASE_DIR / "migrations"))
    csrf.init_app(app)
    sessions.init_app(app)  # before FAB's own before_request: a revoked session never reaches a view
    api_csrf.init_app(app)  # cookie-authenticated API writes need the CSRF header too
    with app.app_context():
        from app import models  # noqa: F401  (register every model on FAB metadata)

        appbuilder = AppBuilder(update_perms=False)
        appbuilder.init_app(app, db.session)
        from app.views import register_views

        register_views(appbuilder)
    from app import cli, errors

    errors.init_app(app)
    cli.init_app(app)
    return app
