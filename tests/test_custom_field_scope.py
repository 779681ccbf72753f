"""Admin-defined fields (字段配置), finished: column scope (a custom field of 业务信息 is hidden from
客服部 like the built-in amounts, everywhere; a role may hide single custom fields from 数据范围),
sorting by custom list columns (numbers numerically, dates chronologically, choices by name, on
the list and in the API) and custom fields as 客户检索 conditions (operators fitting the type,
saved filters keep them)."""
from __future__ import annotations

import re
import uuid

from conftest import USER_PASSWORD, csrf_token, login
from test_custom_fields import CUSTOMERS, add_field, api, post_customer  # noqa: F401 (fixture)


def as_user(client, username: str):
    client.get("/logout/")
    resp = login(client, username, USER_PASSWORD)
    assert resp.status_code == 302 and "/login" not in resp.headers["Location"]
    return client


def token(client) -> str:
    return csrf_token(client.get("/customersearch/?q=x").get_data(as_text=True))


def call(client, method: str, url: str, body=None):
    return client.open(url, method=method, json=body, headers={"X-CSRFToken": token(client)})


def names_in_order(html: str, prefix: str) -> list[str]:
    """The suffixes of the customer names shown in table cells, top to bottom."""
    return list(dict.fromkeys(re.findall(rf">\s*{re.escape(prefix)}(\S)\s*<", html)))


def test_business_custom_field_is_hidden_from_service_staff_and_shown_to_sales(
        app, admin_client, add_field, make_user, client):  # noqa: F811
    tag = uuid.uuid4().hex[:6]
    amount = add_field("money", label_zh=f"合同额{tag}", category="business", in_list=True, searchable=True)
    note = add_field("text", label_zh=f"服务备注{tag}", category="basic", in_list=True, searchable=True)
    sales = make_user("sales_staff", "sales")
    service = make_user("service_staff", "service")
    supervisor = make_user("service_supervisor", "service")
    name = f"列权限{tag}"

    as_user(client, sales)  # sales enters the customer with both values and sees both
    resp = call(client, "POST", "/api/v1/customer/", {"name": name, "extra": {amount: "1200.50", note: "夜间来电"}})
    assert resp.status_code == 201, resp.get_data(as_text=True)
    cid = resp.get_json()["id"]
    assert call(client, "PUT", f"/api/v1/customer/{cid}", {"extra": {amount: "1300.00"}}).status_code == 200
    listing = client.get(f"{CUSTOMERS}/list/?_flt_2_name={name}").get_data(as_text=True)
    assert f"合同额{tag}" in listing and f"{CUSTOMERS}/show/{cid}" in listing
    assert "1,300.00" in client.get(f"{CUSTOMERS}/show/{cid}").get_data(as_text=True)
    assert call(client, "GET", f"/api/v1/customer/{cid}").get_json()["result"]["extra"][amount] == "1300.00"
    found = client.get("/api/v1/customer/search", query_string={"c": f"{amount}:gte:1000", "q": name}).get_json()
    assert found["ids"] == [cid]
    assert f"合同额{tag}" in client.get("/customersearch/").get_data(as_text=True)

    as_user(client, service)  # 客服部: the business field is nowhere, the basic one everywhere
    listing = client.get(f"{CUSTOMERS}/list/?_flt_2_name={name}").get_data(as_text=True)
    assert f"{CUSTOMERS}/show/{cid}" in listing  # the row itself (its name is echoed in the filter box)
    assert f"服务备注{tag}" in listing and f"合同额{tag}" not in listing
    page = client.get(f"{CUSTOMERS}/show/{cid}").get_data(as_text=True)
    assert "夜间来电" in page and f"合同额{tag}" not in page and "1,300.00" not in page
    one = call(client, "GET", f"/api/v1/customer/{cid}").get_json()["result"]["extra"]
    assert one == {**{k: v for k, v in one.items() if k != note}, note: "夜间来电"} and amount not in one
    q = f"(filters:!((col:name,opr:eq,value:'{name}')))"
    listed = call(client, "GET", f"/api/v1/customer/?q={q}").get_json()["result"]
    assert amount not in listed[0]["extra"] and listed[0]["extra"][note] == "夜间来电"
    info = call(client, "GET", "/api/v1/customer/_info").get_json()
    assert amount not in (info.get("filters") or {}) and note in (info.get("filters") or {})
    refused = call(client, "GET", f"/api/v1/customer/?q=(filters:!((col:{amount},opr:custom_gt,value:1)))")
    assert refused.status_code == 400
    assert call(client, "GET", f"/api/v1/customer/?q=(order_column:{amount},order_direction:asc)").status_code == 400
    assert client.get(f"{CUSTOMERS}/list/?_flt_0_{amount}=1").status_code == 403
    assert client.get(f"{CUSTOMERS}/list/?_oc_CustomerModelView={amount}&_od_CustomerModelView=asc").status_code == 403
    search_page = client.get("/customersearch/").get_data(as_text=True)
    assert f"服务备注{tag}" in search_page and f"合同额{tag}" not in search_page
    resp = client.get("/api/v1/customer/search", query_string={"c": f"{amount}:gte:1000", "q": name})
    assert resp.status_code == 400 and amount in resp.get_data(as_text=True)
    no = call(client, "GET", f"/api/v1/customer/{cid}").get_json()["result"]["customer_no"]
    history = call(client, "GET", f"/api/v1/customer_history/?q=(filters:!((col:customer_no,opr:eq,value:'{no}')),page_size:100)")
    fields = {r["field"] for r in history.get_json()["result"]}
    assert note in fields and amount not in fields  # the amount's changes are not shown either

    as_user(client, supervisor)  # 客服部主管 exports: the column is not in the file
    resp = client.post(f"{CUSTOMERS}/export/csv?_flt_2_name={name}", data={"csrf_token": token(client)})
    head = resp.get_data().decode("utf-8-sig").splitlines()[0]
    assert resp.status_code == 200 and f"服务备注{tag}" in head and f"合同额{tag}" not in head


