"""Numbering rules (编号规则): formats, reset periods, rule edits, immutability, the admin form,
seeds, and atomic allocation under 8 concurrent writers on the engine under test."""
from __future__ import annotations

import html
import re
import threading
import time
import uuid
from datetime import datetime
from pathlib import Path
from types import SimpleNamespace

import pytest
from flask_babel import force_locale

from conftest import ADMIN_PASSWORD, ENGINE, csrf_token

D1 = datetime(2024, 5, 1, 9, 30)


@pytest.fixture()
def make_rule(ctx):
    """make_rule(**fields) -> key of a fresh rule (target customer unless given), removed after."""
    from app.extensions import db
    from app.models import NumberingRule, SequenceCounter

    keys = []

    def factory(**fields):
        key = f"t_{uuid.uuid4().hex[:10]}"
        values = dict(key=key, target="customer", name="测试规则", prefix="", date_part="", separator="",
                      field_segment="", width=3, reset_period="never", active=True)
        values.update(fields)
        db.session.add(NumberingRule(**values))
        db.session.commit()
        keys.append(key)
        return key

    yield factory
    db.session.rollback()
    db.session.query(NumberingRule).filter(NumberingRule.key.in_(keys)).delete(synchronize_session=False)
    db.session.query(SequenceCounter).filter(SequenceCounter.rule_key.in_(keys)).delete(synchronize_session=False)
    db.session.commit()


def _item(type_key: str, code: str):
    from app.extensions import db
    from app.models import DictionaryItem

    return db.session.query(DictionaryItem).filter_by(type_key=type_key, code=code).one()


def _rule(key: str):
    from app.extensions import db
    from app.models import NumberingRule

    return db.session.query(NumberingRule).filter_by(key=key).one()


# -- formats -----------------------------------------------------------------------------------

def test_seeded_rules_give_the_documented_formats(ctx, make_rule):
    from app.services.numbering import DEFAULT_RULES, next_number

    parent = SimpleNamespace(customer=SimpleNamespace(customer_no="C20240501001"))
    # copies of the seeded rules under fresh keys, so other tests' counters do not matter
    got = {}
    for key in ("customer", "ticket", "feedback", "service_record"):
        seeded = _rule(key)
        assert {f: getattr(seeded, f) for f in DEFAULT_RULES[key]} == DEFAULT_RULES[key]
        copy = make_rule(**DEFAULT_RULES[key])
        got[key] = [next_number(copy, parent, now=D1) for _ in range(2)]
    assert got["customer"] == ["C20240501001", "C20240501002"]
    assert got["ticket"] == ["W20240501001", "W20240501002"]
    assert got["feedback"] == ["F20240501001", "F20240501002"]
    assert got["service_record"] == ["C20240501001-001", "C20240501001-002"]


def test_year_industry_sequence_counts_per_industry(ctx, make_rule):
    from app.models import Customer
    from app.services.numbering import next_number

    key = make_rule(date_part="yyyy", separator="-", field_segment="industry", reset_period="yearly")
    it, mfg = Customer(name="x", industry=_item("industry", "I")), Customer(name="y", industry=_item("industry", "C"))
    assert [next_number(key, it, now=D1), next_number(key, it, now=D1), next_number(key, mfg, now=D1)] == \
        ["2024-I-001", "2024-I-002", "2024-C-001"]
    assert next_number(key, Customer(name="z", industry_id=it.industry.id), now=D1) == "2024-I-003"
    assert next_number(key, it, now=datetime(2025, 1, 1)) == "2025-I-001"
    assert next_number(key, Customer(name="no industry"), now=D1) == "2024-001"  # optional segment left out


def test_service_record_numbers_are_per_parent_and_never_reset(ctx, make_rule):
    from app.services.numbering import NumberingError, next_number

    key = make_rule(target="service_record", separator="-", field_segment="parent", reset_period="never")
    a = SimpleNamespace(customer=SimpleNamespace(customer_no="2024-TECH-001"))
    b = SimpleNamespace(customer=SimpleNamespace(customer_no="2024-TECH-002"))
    assert next_number(key, a, now=D1) == "2024-TECH-001-001"
    assert next_number(key, a, now=datetime(2031, 12, 31)) == "2024-TECH-001-002"
    assert next_number(key, b, now=D1) == "2024-TECH-002-001"
    with pytest.raises(NumberingError):
        next_number(key, SimpleNamespace(customer=None), now=D1)


