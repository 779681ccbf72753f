"""The security baseline, as a user or an attacker would notice it: login rate limits, logout
that really ends a session, no open redirect, cookie flags, the password policy, CSRF on every
form and on cookie-authenticated API calls, error pages without internals, the secret key."""
from __future__ import annotations

import html
import itertools
import json
import os
import re
import stat
import subprocess
import sys
import uuid
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from conftest import ADMIN_PASSWORD, ROOT, USER_PASSWORD, csrf_token, flask_cmd, login, subprocess_env

CJK = re.compile(r"[\u4e00-\u9fff]")
GOOD_PASSPHRASE = "tea-kettle on the 9th floor"


def _zh(app, msgid: str, **kw) -> str:
    """The message as a Chinese user sees it (the zh catalog applied)."""
    from flask_babel import gettext

    with app.test_request_context("/"):
        from flask import session

        session["locale"] = "zh"
        return gettext(msgid, **kw)


def assert_chinese_message(app, body: str, msgid: str, **kw) -> None:
    """The body shows ``msgid`` in Chinese (from the zh catalog)."""
    expected = _zh(app, msgid, **kw)
    body = html.unescape(body)
    assert CJK.search(expected), f"{msgid!r} has no Chinese translation"
    assert expected in body, body[:2000]


def assert_no_internals(body: str) -> None:
    for word in ("Traceback", "sqlalchemy", "SELECT", "File \"", "werkzeug"):
        assert word not in body, f"{word!r} leaked into the response:\n{body[:2000]}"


def cookie_value(client, name: str = "session") -> str:
    cookie = client.get_cookie(name)
    assert cookie is not None, f"no {name} cookie"
    return cookie.value


_addresses = itertools.count(1)


def fresh_client(app):
    """Another browser, on its own address (the `client` fixture is already the admin's in
    tests that use `admin_client`)."""
    n = next(_addresses)
    c = app.test_client()
    c.environ_base["REMOTE_ADDR"] = f"10.{250 - os.getpid() % 3}.{n // 250}.{n % 250 + 1}"
    return c


def clone_with_cookie(app, value: str):
    """A different browser that only has the saved session cookie."""
    c = fresh_client(app)
    c.set_cookie("session", value)
    return c


def api_token(client, username: str, password: str) -> str:
    resp = client.post("/api/v1/security/login",
                       json={"username": username, "password": password, "provider": "db"})
    assert resp.status_code == 200, resp.get_data(as_text=True)
    return resp.get_json()["access_token"]


# 1. Login rate limiting ---------------------------------------------------------------------

def _limit_count(app) -> int:
    from limits import parse

    return parse(app.config["AUTH_RATE_LIMIT"]).amount


def _limiter_keys(app, address: str) -> list[str]:
    from app.jobs.queue import get_redis

    with app.app_context():
        return [k.decode() for k in get_redis().keys("*") if address in k.decode()]


def test_form_login_is_rate_limited(app, client):
    n = _limit_count(app)
    assert n == 5
    token = csrf_token(client.get("/login/").get_data(as_text=True))
    codes = [client.post("/login/", data={"username": "admin", "password": f"wrong-{i}", "csrf_token": token}).status_code
             for i in range(n)]
    assert 429 not in codes, codes
    # The right password does not get through either once the address is over the limit.
    resp = client.post("/login/", data={"username": "admin", "password": ADMIN_PASSWORD, "csrf_token": token})
    assert resp.status_code == 429
    body = resp.get_data(as_text=True)
    assert_no_internals(body)
    assert client.get("/users/list/").status_code == 302  # not logged in
    # Another address is not affected.
    other = fresh_client(app)
    assert login(other, "admin", ADMIN_PASSWORD).status_code == 302
    assert_chinese_message(app, body, "Too many attempts. Please wait a minute and try again.")


def test_api_login_is_rate_limited(app, client):
    n = _limit_count(app)
    for i in range(n):
        resp = client.post("/api/v1/security/login",
                           json={"username": "admin", "password": f"wrong-{i}", "provider": "db"})
        assert resp.status_code == 401, (i, resp.status_code)
    resp = client.post("/api/v1/security/login",
                       json={"username": "admin", "password": ADMIN_PASSWORD, "provider": "db"})
    assert resp.status_code == 429
    assert resp.is_json
    assert resp.get_json()["message"] == _zh(app, "Too many attempts. Please wait a minute and try again.")
    assert "access_token" not in resp.get_data(as_text=True)
    assert_no_internals(resp.get_data(as_text=True))


