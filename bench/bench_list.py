"""Customer list and search at scale over HTTP (issue 3, point 12): the product served by gunicorn
on loopback, a client logged in as a row-scoped staff user, a department supervisor and the
admin; each page beside the same query in raw SQL (driver level, same database) and beside a
trivial logged-in page (the framework floor: /users/userinfo/, the user's own record).

    .venv/bin/python bench/bench_list.py [N]                 # SQLite, N customers (default 1,000,000)
    BENCH_DATABASE_URL=postgresql://u:p@host/db .venv/bin/python bench/bench_list.py [N]
    CRM_INSTANCE_DIR=/path/kept .venv/bin/python bench/bench_list.py   # measure again on a kept database
    BENCH_ONLY="admin:3-tag,staff:list page 1" ...       # only these user:query pairs (query = label prefix)

Data (bench_search.build): N customers with 2 contacts and 5 tags each, spread over 500 owners in
10 departments (2,000 customers per owner, N/10 per department); the staff user owns 2,000, the
supervisor sees a department. Prints median and p95 of 40 runs in ms (after 4 warm-up calls, so both gunicorn workers are warm), the raw SQL median, the
ratio of p95 to the floor's median and the verdict against the target (p95 <= 3 x floor and
<= 300 ms), with the machine and its load average.
"""
from __future__ import annotations

import http.cookiejar
import os
import platform
import re
import socket
import statistics
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from bench.bench_search import build  # noqa: E402  (sets up the instance dir / database)
from bench.timing import times_ms  # noqa: E402

RUNS, WARM, OWNERS, DEPARTMENTS, PASSWORD = 40, 4, 500, 10, "Bench-User-Pass-2024"
PAGE = 25  # rows per page of the lists and of the search screen (views/search.py PAGE_SIZES)
LAST = 999 * PAGE  # the offset of page 1,000
VIEW = "CustomerModelView"


def prepare(n: int) -> None:
    """Departments, the three users who log in and the other owners; then the customers."""
    from app.extensions import appbuilder, db
    from app.models import CrmUser, Customer, Department, SeedRecord

    if db.session.query(Customer).count() >= n:
        return
    sm = appbuilder.sm
    depts = []
    for i in range(1, DEPARTMENTS + 1):
        dept = db.session.query(Department).filter_by(key=f"bench{i:02d}").first() or \
            Department(key=f"bench{i:02d}", name=f"基准部门{i:02d}", name_en=f"Bench {i:02d}")
        db.session.add(dept)
        depts.append(dept)
    db.session.commit()

    def role(key):
        return db.session.get(sm.role_model, db.session.query(SeedRecord).filter_by(kind="role", key=key).one().record_id)

    for username, key in (("bench_staff", "sales_staff"), ("bench_super", "sales_supervisor")):
        user = sm.find_user(username=username) or sm.add_user(username, "基准", "用户", f"{username}@bench.invalid",
                                                               role(key), password=PASSWORD)
        user.department_id = depts[0].id
    db.session.commit()
    staff = sm.find_user(username="bench_staff")
    others = [CrmUser(username=f"bench_owner{i:03d}", first_name="员工", last_name=f"{i:03d}", active=True,
                      email=f"bench_owner{i:03d}@bench.invalid", password=staff.password, roles=[role("sales_staff")],
                      department_id=depts[i % DEPARTMENTS].id) for i in range(1, OWNERS)]
    db.session.add_all(others)
    db.session.commit()
    owners = [(staff.id, depts[0].id)] + [(u.id, u.department_id) for u in others]
    info = build(n, per_contacts=(2, 2), per_tags=(5, 5), owners=owners)
    print(f"loaded {n:,} customers in {info['load_s']:.0f} s", file=sys.stderr)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Client:
    def __init__(self, base: str, username: str, password: str):
        self.base = base
        self.opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar()))
        page = self.opener.open(base + "/login/").read().decode()
        token = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', page).group(1)
        data = urllib.parse.urlencode({"username": username, "password": password, "csrf_token": token}).encode()
        self.opener.open(base + "/login/", data).read()
        if "/login" in self.opener.open(base + "/users/userinfo/").geturl():
            raise SystemExit(f"login failed for {username}")

    def get(self, path: str) -> str:
        with self.opener.open(self.base + path) as resp:
            if resp.status != 200 or "/login" in resp.geturl():
                raise SystemExit(f"{path}: {resp.status} {resp.geturl()}")
            return resp.read().decode()