@pytest.mark.parametrize("reset,date_part,calls,expected", [
    ("daily", "yyyymmdd", [D1, D1, datetime(2024, 5, 2)], ["X20240501001", "X20240501002", "X20240502001"]),
    ("monthly", "yyyymm", [D1, datetime(2024, 5, 31), datetime(2024, 6, 1)], ["X202405001", "X202405002", "X202406001"]),
    ("monthly", "yyyymmdd", [D1, datetime(2024, 5, 2), datetime(2024, 6, 1)],
     ["X20240501001", "X20240502002", "X20240601001"]),
    ("yearly", "yyyy", [D1, datetime(2024, 12, 31), datetime(2025, 1, 1)], ["X2024001", "X2024002", "X2025001"]),
    ("never", "yyyymmdd", [D1, datetime(2024, 5, 2), datetime(2030, 1, 1)],
     ["X20240501001", "X20240502002", "X20300101003"]),
    ("never", "", [D1, datetime(2030, 1, 1)], ["X001", "X002"]),
])
def test_reset_periods(ctx, make_rule, reset, date_part, calls, expected):
    from app.services.numbering import next_number

    key = make_rule(prefix="X", date_part=date_part, reset_period=reset)
    assert [next_number(key, None, now=n) for n in calls] == expected


def test_width_separator_and_overflow(ctx, make_rule):
    from app.extensions import db
    from app.models import SequenceCounter
    from app.services.numbering import next_number

    key = make_rule(prefix="CUS", date_part="yyyymmdd", separator="-", width=5, reset_period="daily")
    assert next_number(key, None, now=D1) == "CUS-20240501-00001"
    db.session.query(SequenceCounter).filter_by(rule_key=key).update({"value": 99999})
    db.session.commit()
    assert next_number(key, None, now=D1) == "CUS-20240501-100000"  # grows, never repeats


def test_preview_does_not_consume(ctx, make_rule):
    from app.services.numbering import next_number, preview

    key = make_rule(prefix="P", date_part="yyyymmdd", reset_period="daily")
    assert preview(_rule(key), now=D1) == preview(_rule(key), now=D1) == "P20240501001"
    assert next_number(key, None, now=D1) == "P20240501001"
    assert preview(_rule(key), now=D1) == "P20240501002"
    seg = make_rule(date_part="yyyy", separator="-", field_segment="industry", reset_period="yearly")
    assert re.fullmatch(r"2024-[A-Z]-001", preview(_rule(seg), now=D1))


def test_inactive_rule_falls_back_to_the_builtin_pattern(ctx):
    from app.extensions import db
    from app.services.numbering import get_rule

    rule = _rule("customer")
    rule.active, rule.prefix = False, "Z"
    db.session.commit()
    try:
        assert get_rule("customer").prefix == "C"
    finally:
        rule.active, rule.prefix = True, "C"
        db.session.commit()


# -- through the UI and API --------------------------------------------------------------------

def _api_login(app, n: int):
    c = app.test_client()
    c.environ_base["REMOTE_ADDR"] = f"10.250.{n // 250}.{n % 250 + 1}"
    resp = c.post("/api/v1/security/login", json={"username": "admin", "password": ADMIN_PASSWORD,
                                                  "provider": "db", "refresh": False})
    assert resp.status_code == 200, resp.get_data(as_text=True)
    return c, {"Authorization": f"Bearer {resp.json['access_token']}"}


def _customer_no(app, cid: int) -> str:
    from app.extensions import db
    from app.models import Customer

    with app.app_context():
        return db.session.get(Customer, cid).customer_no


def _edit_rule(admin_client, app, key: str, **changes):
    from app.extensions import db

    with app.app_context():
        rule = _rule(key)
        rid = rule.id
        data = {f: getattr(rule, f) for f in ("target", "name", "name_en", "prefix", "date_part", "separator",
                                               "field_segment", "width", "reset_period")}
        data["active"] = "y" if rule.active else ""
        db.session.rollback()
    data.update(changes)
    page = admin_client.get(f"/numberingrulemodelview/edit/{rid}")
    data["csrf_token"] = csrf_token(page.get_data(as_text=True))
    data = {k: ("" if v is None else v) for k, v in data.items()}
    if not data["active"]:
        del data["active"]
    return admin_client.post(f"/numberingrulemodelview/edit/{rid}", data=data)


