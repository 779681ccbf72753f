"""Search (检索): one box by every kind (Chinese substring, pinyin initials and full pinyin,
contact name, full phone and last four digits, credit code, customer no.), conditions, tags
in/out, "not contacted for N months", row scope and masking of the page and the API, no
probing of masked phones, saved and shared filters, type-ahead look-ups and pickers, and the
archive (历史档案) with its permissions."""
from __future__ import annotations

import random
import re
from datetime import datetime, timedelta
from decimal import Decimal

import pytest

from conftest import USER_PASSWORD, csrf_token, login

def _valid_credit_code(first16: str) -> str:
    """A credit code that passes GB 32100 (and its GB 11714 part), used by no other test: real
    codes are unique in the database, and other tests keep the well-known ones."""
    from app.services.dedupe import validate_credit_code

    alphabet = "0123456789ABCDEFGHJKLMNPQRTUWXY"
    return next(first16 + a + b for a in alphabet for b in alphabet if not validate_credit_code(first16 + a + b))


CREDIT_CODE = _valid_credit_code("9144010057921035")


def _user(app, username):
    from app.extensions import appbuilder

    return appbuilder.sm.find_user(username=username)


@pytest.fixture(scope="module")
def people(app, make_user_module):
    """Two salespeople of the sales department, their supervisor, a service clerk, a service
    supervisor and a salesperson of no department (for sharing)."""
    return {
        "sales": make_user_module("sales_staff", "sales"),
        "sales2": make_user_module("sales_staff", "sales"),
        "boss": make_user_module("sales_supervisor", "sales"),
        "service": make_user_module("service_staff", "service"),
        "service_boss": make_user_module("service_supervisor", "service"),
        "analyst": make_user_module("analytics_staff", "analytics"),
    }


@pytest.fixture(scope="module")
def data(app, people):
    """华星科技 (owned by 'sales', tags 消费能力-高 + 需求-技术支持, contact 欧阳锋 138 1234 5678, not
    contacted for 5 months) and a few others; returns their ids and numbers."""
    from app.extensions import db
    from app.models import Contact, Customer, DictionaryItem
    from app.services import tagging
    from app.services.actor import as_system_user
    from app.services.numbering import next_number

    # letters only: digits in the names would match a phone's last four typed in the box ("5678" in
    # x56786), and none of the letters the pinyin queries below use
    tag = "x" + "".join(random.choice("cdfmpqrstvwz") for _ in range(6))
    with app.app_context(), as_system_user():
        sales, sales2 = _user(app, people["sales"]), _user(app, people["sales2"])
        industry = db.session.query(DictionaryItem).filter_by(type_key="industry").order_by(DictionaryItem.sort).first()
        def add(name, owner, **kw):
            c = Customer(customer_no=next_number("customer"), name=name, owner=owner,
                         department_id=owner.department_id, **kw)
            db.session.add(c)
            db.session.flush()
            return c
        huaxing = add(f"北京华星科技有限公司{tag}", sales, credit_code=CREDIT_CODE, industry=industry,
                      total_amount=Decimal("50000"), last_contact_at=datetime.utcnow() - timedelta(days=150))
        db.session.add(Contact(customer=huaxing, name=f"欧阳锋{tag}", phone="138 1234 5678", is_primary=True))
        other = add(f"上海星辰贸易{tag}", sales2, total_amount=Decimal("100"),
                    last_contact_at=datetime.utcnow() - timedelta(days=3))
        db.session.add(Contact(customer=other, name="黄药师", phone="13900001111"))
        db.session.commit()
        tagging.add_tag(huaxing.id, "消费能力-高", None)
        tagging.add_tag(huaxing.id, "需求-技术支持", None)
        tagging.add_tag(other.id, "消费能力-高", None)
        return {"huaxing": huaxing.id, "huaxing_no": huaxing.customer_no, "other": other.id, "tag": tag,
                "industry": industry.name, "contact": f"欧阳锋{tag}", "huaxing_name": huaxing.name}


def api_search(client, **params):
    resp = client.get("/api/v1/customer/search", query_string=params)
    return resp


def ids(resp) -> set[int]:
    assert resp.status_code == 200, resp.get_data(as_text=True)
    return {row["id"] for row in resp.get_json()["result"]}


@pytest.mark.parametrize("q", ["华星", "华星科技", "hxkj", "HXKJ", "xkj", "jyxg", "huaxing", "huaxingkeji", "bjhx",
                               "5678", "13812345678", "+86 138-1234-5678", CREDIT_CODE.lower()])
def test_one_box_finds_the_customer_by_every_kind(admin_client, data, q):
    found = ids(api_search(admin_client, q=q))
    assert data["huaxing"] in found
    assert data["other"] not in found


