"""The customer list and search pages as users see them after the lean rendering (issue 3,
point 12): every row's checkbox and show/edit/delete buttons point at that row's customer and
appear only as the role allows; tag badges follow the order the tags were put on, in the user's
language, and a renamed tag reads anew on the next page; the search page's condition rows keep
what the user chose."""
from __future__ import annotations

import re
import uuid

import pytest
from flask_babel import force_locale

from conftest import USER_PASSWORD, login

LIST = "/customermodelview/list/"


@pytest.fixture(scope="module")
def customers(app, make_user_module):
    """Two salespeople with three customers each; each customer tagged 消费能力-高 then 区域-华东."""
    from app.extensions import appbuilder, db
    from app.models import Customer
    from app.services import tagging
    from app.services.actor import as_system_user
    from app.services.numbering import next_number

    word = "lr" + uuid.uuid4().hex[:6]
    owned = {}
    names = [make_user_module("sales_staff", "sales") for _ in range(2)]
    with app.app_context():
        with as_system_user():
            for n, username in enumerate(names):
                user = appbuilder.sm.find_user(username=username)
                ids = []
                for i in range(3):
                    c = Customer(customer_no=next_number("customer"), name=f"渲染测试{word}{n}{i}号公司",
                                 owner_id=user.id, department_id=user.department_id)
                    db.session.add(c)
                    db.session.commit()
                    ids.append(c.id)
                for cid in ids:
                    tagging.add_tag(cid, "消费能力-高", None)
                    tagging.add_tag(cid, "区域-华东", None)
                owned[username] = ids
    return word, owned


def _rows(html: str) -> list[str]:
    body = html.split("</thead>", 1)[1].split("</table>", 1)[0]
    return [r for r in body.split("<tr>")[1:] if "<td" in r]


def _row_of(html: str, name: str) -> str:
    return next(r for r in _rows(html) if name in r)


def _may(app, username: str, permission: str) -> bool:
    from app.extensions import appbuilder

    with app.test_request_context():
        user = appbuilder.sm.find_user(username=username)
        return any(appbuilder.sm.exist_permission_on_roles("CustomerModelView", permission, [r.id])
                   for r in user.roles)


def test_each_row_links_its_own_customer_and_staff_see_only_theirs(app, client, customers):
    word, owned = customers
    (mine, my_ids), (other, other_ids) = owned.items()
    login(client, mine, USER_PASSWORD)
    html = client.get(f"{LIST}?_flt_2_name={word}").get_data(as_text=True)
    rows = _rows(html)
    assert len(rows) == 3, "a salesperson sees their own three customers, not the colleague's"
    for row in rows:
        shown = {int(x) for x in re.findall(r"/customermodelview/(?:show|edit|delete)/(\d+)", row)}
        checkbox = re.findall(r'class="action_check" name="rowid" value="(\d+)"', row)
        assert shown <= set(my_ids) and len(shown) == 1, "every button of a row opens that row's customer"
        assert not shown & set(other_ids)
        assert ("/customermodelview/show/" in row) == _may(app, mine, "can_show")
        assert ("/customermodelview/edit/" in row) == _may(app, mine, "can_edit")
        assert ("fa-trash" in row) == _may(app, mine, "can_delete")
        if checkbox:  # ticked rows go to the actions the role has (archive, merge ...)
            assert {int(checkbox[0])} == shown


def test_admin_rows_have_every_button_with_the_confirm_question(admin_client, customers):
    word, owned = customers
    ids = [i for v in owned.values() for i in v]
    html = admin_client.get(f"{LIST}?_flt_2_name={word}").get_data(as_text=True)
    rows = _rows(html)
    assert len(rows) == 6
    for row in rows:
        pk = re.search(r'class="action_check" name="rowid" value="(\d+)"', row).group(1)
        assert int(pk) in ids
        for kind in ("show", "edit"):
            assert f'href="/customermodelview/{kind}/{pk}"' in row
        assert f"execute_single_delete('/customermodelview/delete/{pk}','确定要删除这条记录吗？')" in row
        assert 'title="显示记录"' in row and 'title="编辑记录"' in row and 'title="删除记录"' in row


def test_tag_badges_in_order_in_the_users_language_and_renamed_at_once(app, client, customers):
    from app.extensions import db
    from app.models import Tag
    from app.services import tagging

    word, owned = customers
    username, ids = next(iter(owned.items()))
    name = f"渲染测试{word}00号公司"
    login(client, username, USER_PASSWORD)

    def badges() -> list[str]:
        html = client.get(f"{LIST}?_flt_2_name={word}").get_data(as_text=True)
        return re.findall(r'<span class="label label-info crm-tag">([^<]*)</span>', _row_of(html, name))

    assert badges() == ["消费能力-高", "区域-华东"], "the order the tags were put on"
    with app.test_request_context():
        tags = [tagging.find_tag("消费能力-高"), tagging.find_tag("区域-华东")]
        with force_locale("en"):
            english = [t.label for t in tags]
    client.get("/lang/en")
    try:
        assert badges() == english
    finally:
        client.get("/lang/zh")
    with app.app_context():
        tag = db.session.get(Tag, tags[1].id)
        old = tag.name
        tag.name = "华东片区"
        db.session.commit()
    try:
        assert badges() == ["消费能力-高", "区域-华东片区"], "a renamed tag reads anew on the next page"
    finally:
        with app.app_context():
            db.session.get(Tag, tags[1].id).name = old
            db.session.commit()


def test_search_page_keeps_the_chosen_conditions(admin_client, customers):
    word, owned = customers
    html = admin_client.get("/customersearch/?" + "&".join([
        f"q={word}", "cf=total_amount", "co=gte", "cv=0", "cf=industry", "co=ne", "cv=制造业"])).get_data(as_text=True)
    selects = re.findall(r'<select name="cf" class="form-control">(.*?)</select>.*?'
                         r'<select name="co" class="form-control">(.*?)</select>', html, re.S)
    assert len(selects) == 3, "two chosen condition rows and an empty one"
    chosen = [(re.search(r'<option value="(\w+)"[^>]*selected>', f), re.search(r'<option value="(\w+)" selected>', o))
              for f, o in selects]
    assert [(f.group(1) if f else None, o.group(1)) for f, o in chosen] == \
        [("total_amount", "gte"), ("industry", "ne"), (None, "eq")]
    assert re.search(r'<option value="total_amount" data-ops="eq,ne,gte,lte" selected>', html)
    shown = {int(x) for x in re.findall(r'<a href="/customermodelview/show/(\d+)">渲染测试', html)}
    assert shown == {i for v in owned.values() for i in v}, "each found name opens its customer"
