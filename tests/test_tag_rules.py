"""Tagging rules (自动打标规则) and the monthly tag audit (每月标签核查): the seeded default rules
tag customers through the periodic job (run once like `flask crm jobs run tagging_rules`) and
record every change with its rule; admins build a rule in the UI, preview it, switch it on; bad
conditions are refused with a clear message; tag filters combine AND/OR/NOT; a supervisor runs
a round for their department (evidence, conflicts, bulk decisions, progress, summary) and a tag
removed there stays off until the evidence changes; permissions by role."""
from __future__ import annotations

import json
import re
import subprocess
import uuid
from datetime import datetime, timedelta

import pytest

from conftest import ADMIN_PASSWORD, ROOT, USER_PASSWORD, csrf_token, flask_cmd, login, subprocess_env
from test_i18n import visible


def text_of(html: str) -> str:
    return "\n".join(visible(html))


def make_customer(app, *, amount=None, interactions=0, days_ago=10, dept="sales", owner=None, prefix="规则客户"):
    """A customer of ``dept`` with ``interactions`` records ``days_ago`` days back; returns its id."""
    from app.extensions import appbuilder, db
    from app.models import Customer, Department, Interaction
    from app.services.actor import as_system_user
    from app.services.numbering import next_number

    with app.app_context(), as_system_user():
        c = Customer(customer_no=next_number("customer"), name=f"{prefix}{uuid.uuid4().hex[:8]}",
                     total_amount=amount, department=db.session.query(Department).filter_by(key=dept).one(),
                     owner=appbuilder.sm.find_user(username=owner) if owner else None)
        db.session.add(c)
        db.session.flush()
        for _ in range(interactions):
            db.session.add(Interaction(customer_id=c.id, key_points="跟进",
                                       occurred_at=datetime.now() - timedelta(days=days_ago)))
        db.session.commit()
        return c.id


def labels_of(app, customer_id: int) -> dict[str, tuple]:
    from app.extensions import db
    from app.models import CustomerTag

    with app.app_context():
        return {l.tag.label: (l.source, l.rule_id) for l in db.session.query(CustomerTag).filter_by(customer_id=customer_id)}


def rule_id(app, key: str) -> int:
    from app.extensions import db
    from app.models.tag import TaggingRule

    with app.app_context():
        return db.session.query(TaggingRule.id).filter_by(key=key).scalar()


def run_rules(app) -> dict:
    from app.services.tag_rules import apply_all_rules

    with app.app_context():
        return apply_all_rules()


def changes_of(app, customer_id: int) -> list[tuple]:
    from app.extensions import db
    from app.models import Tag
    from app.models.tag import TagChange

    with app.app_context():
        return [(c.action, c.source, c.rule_id, db.session.get(Tag, c.tag_id).label)
                for c in db.session.query(TagChange).filter_by(customer_id=customer_id).order_by(TagChange.id)]


# -- default rules, the job, the change log ---------------------------------------------------------

def test_default_rules_tag_customers_and_record_each_change(app):
    active = make_customer(app, amount=600000, interactions=5, days_ago=20)
    dormant = make_customer(app, amount=50000, interactions=2, days_ago=300)
    middle = make_customer(app, amount=200000, interactions=2, days_ago=30)
    result = run_rules(app)
    assert result["rules"] >= 6 and not result["refused"], result
    assert set(labels_of(app, active)) == {"活跃度-活跃", "消费能力-高"}
    assert set(labels_of(app, dormant)) == {"活跃度-沉睡", "消费能力-低"}
    assert set(labels_of(app, middle)) == {"活跃度-一般", "消费能力-中"}
    assert labels_of(app, active)["活跃度-活跃"] == ("rule", rule_id(app, "activity_active"))
    assert ("add", "rule", rule_id(app, "spending_high"), "消费能力-高") in changes_of(app, active)

    again = run_rules(app)  # nothing changed: nothing to do
    assert set(labels_of(app, active)) == {"活跃度-活跃", "消费能力-高"}
    assert len(changes_of(app, active)) == 2 and again["removed"] == 0

    from app.extensions import db
    from app.models import Customer
    from app.services.actor import as_system_user
    with app.app_context(), as_system_user():  # the amount drops: the rule takes its tag off again
        db.session.get(Customer, active).total_amount = 1000
        db.session.commit()
    run_rules(app)
    assert set(labels_of(app, active)) == {"活跃度-活跃", "消费能力-低"}
    assert ("remove", "rule", rule_id(app, "spending_high"), "消费能力-高") in changes_of(app, active)


