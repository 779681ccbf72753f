"""Lists and search on big tables (issue 3, point 12): a list page issues the same number of SQL
statements whatever its size (relations loaded with the page, not row by row), and lists and
search count only up to a cap (CRM_COUNT_CAP), then say "N+" while paging on past it."""
from __future__ import annotations

import re
import uuid
from contextlib import contextmanager

import pytest
from sqlalchemy import event

from conftest import USER_PASSWORD, login


@pytest.fixture(scope="module")
def owned(app, make_user_module):
    """A salesperson owning 30 customers, each with a contact and two tags; returns
    (username, tag word in their names)."""
    from app.extensions import appbuilder, db
    from app.models import Contact, Customer
    from app.services import tagging
    from app.services.actor import as_system_user
    from app.services.numbering import next_number

    word = "x" + uuid.uuid4().hex[:6]
    username = make_user_module("sales_staff", "sales")
    with app.app_context():
        user = appbuilder.sm.find_user(username=username)
        with as_system_user():
            ids = []
            for i in range(30):
                c = Customer(customer_no=next_number("customer"), name=f"规模测试{word}{i:02d}号公司",
                             owner_id=user.id, department_id=user.department_id)
                db.session.add(c)
                db.session.flush()
                db.session.add(Contact(customer=c, name=f"联系人{i}", phone=f"139{i:04d}{i:04d}"))
                ids.append(c.id)
            db.session.commit()
            for cid in ids:
                tagging.add_tag(cid, "消费能力-高", None)
                tagging.add_tag(cid, "区域-华东", None)
    return username, word


@contextmanager
def statements(app):
    from app.extensions import db

    seen: list[str] = []
    with app.app_context():
        engine = db.engine

    def count(conn, cursor, statement, *args):  # noqa: ARG001
        seen.append(statement)

    event.listen(engine, "before_cursor_execute", count)
    try:
        yield seen
    finally:
        event.remove(engine, "before_cursor_execute", count)


@contextmanager
def count_cap(app, cap: int):
    old = app.config["CRM_COUNT_CAP"]
    app.config["CRM_COUNT_CAP"] = cap
    try:
        yield
    finally:
        app.config["CRM_COUNT_CAP"] = old


def _list(client, size: int, **args):
    resp = client.get("/customermodelview/list/", query_string={"psize_CustomerModelView": size, **args})
    assert resp.status_code == 200
    return resp.get_data(as_text=True)


def test_a_list_page_costs_the_same_statements_at_5_and_30_rows(app, client, owned):
    username, word = owned
    assert login(client, username, USER_PASSWORD).status_code == 302
    _list(client, 5)  # first visit of the session: menus, permissions
    with statements(app) as small:
        page = _list(client, 5)
    with statements(app) as big:
        page30 = _list(client, 30)
    assert page.count(word) == 5 and page30.count(word) == 30
    assert "消费能力-高" in page30 and "区域-华东" in page30  # tag badges, loaded with the page
    assert len(big) == len(small), "\n".join(big)
    with statements(app) as sorted_page:
        _list(client, 30, _oc_CustomerModelView="last_contact_at", _od_CustomerModelView="desc")
    assert len(sorted_page) == len(small)


def test_list_count_stops_at_the_cap_and_pages_on(app, client, owned):
    username, word = owned
    login(client, username, USER_PASSWORD)
    assert re.search(r"</strong>\s*30\s", _list(client, 10)), "below the cap the count is exact"
    with count_cap(app, 12):
        first = _list(client, 10)
        assert re.search(r"</strong>\s*12\+", first), "the capped count reads 12+"
        third = _list(client, 10, page_CustomerModelView=2)  # past the cap: the count reaches past the page
        assert re.search(r"</strong>\s*30\s", third), "on the last page the count is exact again"
        assert third.count(word) == 10


