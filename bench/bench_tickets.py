"""Service desk at scale: automatic assignment + SLA clock per new ticket, SLA figures per
ticket, and the SLA job's scan, with N open tickets (default 100,000) and 200 agents, each beside
the raw limit measured in the same run.

    .venv/bin/python bench/bench_tickets.py [N_OPEN_TICKETS] [N_AGENTS]
    DATABASE_URL=postgresql://... .venv/bin/python bench/bench_tickets.py   # on PostgreSQL

Uses a throwaway SQLite instance dir unless DATABASE_URL is set (then that database must be empty
or a previous bench database). Targets (issue 6 point 10): assignment and SLA computation under
50 ms per ticket; the job scans all open tickets in under 30 s.

* open: ours = open_ticket() (number, policy, deadlines on the working calendar, rule match,
  least-loaded skilled member from the agents' open-ticket counters, events) + insert + commit
  (which also bumps the chosen agent's counter), for 200 new tickets; raw = the one read
  least-loaded assignment cannot do without (the counters of a 100-agent team) + a bare
  INSERT + commit. Also shown: the GROUP BY count of open tickets per member that the counter
  replaced.
* figures: ours = sla.deadlines() (working time left on both deadlines) for 1,000 tickets;
  raw = two datetime subtractions per ticket.
* job: ours = run_sla_check() over every open ticket (four INSERT .. SELECT with NOT EXISTS,
  and one INSERT .. SELECT of the new alerts into the recipients' reminders); raw = one
  SELECT count(*) over the same open tickets' due columns.
"""
from __future__ import annotations

import os
import platform
import random
import statistics
import sys
import tempfile
import time
from datetime import datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("CRM_INSTANCE_DIR", tempfile.mkdtemp(prefix="crm-bench-"))
os.environ.setdefault("CRM_ADMIN_PASSWORD", "Bench-Admin-Pass-2024")


def _ms(samples: list[float]) -> str:
    return f"{statistics.median(samples) * 1000:8.2f} ms (p95 {sorted(samples)[int(len(samples) * .95)] * 1000:.2f})"