def test_job_runs_once_from_the_command_line(app):
    cid = make_customer(app, amount=700000)
    out = subprocess.run(flask_cmd("crm", "jobs", "run", "tagging_rules"), cwd=ROOT, env=subprocess_env(),
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    assert '"tagging_rules"' in out.stdout and '"refused": {}' in out.stdout
    assert "消费能力-高" in labels_of(app, cid)


def test_manual_tags_are_left_alone_by_rules(app):
    from app.services.tagging import add_tag

    cid = make_customer(app, amount=10)
    with app.app_context():
        add_tag(cid, "消费能力-高", None)
    run_rules(app)
    labels = labels_of(app, cid)
    assert labels["消费能力-高"] == ("manual", None) and "消费能力-低" in labels


# -- rules in the UI: build, preview, switch on, bad input ----------------------------------------------

def _post_form(client, url: str, data: dict):
    page = client.get(url)
    assert page.status_code == 200, (url, page.status_code)
    return client.post(url, data={"csrf_token": csrf_token(page.get_data(as_text=True)), **data}, follow_redirects=True)


def test_admin_builds_previews_and_switches_on_a_rule(app, admin_client):
    from app.extensions import db
    from app.models.tag import TaggingRule
    from app.services.tagging import find_tag

    need = make_customer(app, amount=880000, interactions=1, days_ago=5)
    with app.app_context():
        tag = find_tag("需求-技术支持").id
    name = f"大客户技术支持{uuid.uuid4().hex[:6]}"
    resp = _post_form(admin_client, "/taggingrulemodelview/add", {"name": name, "tag": str(tag), "remove_unmet": "y"})
    assert resp.status_code == 200
    with app.app_context():
        rid = db.session.query(TaggingRule.id).filter_by(name=name).scalar()
    assert rid

    # bad conditions are refused next to the field, nothing saved
    url = f"/taggingruleconditionmodelview/add?_flt_0_rule={rid}"
    bad = _post_form(admin_client, url, {"rule": str(rid), "field": "no_such_field", "operator": ">=", "value": "1"})
    assert "未知或已停用的字段" in text_of(bad.get_data(as_text=True))
    bad = _post_form(admin_client, url, {"rule": str(rid), "field": "total_amount", "operator": "contains", "value": "1"})
    assert "不允许使用运算符" in text_of(bad.get_data(as_text=True))
    bad = _post_form(admin_client, url, {"rule": str(rid), "field": "interactions", "operator": ">=", "value": "1",
                                         "window_days": "0"})
    assert "时间窗口" in text_of(bad.get_data(as_text=True))
    with app.app_context():
        assert db.session.get(TaggingRule, rid).conditions == []

    # switching on a rule without conditions is refused
    edit = _post_form(admin_client, f"/taggingrulemodelview/edit/{rid}", {"name": name, "tag": str(tag), "active": "y",
                                                                          "remove_unmet": "y"})
    assert "规则没有条件" in text_of(edit.get_data(as_text=True))
    with app.app_context():
        assert db.session.get(TaggingRule, rid).active is False

    _post_form(admin_client, url, {"rule": str(rid), "field": "total_amount", "operator": ">=", "value": "800000"})
    _post_form(admin_client, url, {"rule": str(rid), "field": "interactions", "operator": ">=", "value": "1",
                                   "window_days": "30"})
    with app.app_context():
        from app.services.tag_rules import preview
        expected = preview(db.session.get(TaggingRule, rid))
    assert expected["add"] >= 1
    page = admin_client.get("/taggingrulemodelview/list/").get_data(as_text=True)
    resp = admin_client.post("/taggingrulemodelview/action/preview/" + str(rid),
                             data={"csrf_token": csrf_token(page)}, follow_redirects=True)
    text = text_of(resp.get_data(as_text=True))
    assert f"{expected['matched']} 个客户符合" in text and f"{expected['add']} 个将被打上标签" in text
    assert "需求-技术支持" not in labels_of(app, need)  # a preview changes nothing

    _post_form(admin_client, f"/taggingrulemodelview/edit/{rid}", {"name": name, "tag": str(tag), "active": "y",
                                                                   "remove_unmet": "y"})
    with app.app_context():
        assert db.session.get(TaggingRule, rid).active is True
    run_rules(app)
    assert labels_of(app, need)["需求-技术支持"] == ("rule", rid)
    show = text_of(admin_client.get(f"/taggingrulemodelview/show/{rid}").get_data(as_text=True))
    assert "累计交易金额 至少 800000 且 时间窗口内的互动次数（近 30 天） 至少 1" in show


def test_a_rule_broken_later_is_refused_and_applies_nothing(app):
    from app.extensions import db
    from app.models.tag import TaggingRule, TaggingRuleCondition
    from app.services.tagging import find_tag

    cid = make_customer(app, amount=999999)
    with app.app_context():
        rule = TaggingRule(name=f"坏规则{uuid.uuid4().hex[:6]}", tag=find_tag("需求-售后投诉"), active=True,
                           conditions=[TaggingRuleCondition(field="total_amount", operator=">=", value="1"),
                                       TaggingRuleCondition(field="retired_field", operator="=", value="x")])
        db.session.add(rule)
        db.session.commit()
        rid, name = rule.id, rule.name
    try:
        result = run_rules(app)
        assert name in result["refused"] and any("条件 2" in p for p in result["refused"][name])
        assert "需求-售后投诉" not in labels_of(app, cid)
        assert "消费能力-高" in labels_of(app, cid)  # the other rules still ran
        with app.app_context():
            assert "retired_field" in db.session.get(TaggingRule, rid).last_result
    finally:
        with app.app_context():
            db.session.delete(db.session.get(TaggingRule, rid))
            db.session.commit()


def test_rules_pages_are_for_admins_only(app, make_user):
    for role in ("sales_supervisor", "sales_staff"):
        c = app.test_client()
        user = make_user(role, "sales")
        login(c, user, USER_PASSWORD)
        resp = c.get("/taggingrulemodelview/list/")
        assert resp.status_code == 403, (role, resp.status_code)


# -- tag filters: AND / OR / NOT ---------------------------------------------------------------------

def test_tag_clause_and_list_filters_combine(app, admin_client):
    from app.extensions import db
    from app.models import Customer
    from app.services.tagging import add_tag, tag_clause

    prefix = f"组合{uuid.uuid4().hex[:6]}"
    a, b, c = (make_customer(app, prefix=prefix) for _ in range(3))
    with app.app_context():
        add_tag(a, "区域-华东", None)
        add_tag(a, "需求-技术支持", None)
        add_tag(b, "区域-华东", None)
        add_tag(c, "区域-华北", None)

        def ids(**kw):
            q = db.session.query(Customer.id).filter(Customer.name.like(f"{prefix}%"), tag_clause(**kw))
            return {i for (i,) in q}
        assert ids(include_all=["区域-华东", "需求-技术支持"]) == {a}
        assert ids(include_any="区域-华东,区域-华北") == {a, b, c}
        assert ids(include_any=["区域-华东"], exclude=["需求-技术支持"]) == {b}
        assert ids(exclude="区域-华东") == {c}

    def listed(query: str) -> set[int]:
        html = admin_client.get(f"/customermodelview/list/?_flt_2_name={prefix}&{query}").get_data(as_text=True)
        return {int(i) for i in re.findall(r"/customermodelview/show/(\d+)", html)}
    assert listed("_flt_0_tags=区域-华东&_flt_0_tags=需求-技术支持") == {a}
    assert listed("_flt_1_tags=区域-华东,区域-华北&_flt_2_tags=需求-技术支持") == {b, c}


# -- the monthly audit ------------------------------------------------------------------------------

@pytest.fixture()
def supervisor(app, make_user):
    def factory(role="sales_supervisor", dept="sales"):
        c = app.test_client()
        c.environ_base["REMOTE_ADDR"] = f"10.99.{uuid.uuid4().int % 250}.{uuid.uuid4().int % 250 + 1}"
        user = make_user(role, dept)
        resp = login(c, user, USER_PASSWORD)
        assert resp.status_code == 302
        return c, user
    return factory


def _dept_id(app, key):
    from app.extensions import db
    from app.models import Department

    with app.app_context():
        return db.session.query(Department.id).filter_by(key=key).scalar()


def _item_ids(app, round_id: int, customer_id: int) -> dict[str, int]:
    from app.extensions import db
    from app.models import Tag
    from app.models.tag import TagAuditItem

    with app.app_context():
        return {db.session.get(Tag, i.tag_id).label: i.id for i in
                db.session.query(TagAuditItem).filter_by(round_id=round_id, customer_id=customer_id)}


def test_supervisor_runs_a_round_and_removed_tags_stay_off(app, supervisor, client):
    from app.extensions import db
    from app.models import Interaction
    from app.models.tag import TagAuditRound, TagSuppression
    from app.services.actor import as_system_user
    from app.services.tagging import add_tag

    dept = "sales"
    month = f"20{uuid.uuid4().int % 70 + 30}-0{uuid.uuid4().int % 9 + 1}"  # a month of its own
    c1 = make_customer(app, amount=600000, interactions=5, dept=dept)
    c2 = make_customer(app, amount=10, interactions=0, dept=dept)
    run_rules(app)
    with app.app_context():
        add_tag(c2, "活跃度-活跃", None)  # by hand, next to the rule's 沉睡: a conflict
    sup, username = supervisor()
    page = sup.get("/tagaudit/")
    assert page.status_code == 200
    resp = sup.post("/tagaudit/open", data={"csrf_token": csrf_token(page.get_data(as_text=True)),
                                            "department_id": _dept_id(app, dept), "month": month})
    assert resp.status_code == 302
    with app.app_context():
        rnd = db.session.query(TagAuditRound).filter_by(month=month, department_id=_dept_id(app, dept)).one()
        rid = rnd.id
    html = sup.get(f"/tagaudit/round/{rid}?only=conflict").get_data(as_text=True)
    text = text_of(html)
    assert "冲突" in text and "活跃度-活跃" in text and "活跃度-沉睡" in text
    full = text_of(sup.get(f"/tagaudit/round/{rid}").get_data(as_text=True))
    assert "6个月无互动 ⇒ 活跃度-沉睡" in full  # which rule set it
    assert "时间窗口内的互动次数（近 180 天） 等于 0 ⇒ 活跃度-沉睡" in full  # what the rule says now

    items1, items2 = _item_ids(app, rid, c1), _item_ids(app, rid, c2)
    token = csrf_token(html)
    sup.post(f"/tagaudit/round/{rid}/decide", data={"csrf_token": token, "decision": "confirm",
                                                    "item": [items1["活跃度-活跃"], items1["消费能力-高"]]})
    sup.post(f"/tagaudit/round/{rid}/decide", data={"csrf_token": token, "decision": "remove",
                                                    "item": [items2["活跃度-活跃"], items2["活跃度-沉睡"]]})
    sup.post(f"/tagaudit/round/{rid}/decide", data={"csrf_token": token, "decision": "change",
                                                    "item": [items2["消费能力-低"]],
                                                    "new_tag_id": _tag(app, "消费能力-中")})
    assert set(labels_of(app, c2)) == {"消费能力-中"}
    # the decisions, found among however many items the department's round holds
    page = text_of(sup.get(f"/tagaudit/round/{rid}?only=checked").get_data(as_text=True))
    assert "已确认" in page and "已移除" in page and "已更改" in page and username in page
    with app.app_context():
        # 活跃 and 沉睡 removed, 低 changed to 中: none of the three may come back by itself
        assert db.session.query(TagSuppression).filter_by(customer_id=c2).count() == 3

    run_rules(app)  # the evidence has not changed: the rule does not put 沉睡 (or 低) back
    assert set(labels_of(app, c2)) == {"消费能力-中"}

    with app.app_context(), as_system_user():  # new evidence: an interaction long ago is still an interaction recorded now
        db.session.add(Interaction(customer_id=c2, key_points="回访", occurred_at=datetime.now() - timedelta(days=400)))
        db.session.commit()
    run_rules(app)
    assert "活跃度-沉睡" in labels_of(app, c2)

    close = sup.post(f"/tagaudit/round/{rid}/close", data={"csrf_token": token}, follow_redirects=True)
    text = text_of(close.get_data(as_text=True))
    assert "已关闭" in text and "确认 2" in text and "移除 2" in text and "更改 1" in text
    with app.app_context():
        summary = db.session.get(TagAuditRound, rid).summary
    summary = json.loads(summary)  # other tests' sales customers are in the round too
    assert summary["removed"] == 2 and summary["changed"] == 1 and summary["conflicts"] >= 2
    assert isinstance(summary["unused_tags"], list) and "未使用的标签" in text

    # admins read it later; another department's supervisor may not even see it
    login(client, "admin", ADMIN_PASSWORD)
    assert "移除 2" in text_of(client.get("/tagaudit/").get_data(as_text=True))
    other, _ = supervisor("service_supervisor", "service")
    assert other.get(f"/tagaudit/round/{rid}").status_code == 404
    page = other.get("/tagaudit/")
    resp = other.post("/tagaudit/open", data={"csrf_token": csrf_token(page.get_data(as_text=True)),
                                              "department_id": _dept_id(app, "sales"), "month": month},
                      follow_redirects=True)
    assert "只能核查本部门" in text_of(resp.get_data(as_text=True))
    # closed: no more decisions
    resp = sup.post(f"/tagaudit/round/{rid}/decide", data={"csrf_token": token, "decision": "confirm",
                                                           "item": [items1["活跃度-活跃"]]}, follow_redirects=True)
    assert "本轮核查已关闭" in text_of(resp.get_data(as_text=True))


def _tag(app, label):
    from app.services.tagging import find_tag

    with app.app_context():
        return find_tag(label).id


def test_staff_cannot_audit(app, make_user):
    c = app.test_client()
    login(c, make_user("sales_staff", "sales"), USER_PASSWORD)
    assert c.get("/tagaudit/").status_code == 403


def test_rules_on_admin_defined_fields(app):
    """Conditions over custom fields (values in Customer.extra): money at least, a choice among
    values, a date older than N days, text contains — the same SQL on SQLite and PostgreSQL."""
    from app.extensions import db
    from app.models import Customer, DictionaryType
    from app.models.custom_field import CustomField
    from app.services.actor import as_system_user
    from app.services.fields import customer_fields, set_custom_values
    from app.services.tag_rules import condition_clause, condition_problems

    tag = uuid.uuid4().hex[:6]
    keys = {t: f"r{tag}_{t}" for t in ("money", "single_choice", "date", "text")}
    with app.app_context(), as_system_user():
        level = db.session.query(DictionaryType).filter_by(key="customer_level").one()
        for t, key in keys.items():
            db.session.add(CustomField(key=key, label_zh=f"规则{t}{tag}", field_type=t, category="business",
                                       dictionary_type_id=level.id if t == "single_choice" else None))
        db.session.commit()
        codes = [i.code for i in level.items][:2]
        specs = {s.key: s for s in customer_fields()}
        old, new = (datetime.now() - timedelta(days=400)).date().isoformat(), datetime.now().date().isoformat()
        values = {"big": ("650000.00", codes[0], old, "华东大区重点"), "small": ("9000.50", codes[1], new, "普通")}
        ids = {}
        for label, (money, choice, day, text) in values.items():
            cid = make_customer(app, prefix=f"自定义规则{label}")
            customer = db.session.get(Customer, cid)
            set_custom_values(customer, {keys["money"]: money, keys["single_choice"]: choice,
                                         keys["date"]: day, keys["text"]: text})
            ids[label] = cid
        db.session.commit()
        assert all(k in specs for k in keys.values())

        def matched(field, op, value):
            assert not condition_problems(field, op, value, None), condition_problems(field, op, value, None)
            clause = condition_clause(field, op, value, None, datetime.now())
            found = set(db.session.scalars(db.select(Customer.id).where(clause, Customer.id.in_(ids.values()))))
            return {label for label, cid in ids.items() if cid in found}

        assert matched(keys["money"], ">=", "500000") == {"big"}
        assert matched(keys["money"], "<", "10000") == {"small"}
        assert matched(keys["single_choice"], "in", codes[1]) == {"small"}
        assert matched(keys["date"], "older_than_days", "180") == {"big"}
        assert matched(keys["text"], "contains", "重点") == {"big"}
