"""First start: `python run.py` on nothing but a fresh instance dir (and, on PostgreSQL, an empty
database) serves a Chinese login page quickly, prints a generated admin password once, and the
next start reuses the database. HOST/PORT are honoured; `--demo N` loads demo customers."""
from __future__ import annotations

import re
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from http.cookiejar import CookieJar

import pytest

from conftest import ROOT, free_port, subprocess_env
from freshdb import ENGINE, fresh_database

PASSWORD_LINE = re.compile(r"密码 / password:\s+(\S+)")


class Browser:
    """Just enough of a browser: cookies, redirects, forms."""

    def __init__(self, base: str):
        self.base = base
        self.opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(CookieJar()))

    def open(self, path: str, data: dict | None = None, timeout: float = 5) -> tuple[int, str, str]:
        body = urllib.parse.urlencode(data).encode() if data is not None else None
        try:
            with self.opener.open(self.base + path, data=body, timeout=timeout) as resp:
                return resp.status, resp.geturl(), resp.read().decode("utf-8", "replace")
        except urllib.error.HTTPError as err:
            return err.code, err.geturl(), err.read().decode("utf-8", "replace")

    def login(self, username: str, password: str) -> bool:
        _, _, page = self.open("/login/")
        token = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', page).group(1)
        status, url, _ = self.open("/login/", {"username": username, "password": password, "csrf_token": token})
        return status == 200 and "/login" not in urllib.parse.urlparse(url).path


class Server:
    def __init__(self, env: dict, log_path, args=(), host="127.0.0.1"):
        self.host, self.port = host, free_port()
        self.log_path = log_path
        env = dict(env, HOST=host, PORT=str(self.port))
        self.log = open(log_path, "w")
        self.started = time.monotonic()
        self.proc = subprocess.Popen([sys.executable, "run.py", *args], cwd=ROOT, env=env,
                                     stdout=self.log, stderr=subprocess.STDOUT)
        self.base = f"http://{host}:{self.port}"

    def output(self) -> str:
        self.log.flush()
        return self.log_path.read_text(encoding="utf-8", errors="replace")

    def wait_for_login_page(self, timeout: float = 60) -> float:
        """Seconds from launch until /login/ answers with the Chinese login form."""
        deadline = self.started + timeout
        while time.monotonic() < deadline:
            assert self.proc.poll() is None, f"run.py exited:\n{self.output()[-3000:]}"
            try:
                status, _, html = Browser(self.base).open("/login/", timeout=1)
                if status == 200 and "用户名" in html and "登录" in html:
                    return time.monotonic() - self.started
            except OSError:
                pass
            time.sleep(0.1)
        raise AssertionError(f"no login page after {timeout}s:\n{self.output()[-3000:]}")

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        self.log.close()


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    """An environment as on a new machine: nothing but an empty instance dir (and database)."""
    tmp = tmp_path_factory.mktemp("first-start")
    with fresh_database(tmp) as url:
        env = subprocess_env(CRM_INSTANCE_DIR=str(tmp / "instance"))
        for name in ("CRM_ADMIN_PASSWORD", "REDIS_URL", "SECRET_KEY", "CRM_SEED_DIR", "DATABASE_URL"):
            env.pop(name, None)
        if ENGINE == "postgresql":
            env["DATABASE_URL"] = url
        yield {"env": env, "tmp": tmp, "password": None}


def test_first_start_shows_chinese_login_and_prints_password_once(site):
    server = Server(site["env"], site["tmp"] / "start1.log")
    try:
        elapsed = server.wait_for_login_page()  # speed is a benchmark's business, not a test's
        print(f"\n[{ENGINE}] first start: login page after {elapsed:.1f} s")
        out = server.output()
        passwords = PASSWORD_LINE.findall(out)
        assert len(passwords) == 1, out[-3000:]
        site["password"] = passwords[0]
        browser = Browser(server.base)
        assert browser.login("admin", passwords[0])
        assert 'data-stat="customers"' in browser.open("/")[2]
        assert not Browser(server.base).login("admin", passwords[0] + "x")
    finally:
        server.stop()
    if ENGINE == "sqlite":
        assert (site["tmp"] / "instance" / "crm.db").exists()


def test_second_start_prints_no_password_and_reuses_the_database(site):
    assert site["password"], "needs the first start"
    server = Server(site["env"], site["tmp"] / "start2.log")
    try:
        server.wait_for_login_page()
        out = server.output()
        assert not PASSWORD_LINE.search(out) and site["password"] not in out
        assert '"created": 0' in out, "the second start found the seeds already loaded"
        assert Browser(server.base).login("admin", site["password"])
    finally:
        server.stop()


def _stat(html: str, key: str) -> int:
    return int(re.search(rf'data-stat="{key}">\s*([\d,]+)', html).group(1).replace(",", ""))


def test_host_port_honoured_and_demo_flag_loads_demo_data(site):
    assert site["password"], "needs the first start"
    server = Server(site["env"], site["tmp"] / "start3.log", args=["--demo", "10"], host="127.0.0.2")
    try:
        server.wait_for_login_page()
        with pytest.raises(OSError):  # listens on HOST only
            socket.create_connection(("127.0.0.1", server.port), timeout=1).close()
        out = server.output()
        assert f"http://127.0.0.2:{server.port}/" in out, out[-2000:]
        assert "customers_created': 10" in out or '"customers_created": 10' in out, out[-2000:]
        browser = Browser(server.base)
        assert browser.login("admin", site["password"])
        assert _stat(browser.open("/")[2], "customers") == 10
    finally:
        server.stop()