def test_one_box_by_contact_name_and_customer_no(admin_client, data):
    assert ids(api_search(admin_client, q=data["contact"])) == {data["huaxing"]}
    assert ids(api_search(admin_client, q=data["huaxing_no"])) == {data["huaxing"]}
    assert data["other"] in ids(api_search(admin_client, q=f"星辰贸易{data['tag']}"))


def test_phone_digits_are_not_matched_piecewise(admin_client, data):
    """Three or five digits of a phone find nothing: only the full number or the last four."""
    assert data["huaxing"] not in ids(api_search(admin_client, q="1234"))
    assert data["huaxing"] not in ids(api_search(admin_client, q="45678"))


def test_combined_conditions_tags_and_idle_months(admin_client, data):
    base = {"q": data["tag"] and f"华星科技有限公司{data['tag']}"}
    assert ids(api_search(admin_client, c=[f"industry:eq:{data['industry']}", "total_amount:gte:10000"],
                          tag=["消费能力-高", "需求-技术支持"], idle=3, q=data["tag"])) == {data["huaxing"]}
    rows = api_search(admin_client, c=[f"industry:eq:{data['industry']}"], q=data["tag"]).get_json()["result"]
    assert rows and {r["industry"] for r in rows} == {data["industry"]}, "each row shows its industry's name"
    assert data["huaxing"] in ids(api_search(admin_client, **base, tag="消费能力-高"))
    assert ids(api_search(admin_client, **base, notag="消费能力-高")) == set()
    assert ids(api_search(admin_client, **base, idle=6)) == set()
    assert ids(api_search(admin_client, **base, c="total_amount:lte:100")) == set()
    both = ids(api_search(admin_client, tag="消费能力-高", q=data["tag"]))
    assert both == {data["huaxing"], data["other"]}
    assert ids(api_search(admin_client, tag="消费能力-高", notag="需求-技术支持", q=data["tag"])) == {data["other"]}


def test_bad_conditions_say_what_and_where(admin_client, data):  # noqa: ARG001
    resp = api_search(admin_client, c=["total_amount:gte:很多", "nosuch:eq:1", "industry:eq:不存在的行业"], idle="x")
    assert resp.status_code == 400
    assert resp.get_json()["message"] == ["未联系月数：请填写 1 到 600 之间的整数。"]
    resp = api_search(admin_client, c=["total_amount:gte:很多", "nosuch:eq:1", "industry:eq:不存在的行业"])
    messages = " ".join(resp.get_json()["message"])
    assert resp.status_code == 400 and "很多" in messages and "nosuch" in messages and "不存在的行业" in messages
    assert "条件 1" in messages
    # a tag that does not exist, and one not written 维度-值: each named, nothing else searched
    resp = api_search(admin_client, tag=["区域-火星", "没有分隔"], notag="需求-不存在")
    messages = " ".join(resp.get_json()["message"])
    assert resp.status_code == 400
    assert "区域-火星" in messages and "没有分隔" in messages and "需求-不存在" in messages


def test_a_result_row_shows_the_customers_values(app, admin_client, people, data):
    """A search row (read as plain rows: customers, contacts, owners, tags) carries what the
    customer's page shows: number, name, dictionary names, owner, the primary contact masked,
    amount, last contact, tags."""
    with app.app_context():
        owner = repr(_user(app, people["sales"]))
    row = next(r for r in api_search(admin_client, q=data["tag"]).get_json()["result"] if r["id"] == data["huaxing"])
    assert (row["customer_no"], row["name"], row["industry"]) == (data["huaxing_no"], data["huaxing_name"], data["industry"])
    assert row["owner"] == owner and owner
    assert row["contact"] == data["contact"] and "*" in row["phone"] and "1234" not in row["phone"]
    assert row["total_amount"] == "50,000.00"
    assert row["last_contact_at"].startswith((datetime.utcnow() - timedelta(days=150)).strftime("%Y-%m-"))
    assert set(row["tags"]) == {"消费能力-高", "需求-技术支持"}


def test_search_is_row_scoped_and_masked(client, app, people, data):
    login(client, people["sales"], USER_PASSWORD)
    found = api_search(client, q=data["tag"])
    assert ids(found) == {data["huaxing"]}  # the other salesperson's customer is not in scope
    row = found.get_json()["result"][0]
    assert row["phone"] == "138 **** 5678" or row["phone"].count("*") == 4, row
    assert "1234" not in row["phone"]
    page = client.get("/customersearch/", query_string={"q": "5678"}).get_data(as_text=True)
    assert data["huaxing_name"] in page and "1234 5678" not in page