def test_changing_the_prefix_affects_only_new_records(app, admin_client):
    c, auth = _api_login(app, 1)
    first = c.post("/api/v1/customer/", json={"name": f"前缀测试一{uuid.uuid4().hex[:6]}"}, headers=auth)
    assert first.status_code == 201, first.get_data(as_text=True)
    old_no = _customer_no(app, first.json["id"])
    assert re.fullmatch(r"C\d{8}\d{3,}", old_no)
    try:
        resp = _edit_rule(admin_client, app, "customer", prefix="K")
        assert resp.status_code == 302, html.unescape(resp.get_data(as_text=True))[-3000:]
        second = c.post("/api/v1/customer/", json={"name": f"前缀测试二{uuid.uuid4().hex[:6]}"}, headers=auth)
        assert second.status_code == 201
        new_no = _customer_no(app, second.json["id"])
        assert new_no.startswith("K") and new_no[1:9] == old_no[1:9]
        assert _customer_no(app, first.json["id"]) == old_no
    finally:
        assert _edit_rule(admin_client, app, "customer", prefix="C").status_code == 302


def test_customer_no_never_changes(app, admin_client):
    from app.extensions import db
    from app.models import Customer
    from app.services.numbering import NumberingError

    c, auth = _api_login(app, 2)
    created = c.post("/api/v1/customer/", json={"name": f"编号不变{uuid.uuid4().hex[:6]}"}, headers=auth)
    cid = created.json["id"]
    no = _customer_no(app, cid)
    # REST: not an accepted field
    resp = c.put(f"/api/v1/customer/{cid}", json={"customer_no": "HACKED"}, headers=auth)
    assert resp.status_code == 422 and _customer_no(app, cid) == no
    # form: no such field, and a posted value is ignored
    page = admin_client.get(f"/customermodelview/edit/{cid}").get_data(as_text=True)
    assert 'name="customer_no"' not in page and 'name="name"' in page
    resp = admin_client.post(f"/customermodelview/edit/{cid}", data={
        "csrf_token": csrf_token(page), "name": "改了名字", "total_amount": "0", "customer_no": "HACKED"})
    assert resp.status_code == 302, re.findall(r"help-block[^<]*<[^>]*>([^<]*)", resp.get_data(as_text=True))
    assert _customer_no(app, cid) == no
    # model: refused even from code
    with app.app_context():
        cust = db.session.get(Customer, cid)
        assert cust.name == "改了名字"
        cust.customer_no = "HACKED"
        with pytest.raises(NumberingError):
            db.session.commit()
        db.session.rollback()
    assert _customer_no(app, cid) == no


def test_the_admin_form_explains_bad_input(app, admin_client):
    from app.services.numbering import problem_text

    page = admin_client.get("/numberingrulemodelview/add")
    assert page.status_code == 200
    text = page.get_data(as_text=True)
    assert 'name="date_part"' in text and 'name="field_segment"' in text
    resp = admin_client.post("/numberingrulemodelview/add", data={
        "csrf_token": csrf_token(text), "key": "Bad Key", "target": "customer", "name": "坏规则",
        "prefix": "C", "date_part": "yyyyq", "separator": "", "field_segment": "salary", "width": "13",
        "reset_period": "daily", "active": "y"})
    assert resp.status_code == 200  # the form again, nothing saved
    body = html.unescape(resp.get_data(as_text=True))
    with app.test_request_context(), force_locale("zh"):
        expected = [
            problem_text("Unknown date part '%(value)s': use yyyy, yyyymm or yyyymmdd, or leave it empty.",
                         {"value": "yyyyq"}),
            problem_text("The sequence width must be a whole number from 1 to %(max)s.", {"max": 12}),
            problem_text("Unknown field segment '%(value)s' for %(target)s: use one of %(choices)s, or leave it empty.",
                         {"value": "salary", "target": "customer", "choices": "industry, region"}),
            problem_text("The key must start with a small letter and use only a-z, 0-9 and _ (at most 64).", {}),
        ]
    for message in expected:
        assert message in body, message
    # a daily reset without a day in the number would repeat numbers
    resp = admin_client.post("/numberingrulemodelview/add", data={
        "csrf_token": csrf_token(text), "key": "monthly_daily", "target": "customer", "name": "x",
        "prefix": "C", "date_part": "yyyymm", "separator": "", "field_segment": "", "width": "3",
        "reset_period": "daily"})
    with app.test_request_context(), force_locale("zh"):
        msg = problem_text("A %(reset)s reset needs a date part of at least %(need)s, or numbers would repeat.",
                           {"reset": "daily", "need": "yyyymmdd"})
    assert msg in html.unescape(resp.get_data(as_text=True))
    with app.app_context():
        from app.extensions import db
        from app.models import NumberingRule

        assert db.session.query(NumberingRule).filter(NumberingRule.key.in_(["Bad Key", "monthly_daily"])).count() == 0


