"""Test fixtures on the real things: a fresh SQLite file or PostgreSQL database per run, the
real Redis, a real RQ worker process, a real server for the browser.

CRM_TEST_ENGINE=sqlite|postgresql chooses the engine (tests/run.sh runs both). The app's
config is read from the environment at import, so the environment is set up here first.
"""
from __future__ import annotations

import contextlib
import itertools
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
ENGINE = os.environ.get("CRM_TEST_ENGINE", "sqlite")
ADMIN_PASSWORD = "Admin-Test-Pass-2024"
USER_PASSWORD = "Staff-Test-Pass-2024"
# Imported a second time under another name (``tests.conftest``), this module must not make a
# second temp dir or database: the environment below is what every subprocess inherits.
if os.environ.get("_CRM_TEST_PID") == str(os.getpid()):
    _TMP = Path(os.environ["_CRM_TEST_TMP"])
    _PG_DB = os.environ["_CRM_TEST_PG_DB"]
else:
    _TMP = Path(tempfile.mkdtemp(prefix="crm-test-"))
    _PG_DB = f"crm_test_{os.getpid()}_{uuid.uuid4().hex[:6]}"
    os.environ.update(_CRM_TEST_PID=str(os.getpid()), _CRM_TEST_TMP=str(_TMP), _CRM_TEST_PG_DB=_PG_DB)
    os.environ["CRM_INSTANCE_DIR"] = str(_TMP / "instance")
    os.environ["CRM_ADMIN_PASSWORD"] = ADMIN_PASSWORD
    os.environ.pop("SECRET_KEY", None)
    if ENGINE == "postgresql":
        import psycopg

        admin_url = os.environ.get("CRM_TEST_ADMIN_URL", "postgresql://crm_test:crm_test@127.0.0.1:5432/postgres")
        with psycopg.connect(admin_url, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{_PG_DB}"')
        os.environ["DATABASE_URL"] = admin_url.rsplit("/", 1)[0] + "/" + _PG_DB
    else:
        os.environ.pop("DATABASE_URL", None)

from app import create_app  # noqa: E402
from config import TestConfig  # noqa: E402

_ip_counter = itertools.count(1)


def pytest_report_header(config):  # noqa: ARG001
    return f"CRM engine: {ENGINE}; REDIS_URL={os.environ.get('REDIS_URL') or '(none: in-process jobs)'}"


def pytest_sessionfinish(session, exitstatus):  # noqa: ARG001
    if ENGINE == "postgresql":
        import psycopg

        try:
            from app.extensions import db

            if _app is not None:
                with _app.app_context():
                    db.engine.dispose()
            with psycopg.connect(os.environ["CRM_TEST_ADMIN_URL"], autocommit=True) as conn:
                conn.execute(f'DROP DATABASE IF EXISTS "{_PG_DB}" WITH (FORCE)')
        except Exception as exc:  # noqa: BLE001
            print(f"could not drop {_PG_DB}: {exc}", file=sys.stderr)
    shutil.rmtree(_TMP, ignore_errors=True)


_app = None


@pytest.fixture(scope="session")
def app():
    """The app on a freshly migrated and seeded database (admin password: ADMIN_PASSWORD)."""
    global _app
    from app.services.bootstrap import initialise

    _app = create_app(TestConfig)
    if _app.config.get("REDIS_URL"):
        from app.jobs.queue import get_redis

        with _app.app_context():
            get_redis().flushdb()
    with _app.app_context():
        initialise()
    return _app


@pytest.fixture()
def ctx(app):
    with app.app_context():
        yield app


@contextlib.contextmanager
def as_system(app):
    """A request context acting as the system user (AuditMixin needs a user to write rows)."""
    from app.services.actor import as_system_user

    with app.test_request_context("/"), as_system_user():
        yield


def subprocess_env(**extra: str) -> dict[str, str]:
    env = dict(os.environ)
    env.update(extra)
    return env


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def flask_cmd(*args: str) -> list[str]:
    return [str(Path(sys.executable).with_name("flask")), "--app", "run", *args]


@pytest.fixture()
def client(app):
    """A browser-like client with its own address (so login rate limits don't leak between tests)."""
    n = next(_ip_counter)
    c = app.test_client()
    c.environ_base["REMOTE_ADDR"] = f"10.{os.getpid() % 250}.{n // 250}.{n % 250 + 1}"
    return c


def csrf_token(html: str) -> str:
    m = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', html) or re.search(r'value="([^"]+)"[^>]*name="csrf_token"', html)
    assert m, "no csrf_token in the page"
    return m.group(1)


