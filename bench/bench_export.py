"""Export throughput: our customer export (FAB filters + row scope, field catalogue, dictionary
names, primary contact, masking, streaming from the database) against the raw writers writing
the very same rows from a plain in-memory list, measured in the same run.

    .venv/bin/python bench/bench_export.py [N [PREFIX [FORMATS]]]   # 200000, B, xlsx,csv; SQLite
    DATABASE_URL=postgresql://... .venv/bin/python bench/bench_export.py 200000
    CRM_INSTANCE_DIR=/work/bench-exp .venv/bin/python bench/bench_export.py 100000 B0000

Uses a throwaway instance dir (SQLite), the given instance (CRM_INSTANCE_DIR) or the given
database; customers B000000000... are added until it holds N (bulk insert with SQLAlchemy Core,
one contact each, not timed); an instance that already has them (bench_list.py's 1,000,000) is
used as it is. The export takes the customers whose number starts with PREFIX (default "B": all
of them; "B0000" = the first 99,999 of bench_list's), in the list's default order.
Raw limits: xlsxwriter constant_memory writing the rows (the same options as ours) and the csv
module writing them, both from a list already in memory (the rows our exporter built, collected
after our runs). Prints the time of each, the ratio ours / raw, and the peak resident memory
of our run (before the raw's list is built) and of the whole process.
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
from datetime import datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("CRM_INSTANCE_DIR", tempfile.mkdtemp(prefix="crm-bench-"))
os.environ.setdefault("CRM_ADMIN_PASSWORD", "Bench-Admin-Pass-2024")


def _fill(n: int) -> None:
    from sqlalchemy import func, insert, select

    from app.extensions import db
    from app.models import Contact, Customer, DictionaryItem, DictionaryType
    from app.services.actor import system_user

    have = db.session.scalar(select(func.count()).select_from(Customer))
    if have >= n:
        return
    uid = system_user().id
    items = {t: [i.id for i in db.session.query(DictionaryItem).join(DictionaryType).filter(DictionaryType.key == t)]
             for t in ("industry", "customer_kind", "customer_type", "customer_level", "customer_scale",
                       "customer_source", "region")}
    rnd, now = random.Random(1), datetime.now()
    audit = dict(created_on=now, changed_on=now, created_by_fk=uid, changed_by_fk=uid)
    for start in range(have, n, 10_000):
        stop = min(n, start + 10_000)
        customers = [dict(customer_no=f"B{i:09d}", name=f"基准测试{i}号科技有限公司", name_key=f"基准测试{i}号科技",
                          credit_code=None, kind_id=rnd.choice(items["customer_kind"]),
                          industry_id=rnd.choice(items["industry"]), scale_id=rnd.choice(items["customer_scale"]),
                          staff_count=rnd.randint(5, 5000), annual_revenue=rnd.randint(1, 10**8) / 100,
                          type_id=rnd.choice(items["customer_type"]), level_id=rnd.choice(items["customer_level"]),
                          source_id=rnd.choice(items["customer_source"]), region_id=rnd.choice(items["region"]),
                          last_contact_at=now, total_amount=rnd.randint(0, 10**7) / 100, main_business="软件开发",
                          owner_id=uid, archived=False, **audit) for i in range(start, stop)]
        db.session.execute(insert(Customer.__table__), customers)
        ids = db.session.scalars(select(Customer.id).where(Customer.customer_no >= f"B{start:09d}",
                                                          Customer.customer_no < f"B{stop:09d}")).all()
        db.session.execute(insert(Contact.__table__), [
            dict(customer_id=cid, name="张伟", phone=f"138{cid % 10**8:08d}", phone_key=f"138{cid % 10**8:08d}",
                 email=f"user{cid}@example.com", is_primary=True, **audit) for cid in ids])
        db.session.commit()


def export_runs(list_name: str, out: Path, args, formats: list[str]) -> dict[str, tuple[int, float]]:
    """Our export of ``list_name`` (as the system user) to each format, timed. {fmt: (rows, s)}"""
    from app.services import export as exports
    from app.services.actor import system_user

    user, ours = system_user(), {}
    for fmt in formats:
        t0 = time.perf_counter()
        log = exports.export_to_file(list_name, out / f"ours.{fmt}", user, args)
        ours[fmt] = (log.rows, time.perf_counter() - t0)
        print(f"ours {fmt}: {log.rows:,} rows in {ours[fmt][1]:.1f} s", flush=True)
    return ours


def built_rows(list_name: str, args) -> tuple[list[str], list[list], float]:
    """The same rows, built by our exporter, kept in memory for the raw writers. (headers, rows,
    rows built per second)"""
    from app.services import export as exports

    view = exports.view_for(list_name)
    exporter = exports.exporter_for(view)
    t0 = time.perf_counter()
    rows = [r for batch in exports._batches(view, args, exporter) for r in batch]
    return exporter.headers, rows, len(rows) / (time.perf_counter() - t0)


def raw_writes(out: Path, headers: list[str], rows: list[list]) -> dict[str, float]:
    """The raw limits: xlsxwriter constant_memory (our options) and the csv module writing the
    rows from memory. {fmt: seconds}"""
    import xlsxwriter

    t0 = time.perf_counter()
    wb = xlsxwriter.Workbook(str(out / "raw.xlsx"), {"constant_memory": True, "strings_to_formulas": False,
                                                     "strings_to_urls": False, "strings_to_numbers": False})
    ws = wb.add_worksheet()
    ws.write_row(0, 0, headers)
    for i, row in enumerate(rows, 1):
        ws.write_row(i, 0, row)
    wb.close()
    raw = {"xlsx": time.perf_counter() - t0}
    print(f"raw xlsx: {len(rows):,} rows in {raw['xlsx']:.1f} s", flush=True)
    t0 = time.perf_counter()
    with open(out / "raw.csv", "w", encoding="utf-8-sig", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(headers)
        w.writerows(rows)
    raw["csv"] = time.perf_counter() - t0
    return raw


def report(what: str, ours: dict, raw: dict[str, float], n: int, build_rate: float, built: str) -> None:
    """The machine, the data, the rows built per second, and per format ours, raw and the ratio."""
    engine = "PostgreSQL" if os.environ.get("DATABASE_URL") else "SQLite"
    cpu = next((line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name")), "")
    print(f"machine: {platform.node()} {os.cpu_count()} cores {cpu}, {platform.python_implementation()} "
          f"{platform.python_version()}, {engine}; {what}")
    print(f"building the rows alone ({built}): {build_rate:,.0f} rows/s")
    for fmt, (count, secs) in ours.items():
        print(f"{fmt:5} ours {secs:7.1f} s ({count / secs:8,.0f} rows/s)   raw {raw[fmt]:7.1f} s "
              f"({n / raw[fmt]:8,.0f} rows/s)   ours/raw {secs / raw[fmt]:.2f}")


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 200_000
    prefix = sys.argv[2] if len(sys.argv) > 2 else "B"
    formats = (sys.argv[3] if len(sys.argv) > 3 else "xlsx,csv").split(",")
    from werkzeug.datastructures import MultiDict

    from app import create_app
    from app.services.bootstrap import initialise

    app = create_app()
    out = Path(tempfile.mkdtemp(prefix="crm-bench-export-"))
    with app.app_context(), app.test_request_context("/"):
        initialise()
        t0 = time.perf_counter()
        _fill(n)
        fill_s = time.perf_counter() - t0
        args = MultiDict({"_flt_0_customer_no": prefix})  # the list's "starts with" filter: the bench rows
        ours = export_runs("customers", out, args, formats)
        ours_peak = _peak_mb()
        headers, rows, build_rate = built_rows("customers", args)
    raw = raw_writes(out, headers, rows)
    total_peak = _peak_mb()
    load = os.getloadavg()
    report(f"{len(rows):,} customers x {len(headers)} columns (with their first contact; data loaded in "
           f"{fill_s:.1f} s, not timed)", ours, raw, len(rows), build_rate, "query, names, contact, masking")
    print(f"peak resident memory: ours {ours_peak:,.0f} MB (the export runs; a reading process "
          f"counted too when one was forked: {_peak_mb(resource.RUSAGE_CHILDREN):,.0f} MB), whole bench "
          f"with the raw's rows in memory {total_peak:,.0f} MB; load average {load[0]:.1f} {load[1]:.1f} {load[2]:.1f}")


def _peak_mb(who: int = resource.RUSAGE_SELF) -> float:
    return resource.getrusage(who).ru_maxrss / 1024


if __name__ == "__main__":
    main()
