"""Generated demo data (`flask crm seed --demo N`): realistic Chinese customers, contacts,
interactions and one demo user per seeded role, so a new user sees a living system.

Deterministic (customer i is always the same) and idempotent: demo customer i has the stable
key ``demo-customer-i``, so asking for N again creates nothing new and N+M adds M.
"""
from __future__ import annotations

import os
import random
import secrets
from datetime import date, datetime, timedelta
from decimal import Decimal

import yaml

from app.extensions import appbuilder, db
from app.models import Contact, Customer, Department, DictionaryItem, Interaction, SeedRecord
from app.services.numbering import next_number
from app.services.seeding import seed_dir

DEMO_USERS = [  # username, first, last, role key, department key
    ("zhangwei", "伟", "张", "sales_staff", "sales"),
    ("lina", "娜", "李", "sales_staff", "sales"),
    ("wangfang", "芳", "王", "sales_supervisor", "sales"),
    ("chenjing", "静", "陈", "service_staff", "service"),
    ("liuqiang", "强", "刘", "service_supervisor", "service"),
    ("zhaomin", "敏", "赵", "analytics_staff", "analytics"),
    ("sunlei", "磊", "孙", "analytics_supervisor", "analytics"),
    ("zhoujie", "杰", "周", "product_manager", "sales"),
]


def _words() -> dict:
    return yaml.safe_load((seed_dir() / "demo" / "names.yaml").read_text(encoding="utf-8"))


def _items(type_key: str) -> dict[str, DictionaryItem]:
    return {i.code: i for i in db.session.query(DictionaryItem).filter_by(type_key=type_key).all()}


def _demo_users() -> tuple[list, str | None]:
    sm = appbuilder.sm
    password = os.environ.get("CRM_DEMO_PASSWORD") or None
    generated = None
    users = []
    for username, first, last, role_key, dept_key in DEMO_USERS:
        user = sm.find_user(username=username)
        if user is None:
            link = db.session.query(SeedRecord).filter_by(kind="role", key=role_key).first()
            role = db.session.get(sm.role_model, link.record_id) if link else None
            if role is None:
                continue
            if password is None and generated is None:
                generated = secrets.token_urlsafe(9)
            user = sm.add_user(username, first, last, f"{username}@demo.invalid", role,
                               password=password or generated)
            user.department = db.session.query(Department).filter_by(key=dept_key).first()
            db.session.commit()
        users.append(user)
    return users, generated


def load_demo(n: int) -> dict:
    from app.services.actor import as_system_user

    with as_system_user():
        return _load_demo(n)


def _demo_agents(users) -> None:
    """The service demo users as agents: 陈静 in 技术支持组 (repair, complaint), 刘强 its supervisor."""
    from app.models import AgentProfile, Team

    by_name = {u.username: u for u in users}
    support = db.session.query(Team).filter_by(key="support").first()
    if support is None or "chenjing" not in by_name:
        return
    if db.session.query(AgentProfile).filter_by(user_id=by_name["chenjing"].id).first() is None:
        db.session.add(AgentProfile(user=by_name["chenjing"], team=support, skills="repair,complaint"))
    if support.supervisor_id is None and "liuqiang" in by_name:
        support.supervisor = by_name["liuqiang"]
    db.session.commit()


def _load_demo(n: int) -> dict:
    words = _words()
    users, generated = _demo_users()
    _demo_agents(users)
    sales = [u for u in users if u.department and u.department.key == "sales"] or users
    dicts = {k: _items(k) for k in ("industry", "customer_kind", "customer_type", "customer_level",
                                     "customer_scale", "customer_source", "region", "interaction_kind",
                                     "interaction_result")}
    existing = {k for (k,) in db.session.query(SeedRecord.key).filter_by(kind="demo_customer")}
    created = contacts = interactions = 0
    now = datetime.now()
    for i in range(1, n + 1):
        key = f"demo-customer-{i}"
        if key in existing:
            continue
        rnd = random.Random(i)
        city = rnd.choice(words["cities"])
        industry_code = rnd.choice(list(words["industry_words"]))
        person = rnd.random() < 0.1
        if person:
            name = rnd.choice(words["surnames"]) + rnd.choice(words["given_names"])
        else:
            name = (city + rnd.choice(words["trade_names"]) + rnd.choice(words["industry_words"][industry_code])
                    + rnd.choice(words["company_suffixes"]))
        owner = rnd.choice(sales) if sales else None
        staff = rnd.choice([15, 40, 120, 300, 800, 2500])
        first_contact = date.today() - timedelta(days=rnd.randint(30, 1500))
        ctype = rnd.choice(["prospect", "intent", "won", "won", "lost"])
        c = Customer(
            name=name,
            kind=dicts["customer_kind"].get("person" if person else "org"),
            industry=dicts["industry"].get(industry_code),
            scale=dicts["customer_scale"].get("individual" if person else "large" if staff >= 1000 else "sme"),
            staff_count=None if person else staff,
            type=dicts["customer_type"].get(ctype),
            level=dicts["customer_level"].get(rnd.choice("AABBBCC")),
            source=dicts["customer_source"].get(rnd.choice(["exhibition", "referral", "online", "visit"])),
            region=dicts["region"].get(words["city_regions"].get(city, "east")),
            first_contact_date=first_contact,
            cooperation_start=min(first_contact + timedelta(days=rnd.randint(10, 200)), date.today())
            if ctype == "won" else None,
            total_amount=Decimal(rnd.randint(1, 900) * 1000) if ctype == "won" else Decimal(0),
            main_business=None if person else rnd.choice(words["industry_words"][industry_code]),
            owner=owner, department=owner.department if owner else None,
        )
        c.customer_no = next_number("customer", c, now=datetime.combine(first_contact, datetime.min.time()))
        db.session.add(c)
        for j in range(rnd.randint(1, 3)):
            surname = rnd.choice(words["surnames"])
            given = rnd.choice(words["given_names"])
            db.session.add(Contact(
                customer=c, name=surname + given, title=rnd.choice(words["titles"]),
                phone=f"1{rnd.choice('3456789')}{rnd.randint(0, 999999999):09d}",
                email=f"{rnd.choice(['zhang', 'li', 'wang', 'chen', 'liu'])}{rnd.randint(10, 9999)}@{rnd.choice(words['email_domains'])}",
                is_primary=(j == 0)))
            contacts += 1
        last = None
        for _ in range(rnd.randint(0, 5)):
            when = now - timedelta(days=rnd.randint(0, 180), minutes=rnd.randint(0, 600))
            db.session.add(Interaction(
                customer=c, occurred_at=when, kind=rnd.choice(list(dicts["interaction_kind"].values()) or [None]),
                key_points=rnd.choice(words["key_points"]), next_step=rnd.choice(words["next_steps"]),
                result=rnd.choice(list(dicts["interaction_result"].values()) or [None]), owner=owner))
            last = max(last, when) if last else when
            interactions += 1
        c.last_contact_at = last
        db.session.flush()
        db.session.add(SeedRecord(kind="demo_customer", key=key, record_id=c.id, source="demo", noupdate=True))
        created += 1
    db.session.commit()
    result = {"customers_created": created, "contacts": contacts, "interactions": interactions,
              "demo_users": [u.username for u in users]}
    if generated:
        result["demo_password"] = generated
    return result