def _only() -> list[tuple[str, str]]:
    """BENCH_ONLY="user:query prefix,...": measure only these (each user's floor page always)."""
    return [tuple(p.strip().split(":", 1)) for p in os.environ.get("BENCH_ONLY", "").split(",") if ":" in p]


def _wanted(who: str, label: str) -> bool:
    only = _only()
    return not only or any(who == u and label.startswith(q) for u, q in only)


def timed(fn, runs: int = RUNS) -> tuple[float, float]:
    """Median and p95 in ms, after WARM calls (both gunicorn workers have answered once)."""
    times = times_ms(fn, runs, WARM)
    return statistics.median(times), statistics.quantiles(times, n=20)[18]


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 1_000_000
    from sqlalchemy import text

    from app import create_app
    from app.extensions import appbuilder, db
    from app.models import Tag
    from app.services.bootstrap import initialise

    app = create_app()
    with app.test_request_context():  # tag labels ask the request's language
        initialise()
        prepare(n)
        engine = db.engine.dialect.name
        if engine == "postgresql":  # what autovacuum does after a bulk load: index-only scans need the visibility map
            with db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
                for table in ("crm_customer", "crm_contact", "crm_customer_tag", "crm_customer_token"):
                    conn.execute(text(f"VACUUM ANALYZE {table}"))
        db.session.execute(text("ANALYZE"))
        db.session.commit()
        sm = appbuilder.sm
        staff, sup = sm.find_user(username="bench_staff"), sm.find_user(username="bench_super")
        dept = staff.department_id
        sample = db.session.execute(text("SELECT name, name_initials FROM crm_customer WHERE id = :i"),
                                    {"i": n // 2 + 1}).one()
        tag_ids = [db.session.execute(text("SELECT t.id FROM crm_tag t JOIN crm_tag_dimension d ON d.id = t.dimension_id"
                                           " WHERE d.key = :k ORDER BY t.sort LIMIT 1"), {"k": k}).scalar()
                   for k in ("region", "need", "activity")]
        labels = [db.session.get(Tag, i).label for i in tag_ids]
        url = app.config["SQLALCHEMY_DATABASE_URI"]
        counts = {u: db.session.execute(text("SELECT count(*) FROM crm_customer WHERE " + where), params).scalar()
                  for u, (where, params) in _scopes(staff.id, sup.id, dept, url).items()}
    word = sample.name[2:5]  # 3 characters from the middle of a name (trade name + industry word)
    with app.app_context():  # the piece the product reads it by: the rarest (search.py _rarest)
        piece = min((word[:2], word[1:]), key=lambda t: db.session.execute(
            text("SELECT count(*) FROM crm_customer_token WHERE token = :t"), {"t": t}).scalar())
    initials = sample.name_initials[2:6]
    with app.app_context():  # its rarest three-letter piece (search.py _readings, search_keys.initials_pieces)
        itoken = min((f"^{initials[:3]}", f"^{initials[1:]}"), key=lambda t: db.session.execute(
            text("SELECT count(*) FROM crm_customer_token WHERE token = :t"), {"t": t}).scalar())
    port = free_port()
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    server = subprocess.Popen([str(Path(sys.executable).parent / "gunicorn"), "-w", "2", "-b", f"127.0.0.1:{port}",
                               "--timeout", "300", "--log-level", "warning", "run:app"], cwd=ROOT, env=env)
    try:
        base = f"http://127.0.0.1:{port}"
        for _ in range(240):
            try:
                urllib.request.urlopen(base + "/login/").read()
                break
            except OSError:
                time.sleep(0.5)
        admin_password = os.environ["CRM_ADMIN_PASSWORD"]
        clients = {"staff": Client(base, "bench_staff", PASSWORD), "supervisor": Client(base, "bench_super", PASSWORD),
                   "admin": Client(base, "admin", admin_password)}
        raw = _raw_connection(url)
        lines = []
        for who, client in clients.items():
            if _only() and who not in {u for u, _ in _only()}:
                continue
            where, params = _scopes(staff.id, sup.id, dept, url)[who]
            floor = timed(lambda: client.get("/users/userinfo/"))
            lines.append((who, f"floor page (/users/userinfo/)", floor, None, floor[0]))
            fenced = url.startswith("postgresql") and who != "staff"  # search.py _driven
            own_fence = " OFFSET 0" if url.startswith("postgresql") and who == "staff" else ""  # search.py matching_ids
            tags_sql = " AND ".join(f"EXISTS (SELECT 1 FROM crm_customer_tag t WHERE t.customer_id = c.id"
                                    f" AND t.tag_id = {i}{own_fence})" for i in tag_ids)
            page_sql = f"SELECT c.* FROM crm_customer c WHERE archived = {_false(url)} AND ({where})"
            pinyin_match = f"c.name_initials LIKE '%{initials}%' OR c.name_pinyin LIKE '%{initials}%'"
            chinese_sql = (page_sql + f" AND c.id IN (SELECT customer_id FROM crm_customer_token WHERE token = '{piece}')"
                           f" AND c.name LIKE '%{word}%' ORDER BY c.id DESC LIMIT {PAGE}")
            pinyin_sql = (f"SELECT c.* FROM crm_customer c WHERE c.id IN (SELECT t.customer_id FROM crm_customer_token t"
                          f" WHERE t.token = '{itoken}' AND EXISTS ({page_sql.replace('c.*', 'c.id')} AND ({pinyin_match})"
                          f" AND c.id = t.customer_id OFFSET 0) ORDER BY t.customer_id DESC LIMIT {PAGE}) ORDER BY c.id DESC"
                          if fenced else page_sql + f" AND c.id IN (SELECT customer_id FROM crm_customer_token"
                          f" WHERE token = '{itoken}') AND ({pinyin_match}) ORDER BY c.id DESC LIMIT {PAGE}")
            if who == "staff":  # one pass over the owner's customers, every reading at once (search.py matching_ids)
                def one_pass(text: str, *matches: str) -> str:
                    contact = f"c.id IN (SELECT customer_id FROM crm_contact WHERE name >= '{text}' AND name < '{text}\uffff')"
                    return (page_sql + f" AND (c.customer_no = '{text.upper()}' OR {' OR '.join(matches)} OR {contact})"
                            f" ORDER BY c.id + 0 DESC LIMIT {PAGE}")
                chinese_sql = one_pass(word, f"lower(c.name) LIKE '%{word}%'")
                pinyin_sql = one_pass(initials, pinyin_match, f"(c.name_pinyin >= '{initials}' AND"
                                      f" c.name_pinyin < '{initials}\uffff')")
            kinds = [
                ("list page 1", f"/{VIEW.lower()}/list/", _list_sql(who, page_sql, where, 0)),
                ("list page 1,000", f"/{VIEW.lower()}/list/?page_{VIEW}=999",
                 _list_sql(who, page_sql, where, LAST)) if counts[who] > LAST else None,
                ("sort by last contact", f"/{VIEW.lower()}/list/?_oc_{VIEW}=last_contact_at&_od_{VIEW}=desc",
                 page_sql + f" ORDER BY c.last_contact_at DESC, c.id DESC LIMIT {PAGE}"),
                (f"3-char Chinese ({word})", "/customersearch/?" + urllib.parse.urlencode({"q": word}), chinese_sql),
                (f"pinyin initials ({initials})", "/customersearch/?" + urllib.parse.urlencode({"q": initials}), pinyin_sql),
                ("3-tag filter", "/customersearch/?" + urllib.parse.urlencode({"tag": labels}, doseq=True),
                 page_sql + f" AND {tags_sql} ORDER BY c.id DESC LIMIT {PAGE}"),
            ]
            kinds += [(f"count line ({label.split(' (')[0]})", path.replace("/customersearch/?", "/customersearch/count?"),
                       None) for label, path, _sql in kinds[3:]]  # what the search page asks for apart
            for kind in kinds:
                if kind is None:
                    lines.append((who, f"list page 1,000: none ({counts[who]:,} customers = "
                                       f"{-(-counts[who] // PAGE):,} pages)", None, None, floor[0]))
                    continue
                label, path, sql = kind
                if not _wanted(who, label):
                    continue
                ours = timed(lambda: client.get(path))
                lines.append((who, label, ours, timed(lambda: _run(raw, sql, params), 5)[0] if sql else None, floor[0]))
        raw.close()
    finally:
        server.terminate()
        server.wait()
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores (shared), Python {platform.python_version()}, "
          f"{engine}, {n:,} customers x 2 contacts x 5 tags; gunicorn 2 workers on loopback; "
          f"load average {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    print(f"users see: staff {counts['staff']:,}, supervisor {counts['supervisor']:,}, admin {counts['admin']:,}; "
          f"{RUNS} runs each, ms; target p95 <= 3 x floor median and <= 300 ms")
    print(f"{'user':11}{'query':34}{'median':>8}{'p95':>8}{'raw SQL':>9}{'x floor':>9}  verdict")
    for who, label, ours, raw_ms, floor in lines:
        if ours is None:
            print(f"{who:11}{label}")
            continue
        ratio = ours[1] / floor
        ok = "ok" if label.startswith("floor") or (ratio <= 3 and ours[1] <= 300) else "MISSED"
        raw_txt = f"{raw_ms:9.1f}" if raw_ms is not None else f"{'':9}"
        print(f"{who:11}{label:34}{ours[0]:8.1f}{ours[1]:8.1f}{raw_txt}{ratio:9.1f}  {ok}")


def _scopes(staff: int, sup: int, dept: int, url: str) -> dict:
    """Each user's row scope in raw SQL (app/security/scopes.py customer_clause: the supervisor's
    as department_arms)."""
    pg = url.startswith("postgresql")
    members = "SELECT id FROM ab_user WHERE department_id = :d OR id = :u"
    owned = f"owner_id = ANY(ARRAY({members}))" if pg else f"owner_id IN ({members})"
    elsewhere = " UNION ALL ".join(f"SELECT id FROM crm_customer WHERE {owned} AND department_id {cond}"
                                   for cond in ("< :d", "> :d", "IS NULL"))
    home = "department_id = :d" if pg else "department_id + 0 = :d"  # scopes._either
    return {"staff": ("owner_id = :u", {"u": staff}),
            "supervisor": (f"{home} OR id IN ({elsewhere})", {"u": sup, "d": dept}),
            "admin": ("1 = 1", {})}


def _list_sql(who: str, page_sql: str, where: str, offset: int):
    """A list page newest first in raw SQL; the supervisor's as the product reads it
    (paging.merged_page): each arm counted up to the cap past the page, then the page of the
    first arm (the second is empty here: owners work in their customers' departments)."""
    if who != "supervisor":
        return page_sql + f" ORDER BY c.id DESC LIMIT {PAGE} OFFSET {offset}"
    arms = [page_sql.replace("c.*", "c.id") + " AND department_id = :d",
            page_sql.replace("c.*", "c.id") + " AND " + where.split(" OR ", 1)[1]]
    counts = [f"SELECT count(*) FROM ({arm} LIMIT {offset + 1001}) x" for arm in arms]
    return (*counts, f"SELECT c.* FROM crm_customer c WHERE c.id IN ({arms[0]} ORDER BY c.id DESC LIMIT {PAGE} OFFSET {offset})")


def _false(url: str) -> str:
    return "false" if url.startswith("postgresql") else "0"


def _raw_connection(url: str):
    if url.startswith("postgresql"):
        import psycopg

        # the product's session settings (app/__init__.py: custom plans only, no JIT)
        return psycopg.connect(url.replace("postgresql+psycopg://", "postgresql://"),
                               options="-c jit=off -c plan_cache_mode=force_custom_plan")
    import sqlite3

    return sqlite3.connect(url.removeprefix("sqlite:///"))


def _run(conn, sql: str | tuple, params: dict):
    """Run ``sql`` (or each statement of a tuple) on the driver."""
    for one in (sql,) if isinstance(sql, str) else sql:
        if conn.__class__.__module__.startswith("psycopg"):
            one = re.sub(r":(\w+)", r"%(\1)s", one.replace("%", "%%"))
        cur = conn.cursor()
        cur.execute(one, {k: v for k, v in params.items() if f":{k}" in one or f"%({k})s" in one})
        rows = cur.fetchall()
        cur.close()
    return rows


if __name__ == "__main__":
    main()