def test_a_role_that_hides_a_field_cannot_edit_put_or_import_it(app, admin_client, add_field, client, tmp_path):  # noqa: F811
    """An admin hides one custom field from a role in 数据范围 (the form offers it by name); that
    role's edit form leaves it out and keeps its value, a PUT of it is refused, an import column
    for it is refused naming the column."""
    from app.extensions import appbuilder, db
    from app.models import RolePolicy, SeedRecord

    tag = uuid.uuid4().hex[:6]
    secret = add_field("number", label_zh=f"底价{tag}", category="basic", in_list=True)
    with app.app_context():  # a role with the permissions of 销售部普通员工 and no policy yet
        sm = appbuilder.sm
        base = db.session.get(sm.role_model, db.session.query(SeedRecord).filter_by(kind="role", key="sales_staff").one().record_id)
        role = sm.add_role(f"测试隐藏{tag}")
        role.permissions = list(base.permissions)
        db.session.commit()
        role_id = role.id
    form = admin_client.get("/rolepolicymodelview/add").get_data(as_text=True)
    assert f'value="{secret}"' in form and 'value="category:business"' in form  # offered by name
    resp = admin_client.post("/rolepolicymodelview/add", data={
        "csrf_token": csrf_token(form), "role": str(role_id), "scope": "all", "work_scope": "own",
        "ticket_scope": "own", "hide_fields": [secret, "total_amount"]})
    assert resp.status_code == 302
    listing = admin_client.get("/rolepolicymodelview/list/").get_data(as_text=True)
    assert f"底价{tag}" in listing  # shown by its label
    with app.app_context():
        assert db.session.query(RolePolicy).filter_by(role_id=role_id).one().hidden == {secret, "total_amount"}
        username = f"hide{tag}"
        assert sm.add_user(username, "测试", "隐藏", f"{username}@test.invalid", db.session.get(sm.role_model, role_id),
                           password=USER_PASSWORD)

    name = f"隐藏编辑{tag}"
    resp = call(admin_client, "POST", "/api/v1/customer/", {"name": name, "extra": {secret: "88"}})
    assert resp.status_code == 201
    cid = resp.get_json()["id"]

    as_user(client, username)
    edit = client.get(f"{CUSTOMERS}/edit/{cid}").get_data(as_text=True)
    assert f'name="{secret}"' not in edit and f"底价{tag}" not in edit
    assert post_customer(client, {"name": name, "remark": "改过"}, pk=cid).status_code == 302
    resp = call(client, "PUT", f"/api/v1/customer/{cid}", {"extra": {secret: "1"}})
    assert resp.status_code == 422 and secret in resp.get_json()["message"]["extra"]
    with app.app_context():
        from app.models import Customer

        item = db.session.get(Customer, cid)
        assert item.remark == "改过" and item.extra[secret] == "88"  # kept through the edit and the refused PUT

    template = client.get("/import/template.xlsx")
    assert template.status_code == 200
    import io

    import openpyxl

    cells = {str(c.value) for row in openpyxl.load_workbook(io.BytesIO(template.data)).worksheets[0].iter_rows() for c in row}
    assert any("客户名称" in c for c in cells) and not any(f"底价{tag}" in c for c in cells)  # not offered
    path = tmp_path / "hidden.csv"
    path.write_text(f"客户名称,底价{tag}\n导入{tag},5\n", encoding="utf-8")
    with open(path, "rb") as fh:
        resp = client.post("/api/v1/import/customers", data={"file": (fh, "hidden.csv")},
                           headers={"X-CSRFToken": token(client)}, content_type="multipart/form-data")
    report = resp.get_json()
    assert report["rows_created"] == 0 and any(e["code"] == "hidden_column" and f"底价{tag}" in e["message"]
                                               for e in report["errors"]), report