def test_admin_adds_a_rule_and_sees_its_preview(app, admin_client):
    from app.extensions import db
    from app.models import NumberingRule

    key = f"ui_{uuid.uuid4().hex[:8]}"
    text = admin_client.get("/numberingrulemodelview/add").get_data(as_text=True)
    resp = admin_client.post("/numberingrulemodelview/add", data={
        "csrf_token": csrf_token(text), "key": key, "target": "customer", "name": "按行业编号",
        "name_en": "By industry", "prefix": "", "date_part": "yyyy", "separator": "-",
        "field_segment": "industry", "width": "3", "reset_period": "yearly", "active": "y"})
    assert resp.status_code == 302, re.findall(r'help-block[^<]*<[^>]*>([^<]*)', resp.get_data(as_text=True))
    with app.app_context():
        rule = db.session.query(NumberingRule).filter_by(key=key).one()
        rid, year = rule.id, datetime.now().year
    show = admin_client.get(f"/numberingrulemodelview/show/{rid}").get_data(as_text=True)
    assert re.search(rf"{year}-[A-Z]-001", show)
    listing = admin_client.get("/numberingrulemodelview/list/").get_data(as_text=True)
    assert re.search(r"C\d{8}\d{3}", listing) and key in listing
    with app.app_context():
        db.session.query(NumberingRule).filter_by(key=key).delete()
        db.session.commit()


def test_only_admins_may_manage_rules(app, client, make_user):
    from conftest import USER_PASSWORD, login

    user = make_user("sales_supervisor", "sales")
    login(client, user, USER_PASSWORD)
    assert client.get("/numberingrulemodelview/list/").status_code == 403


# -- seeds -------------------------------------------------------------------------------------

def test_seeding_rules_is_idempotent_and_keeps_admin_edits(ctx):
    from app.extensions import db
    from app.services.seeding import load_seeds

    first = load_seeds()
    rule = _rule("ticket")
    rule.width = 4
    db.session.commit()
    try:
        second = load_seeds()
        assert second.created == 0 and second.updated == 0
        assert second.as_dict() == first.as_dict()
        assert _rule("ticket").width == 4  # noupdate: the admin's edit stays
    finally:
        _rule("ticket").width = 3
        db.session.commit()


def test_bad_rule_seeds_are_reported_with_file_and_line(ctx, tmp_path: Path):
    from app.services.seeding import SeedError, load_seeds

    (tmp_path / "manifest.yaml").write_text("load:\n  - numbering.yaml\n", encoding="utf-8")
    (tmp_path / "numbering.yaml").write_text(
        "kind: numbering_rule\nrecords:\n"
        "  - key: a\n    target: customer\n    name: A\n    date_part: yyyyq\n    reset_period: never\n"
        "  - key: b\n    target: customer\n    name: B\n    width: 13\n    reset_period: never\n"
        "  - key: c\n    target: customer\n    name: C\n    field_segment: salary\n    reset_period: never\n"
        "  - key: d\n    target: nowhere\n    name: D\n    reset_period: sometimes\n",
        encoding="utf-8")
    old = ctx.config.get("CRM_SEED_DIR")
    ctx.config["CRM_SEED_DIR"] = str(tmp_path)
    try:
        with pytest.raises(SeedError) as err:
            load_seeds()
    finally:
        ctx.config["CRM_SEED_DIR"] = old
    text = "\n".join(err.value.problems)
    assert "seeds/numbering.yaml:3: date_part:" in text and "yyyyq" in text
    assert "seeds/numbering.yaml:8: width:" in text
    assert "seeds/numbering.yaml:13: field_segment:" in text and "salary" in text
    assert "seeds/numbering.yaml:18: target:" in text and "seeds/numbering.yaml:18: reset_period:" in text


def test_sqlite_reads_open_no_transaction(ctx):
    """allocate() relies on pysqlite's default mode: a transaction begins only before a write,
    so a session that has only read holds no snapshot and a session that has written holds the
    write lock. If the driver mode changes (e.g. an explicit BEGIN for every transaction),
    revisit app/services/numbering.py."""
    from app.extensions import db
    from app.models import NumberingRule

    if db.engine.dialect.name != "sqlite":
        pytest.skip("SQLite only")
    db.session.query(NumberingRule).all()
    assert not db.session.connection().connection.dbapi_connection.in_transaction
    db.session.rollback()


def test_allocating_inside_a_writing_transaction(ctx, make_rule):
    """A bulk load that has already written in its transaction (it holds SQLite's write lock)
    still gets numbers at once, without waiting for itself."""
    from app.extensions import db
    from app.models import SequenceCounter
    from app.services.numbering import next_number

    key = make_rule(prefix="B", date_part="yyyymmdd", reset_period="daily")
    t0 = time.perf_counter()
    assert next_number(key, None, now=D1) == "B20240501001"
    db.session.add(SequenceCounter(rule_key=f"{key}_other", period="-", scope="", value=0))
    db.session.flush()  # this transaction now writes
    second = next_number(key, None, now=D1)
    assert time.perf_counter() - t0 < 2
    assert second == "B20240501002"
    db.session.rollback()