def test_login_counts_live_in_redis(app, client):
    if not app.config.get("REDIS_URL"):
        pytest.skip("REDIS_URL not set: the limiter counts in process memory")
    address = client.environ_base["REMOTE_ADDR"]
    assert _limiter_keys(app, address) == []
    token = csrf_token(client.get("/login/").get_data(as_text=True))
    client.post("/login/", data={"username": "admin", "password": "wrong", "csrf_token": token})
    client.post("/api/v1/security/login", json={"username": "admin", "password": "wrong", "provider": "db"})
    keys = _limiter_keys(app, address)
    # Flask-Limiter (limits' Redis storage) keys look like LIMITS:LIMITER/<address>/<blueprint>/5/1/minute
    assert len(keys) >= 2 and all(k.startswith("LIMITS:LIMITER/") for k in keys), keys


# 2. Logout and deactivation end the session server-side ---------------------------------------

def test_logout_invalidates_saved_cookie(app, client, make_user):
    username = make_user("sales_staff", "sales")
    assert login(client, username, USER_PASSWORD).status_code == 302
    saved = cookie_value(client)
    # Before logout the saved cookie is a working login in another browser ...
    thief = clone_with_cookie(app, saved)
    assert thief.get("/customermodelview/list/").status_code == 200
    assert thief.get("/api/v1/customer/").status_code == 200
    client.get("/logout/")
    # ... after logout it reads nothing.
    thief = clone_with_cookie(app, saved)
    resp = thief.get("/customermodelview/list/")
    assert resp.status_code == 302 and "/login/" in resp.headers["Location"]
    assert thief.get("/api/v1/customer/").status_code == 401


def test_logout_invalidates_admin_cookie(app, admin_client):
    saved = cookie_value(admin_client)
    assert clone_with_cookie(app, saved).get("/users/list/").status_code == 200
    admin_client.get("/logout/")
    resp = clone_with_cookie(app, saved).get("/users/list/")
    assert resp.status_code == 302 and "/login/" in resp.headers["Location"]
    assert clone_with_cookie(app, saved).get("/api/v1/customer/").status_code == 401


def _user_id(app, username: str) -> int:
    from app.extensions import appbuilder

    with app.app_context():
        return appbuilder.sm.find_user(username=username).id


def _set_active_in_ui(admin_client, app, username: str, active: bool) -> None:
    """The admin edits the user in /users/edit/<pk> and (un)ticks 'active'."""
    from app.extensions import appbuilder

    with app.app_context():
        user = appbuilder.sm.find_user(username=username)
        pk, roles = user.id, [str(r.id) for r in user.roles]
        fields = {"first_name": user.first_name, "last_name": user.last_name, "username": user.username,
                  "email": user.email, "department": str(user.department_id or "")}
    page = admin_client.get(f"/users/edit/{pk}")
    assert page.status_code == 200
    data = dict(fields, roles=roles, csrf_token=csrf_token(page.get_data(as_text=True)))
    if active:
        data["active"] = "y"
    resp = admin_client.post(f"/users/edit/{pk}", data=data)
    assert resp.status_code == 302, resp.get_data(as_text=True)[:3000]
    with app.app_context():
        assert appbuilder.sm.find_user(username=username).active is active


def test_deactivating_a_user_ends_their_session(app, admin_client, make_user):
    client = fresh_client(app)
    username = make_user("sales_staff", "sales")
    assert login(client, username, USER_PASSWORD).status_code == 302
    saved = cookie_value(client)
    assert client.get("/customermodelview/list/").status_code == 200
    _set_active_in_ui(admin_client, app, username, False)
    resp = client.get("/customermodelview/list/")
    assert resp.status_code == 302 and "/login/" in resp.headers["Location"]
    assert clone_with_cookie(app, saved).get("/api/v1/customer/").status_code == 401
    # Ended for good: re-enabling the account does not bring the old session back.
    _set_active_in_ui(admin_client, app, username, True)
    assert clone_with_cookie(app, saved).get("/customermodelview/list/").status_code == 302
    assert clone_with_cookie(app, saved).get("/api/v1/customer/").status_code == 401


# 3. No open redirect through a forged Host ----------------------------------------------------

@pytest.mark.parametrize("target", ["https://evil.example/x", "//evil.example/x", "https:/evil.example/x",
                                    "/\\evil.example/x"])