def main() -> None:
    n_open = int(sys.argv[1]) if len(sys.argv) > 1 else 100_000
    n_agents = int(sys.argv[2]) if len(sys.argv) > 2 else 200
    from flask import g
    from flask_login import login_user
    from sqlalchemy import func, insert, select

    from app import create_app
    from app.extensions import appbuilder, db
    from app.models import (
        AgentProfile, CrmUser, Customer, DictionaryItem, Reminder, SlaAlert, Team, Ticket, TicketEvent,
    )
    from app.models.service import OPEN_STATUSES
    from app.services import sla
    from app.services.assignment import recount_loads
    from app.services.bootstrap import initialise
    from app.services.tickets import open_ticket

    app = create_app()
    rnd = random.Random(6)
    with app.app_context(), app.test_request_context("/"):
        initialise()
        sm = appbuilder.sm
        admin = sm.find_user(username="admin")
        g.user = admin
        login_user(admin)
        item = {(i.type_key, i.code): i.id for i in db.session.query(DictionaryItem)}
        t0 = time.perf_counter()
        # agents: 200 users in the service staff role, in two teams of the seeded rules
        role = sm.find_role("客服部普通员工")
        pw = admin.password
        existing = db.session.query(func.count(CrmUser.id)).filter(CrmUser.username.like("bench_agent_%")).scalar()
        if existing < n_agents:
            db.session.execute(insert(CrmUser.__table__), [
                dict(first_name="坐席", last_name=str(i), username=f"bench_agent_{i}", email=f"a{i}@bench.invalid",
                     password=pw, active=True, is_system=False, created_on=datetime.utcnow(),
                     changed_on=datetime.utcnow(), login_count=0, fail_login_count=0)
                for i in range(existing, n_agents)])
            ids = db.session.execute(select(CrmUser.id).where(CrmUser.username.like("bench_agent_%"))).scalars().all()
            assoc = sm.user_model.roles.property.secondary
            db.session.execute(insert(assoc), [{"user_id": uid, "role_id": role.id} for uid in ids])
            teams = {t.key: t for t in db.session.query(Team)}
            regions = [c for (t, c) in item if t == "region"]
            db.session.execute(insert(AgentProfile.__table__), [
                dict(user_id=uid, team_id=teams["support" if k % 2 else "care"].id, away=k % 17 == 0,
                     skills="repair,complaint" if k % 3 else "complaint", regions=rnd.choice(["", *regions]))
                for k, uid in enumerate(ids)])
            db.session.commit()
        agents = db.session.execute(select(CrmUser.id).where(CrmUser.username.like("bench_agent_%"))).scalars().all()
        # customers and N open tickets with deadlines spread around now
        if not db.session.query(Customer.id).filter(Customer.customer_no.like("BENCH%")).first():
            db.session.execute(insert(Customer.__table__), [
                dict(customer_no=f"BENCH{i:06d}", name=f"基准客户{i}", name_key=f"基准客户{i}",
                     region_id=item[("region", rnd.choice(["east", "south", "north"]))], archived=False,
                     created_on=datetime.utcnow(), changed_on=datetime.utcnow(), created_by_fk=admin.id,
                     changed_by_fk=admin.id) for i in range(2000)])
            db.session.commit()
        customers = db.session.execute(select(Customer.id).where(Customer.customer_no.like("BENCH%"))).scalars().all()
        have = db.session.query(func.count(Ticket.id)).filter(Ticket.ticket_no.like("B%")).scalar()
        now = datetime.utcnow()
        types = [item[("ticket_type", c)] for c in ("consult", "complaint", "repair", "suggestion")]
        batch = []
        for i in range(have, n_open):
            due = now + timedelta(minutes=rnd.randint(-3000, 6000))
            batch.append(dict(
                ticket_no=f"B{i:09d}", customer_id=rnd.choice(customers), type_id=rnd.choice(types), title=f"基准工单{i}",
                status=rnd.choice(OPEN_STATUSES), handler_id=rnd.choice(agents), opened_at=now - timedelta(days=2),
                first_response_due=due - timedelta(hours=20), first_response_warn_at=due - timedelta(hours=21),
                resolution_due=due, resolution_warn_at=due - timedelta(hours=1), paused_minutes=0,
                created_on=now, changed_on=now, created_by_fk=admin.id, changed_by_fk=admin.id))
            if len(batch) == 10_000:
                db.session.execute(insert(Ticket.__table__), batch)
                batch = []
        if batch:
            db.session.execute(insert(Ticket.__table__), batch)
        db.session.execute(SlaAlert.__table__.delete())
        db.session.execute(Reminder.__table__.delete().where(Reminder.ticket_id.isnot(None)))
        db.session.commit()
        recount_loads()  # the bulk insert bypassed the ORM: counters from the tickets
        setup = time.perf_counter() - t0
        open_count = db.session.query(func.count(Ticket.id)).filter(Ticket.status.in_(OPEN_STATUSES)).scalar()

        # 1. opening a ticket: assignment + SLA clock (ours) vs the least-loaded query + insert (raw)
        team_members = db.session.execute(select(AgentProfile.user_id).join(Team).where(Team.key == "support")).scalars().all()
        support = db.session.query(Team.id).filter(Team.key == "support").scalar()
        raw_open, ours_open, group_by, assigned = [], [], [], 0
        for k in range(200):
            t0 = time.perf_counter()
            db.session.execute(select(AgentProfile.user_id, AgentProfile.open_tickets).where(
                AgentProfile.team_id == support)).all()
            db.session.execute(insert(TicketEvent.__table__).values(ticket_id=1, at=now, action="bench"))
            db.session.commit()
            raw_open.append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            db.session.execute(select(Ticket.handler_id, func.count()).where(
                Ticket.handler_id.in_(team_members), Ticket.status.in_(OPEN_STATUSES)).group_by(Ticket.handler_id)).all()
            group_by.append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            t = Ticket(customer_id=rnd.choice(customers), type_id=types[k % 4], priority_id=item[("priority", "high")],
                       title="基准新工单" + ("设备故障" if k % 2 else ""), description="无法开机")
            open_ticket(t)
            db.session.add(t)
            db.session.commit()
            ours_open.append(time.perf_counter() - t0)
            assigned += t.handler_id is not None
        db.session.execute(TicketEvent.__table__.delete().where(TicketEvent.action == "bench"))
        db.session.commit()

        counters = dict(db.session.execute(select(AgentProfile.user_id, AgentProfile.open_tickets)).all())
        load_check = {uid: 0 for uid in counters}
        load_check.update(db.session.execute(select(Ticket.handler_id, func.count()).where(
            Ticket.handler_id.in_(counters), Ticket.status.in_(OPEN_STATUSES)).group_by(Ticket.handler_id)).all())

        # 2. SLA figures of a ticket (time left in working hours, state)
        sample = db.session.query(Ticket).filter(Ticket.sla_policy_id.isnot(None)).limit(200).all()
        sample = (sample * 5)[:1000]
        t0 = time.perf_counter()
        for t in sample:
            (t.first_response_due - now, t.resolution_due - now)
        raw_fig = (time.perf_counter() - t0) / len(sample)
        t0 = time.perf_counter()
        for t in sample:
            sla.deadlines(t, now)
        ours_fig = (time.perf_counter() - t0) / len(sample)

        # 3. the job over every open ticket
        t0 = time.perf_counter()
        db.session.execute(select(func.count()).select_from(Ticket).where(
            Ticket.status.in_(OPEN_STATUSES), Ticket.waiting_since.is_(None),
            (Ticket.first_response_warn_at <= now) | (Ticket.resolution_warn_at <= now))).scalar()
        raw_job = time.perf_counter() - t0
        t0 = time.perf_counter()
        counts = sla.run_sla_check(now)
        ours_job = time.perf_counter() - t0
        t0 = time.perf_counter()
        again = sla.run_sla_check(now)
        ours_job2 = time.perf_counter() - t0
        dialect = db.engine.dialect.name

    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}, "
          f"database {dialect}; {open_count:,} open tickets, {len(agents)} agents, {len(customers)} customers "
          f"(setup {setup:.1f} s)")
    print(f"{'':44}{'ours':>26}{'raw limit':>26}{'ratio':>8}")
    print(f"{'open + assign + SLA clock, per ticket':44}{_ms(ours_open):>26}{_ms(raw_open):>26}"
          f"{statistics.median(ours_open) / statistics.median(raw_open):8.1f}   ({assigned}/200 assigned; target < 50 ms)")
    print(f"{'  (the per-ticket GROUP BY count it replaced)':44}{_ms(group_by):>26}")
    real = dict(load_check)
    print(f"{'  counters == real open tickets per agent':44}{str(real == counters):>26}")
    print(f"{'SLA figures (time left, state), per ticket':44}{ours_fig * 1000:23.3f} ms{raw_fig * 1000:23.4f} ms"
          f"{ours_fig / raw_fig:8.0f}   (target < 50 ms)")
    print(f"{'SLA job over all open tickets':44}{ours_job:24.2f} s{raw_job:24.2f} s{ours_job / raw_job:8.1f}"
          f"   (target < 30 s; alerts {sum(counts.values()) - counts['reminders']:,} and as many reminders "
          f"{counts['reminders']:,}; second run {ours_job2:.2f} s adds {sum(again.values())})")


if __name__ == "__main__":
    main()