def test_allocating_in_a_read_first_transaction_after_another_commit(ctx, make_rule):
    """The SQLite trap: a transaction that has read, then sees another writer commit, cannot
    upgrade to a write lock (SQLITE_BUSY_SNAPSHOT, at once). The counter is bumped elsewhere."""
    from sqlalchemy import text

    from app.extensions import db
    from app.services.numbering import next_number

    key = make_rule(prefix="R", date_part="yyyymmdd", reset_period="daily")
    if db.engine.dialect.name == "sqlite":
        db.session.execute(text("BEGIN"))  # an explicit read transaction, as other driver modes do
    db.session.execute(text("SELECT count(*) FROM crm_numbering_rule")).scalar()
    with db.engine.connect() as other:  # another writer commits meanwhile
        other.execute(text("UPDATE crm_numbering_rule SET name = :n WHERE key = :k"), {"n": "改名", "k": key})
        other.commit()
    t0 = time.perf_counter()
    assert next_number(key, None, now=D1) == "R20240501001"
    assert time.perf_counter() - t0 < 2
    db.session.rollback()
    assert next_number(key, None, now=D1) == "R20240501002"  # committed on its own: gap-aware


# -- concurrency -------------------------------------------------------------------------------

THREADS, PER_THREAD = 8, 200


def test_concurrent_writers_get_distinct_numbers(app):
    """8 API clients (JWT, one thread each) create 200 customers each: all succeed, all distinct."""
    from app.extensions import db
    from app.models import Customer

    tag = uuid.uuid4().hex[:6]
    clients = [_api_login(app, 100 + i) for i in range(THREADS)]
    failures: list[str] = []
    ids: list[int] = []
    lock = threading.Lock()
    start = threading.Barrier(THREADS)

    def writer(n: int) -> None:
        c, auth = clients[n]
        start.wait()
        for i in range(PER_THREAD):
            resp = c.post("/api/v1/customer/", json={"name": f"并发{tag}-{n}-{i}"}, headers=auth)
            with lock:
                if resp.status_code == 201:
                    ids.append(resp.json["id"])
                else:
                    failures.append(f"{resp.status_code} {resp.get_data(as_text=True)[:200]}")

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(THREADS)]
    t0 = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - t0
    print(f"\n[{ENGINE}] {THREADS}x{PER_THREAD} customers via POST /api/v1/customer/ in {elapsed:.1f} s")
    assert not failures, failures[:5]
    assert len(ids) == THREADS * PER_THREAD
    with app.app_context():
        numbers = [n for (n,) in db.session.query(Customer.customer_no).filter(Customer.name.like(f"并发{tag}-%"))]
    assert len(numbers) == THREADS * PER_THREAD
    assert len(set(numbers)) == THREADS * PER_THREAD
    assert all(re.fullmatch(r"C\d{8}\d{3,}", n) for n in numbers)


def test_next_numbers_allocates_a_block_per_segment(ctx, make_rule):
    """Imports take numbers in blocks: same formats, same counters as one-by-one allocation."""
    from app.models import Customer
    from app.services.numbering import next_number, next_numbers

    key = make_rule(date_part="yyyy", separator="-", field_segment="industry", reset_period="yearly")
    it, mfg = _item("industry", "I"), _item("industry", "C")
    records = [Customer(name="a", industry=it), Customer(name="b", industry=mfg), Customer(name="c", industry=it)]
    assert next_numbers(key, records, now=D1) == ["2024-I-001", "2024-C-001", "2024-I-002"]
    assert next_number(key, records[0], now=D1) == "2024-I-003"
    assert next_numbers(key, [Customer(name="d", industry=it)] * 3, now=D1) == ["2024-I-004", "2024-I-005", "2024-I-006"]


def test_concurrent_block_allocations_never_overlap(app, make_rule):
    """4 threads each take 5 blocks of 100 numbers while others take single ones: all distinct."""
    from app.services.numbering import next_number, next_numbers

    key = make_rule(prefix="B", width=6)
    got: list[str] = []
    lock = threading.Lock()
    start = threading.Barrier(4)

    def worker(n: int) -> None:
        with app.app_context():
            start.wait()
            for _ in range(5):
                block = next_numbers(key, [None] * 100) + [next_number(key)]
                with lock:
                    got.extend(block)

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(got) == 4 * 5 * 101 and len(set(got)) == len(got)
