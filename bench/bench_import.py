"""Import speed: our customer import (read, map, validate, dedupe against the database, number,
bulk insert customers + primary contacts + batch items + history, one transaction) against the
raw limits measured in the same run on the same rows: calamine reading the .xlsx, pandas reading
the .csv, and a plain driver executemany INSERT of the same rows in one transaction.

    .venv/bin/python bench/bench_import.py [N]            # SQLite in a throwaway instance dir
    DATABASE_URL=postgresql://u:p@127.0.0.1:5432/db .venv/bin/python bench/bench_import.py [N]
    .venv/bin/python bench/bench_import.py --big [N]      # peak memory of one N-row .xlsx import
    .venv/bin/python bench/bench_import.py --kind contacts|interactions|tickets [N]   # N default 20,000

--kind: N contacts (6 columns), interactions (6 columns) or service tickets (12 columns: 12 of 20
archived with their times, 5 in progress with a handler, 3 new and unassigned, so dispatched one
by one) in one .xlsx, naming their customers by customer no. (N/4 customers imported first, not
timed, so four rows per customer), imported against the same raw limit (calamine reading the
file + one executemany of its rows). Contacts are then imported again with every 职务 corrected,
in update mode (--update-by mobile: N contacts updated), timed beside the same raw limit.

--big (N default 1,000,000) generates one N-row .xlsx (xlsxwriter constant_memory, row by row,
never held whole; cached as bench-files/big-N.xlsx under the instance dir, which for --big is
$CRM_INSTANCE_DIR or /tmp/crm-bench-import-big, so re-runs skip the generation; the SQLite
database there is started afresh each run), imports it into an empty database while a thread
samples the process's RSS every 0.1 s, then measures the raw limit (calamine reading the file,
its rows fed to one driver executemany) and prints time, ratio, peak RSS and the verdict against
the 1.5 GB target.

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
from datetime import datetime, timedelta
from pathlib import Path
from typing import Iterable, Iterator

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
BIG = "--big" in sys.argv
KIND = sys.argv[sys.argv.index("--kind") + 1] if "--kind" in sys.argv else None
if KIND:
    del sys.argv[sys.argv.index("--kind"):sys.argv.index("--kind") + 2]
if BIG:
    sys.argv.remove("--big")
    os.environ.setdefault("CRM_INSTANCE_DIR", str(Path(tempfile.gettempdir()) / "crm-bench-import-big"))
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
    return list(iter_rows(n, offset, choices))


def iter_rows(n: int, offset: int, choices: dict[str, list[str]]) -> Iterator[list]:
    rnd = random.Random(offset)
    for i in range(offset, offset + n):
        name = f"{rnd.choice(CITIES)}{rnd.choice(WORDS)}{i:07d}{rnd.choice(TAILS)}"
        yield ([name, "单位", credit_code(i), rnd.choice(INDUSTRIES), rnd.choice(choices["customer_scale"]),
                     rnd.choice(choices["customer_type"]), rnd.choice(choices["customer_level"]),
                     rnd.choice(choices["customer_source"]), rnd.choice(choices["region"]),
                     f"2023-{rnd.randint(1, 12):02d}-{rnd.randint(1, 28):02d}", f"{rnd.randint(1, 9_999_999):,}.50",
                     "工业软件与服务", rnd.choice(SURNAMES) + rnd.choice(GIVEN), f"13{i:09d}", f"c{i}@example.com",
                     f"0{i:06d}"])


def write_xlsx(path: Path, rows: Iterable[list], headers: list[str] = HEADERS) -> None:
    import xlsxwriter

    wb = xlsxwriter.Workbook(str(path), {"constant_memory": True, "strings_to_numbers": False})
    ws = wb.add_worksheet("客户")
    ws.write_row(0, 0, headers)
    for r, row in enumerate(rows, 1):
        ws.write_row(r, 0, row)
    wb.close()


def write_csv(path: Path, rows: list[list]) -> None:
    with open(path, "w", newline="", encoding="utf-8-sig") as fh:
        w = csv.writer(fh)
        w.writerow(HEADERS)
        w.writerows(rows)


def raw_insert(rows: Iterable[list], read=None, width: int = len(HEADERS)) -> float:
    """A plain executemany of the same rows (``width`` text columns) into a scratch table, one
    transaction. With ``read``, the rows come from it (called inside the timing: reading is part
    of the limit)."""
    from app.extensions import db

    cols = ", ".join(f"c{i} TEXT" for i in range(width))
    marks = ", ".join(["?" if db.engine.dialect.name == "sqlite" else "%s"] * width)
    raw = db.engine.raw_connection()
    try:
        cur = raw.cursor()
        cur.execute("DROP TABLE IF EXISTS bench_raw")
        key = "id SERIAL PRIMARY KEY" if db.engine.dialect.name == "postgresql" else "id INTEGER PRIMARY KEY"
        cur.execute(f"CREATE TABLE bench_raw ({key}, {cols})")
        raw.commit()
        t0 = time.perf_counter()
        if read is not None:
            rows = read()
        cur.executemany(f"INSERT INTO bench_raw ({', '.join(f'c{i}' for i in range(width))}) VALUES ({marks})",
                        ([str(v) for v in row] for row in rows))
        raw.commit()
        elapsed = time.perf_counter() - t0
        cur.execute("DROP TABLE bench_raw")
        raw.commit()
        return elapsed
    finally:
        raw.close()


class PeakRss:
    """The process's resident memory sampled every 0.1 s in a thread (/proc/self/statm): the peak
    of one phase, unlike ru_maxrss which covers the whole process life."""

    def __init__(self):
        import threading

        self.peak, self._stop = 0, threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    @staticmethod
    def now() -> int:
        with open("/proc/self/statm") as fh:
            return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")

    def _run(self) -> None:
        while True:
            self.peak = max(self.peak, self.now())
            if self._stop.wait(0.1):
                return

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, self.now())


def dictionary_choices() -> dict[str, list[str]]:
    from sqlalchemy import select

    from app.extensions import db
    from app.models import DictionaryItem

    return {key: list(db.session.execute(select(DictionaryItem.name).where(DictionaryItem.type_key == key)).scalars())
            for key in ("customer_scale", "customer_type", "customer_level", "customer_source", "region")}


def big(n: int) -> None:
    """One N-row .xlsx import: time and peak memory, beside the raw limit."""
    import shutil

    from python_calamine import CalamineWorkbook

    from app import create_app
    from app.extensions import db
    from app.services.actor import system_user
    from app.services.bootstrap import initialise
    from app.services.importer import acting_as, import_file

    instance = Path(os.environ["CRM_INSTANCE_DIR"])
    if not os.environ.get("DATABASE_URL"):
        for f in instance.glob("crm.db*"):
            f.unlink()
    shutil.rmtree(instance / "imports", ignore_errors=True)
    app = create_app()
    with app.app_context():
        initialise()
        files = instance / "bench-files"
        files.mkdir(parents=True, exist_ok=True)
        xlsx = files / f"big-{n}.xlsx"
        if not xlsx.exists():
            t0 = time.perf_counter()
            write_xlsx(files / "partial.xlsx", iter_rows(n, 1, dictionary_choices()))
            (files / "partial.xlsx").rename(xlsx)
            print(f"generated {xlsx} ({xlsx.stat().st_size / 2**20:.0f} MB) in {time.perf_counter() - t0:.0f} s")
        user = system_user()
        before = PeakRss.now()
        with acting_as(user), PeakRss() as rss:
            t0, c0 = time.perf_counter(), time.process_time()
            report = import_file(xlsx, user)
            ours, cpu = time.perf_counter() - t0, time.process_time() - c0
        assert report["rows_created"] == n, {k: report[k] for k in report if k != "errors"} | {"errors": report["errors"][:3]}
        with PeakRss() as raw_rss:
            raw = raw_insert((), read=lambda: CalamineWorkbook.from_path(str(xlsx)).get_sheet_by_index(0).iter_rows())
        dialect = db.engine.dialect.name
    target = 1.5 * 2**30
    print(f"machine: {platform.node()} {os.cpu_count()} CPUs, Python {platform.python_version()}, database {dialect}; "
          f"{n:,} rows x {len(HEADERS)} columns from .xlsx into an empty database; "
          f"load average {os.getloadavg()[0]:.1f} at the end")
    print(f"xlsx: ours {ours:7.1f} s ({cpu:.1f} s CPU) = {n / ours:8,.0f} rows/s | raw calamine read + executemany "
          f"{raw:6.1f} s = {n / raw:8,.0f} rows/s | ratio {raw / ours:.2f}")
    print(f"peak RSS during our import {rss.peak / 2**20:,.0f} MB (process before it {before / 2**20:,.0f} MB; "
          f"the raw limit's own peak {raw_rss.peak / 2**20:,.0f} MB) | target < 1,536 MB: "
          f"{'MET' if rss.peak < target else 'NOT MET'}")


KIND_HEADERS = {"contacts": ["客户编号", "姓名", "职务", "手机", "邮箱", "是否主要联系人"],
                "interactions": ["客户编号", "时间", "方式", "要点", "结果", "下一步"],
                "tickets": ["客户编号", "标题", "类型", "优先级", "状态", "处理团队", "处理人", "创建时间", "首次响应时间",
                            "解决时间", "关闭时间", "满意度评分"]}
AGENT = "bench_agent"  # --kind tickets: a service agent of 技术支持组 handles the tickets in progress


def ticket_row(rnd: random.Random, no: str, i: int) -> list:
    """Of every 20 tickets: 12 archived, 5 in progress with a handler, 3 new without one (the
    automatic dispatch runs for those, one by one)."""
    opened = datetime(2024, rnd.randint(1, 12), rnd.randint(1, 28), rnd.randint(9, 16), 30)

    def at(hours: float) -> str:
        return f"{opened + timedelta(hours=hours):%Y-%m-%d %H:%M}"

    kind, k = rnd.choice(["报修", "咨询", "投诉", "建议"]), i % 20
    row = [no, f"设备第{i}号工单：无法正常启动", kind, rnd.choice(["紧急", "高", "中", "低"])]
    if k < 12:
        return row + ["已归档", "技术支持组", AGENT, at(0), at(1), at(5), at(48), rnd.randint(1, 5)]
    if k < 17:
        return row + ["处理中", "技术支持组", AGENT, at(0), at(0.5), None, None, None]
    return row + ["新建", None, None, at(0), None, None, None, None]


def _bench_agent() -> None:
    from app.extensions import appbuilder, db
    from app.models import AgentProfile, Team

    sm = appbuilder.sm
    user = sm.add_user(AGENT, "坐席", "Agent", "agent@bench.invalid", sm.find_role("客服部普通员工"),
                       password="Bench-Agent-Pass-2024")
    db.session.add(AgentProfile(user_id=user.id, team=db.session.query(Team).filter_by(key="support").one(),
                                skills="repair,complaint"))
    db.session.commit()


def kind_rows(kind: str, nos: list[str]) -> Iterator[list]:
    """Four rows per customer: contacts with phones of their own, or past interactions."""
    rnd = random.Random(7)
    for i in range(len(nos) * 4):
        no = nos[i // 4]
        if kind == "tickets":
            yield ticket_row(rnd, no, i)
        elif kind == "contacts":
            yield [no, rnd.choice(SURNAMES) + rnd.choice(GIVEN), "采购经理", f"15{i:09d}", f"k{i}@example.com",
                   "是" if i % 4 == 0 else "否"]
        else:
            yield [no, f"2024-{rnd.randint(1, 12):02d}-{rnd.randint(1, 28):02d} {rnd.randint(8, 18):02d}:30",
                   rnd.choice(["电话", "拜访", "邮件", "会议"]), "沟通新季度采购计划，客户关注交期与价格",
                   rnd.choice(["已解决", "处理中", "待跟进"]), "下周寄送样品"]


def bench_kind(kind: str, n: int) -> None:
    """An N-row contacts, interactions or tickets .xlsx import beside the raw limit."""
    from python_calamine import CalamineWorkbook
    from sqlalchemy import select

    from app import create_app
    from app.extensions import db
    from app.models import Customer
    from app.services.actor import system_user
    from app.services.bootstrap import initialise
    from app.services.importer import acting_as, import_file

    app = create_app()
    work = Path(tempfile.mkdtemp(prefix="crm-bench-files-"))
    with app.app_context():
        initialise()
        user = system_user()
        seed = work / "customers.csv"
        write_csv(seed, make_rows(max(1, n // 4), 1, dictionary_choices()))
        with acting_as(user):
            assert import_file(seed, user)["status"] == "done"
        nos = list(db.session.execute(select(Customer.customer_no).order_by(Customer.id)).scalars())[-max(1, n // 4):]
        if kind == "tickets":
            _bench_agent()
        xlsx = work / f"{kind}.xlsx"
        write_xlsx(xlsx, kind_rows(kind, nos), KIND_HEADERS[kind])
        raw = raw_insert((), read=lambda: CalamineWorkbook.from_path(str(xlsx)).get_sheet_by_index(0).iter_rows(),
                         width=len(KIND_HEADERS[kind]))
        with acting_as(user):
            t0, c0 = time.perf_counter(), time.process_time()
            report = import_file(xlsx, user, kind=kind)
            ours, cpu = time.perf_counter() - t0, time.process_time() - c0
        rows = len(nos) * 4
        assert report["rows_created"] == rows, {k: report[k] for k in report if k != "errors"} | {"errors": report["errors"][:3]}
        if kind == "contacts":  # the same sheet again, every 职务 corrected: update mode (--update-by mobile)
            again = work / "contacts-again.xlsx"
            write_xlsx(again, ([*row[:2], "采购总监", *row[3:]] for row in kind_rows(kind, nos)), KIND_HEADERS[kind])
            with acting_as(user):
                t0, c0 = time.perf_counter(), time.process_time()
                report = import_file(again, user, kind=kind, update_by="mobile")
                updating, updating_cpu = time.perf_counter() - t0, time.process_time() - c0
            assert report["rows_updated"] == rows, {k: report[k] for k in report if k != "errors"}
        dialect = db.engine.dialect.name
    print(f"machine: {platform.node()} {os.cpu_count()} CPUs, Python {platform.python_version()}, database {dialect}; "
          f"{rows:,} {kind} x {len(KIND_HEADERS[kind])} columns (.xlsx) for {len(nos):,} customers; "
          f"load average {os.getloadavg()[0]:.1f} at the end")
    print(f"{kind}: ours {ours:6.2f} s ({cpu:.2f} s CPU) = {rows / ours:8,.0f} rows/s | raw calamine read + executemany "
          f"{raw:5.2f} s = {rows / raw:8,.0f} rows/s | ratio {raw / ours:.2f}")
    if kind == "contacts":
        print(f"contacts re-imported, --update-by mobile (every row's 职务 changed): {updating:6.2f} s "
              f"({updating_cpu:.2f} s CPU) = {rows / updating:8,.0f} rows/s | raw insert limit {raw:5.2f} s | "
              f"ratio {raw / updating:.2f}")


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else (20_000 if KIND else 1_000_000 if BIG else 100_000)
    if KIND:
        return bench_kind(KIND, n)
    if BIG:
        return big(n)
    import pandas as pd
    from python_calamine import CalamineWorkbook
    from sqlalchemy import func, select

    from app import create_app
    from app.extensions import db
    from app.models import Customer
    from app.services.actor import system_user
    from app.services.bootstrap import initialise
    from app.services.importer import acting_as, import_file

    app = create_app()
    work = Path(tempfile.mkdtemp(prefix="crm-bench-files-"))
    with app.app_context():
        initialise()
        choices = dictionary_choices()
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