def test_search_count_is_capped_in_page_and_api(app, client, owned):
    username, word = owned
    login(client, username, USER_PASSWORD)
    exact = client.get("/api/v1/customer/search", query_string={"q": word}).get_json()
    assert exact["count"] == 30 and exact["count_capped"] is False
    with count_cap(app, 12):
        capped = client.get("/api/v1/customer/search", query_string={"q": word}).get_json()
        assert capped["count"] == 12 and capped["count_capped"] is True and len(capped["result"]) == 30
        page = client.get("/customersearch/", query_string={"q": word, "page_size": 50}).get_data(as_text=True)
        count_line = re.search(r'<p id="crm-search-count"([^>]*)>([^<]*)</p>', page)
        assert count_line and "data-count-url" not in count_line.group(1), "a page with every match on it counts them all"
        assert count_line.group(2).strip() == "找到 30 个客户", count_line.group(2)
        line = client.get("/customersearch/count", query_string={"q": word}).get_json()  # what the page asks apart
        assert line["count"] == 12 and line["count_capped"] is True and "12+" in line["text"]
        assert "narrow the search" in line["text"] or "缩小" in line["text"]
        tags = client.get("/api/v1/customer/search", query_string={"q": word, "tag": ["消费能力-高", "区域-华东"],
                                                                  "page_size": 10, "page": 2}).get_json()
        assert tags["count"] == 30 and tags["count_capped"] is False and len(tags["result"]) == 10


def _filter_choices(page: str, column: str) -> str:
    """The HTML of one filter's input in the list's search form (FAB passes it as JSON)."""
    import json

    fields = re.search(r"new AdminFilters\(\s*'#filter_form',\s*(\{.*?\}),\s*(\{.*?\}),\s*\{", page, re.S)
    assert fields, "no filter form on the list page"
    return json.loads(fields.group(2))[column]


def test_filter_choices_follow_dictionary_and_tag_changes_at_once(app, admin_client):
    """The filter form is rendered once and reused, but a dictionary item or tag written
    elsewhere (another process, a job: here straight through the ORM) is offered on the next page,
    renamed ones under their new name, and English labels in English."""
    from app.extensions import db
    from app.models import DictionaryItem, DictionaryType, Tag, TagDimension

    word = uuid.uuid4().hex[:6]
    assert f"行业{word}" not in _filter_choices(_list(admin_client, 5), "industry")
    with app.app_context():
        industry = db.session.query(DictionaryType).filter_by(key="industry").one()
        dim = db.session.query(TagDimension).first()
        item = DictionaryItem(type=industry, code=f"t{word}", name=f"行业{word}", name_en=f"Trade {word}", sort=999)
        tag = Tag(dimension=dim, name=f"标签{word}", sort=999)
        db.session.add_all([item, tag])
        db.session.commit()
        item_id, tag_id = item.id, tag.id
    page = _list(admin_client, 5)
    assert f"行业{word}" in _filter_choices(page, "industry") and f"标签{word}" in _filter_choices(page, "tags")
    with app.app_context():
        db.session.get(DictionaryItem, item_id).name = f"改名{word}"
        db.session.get(Tag, tag_id).active = False
        db.session.commit()
    page = _list(admin_client, 5)
    assert f"改名{word}" in _filter_choices(page, "industry") and f"行业{word}" not in _filter_choices(page, "industry")
    assert f"标签{word}" not in _filter_choices(page, "tags")
    from app.extensions import appbuilder

    with app.app_context():
        appbuilder.sm.find_user(username="admin").locale = "en"
        db.session.commit()
    try:
        admin_client.get("/lang/en")
        assert f"Trade {word}" in _filter_choices(_list(admin_client, 5), "industry")
    finally:
        admin_client.get("/lang/zh")
        with app.app_context():
            appbuilder.sm.find_user(username="admin").locale = None
            db.session.delete(db.session.get(DictionaryItem, item_id))  # other tests compare the seeded list
            db.session.delete(db.session.get(Tag, tag_id))
            db.session.commit()
    assert f"改名{word}" not in _filter_choices(_list(admin_client, 5), "industry")  # a deleted item goes too


def test_fields_a_role_hides_are_not_offered_as_filters(app, admin_client, make_user):
    assert 'name="total_amount"' in _list(admin_client, 5)  # 累计金额 in the admin's "Add Filter" menu
    client = app.test_client()
    login(client, make_user("service_staff", "service"), USER_PASSWORD)
    page = _list(client, 5)
    assert 'name="total_amount"' not in page and 'name="name"' in page