def test_login_next_does_not_leave_the_site_with_forged_host(client, make_user, target):
    username = make_user("sales_staff", "sales")
    page = client.get("/login/", base_url="http://evil.example")
    resp = client.post(f"/login/?next={target}", base_url="http://evil.example",
                       headers={"Host": "evil.example"},
                       data={"username": username, "password": USER_PASSWORD,
                             "csrf_token": csrf_token(page.get_data(as_text=True))})
    assert resp.status_code == 302
    location = resp.headers["Location"]
    # a path on this site (FAB may keep "/%5Cevil.example/x" as a harmless local 404)
    assert urlsplit(location).netloc == "" and urlsplit(location).scheme == "", location
    assert location.startswith("/") and not location.startswith(("//", "/\\")), location
    assert not location.lstrip("/").startswith("evil.example"), location
    assert not urlsplit(location).path.startswith("/login"), location  # signed in (a refused login stays local too)


def test_login_next_keeps_a_local_target(client, make_user):
    username = make_user("sales_staff", "sales")
    page = client.get("/login/")
    resp = client.post("/login/?next=/customermodelview/list/",
                       data={"username": username, "password": USER_PASSWORD,
                             "csrf_token": csrf_token(page.get_data(as_text=True))})
    assert resp.status_code == 302 and resp.headers["Location"].endswith("/customermodelview/list/")


# 4. Session cookie flags ----------------------------------------------------------------------

def _session_set_cookie(resp) -> str:
    cookies = [c for c in resp.headers.getlist("Set-Cookie") if c.startswith("session=")]
    assert cookies, resp.headers
    return cookies[-1]


def test_session_cookie_flags_after_login(client, make_user):
    username = make_user("sales_staff", "sales")
    resp = login(client, username, USER_PASSWORD)
    assert resp.status_code == 302
    header = _session_set_cookie(resp)
    parts = [p.strip().lower() for p in header.split(";")]
    assert "httponly" in parts
    assert "samesite=lax" in parts
    assert "secure" not in parts  # plain HTTP by default (the browser would drop it otherwise)


_HTTPS_PROBE = r"""
import json, sys
from app import create_app
from config import TestConfig
app = create_app(TestConfig)
c = app.test_client()
c.environ_base["REMOTE_ADDR"] = "10.252.0.9"
import re
page = c.get("/login/", base_url="https://localhost")
token = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', page.get_data(as_text=True)).group(1)
resp = c.post("/login/", base_url="https://localhost", headers={"Referer": "https://localhost/login/"},
              data={"username": "admin", "password": sys.argv[1], "csrf_token": token})
print(json.dumps({"status": resp.status_code, "set_cookie": resp.headers.getlist("Set-Cookie"),
                  "scheme": app.config["PREFERRED_URL_SCHEME"]}))
"""


def test_session_cookie_secure_with_crm_https(app):  # noqa: ARG001 (the database is initialised)
    out = subprocess.run([sys.executable, "-c", _HTTPS_PROBE, ADMIN_PASSWORD], cwd=ROOT,
                         env=subprocess_env(CRM_HTTPS="1"), capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-3000:]
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result["status"] == 302
    session_cookies = [c for c in result["set_cookie"] if c.startswith("session=")]
    assert session_cookies, result
    parts = [p.strip().lower() for p in session_cookies[-1].split(";")]
    assert {"secure", "httponly", "samesite=lax"} <= set(parts), parts
    assert result["scheme"] == "https"


# 5. Password policy ---------------------------------------------------------------------------

def _user_count(app, username: str) -> int:
    from app.extensions import appbuilder, db

    with app.app_context():
        return db.session.query(appbuilder.sm.user_model).filter_by(username=username).count()


def _add_user_form(admin_client, app, username: str, password: str):
    from app.extensions import appbuilder

    with app.app_context():
        role = appbuilder.sm.find_role("销售部普通员工")
        role_id = str(role.id)
    page = admin_client.get("/users/add")
    assert page.status_code == 200
    return admin_client.post("/users/add", data={
        "first_name": "测试", "last_name": "密码", "username": username, "email": f"{username}@test.invalid",
        "active": "y", "roles": [role_id], "password": password, "conf_password": password,
        "csrf_token": csrf_token(page.get_data(as_text=True)),
    })


def test_new_user_form_starts_active(admin_client):
    """An admin who fills in the add-user form without touching 'active' creates a user who
    can log in: the box starts ticked."""
    page = admin_client.get("/users/add").get_data(as_text=True)
    box = re.search(r'<input[^>]*id="active"[^>]*>', page)
    assert box is not None and "checked" in box.group(0), box


