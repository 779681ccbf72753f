"""Export throughput of a generic business list: the ticket export (FAB filters + ticket scope,
ORM rows with their customer, type, priority, handler and team loaded with them, status and SLA
badges as text, due times as dates) against the raw writers writing the very same rows from a
plain in-memory list, measured in the same run.

    .venv/bin/python bench/bench_export_lists.py [N [FORMATS]]   # 50000, xlsx,csv; SQLite
    DATABASE_URL=postgresql://... .venv/bin/python bench/bench_export_lists.py 50000

Uses a throwaway instance dir (SQLite), the given instance (CRM_INSTANCE_DIR) or the given
database; tickets T000000000... (100 per customer, every one under the seeded repair SLA policy,
so each row computes its SLA state) are added until it holds N (bulk insert, not timed). The
export takes the tickets whose number starts with "T", as the system user (all rows, masked),
in the list's default order (newest first). Raw limits: xlsxwriter constant_memory and the csv
module writing the rows our exporter built, from a list already in memory.
"""
from __future__ import annotations

import os
import sys
import tempfile
import time
from datetime import datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("CRM_INSTANCE_DIR", tempfile.mkdtemp(prefix="crm-bench-"))
os.environ.setdefault("CRM_ADMIN_PASSWORD", "Bench-Admin-Pass-2024")


def _fill(n: int) -> None:
    from sqlalchemy import func, insert, select

    from app.extensions import db
    from app.models import Customer, DictionaryItem, SlaPolicy, Ticket
    from app.services.actor import system_user

    have = db.session.scalar(select(func.count()).select_from(Ticket).where(Ticket.ticket_no.like("T%")))
    if have >= n:
        return
    uid = system_user().id
    item = lambda t, c: db.session.query(DictionaryItem.id).filter_by(type_key=t, code=c).scalar()  # noqa: E731
    kind, prios = item("ticket_type", "repair"), [item("priority", c) for c in ("urgent", "high", "medium", "low")]
    policy = db.session.query(SlaPolicy.id).filter_by(key="repair").scalar()
    now = datetime.utcnow()
    audit = dict(created_on=now, changed_on=now, created_by_fk=uid, changed_by_fk=uid)
    for start in range(have, n, 10_000):
        stop = min(n, start + 10_000)
        wanted = [f"TB{c:08d}" for c in range(start // 100, (stop + 99) // 100)]
        known = lambda: dict(db.session.execute(  # noqa: E731
            select(Customer.customer_no, Customer.id).where(Customer.customer_no.in_(wanted))).all())
        ids = known()
        db.session.execute(insert(Customer.__table__), [
            dict(customer_no=no, name=f"工单基准{no}有限公司", name_key=f"工单基准{no}", name_initials="gdjz",
                 archived=False, **audit)
            for no in wanted if no not in ids])
        ids = known()
        db.session.execute(insert(Ticket.__table__), [
            dict(ticket_no=f"T{i:09d}", customer_id=ids[f"TB{i // 100:08d}"], type_id=kind, priority_id=prios[i % 4],
                 title=f"设备报修 {i}", description="基准测试", status=("new", "assigned", "in_progress")[i % 3],
                 handler_id=uid, sla_policy_id=policy, opened_at=now - timedelta(hours=i % 48),
                 first_response_due=now + timedelta(hours=4 - i % 8), resolution_due=now + timedelta(hours=24 - i % 48),
                 **audit) for i in range(start, stop)])
        db.session.commit()


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 50_000
    formats = (sys.argv[2] if len(sys.argv) > 2 else "xlsx,csv").split(",")
    from werkzeug.datastructures import MultiDict

    from app import create_app
    from app.services.bootstrap import initialise
    from bench_export import built_rows, export_runs, raw_writes, report

    app = create_app()
    out = Path(tempfile.mkdtemp(prefix="crm-bench-export-"))
    with app.app_context(), app.test_request_context("/"):
        initialise()
        t0 = time.perf_counter()
        _fill(n)
        fill_s = time.perf_counter() - t0
        args = MultiDict({"_flt_0_ticket_no": "T"})  # "starts with": the bench rows
        ours = export_runs("tickets", out, args, formats)
        headers, rows, build_rate = built_rows("tickets", args)
    raw = raw_writes(out, headers, rows)
    load = os.getloadavg()
    report(f"{len(rows):,} tickets x {len(headers)} columns (data loaded in {fill_s:.1f} s, not timed)",
           ours, raw, len(rows), build_rate, "ORM rows, relations, labels, SLA state")
    print(f"load average {load[0]:.1f} {load[1]:.1f} {load[2]:.1f}")


if __name__ == "__main__":
    main()