def test_hidden_fields_stay_hidden_in_search(client, people, data):
    login(client, people["service"], USER_PASSWORD)
    resp = api_search(client, q=data["tag"])
    assert ids(resp) == {data["huaxing"], data["other"]}  # service staff see all customers
    body = resp.get_json()
    assert "total_amount" not in body["columns"] and all("total_amount" not in r for r in body["result"])
    refused = api_search(client, c="total_amount:gte:1")
    assert refused.status_code == 400
    info = client.get("/api/v1/customer/_info").get_json()
    assert "total_amount" not in str(info) and "annual_revenue" not in str(info)


def test_masked_users_cannot_probe_phone_digits(client, people, data):  # noqa: ARG001
    login(client, people["service"], USER_PASSWORD)
    assert client.get("/contactmodelview/list/?_flt_2_phone=1234").status_code == 403  # contains
    assert client.get("/contactmodelview/list/?_flt_0_phone=138").status_code == 403  # starts with
    assert client.get("/contactmodelview/list/?_flt_3_phone=13812345678").status_code == 200  # equals
    assert client.get("/contactmodelview/list/?_flt_1_phone=5678").status_code == 200  # last four
    assert client.get("/contactmodelview/list/?_flt_1_phone=45678").status_code == 403
    bad = client.get("/api/v1/contact/?q=(filters:!((col:phone,opr:ct,value:'1234')))")
    assert bad.status_code == 400
    good = client.get("/api/v1/contact/?q=(filters:!((col:phone,opr:ew,value:'5678')))")
    assert good.status_code == 200
    info = client.get("/api/v1/contact/_info").get_json()
    assert {o["operator"] for o in info["filters"]["phone"]} <= {"eq", "ew"}


def test_saved_filters_are_per_user_and_shared_with_the_department(app, people, data, client):
    from app.extensions import db
    from app.models import SavedFilter

    login(client, people["sales"], USER_PASSWORD)
    page = client.get("/customersearch/", query_string={"q": "华星", "tag": "消费能力-高"}).get_data(as_text=True)
    for name, shared in ((f"私人{data['tag']}", ""), (f"共享{data['tag']}", "y")):
        resp = client.post("/customersearch/save", data={"csrf_token": csrf_token(page), "name": name,
                                                         "q": "华星", "tag": "消费能力-高", "shared": shared})
        assert resp.status_code == 302
    mine = client.get("/customersearch/").get_data(as_text=True)
    assert f"私人{data['tag']}" in mine and f"共享{data['tag']}" in mine
    applied = re.search(r'href="([^"]+)">共享' + data["tag"], mine).group(1).replace("&amp;", "&")
    assert data["huaxing_name"] in client.get(applied).get_data(as_text=True)  # one click applies it
    client.get("/logout/")
    login(client, people["sales2"], USER_PASSWORD)  # same department: sees the shared one only
    theirs = client.get("/customersearch/").get_data(as_text=True)
    assert f"共享{data['tag']}" in theirs and f"私人{data['tag']}" not in theirs
    with app.app_context():
        shared_id = db.session.query(SavedFilter).filter_by(name=f"共享{data['tag']}").one().id
    form_page = client.get("/customersearch/", query_string={"q": "华星"}).get_data(as_text=True)
    resp = client.post(f"/customersearch/delete/{shared_id}", data={"csrf_token": csrf_token(form_page)},
                       follow_redirects=True)
    assert "只有创建人可以删除已保存的筛选。" in resp.get_data(as_text=True)
    with app.app_context():
        assert db.session.get(SavedFilter, shared_id) is not None  # only the owner deletes
    client.get("/logout/")
    login(client, people["service"], USER_PASSWORD)  # another department sees neither
    assert f"共享{data['tag']}" not in client.get("/customersearch/").get_data(as_text=True)


def test_saving_an_empty_or_nameless_filter_is_refused(app, client, people):
    from app.extensions import appbuilder, db
    from app.models import SavedFilter

    login(client, people["sales"], USER_PASSWORD)
    page = client.get("/customersearch/", query_string={"q": "x"}).get_data(as_text=True)
    resp = client.post("/customersearch/save", data={"csrf_token": csrf_token(page), "name": ""},
                       follow_redirects=True)
    text = resp.get_data(as_text=True)
    assert "筛选名称：请填写 1 到 100 个字符。" in text
    assert "没有可保存的内容：检索条件为空。" in text
    with app.app_context():
        owner = appbuilder.sm.find_user(username=people["sales"])
        assert db.session.query(SavedFilter).filter_by(owner_id=owner.id, name="").count() == 0


def test_lookup_is_scoped_limited_and_skips_archived(client, app, people, data):
    login(client, people["sales"], USER_PASSWORD)
    result = client.get("/api/v1/lookup/customer", query_string={"q": data["tag"]}).get_json()["result"]
    assert [r["id"] for r in result] == [data["huaxing"]]
    assert result[0]["customer_no"] == data["huaxing_no"] and result[0]["name"] == data["huaxing_name"]
    assert len(client.get("/api/v1/lookup/customer").get_json()["result"]) <= 20
    users = client.get("/api/v1/lookup/user", query_string={"q": people["sales2"]}).get_json()["result"]
    assert [u["username"] for u in users] == [people["sales2"]]
    assert client.get("/api/v1/lookup/nothing").status_code == 404