@pytest.mark.parametrize("password,msgid,kw", [
    ("short1!", "Password must be at least %(n)d characters long.", {"n": 10}),
    ("password123", "This password is too common and easy to guess; choose another one.", {}),
    ("qwertyuiop1", "This password is too common and easy to guess; choose another one.", {}),
    ("aaaaaaaaaaaa", "This password is too common and easy to guess; choose another one.", {}),
])
def test_admin_cannot_create_user_with_weak_password(app, admin_client, password, msgid, kw):
    username = f"weak_{uuid.uuid4().hex[:8]}"
    resp = _add_user_form(admin_client, app, username, password)
    assert resp.status_code == 200  # the form again, with the reason
    body = resp.get_data(as_text=True)
    assert _user_count(app, username) == 0
    assert_no_internals(body)
    assert _zh(app, msgid, **kw) in html.unescape(body), body[:3000]
    assert_chinese_message(app, body, msgid, **kw)


def test_admin_can_create_user_with_long_passphrase(app, admin_client):
    client = fresh_client(app)
    username = f"strong_{uuid.uuid4().hex[:8]}"
    resp = _add_user_form(admin_client, app, username, GOOD_PASSPHRASE)
    assert resp.status_code == 302, resp.get_data(as_text=True)[:3000]
    assert _user_count(app, username) == 1
    resp = login(client, username, GOOD_PASSPHRASE)
    assert resp.status_code == 302 and "/login" not in resp.headers["Location"]


def _reset_my_password(client, password: str):
    page = client.get("/resetmypassword/form")
    assert page.status_code == 200
    return client.post("/resetmypassword/form", data={
        "password": password, "conf_password": password, "csrf_token": csrf_token(page.get_data(as_text=True))})


def test_reset_my_password_applies_the_policy(app, client, make_user):
    username = make_user("analytics_staff", "analytics")
    assert login(client, username, USER_PASSWORD).status_code == 302
    for weak, msgid, kw in [("short1!", "Password must be at least %(n)d characters long.", {"n": 10}),
                            ("password123", "This password is too common and easy to guess; choose another one.", {})]:
        resp = _reset_my_password(client, weak)
        assert resp.status_code == 200
        assert _zh(app, msgid, **kw) in html.unescape(resp.get_data(as_text=True))
    resp = _reset_my_password(client, GOOD_PASSPHRASE)
    assert resp.status_code == 302
    client.get("/logout/")
    for weak in ("short1!", "password123"):
        assert "/login" in login(client, username, weak).headers["Location"]
    assert "/login" not in login(client, username, GOOD_PASSPHRASE).headers["Location"]


def _init_fresh(password: str, tmp_path: Path):
    env = subprocess_env(CRM_INSTANCE_DIR=str(tmp_path / "instance"), CRM_ADMIN_PASSWORD=password)
    env.pop("DATABASE_URL", None)
    env.pop("REDIS_URL", None)
    env.pop("SECRET_KEY", None)
    return subprocess.run(flask_cmd("crm", "init"), cwd=ROOT, env=env, capture_output=True, text=True, timeout=180)


@pytest.mark.parametrize("weak,reason", [("short1!", "at least 10"), ("qwertyuiop", "too common")])
def test_init_refuses_weak_admin_password(tmp_path, weak, reason):
    out = _init_fresh(weak, tmp_path)
    assert out.returncode != 0, out.stdout
    assert "CRM_ADMIN_PASSWORD" in out.stderr and reason in out.stderr, out.stderr[-2000:]
    assert "Traceback" not in out.stderr
    import sqlite3

    with sqlite3.connect(tmp_path / "instance" / "crm.db") as conn:
        assert conn.execute("SELECT count(*) FROM ab_user WHERE username='admin'").fetchone()[0] == 0


def test_init_accepts_long_admin_passphrase(tmp_path):
    out = _init_fresh(GOOD_PASSPHRASE, tmp_path)
    assert out.returncode == 0, out.stderr[-3000:]
    assert GOOD_PASSPHRASE not in out.stdout  # not echoed: only generated passwords are shown once


# 6. CSRF --------------------------------------------------------------------------------------

def _count(app, model, **filters) -> int:
    from app.extensions import db

    with app.app_context():
        return db.session.query(model).filter_by(**filters).count()


CSRF_MESSAGE = "The form's security token is missing or has expired. Reload the page and try again."


def _assert_csrf_refused(app, resp) -> None:
    assert resp.status_code == 400, resp.status_code
    body = resp.get_data(as_text=True)
    assert_no_internals(body)
    assert _zh(app, CSRF_MESSAGE) in html.unescape(body), body[:2000]


