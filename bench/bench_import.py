"""Import speed: our customer import (read, map, validate, dedupe against the database, number,
bulk insert customers + primary contacts + batch items + history, one transaction) against the
raw limits measured in the same run on the same rows: calamine reading the .xlsx, pandas reading
the .csv, and a plain driver executemany INSERT of the same rows in one transaction.

    .venv/bin/python bench/bench_import.py [N]            # SQLite in a throwaway instance dir
    DATABASE_URL=postgresql://u:p@127.0.0.1:5432/db .venv/bin/python bench/bench_import.py [N]

N (default 100,000) realistic Chinese customer rows with 16 columns, once as .xlsx and once as
.csv (different customers, so the second import is not all duplicates), each imported into a
database that already holds at least N customers (another N are imported first, not timed), so
the duplicate checks look through a full table. Prints our CPU time beside the wall time (steadier
on a loaded machine) and the peak memory (RSS) of the process.
Not a test: prints figures.
"""
from __future__ import annotations

import csv
import os
import platform
import random
import resource
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("CRM_INSTANCE_DIR", tempfile.mkdtemp(prefix="crm-bench-"))
os.environ.setdefault("CRM_ADMIN_PASSWORD", "Bench-Admin-Pass-2024")
os.environ.setdefault("CRM_IMPORT_MAX_MB", "500")
os.environ.setdefault("CRM_IMPORT_MAX_UNZIPPED_MB", "2000")
os.environ.pop("REDIS_URL", None)

HEADERS = ["客户名称", "类别", "统一社会信用代码", "所属行业", "企业规模", "客户类型", "客户等级", "客户来源", "所在地区",
           "首次接触时间", "累计交易金额", "主营业务", "联系人", "手机", "邮箱", "备注"]
CITIES = ["上海", "北京", "深圳", "杭州", "成都", "武汉", "南京", "苏州", "西安", "重庆"]
WORDS = ["华信", "宏达", "新创", "恒通", "瑞丰", "金桥", "博远", "天成", "永安", "联合", "中科", "明德"]
TAILS = ["科技有限公司", "贸易有限公司", "制造有限公司", "信息技术有限公司", "实业股份有限公司"]
INDUSTRIES = ["制造业", "批发和零售业", "信息传输、软件和信息技术服务业", "建筑业", "金融业"]
SURNAMES, GIVEN = "王李张刘陈杨赵黄周吴", ["伟", "芳", "娜", "敏", "静", "磊", "强", "洋", "勇", "艳"]


def credit_code(i: int) -> str:
    from app.services.dedupe import credit_check_char, org_code_check_char

    body = f"{i:08d}"
    first17 = "91310000" + body + org_code_check_char(body)
    return first17 + credit_check_char(first17)


def make_rows(n: int, offset: int, choices: dict[str, list[str]]) -> list[list]:
    rnd = random.Random(offset)
    rows = []
    for i in range(offset, offset + n):
        name = f"{rnd.choice(CITIES)}{rnd.choice(WORDS)}{i:07d}{rnd.choice(TAILS)}"
        rows.append([name, "单位", credit_code(i), rnd.choice(INDUSTRIES), rnd.choice(choices["customer_scale"]),
                     rnd.choice(choices["customer_type"]), rnd.choice(choices["customer_level"]),
                     rnd.choice(choices["customer_source"]), rnd.choice(choices["region"]),
                     f"2023-{rnd.randint(1, 12):02d}-{rnd.randint(1, 28):02d}", f"{rnd.randint(1, 9_999_999):,}.50",
                     "工业软件与服务", rnd.choice(SURNAMES) + rnd.choice(GIVEN), f"13{i:09d}", f"c{i}@example.com",
                     f"0{i:06d}"])
    return rows


def write_xlsx(path: Path, rows: list[list]) -> None:
    import xlsxwriter

    wb = xlsxwriter.Workbook(str(path), {"constant_memory": True, "strings_to_numbers": False})
    ws = wb.add_worksheet("客户")
    ws.write_row(0, 0, HEADERS)
    for r, row in enumerate(rows, 1):
        ws.write_row(r, 0, row)
    wb.close()


def write_csv(path: Path, rows: list[list]) -> None:
    with open(path, "w", newline="", encoding="utf-8-sig") as fh:
        w = csv.writer(fh)
        w.writerow(HEADERS)
        w.writerows(rows)