def test_forms_use_type_ahead_pickers_not_whole_tables(admin_client, app, data):
    from app.extensions import db
    from app.models import Customer

    with app.app_context():
        total = db.session.query(Customer).count()
        some_names = [c.name for c in db.session.query(Customer).limit(30)]
    assert total >= 2
    for url in ("/contactmodelview/add", "/interactionmodelview/add", "/customermodelview/add",
                f"/customertagmodelview/add", "/attachmentmodelview/add"):
        html = admin_client.get(url).get_data(as_text=True)
        assert 'class="form-control crm-lookup"' in html or "crm-lookup" in html, url
        assert sum(name in html for name in some_names) == 0, url
    listing = admin_client.get("/customermodelview/list/").get_data(as_text=True)
    from app.extensions import appbuilder

    with app.app_context():  # the owner filter is typed, not every user (a handful here: count no options)
        users = {str(u).strip() for u in db.session.query(appbuilder.sm.user_model)} - {""}
    options = {" ".join(o.split()) for o in re.findall(r"<option[^>]*>([^<]*)</option>", listing)}
    assert users and not options & users, options & users


def test_picker_refuses_a_customer_outside_the_scope(app, client, people, data):
    login(client, people["sales2"], USER_PASSWORD)
    page = client.get("/contactmodelview/add").get_data(as_text=True)
    resp = client.post("/contactmodelview/add", data={"csrf_token": csrf_token(page), "customer": data["huaxing"],
                                                      "name": "越权联系人", "phone": "13700001111"})
    text = resp.get_data(as_text=True)
    assert resp.status_code == 200 and "请在输入时从列表中选择" in text  # the form again, with the message
    with app.app_context():
        from app.extensions import db
        from app.models import Contact

        assert db.session.query(Contact).filter_by(customer_id=data["huaxing"], name="越权联系人").count() == 0
    client.get("/logout/")


def test_archive_and_restore(app, client, people, data):
    from app.extensions import db
    from app.models import Customer, FieldChange

    login(client, people["sales"], USER_PASSWORD)  # staff may not archive
    page = client.get("/customermodelview/list/").get_data(as_text=True)
    client.post("/customermodelview/action_post", data={"csrf_token": csrf_token(page), "action": "archive",
                                                         "rowid": [data["huaxing"]]})
    with app.app_context():
        assert db.session.get(Customer, data["huaxing"]).archived is False
    assert client.get("/customerarchive/list/").status_code == 403
    client.get("/logout/")

    login(client, people["boss"], USER_PASSWORD)
    page = client.get("/customermodelview/list/").get_data(as_text=True)
    resp = client.post("/customermodelview/action_post", data={"csrf_token": csrf_token(page), "action": "archive",
                                                                "rowid": [data["huaxing"]]})
    assert resp.status_code == 302
    with app.app_context():
        assert db.session.get(Customer, data["huaxing"]).archived is True
        assert db.session.query(FieldChange).filter_by(customer_no=data["huaxing_no"], action="archive").count() >= 1
    assert data["huaxing"] not in ids(api_search(client, q=data["tag"]))
    assert data["huaxing_name"] not in client.get("/customermodelview/list/").get_data(as_text=True)
    assert client.get(f"/api/v1/customer/{data['huaxing']}").status_code == 404
    looked_up = client.get("/api/v1/lookup/customer", query_string={"q": data["tag"]}).get_json()["result"]
    assert data["huaxing"] not in [r["id"] for r in looked_up]
    archive = client.get("/customerarchive/list/").get_data(as_text=True)
    assert data["huaxing_name"] in archive
    client.get("/logout/")

    login(client, people["service_boss"], USER_PASSWORD)  # sees the archive, may not restore
    archive = client.get("/customerarchive/list/").get_data(as_text=True)
    assert data["huaxing_name"] in archive
    client.post("/customerarchive/action_post", data={"csrf_token": csrf_token(archive), "action": "restore",
                                                       "rowid": [data["huaxing"]]})
    with app.app_context():
        assert db.session.get(Customer, data["huaxing"]).archived is True
    client.get("/logout/")

    login(client, people["boss"], USER_PASSWORD)
    archive = client.get("/customerarchive/list/").get_data(as_text=True)
    client.post("/customerarchive/action_post", data={"csrf_token": csrf_token(archive), "action": "restore",
                                                       "rowid": [data["huaxing"]]})
    with app.app_context():
        assert db.session.get(Customer, data["huaxing"]).archived is False  # nothing was deleted
    assert data["huaxing"] in ids(api_search(client, q=data["tag"]))