def test_login_form_needs_csrf(app, client, make_user):
    username = make_user("sales_staff", "sales")
    resp = client.post("/login/", data={"username": username, "password": USER_PASSWORD})
    _assert_csrf_refused(app, resp)
    assert client.get("/customermodelview/list/").status_code == 302  # not logged in
    assert_chinese_message(app, resp.get_data(as_text=True), CSRF_MESSAGE)


def test_add_user_needs_csrf(app, admin_client):
    from app.models import CrmUser

    username = f"nocsrf_{uuid.uuid4().hex[:8]}"
    before = _count(app, CrmUser)
    resp = admin_client.post("/users/add", data={
        "first_name": "a", "last_name": "b", "username": username, "email": f"{username}@test.invalid",
        "password": GOOD_PASSPHRASE, "conf_password": GOOD_PASSPHRASE})
    _assert_csrf_refused(app, resp)
    assert _count(app, CrmUser) == before
    # a wrong token is no better than none
    resp = admin_client.post("/users/add", data={
        "first_name": "a", "last_name": "b", "username": username, "email": f"{username}@test.invalid",
        "password": GOOD_PASSPHRASE, "conf_password": GOOD_PASSPHRASE, "csrf_token": "forged"})
    _assert_csrf_refused(app, resp)
    assert _count(app, CrmUser) == before


def test_add_customer_needs_csrf(app, admin_client):
    from app.models import Customer

    name = f"CSRF客户{uuid.uuid4().hex[:6]}"
    before = _count(app, Customer)
    resp = admin_client.post("/customermodelview/add", data={"name": name})
    _assert_csrf_refused(app, resp)
    assert _count(app, Customer) == before and _count(app, Customer, name=name) == 0


def test_run_job_needs_csrf(app, admin_client):
    from app.jobs import PERIODIC
    from app.models import JobRun

    name = next(iter(PERIODIC))
    before = _count(app, JobRun)
    queued = None
    if app.config.get("REDIS_URL"):
        from app.jobs.queue import get_queue

        with app.app_context():
            queued = len(get_queue("default"))
    resp = admin_client.post(f"/system/jobs/{name}/run")
    _assert_csrf_refused(app, resp)
    assert _count(app, JobRun) == before
    if queued is not None:
        with app.app_context():
            assert len(get_queue("default")) == queued


def _new_customer(app, name: str) -> int:
    from app.extensions import db
    from app.models import Customer
    from app.services.actor import as_system_user
    from app.services.numbering import next_number

    with app.test_request_context("/"), as_system_user():
        c = Customer(name=name, customer_no=next_number("customer"))
        db.session.add(c)
        db.session.commit()
        return c.id


def test_api_with_session_cookie_needs_csrf_header(app, admin_client):
    from app.models import Customer

    name = f"API-CSRF-{uuid.uuid4().hex[:6]}"
    before = _count(app, Customer)
    resp = admin_client.post("/api/v1/customer/", json={"name": name})
    _assert_csrf_refused(app, resp)
    assert resp.is_json
    assert _count(app, Customer) == before
    pk = _new_customer(app, f"{name}-existing")
    resp = admin_client.put(f"/api/v1/customer/{pk}", json={"name": f"{name}-renamed"})
    _assert_csrf_refused(app, resp)
    assert _count(app, Customer, name=f"{name}-renamed") == 0
    resp = admin_client.delete(f"/api/v1/customer/{pk}")
    _assert_csrf_refused(app, resp)
    assert _count(app, Customer, id=pk) == 1
    resp = admin_client.post("/api/v1/customer/", json={"name": name}, headers={"X-CSRFToken": "forged"})
    _assert_csrf_refused(app, resp)
    # Reads need no token.
    assert admin_client.get("/api/v1/customer/").status_code == 200
    # The page's own token (what the browser's scripts send) is accepted.
    token = csrf_token(admin_client.get("/customermodelview/add").get_data(as_text=True))
    resp = admin_client.post("/api/v1/customer/", json={"name": name}, headers={"X-CSRFToken": token})
    assert resp.status_code == 201, resp.get_data(as_text=True)
    assert _count(app, Customer, name=name) == 1