def raw_insert(rows: list[list]) -> float:
    """A plain executemany of the same rows (16 text columns) into a scratch table, one transaction."""
    from app.extensions import db

    cols = ", ".join(f"c{i} TEXT" for i in range(len(HEADERS)))
    marks = ", ".join(["?" if db.engine.dialect.name == "sqlite" else "%s"] * len(HEADERS))
    raw = db.engine.raw_connection()
    try:
        cur = raw.cursor()
        cur.execute("DROP TABLE IF EXISTS bench_raw")
        key = "id SERIAL PRIMARY KEY" if db.engine.dialect.name == "postgresql" else "id INTEGER PRIMARY KEY"
        cur.execute(f"CREATE TABLE bench_raw ({key}, {cols})")
        raw.commit()
        t0 = time.perf_counter()
        cur.executemany(f"INSERT INTO bench_raw ({', '.join(f'c{i}' for i in range(len(HEADERS)))}) VALUES ({marks})",
                        [[str(v) for v in row] for row in rows])
        raw.commit()
        elapsed = time.perf_counter() - t0
        cur.execute("DROP TABLE bench_raw")
        raw.commit()
        return elapsed
    finally:
        raw.close()


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 100_000
    import pandas as pd
    from python_calamine import CalamineWorkbook
    from sqlalchemy import func, select

    from app import create_app
    from app.extensions import db
    from app.models import Customer, DictionaryItem
    from app.services.actor import system_user
    from app.services.bootstrap import initialise
    from app.services.importer import acting_as, import_file

    app = create_app()
    work = Path(tempfile.mkdtemp(prefix="crm-bench-files-"))
    with app.app_context():
        initialise()
        choices = {}
        for key in ("customer_scale", "customer_type", "customer_level", "customer_source", "region"):
            choices[key] = list(db.session.execute(select(DictionaryItem.name).where(DictionaryItem.type_key == key)).scalars())
        xrows, crows = make_rows(n, 1, choices), make_rows(n, 10_000_001, choices)
        xlsx, csvp, seed = work / "customers.xlsx", work / "customers.csv", work / "existing.csv"
        write_xlsx(xlsx, xrows)
        write_csv(csvp, crows)
        write_csv(seed, make_rows(n, 20_000_001, choices))
        with acting_as(system_user()):
            t0 = time.perf_counter()
            assert import_file(seed, system_user())["rows_created"] == n
            seed_s = time.perf_counter() - t0
        existing = db.session.scalar(select(func.count()).select_from(Customer))

        t0 = time.perf_counter()
        CalamineWorkbook.from_path(str(xlsx)).get_sheet_by_index(0).to_python()
        raw_xlsx = time.perf_counter() - t0
        t0 = time.perf_counter()
        pd.read_csv(csvp, dtype=str, encoding="utf-8-sig")
        raw_csv = time.perf_counter() - t0
        raw_ins = raw_insert(xrows)

        user = system_user()
        results = {}
        for label, path in (("xlsx", xlsx), ("csv", csvp)):
            with acting_as(user):
                t0, c0 = time.perf_counter(), time.process_time()
                report = import_file(path, user)
                results[label] = (time.perf_counter() - t0, time.process_time() - c0, report)
            assert report["rows_created"] == n, {k: report[k] for k in report if k != "errors"} | {"errors": report["errors"][:3]}
        dialect = db.engine.dialect.name

    print(f"machine: {platform.node()} {os.cpu_count()} CPUs, Python {platform.python_version()}, "
          f"database {dialect}; {n:,} rows x {len(HEADERS)} columns into a database of {existing:,} customers "
          f"(those imported in {seed_s:.1f} s, not timed); load average {os.getloadavg()[0]:.1f} at the end")
    for label, raw_read in (("xlsx", raw_xlsx), ("csv", raw_csv)):
        ours, cpu, _ = results[label]
        raw_total = raw_read + raw_ins
        print(f"{label}: ours {ours:6.2f} s ({cpu:.2f} s CPU) = {n / ours:8,.0f} rows/s | raw read {raw_read:5.2f} s + raw executemany "
              f"{raw_ins:5.2f} s = {raw_total:5.2f} s = {n / raw_total:8,.0f} rows/s | ratio {raw_total / ours:.2f}")
    print(f"peak memory (RSS, the whole run incl. the generated rows): "
          f"{resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:,.0f} MB")


if __name__ == "__main__":
    main()