def test_custom_list_columns_sort_by_value_on_the_list_and_in_the_api(app, admin_client, add_field):  # noqa: F811
    tag = uuid.uuid4().hex[:6]
    number = add_field("number", label_zh=f"排序数{tag}", in_list=True)
    day = add_field("date", label_zh=f"排序日{tag}", in_list=True)
    choice = add_field("single_choice", label_zh=f"排序选{tag}", in_list=True, dictionary="customer_source")
    rows = {"甲": ("9", "2024-12-01", "referral"), "乙": ("10", "2024-02-03", "online"),
            "丙": ("100", "2023-11-30", "exhibition"), "丁": (None, None, None)}
    for suffix, (n, d, c) in rows.items():
        extra = {k: v for k, v in ((number, n), (day, d), (choice, c)) if v}
        assert call(admin_client, "POST", "/api/v1/customer/", {"name": f"排序{tag}{suffix}", "extra": extra}).status_code == 201
    prefix = f"排序{tag}"

    def ui(column: str, direction: str) -> list[str]:
        html = admin_client.get(f"{CUSTOMERS}/list/?_flt_2_name={prefix}&_oc_CustomerModelView={column}"
                                f"&_od_CustomerModelView={direction}").get_data(as_text=True)
        assert f"_oc_CustomerModelView={column}" in html  # the header is a sort link
        return names_in_order(html, prefix)

    def by_api(column: str, direction: str) -> list[str]:
        q = f"(filters:!((col:name,opr:ct,value:'{prefix}')),order_column:{column},order_direction:{direction})"
        resp = call(admin_client, "GET", f"/api/v1/customer/?q={q}")
        assert resp.status_code == 200, resp.get_data(as_text=True)
        return [r["name"][len(prefix):] for r in resp.get_json()["result"]]

    assert ui(number, "asc") == by_api(number, "asc") == ["甲", "乙", "丙", "丁"]  # 9 < 10 < 100, empty last
    assert ui(number, "desc") == by_api(number, "desc") == ["丙", "乙", "甲", "丁"]
    assert ui(day, "asc") == by_api(day, "asc") == ["丙", "乙", "甲", "丁"]
    with app.app_context():
        from app.extensions import db
        from app.models import DictionaryItem

        names = {i.code: i.name for i in db.session.query(DictionaryItem).filter_by(type_key="customer_source")}
    expected = [s for s, _ in sorted(((s, names[c]) for s, (_, _, c) in rows.items() if c), key=lambda p: p[1])]
    assert by_api(choice, "asc") == expected + ["丁"]  # by the item's name, not its code
    assert call(admin_client, "GET", f"/api/v1/customer/?q=(order_column:nope{tag})").status_code == 400