def test_api_with_bearer_token_needs_no_csrf(app, client):
    from app.models import Customer

    token = api_token(client, "admin", ADMIN_PASSWORD)
    auth = {"Authorization": f"Bearer {token}"}
    name = f"API-JWT-{uuid.uuid4().hex[:6]}"
    resp = client.post("/api/v1/customer/", json={"name": name}, headers=auth)
    assert resp.status_code == 201, resp.get_data(as_text=True)
    pk = resp.get_json()["id"]
    resp = client.put(f"/api/v1/customer/{pk}", json={"name": f"{name}-2"}, headers=auth)
    assert resp.status_code == 200, resp.get_data(as_text=True)
    resp = client.delete(f"/api/v1/customer/{pk}", headers=auth)
    assert resp.status_code == 200, resp.get_data(as_text=True)
    assert _count(app, Customer, id=pk) == 0
    # Without any credentials the API still answers 401, not a CSRF error.
    anon = fresh_client(app)
    assert anon.post("/api/v1/customer/", json={"name": name}).status_code == 401


# 7. Error pages show a reference number, never internals --------------------------------------

def test_errors_show_reference_not_internals(ctx, caplog):  # noqa: ARG001
    from sqlalchemy import text

    from app import create_app
    from app.extensions import db
    from config import TestConfig

    other = create_app(TestConfig)

    def boom():
        db.session.execute(text("SELECT no_such_column FROM no_such_table_for_tests"))
        return "unreachable"

    other.add_url_rule("/boom", "boom", boom)
    other.add_url_rule("/api/v1/boom", "api_boom", boom)
    c = other.test_client()
    c.environ_base["REMOTE_ADDR"] = "10.254.0.1"
    with caplog.at_level("ERROR"):
        html = c.get("/boom")
        api = c.get("/api/v1/boom")
    assert html.status_code == 500 and api.status_code == 500
    body = html.get_data(as_text=True)
    assert_no_internals(body)
    assert "no_such_table" not in body
    ref = re.search(r"<code>([0-9a-f]{10})</code>", body)
    assert ref, body[:3000]
    assert "text/html" in html.headers["Content-Type"]
    data = api.get_json()
    assert data and re.fullmatch(r"[0-9a-f]{10}", data.get("reference", "")), api.get_data(as_text=True)
    assert_no_internals(api.get_data(as_text=True))
    assert "no_such_table" not in api.get_data(as_text=True)
    # The details are in the log, under the same reference.
    logged = "\n".join(r.getMessage() + (r.exc_text or "") for r in caplog.records)
    assert ref.group(1) in logged and data["reference"] in logged
    assert any("no_such_table_for_tests" in str(r.exc_info[1]) for r in caplog.records if r.exc_info)
    assert_chinese_message(other, body, "Reference number")


# 8. SECRET_KEY --------------------------------------------------------------------------------

_PRINT_KEY = "import config; print(config.Config.SECRET_KEY)"


def _key_in(instance: Path, **extra: str) -> str:
    env = subprocess_env(CRM_INSTANCE_DIR=str(instance), **extra)
    if "SECRET_KEY" not in extra:
        env.pop("SECRET_KEY", None)
    out = subprocess.run([sys.executable, "-c", _PRINT_KEY], cwd=ROOT, env=env, capture_output=True,
                         text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    return out.stdout.strip()


def test_secret_key_generated_kept_and_private(tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    key_a = _key_in(a)
    path = a / "secret_key"
    assert path.read_text().strip() == key_a and len(key_a) >= 32
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert _key_in(a) == key_a  # the next start reuses it
    key_b = _key_in(b)
    assert key_b != key_a  # each installation has its own
    assert _key_in(tmp_path / "c", SECRET_KEY="from-the-environment-123") == "from-the-environment-123"
    assert not (tmp_path / "c" / "secret_key").exists()


def test_running_app_uses_the_instance_key(app):
    path = Path(os.environ["CRM_INSTANCE_DIR"]) / "secret_key"
    assert app.config["SECRET_KEY"] == path.read_text().strip()


def test_no_constant_secret_key_in_code():
    pattern = re.compile(r"""(SECRET_KEY|secret_key)["']?\]?\s*[:=]\s*[rbu]?["']""")
    files = [ROOT / "config.py", ROOT / "run.py", *sorted((ROOT / "app").rglob("*.py"))]
    offenders = [f"{f.relative_to(ROOT)}:{i}: {line.strip()}"
                 for f in files for i, line in enumerate(f.read_text(encoding="utf-8").splitlines(), 1)
                 if pattern.search(line)]
    assert offenders == []
    # and the pattern does catch one
    assert pattern.search('SECRET_KEY = "changeme"') and pattern.search("app.config['SECRET_KEY'] = 'x'")