def login(client, username: str, password: str, follow: bool = False):
    page = client.get("/login/")
    return client.post("/login/", data={"username": username, "password": password,
                                        "csrf_token": csrf_token(page.get_data(as_text=True))},
                       follow_redirects=follow)


@pytest.fixture()
def admin_client(app, client):
    """Logged in as admin, in the default language (a test may have switched admin to English)."""
    from app.extensions import appbuilder, db

    with app.app_context():
        appbuilder.sm.find_user(username="admin").locale = None
        db.session.commit()
    resp = login(client, "admin", ADMIN_PASSWORD)
    assert resp.status_code == 302 and "/login" not in resp.headers["Location"]
    return client


def _user_factory(app):
    def factory(role_key: str, dept_key: str | None = None, username: str | None = None) -> str:
        from app.extensions import appbuilder, db
        from app.models import Department, SeedRecord

        with app.app_context():
            sm = appbuilder.sm
            link = db.session.query(SeedRecord).filter_by(kind="role", key=role_key).one()
            role = db.session.get(sm.role_model, link.record_id)
            username = username or f"{role_key}_{uuid.uuid4().hex[:8]}"
            user = sm.add_user(username, "测试", "用户", f"{username}@test.invalid", role, password=USER_PASSWORD)
            assert user, "add_user failed"
            if dept_key:
                user.department = db.session.query(Department).filter_by(key=dept_key).one()
                db.session.commit()
            return username
    return factory


@pytest.fixture()
def make_user(app):
    """make_user("sales_staff", "sales") -> a new active user with USER_PASSWORD in that seeded role."""
    return _user_factory(app)


@pytest.fixture(scope="module")
def make_user_module(app):
    """make_user for module-scoped fixtures."""
    return _user_factory(app)


def _wait_for(predicate, timeout: float, what: str) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        if predicate():
            return
        time.sleep(0.2)
    raise TimeoutError(f"timed out waiting for {what}")


@pytest.fixture(scope="session")
def rq_worker(app):
    """A real `flask crm worker` process on the real Redis, for the whole session."""
    if not app.config.get("REDIS_URL"):
        pytest.skip("REDIS_URL not set: tests/run.sh sets it")
    from rq import Worker

    from app.jobs.queue import get_redis

    name = f"test-worker-{os.getpid()}"
    log = open(_TMP / "worker.log", "w")
    proc = subprocess.Popen(flask_cmd("crm", "worker", "--name", name), cwd=ROOT, env=subprocess_env(),
                            stdout=log, stderr=subprocess.STDOUT)
    with app.app_context():
        conn = get_redis()
        _wait_for(lambda: any(w.name == name for w in Worker.all(connection=conn)) or proc.poll() is not None,
                  30, "the RQ worker to register")
    assert proc.poll() is None, (_TMP / "worker.log").read_text()
    yield proc
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(15)
    except subprocess.TimeoutExpired:
        proc.kill()
    log.close()


@pytest.fixture(scope="session")
def live_server(app):
    """`python run.py` serving on a free port, against the test database. Yields its base URL."""
    port = free_port()
    log = open(_TMP / "server.log", "w")
    proc = subprocess.Popen([sys.executable, "run.py"], cwd=ROOT,
                            # every browser test logs in from 127.0.0.1: more than the 5 a minute
                            # a real client gets (the limit itself is tested in test_security.py)
                            env=subprocess_env(HOST="127.0.0.1", PORT=str(port), CRM_LOGIN_RATE_LIMIT="600 per minute"),
                            stdout=log, stderr=subprocess.STDOUT)

    def up() -> bool:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return True
        except OSError:
            return proc.poll() is not None

    _wait_for(up, 60, "python run.py to listen")
    assert proc.poll() is None, (_TMP / "server.log").read_text()
    yield f"http://127.0.0.1:{port}"
    proc.terminate()
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        proc.kill()
    log.close()
