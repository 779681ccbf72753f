"""我的工作台 for a user with 10,000 tasks: the whole page (login session, permission checks,
menu counts, every section's count and first 20 rows, template) against the bare SQL those
sections need, run on the same database with the DB driver, in the same run.

    .venv/bin/python bench/bench_inbox.py [TASKS]           # SQLite in a throwaway instance dir
    DATABASE_URL=postgresql://... .venv/bin/python bench/bench_inbox.py

Target (issue 5, point 8): the page under 300 ms. Prints medians of 15 loads.
"""
from __future__ import annotations

import os
import platform
import re
import sys
import tempfile
import time
from datetime import datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from bench.timing import median_ms  # noqa: E402
os.environ.setdefault("CRM_INSTANCE_DIR", tempfile.mkdtemp(prefix="crm-bench-"))
os.environ.setdefault("CRM_ADMIN_PASSWORD", "Bench-Admin-Pass-2024")
os.environ.pop("REDIS_URL", None)
PASSWORD = "Bench-Staff-Pass-2024"
RUNS = 15


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 10_000
    from sqlalchemy import insert

    from app import create_app
    from app.extensions import appbuilder, db
    from app.models import Customer, Reminder, SeedRecord, Task
    from app.services.bootstrap import initialise
    from config import Config

    class BenchConfig(Config):
        WTF_CSRF_ENABLED = False
        RATELIMIT_ENABLED = False

    app = create_app(BenchConfig)
    with app.app_context():
        initialise()
        sm = appbuilder.sm
        link = db.session.query(SeedRecord).filter_by(kind="role", key="sales_staff").one()
        name = f"bench{int(time.time())}"
        user = sm.add_user(name, "测", "试", f"{name}@bench.invalid", db.session.get(sm.role_model, link.record_id),
                           password=PASSWORD)
        uid = user.id
        now = datetime.now()
        db.session.execute(insert(Customer), [
            {"customer_no": f"B{uid}-{i:05d}", "name": f"基准客户{i}", "owner_id": uid, "created_by_fk": uid,
             "changed_by_fk": uid, "created_on": now, "changed_on": now, "archived": False} for i in range(200)])
        cids = [c for (c,) in db.session.query(Customer.id).filter(Customer.owner_id == uid)]
        # 10% overdue, 1% due today, 20% done, the rest in the coming months; created over 30 days
        rows = []
        for i in range(n):
            if i % 10 == 0:
                due, status = now - timedelta(days=1 + i % 30), "overdue"
            elif i % 100 == 1:
                due, status = now.replace(hour=23, minute=0), "pending"
            elif i % 5 == 2:
                due, status = now - timedelta(days=i % 60), "done"
            else:
                due, status = now + timedelta(days=1 + i % 90), "pending"
            rows.append({"title": f"任务{i}", "assignee_id": uid, "customer_id": cids[i % len(cids)], "due_at": due,
                         "status": status, "created_on": now - timedelta(days=i % 30), "created_by_id": uid})
        db.session.execute(insert(Task), rows)
        db.session.execute(insert(Reminder), [
            {"kind": "no_contact", "subject_id": c, "user_id": uid, "period": "never", "customer_id": c,
             "created_on": now} for c in cids])
        db.session.commit()
        engine_name = db.engine.dialect.name
        day_end = now.replace(hour=23, minute=59, second=59)
        week_ago = now - timedelta(days=7)
        params = {"u": uid, "now": now, "day_end": day_end, "week_ago": week_ago}
        sections = [  # (where, order) of each inbox section
            ("FROM crm_task WHERE assignee_id = :u AND status != 'done' AND due_at < :now", "due_at"),
            ("FROM crm_task WHERE assignee_id = :u AND status != 'done' AND due_at >= :now AND due_at <= :day_end",
             "due_at"),
            ("FROM crm_task WHERE assignee_id = :u AND status != 'done' AND created_on >= :week_ago",
             "created_on DESC"),
            ("FROM crm_reminder WHERE user_id = :u AND read_at IS NULL", "created_on DESC"),
        ]
        raw_conn = db.engine.raw_connection()

        def bare_sql() -> None:
            # the same counts and first pages, through the driver (no ORM, no HTTP, no template)
            cur = raw_conn.cursor()
            style = (lambda s: re.sub(r":(\w+)", r"%(\1)s", s)) if engine_name == "postgresql" else (lambda s: s)
            for where, order in sections:
                cur.execute(style(f"SELECT count(*) {where}"), params)
                cur.fetchall()
                cur.execute(style(f"SELECT * {where} ORDER BY {order} LIMIT 20"), params)
                cur.fetchall()
            cur.close()

        bare = median_ms(bare_sql, RUNS)
        raw_conn.close()

    client = app.test_client()
    resp = client.post("/login/", data={"username": name, "password": PASSWORD})
    assert resp.status_code == 302, resp.status_code

    def page() -> None:
        r = client.get("/workbench/")
        assert r.status_code == 200 and "我的工作台" in r.get_data(as_text=True)

    ours = median_ms(page, RUNS)

    def empty_page() -> None:  # the floor: any logged-in FAB page (session, permissions, menu)
        assert client.get("/resetmypassword/form").status_code == 200

    floor = median_ms(empty_page, RUNS)
    print(f"machine: {platform.node()} {platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}, "
          f"{engine_name}")
    print(f"data: 1 user with {n:,} tasks ({n // 10:,} overdue), 200 customers, 200 unread reminders")
    print(f"bare SQL (the inbox's 4 counts + 4 first pages, DB driver): {bare:8.1f} ms")
    print(f"an empty logged-in page (/resetmypassword/form):           {floor:8.1f} ms")
    print(f"我的工作台 page (HTTP, session, permissions, menu counts):   {ours:8.1f} ms   "
          f"ratio {ours / bare:.1f}x   target < 300 ms: {'OK' if ours < 300 else 'MISSED'}")


if __name__ == "__main__":
    main()
