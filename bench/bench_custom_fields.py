"""Admin-defined fields (字段配置) at scale: filtering the customer list on a custom field (a JSON
value in crm_customer.extra) against the raw SQL scans underneath, and what reading the field
definitions per request costs a list page, measured in the same run.

    .venv/bin/python bench/bench_custom_fields.py [N]        # SQLite in a throwaway instance dir
    DATABASE_URL=postgresql://... .venv/bin/python bench/bench_custom_fields.py [N]

Inserts N customers (Core executemany) with values for 5 custom fields, then times (median of 5):
raw SQL 'name LIKE %x%' (a plain column scan) and the raw JSON scan, our list page filtered on
the custom text field / a money range (the real page, through the test client), and the plain
list page with 0 and with 10 custom fields shown as columns; sorting the list by a custom money
column against raw ORDER BY CAST(json ...) and a built-in column; a custom money condition in the
search API against the raw range count.
"""
from __future__ import annotations

import os
import platform
import random
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from bench.timing import median_ms  # noqa: E402
os.environ.setdefault("CRM_INSTANCE_DIR", tempfile.mkdtemp(prefix="crm-bench-"))
os.environ.setdefault("CRM_ADMIN_PASSWORD", "Bench-Admin-Pass-2024")

WORDS = "华东 华北 华南 西南 东北 科技 贸易 制造 物流 咨询 电子 机械 医药 食品 建材".split()


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 100_000
    from sqlalchemy import insert, text

    from app import create_app
    from app.extensions import db
    from app.models import CustomField, Customer
    from app.services.actor import system_user
    from app.services.bootstrap import initialise

    app = create_app()
    app.config.update(WTF_CSRF_ENABLED=False, RATELIMIT_ENABLED=False)
    rnd = random.Random(7)
    with app.app_context():
        initialise()
        uid = system_user().id
        for i, (key, type_) in enumerate([("bench_text", "text"), ("bench_money", "money"), ("bench_date", "date"),
                                          ("bench_phone", "phone"), ("bench_num", "number")]):
            db.session.add(CustomField(key=key, label_zh=f"压测{i}", field_type=type_, category="basic",
                                       position=i, searchable=True, in_list=False))
        db.session.commit()
        now = datetime.utcnow()
        rows = [{"customer_no": f"B{i:09d}", "name": f"{rnd.choice(WORDS)}{rnd.choice(WORDS)}有限公司{i}",
                 "name_key": f"bench{i}", "archived": False, "created_on": now, "changed_on": now,
                 "created_by_fk": uid, "changed_by_fk": uid, "total_amount": 0,
                 "extra": {"bench_text": f"{rnd.choice(WORDS)}{rnd.choice(WORDS)}群{i % 997}",
                           "bench_money": f"{rnd.randint(0, 10_000_000) / 100:.2f}",
                           "bench_date": f"20{rnd.randint(10, 25)}-0{rnd.randint(1, 9)}-1{rnd.randint(0, 9)}",
                           "bench_phone": f"138{rnd.randint(0, 99_999_999):08d}", "bench_num": str(rnd.randint(1, 500))}}
                for i in range(n)]
        t0 = time.perf_counter()
        for start in range(0, n, 10_000):
            db.session.execute(insert(Customer.__table__), rows[start:start + 10_000])
        db.session.commit()
        t_insert = time.perf_counter() - t0
        engine = db.engine.name
        json_text = ("json_extract(extra, '$.bench_text')" if engine == "sqlite" else "extra->>'bench_text'")
        raw_name = median_ms(lambda: db.session.execute(
            text("SELECT count(*) FROM crm_customer WHERE name LIKE '%华南科技%'")).scalar())
        raw_json = median_ms(lambda: db.session.execute(
            text(f"SELECT count(*) FROM crm_customer WHERE lower({json_text}) LIKE '%华南科技%'")).scalar())
        db.session.remove()

    client = app.test_client()
    client.post("/login/", data={"username": "admin", "password": os.environ["CRM_ADMIN_PASSWORD"]})
    assert client.get("/customermodelview/list/").status_code == 200

    def page(url: str):
        def get():
            resp = client.get(url)
            assert resp.status_code == 200, resp.status_code
        return get

    ours_text = median_ms(page("/customermodelview/list/?_flt_0_bench_text=华南科技"))
    ours_money = median_ms(page("/customermodelview/list/?_flt_1_bench_money=50000&_flt_2_bench_money=50100"))
    plain = median_ms(page("/customermodelview/list/"))
    builtin = median_ms(page("/customermodelview/list/?_flt_2_name=华南科技"))
    with app.app_context():
        for i in range(5, 10):
            db.session.add(CustomField(key=f"bench_more{i}", label_zh=f"压测{i}", field_type="text", category="basic",
                                       position=i))
        db.session.query(CustomField).update({"in_list": True})
        db.session.commit()
    ten_columns = median_ms(page("/customermodelview/list/"))
    # sorting by a custom column (numeric cast of the JSON value) and a custom search condition
    sort_custom = median_ms(page("/customermodelview/list/?_oc_CustomerModelView=bench_money&_od_CustomerModelView=desc"))
    sort_builtin = median_ms(page("/customermodelview/list/?_oc_CustomerModelView=total_amount&_od_CustomerModelView=desc"))
    search_custom = median_ms(page("/api/v1/customer/search?c=bench_money:gte:99900&page_size=50"))
    search_builtin = median_ms(page("/api/v1/customer/search?c=total_amount:gte:1&page_size=50"))
    with app.app_context():
        json_money = ("json_extract(extra, '$.bench_money')" if engine == "sqlite" else "extra->>'bench_money'")
        raw_sort = median_ms(lambda: db.session.execute(text(
            f"SELECT id FROM crm_customer ORDER BY CAST({json_money} AS NUMERIC) DESC LIMIT 20")).all())
        raw_range = median_ms(lambda: db.session.execute(text(
            f"SELECT count(*) FROM crm_customer WHERE CAST({json_money} AS NUMERIC) >= 99900")).scalar())

    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}, "
          f"database {engine}, {n:,} customers with 5 custom values each (inserted in {t_insert:.1f} s)")
    print(f"{'':58}{'ms':>8}")
    print(f"{'raw SQL: count name LIKE %x% (column scan)':58}{raw_name:8.1f}")
    print(f"{'raw SQL: count lower(JSON text) LIKE %x% (JSON scan)':58}{raw_json:8.1f}")
    print(f"{'our list page, built-in name contains x':58}{builtin:8.1f}")
    print(f"{'our list page, custom text field contains x':58}{ours_text:8.1f}")
    print(f"{'our list page, custom money between 50000 and 50100':58}{ours_money:8.1f}")
    print(f"{'our list page, no filter, 0 custom columns':58}{plain:8.1f}")
    print(f"{'our list page, no filter, 10 custom columns':58}{ten_columns:8.1f}")
    print(f"{'raw SQL: first 20 ORDER BY CAST(JSON money AS NUMERIC) DESC':58}{raw_sort:8.1f}")
    print(f"{'our list page sorted by custom money, desc':58}{sort_custom:8.1f}")
    print(f"{'our list page sorted by built-in total_amount, desc':58}{sort_builtin:8.1f}")
    print(f"{'raw SQL: count CAST(JSON money AS NUMERIC) >= 99900':58}{raw_range:8.1f}")
    print(f"{'search API, custom money >= 99900 (count + 50)':58}{search_custom:8.1f}")
    print(f"{'search API, built-in total_amount >= 1 (count + 50, 0 hits)':58}{search_builtin:8.1f}")
    print(f"ratios: custom sort page / raw sort {sort_custom / raw_sort:.2f}; custom sort / built-in sort page "
          f"{sort_custom / sort_builtin:.2f}; custom search / raw range count {search_custom / raw_range:.2f}")
    print(f"ratios: JSON scan / column scan {raw_json / raw_name:.2f}; custom-field page / built-in page "
          f"{ours_text / builtin:.2f}; custom-field page / raw JSON scan {ours_text / raw_json:.2f}; "
          f"10 custom columns / none {ten_columns / plain:.2f}")


if __name__ == "__main__":
    main()