def test_searchable_custom_fields_are_search_conditions_with_fitting_operators(
        app, admin_client, add_field, make_user, client):  # noqa: F811
    tag = uuid.uuid4().hex[:6]
    text = add_field("text", label_zh=f"检索文{tag}", searchable=True)
    money = add_field("money", label_zh=f"检索额{tag}", searchable=True)
    day = add_field("date", label_zh=f"检索日{tag}", searchable=True)
    choice = add_field("single_choice", label_zh=f"检索选{tag}", searchable=True, dictionary="customer_source")
    many = add_field("multi_choice", label_zh=f"检索多{tag}", searchable=True, dictionary="customer_source")
    quiet = add_field("text", label_zh=f"不检索{tag}")
    data = {"甲": ("华东大区", "9.50", "2024-01-15", "online", ["online", "visit"]),
            "乙": ("华北大区", "120.00", "2024-06-01", "referral", ["referral"]),
            "丙": ("西南", "1000.00", "2025-01-01", "visit", None)}
    sales = make_user("sales_staff", "sales")
    as_user(client, sales)
    for suffix, (t, m, d, c, ms) in data.items():
        extra = {k: v for k, v in ((text, t), (money, m), (day, d), (choice, c), (many, ms), (quiet, "x")) if v}
        assert call(client, "POST", "/api/v1/customer/", {"name": f"条件{tag}{suffix}", "extra": extra}).status_code == 201

    def found(*conditions: str) -> set[str]:
        resp = client.get("/api/v1/customer/search", query_string={"q": f"条件{tag}", "c": list(conditions)})
        assert resp.status_code == 200, resp.get_data(as_text=True)
        return {r["name"][-1] for r in resp.get_json()["result"]}

    assert found(f"{text}:contains:大区") == {"甲", "乙"}
    assert found(f"{text}:eq:西南") == {"丙"} and found(f"{text}:ne:西南") == {"甲", "乙"}
    assert found(f"{money}:gte:10") == {"乙", "丙"} and found(f"{money}:lte:120") == {"甲", "乙"}  # numeric: 9.5 < 10
    assert found(f"{day}:gte:2024-02-01", f"{day}:lte:2024-12-31") == {"乙"}
    assert found(f"{choice}:eq:online") == {"甲"}
    names = {}
    with app.app_context():
        from app.extensions import db
        from app.models import DictionaryItem

        names = {i.code: i.name for i in db.session.query(DictionaryItem).filter_by(type_key="customer_source")}
    assert found(f"{choice}:in:{names['online']},{names['visit']}") == {"甲", "丙"}  # by name, comma separated
    assert found(f"{many}:eq:visit") == {"甲"} and found(f"{many}:in:visit,referral") == {"甲", "乙"}
    assert found(f"{many}:ne:online") == {"乙", "丙"}
    with app.app_context():  # built-in dictionary fields take 属于 (is one of) as well
        from app.models import Customer

        industries = db.session.query(DictionaryItem).filter_by(type_key="industry").order_by(DictionaryItem.id).limit(2).all()
        wanted = {c.id for c in db.session.query(Customer).filter(Customer.industry_id.in_([i.id for i in industries]),
                                                                  Customer.archived.is_(False)).limit(500)}
    resp = client.get("/api/v1/customer/search", query_string={
        "c": f"industry:in:{industries[0].name},{industries[1].code}", "page_size": 200})
    assert resp.status_code == 200 and set(resp.get_json()["ids"]) <= wanted

    for condition, says in ((f"{money}:gte:很多", f"条件 1 (检索额{tag})：“很多”不是数字"), (f"{text}:gte:1", "包含"), (f"{day}:eq:2024-13-01", "2024-13-01"),
                            (f"{choice}:contains:on", "等于"), (f"{quiet}:eq:x", quiet)):
        resp = client.get("/api/v1/customer/search", query_string={"c": condition})
        assert resp.status_code == 400 and says in resp.get_data(as_text=True), (condition, resp.get_data(as_text=True))

    page = client.get("/customersearch/").get_data(as_text=True)
    assert re.search(rf'value="{money}" data-ops="eq,ne,gte,lte"', page)
    assert re.search(rf'value="{choice}" data-ops="eq,ne,in"', page)
    assert re.search(rf'value="{text}" data-ops="eq,ne,contains"', page) and f"不检索{tag}" not in page
    # the search page's condition rows, then saved: the saved filter keeps the custom conditions
    shown = client.get("/customersearch/", query_string={"cf": [money, choice], "co": ["gte", "in"],
                                                         "cv": ["10", "online,referral"], "q": f"条件{tag}"})
    html = shown.get_data(as_text=True)
    assert f"条件{tag}乙" in html and f"条件{tag}甲" not in html and f"条件{tag}丙" not in html
    resp = client.post("/customersearch/save", data={"csrf_token": csrf_token(html), "name": f"自定义{tag}",
                                                     "q": f"条件{tag}", "c": [f"{money}:gte:10", f"{choice}:in:online,referral"]})
    assert resp.status_code == 302
    mine = client.get("/customersearch/").get_data(as_text=True)
    applied = re.search(r'href="([^"]+)">自定义' + tag, mine).group(1).replace("&amp;", "&")
    again = client.get(applied).get_data(as_text=True)
    assert f"条件{tag}乙" in again and f"条件{tag}甲" not in again and f"条件{tag}丙" not in again


def test_export_filters_and_sorts_by_custom_columns_like_the_list(app, admin_client, add_field):  # noqa: F811
    tag = uuid.uuid4().hex[:6]
    number = add_field("number", label_zh=f"导出数{tag}", in_list=True, searchable=True)
    for suffix, value in (("甲", "9"), ("乙", "100"), ("丙", "10"), ("丁", "5")):
        assert call(admin_client, "POST", "/api/v1/customer/", {"name": f"导出排序{tag}{suffix}", "extra": {number: value}}).status_code == 201
    resp = admin_client.post(f"{CUSTOMERS}/export/csv?_flt_2_name=导出排序{tag}&_flt_1_{number}=6"
                             f"&_oc_CustomerModelView={number}&_od_CustomerModelView=desc", data={"csrf_token": token(admin_client)})
    assert resp.status_code == 200, resp.get_data(as_text=True)[:500]
    lines = resp.get_data().decode("utf-8-sig").splitlines()
    assert f"导出数{tag}" in lines[0]
    assert [line.split(",")[1][-1] for line in lines[1:]] == ["乙", "丙", "甲"]  # > 6, numerically descending
