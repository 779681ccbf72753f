"""The "at least two ways to reach a customer" warning (CRM_MIN_CONTACT_WAYS, default 2): shown on
the customer page, after saving a contact and in the API's show answer, gone once the customer's
contacts hold two distinct phones / e-mails / IM accounts."""
from __future__ import annotations

import html
import uuid

from flask_babel import force_locale, gettext

from conftest import csrf_token


def _warning_zh(app, have: int) -> str:
    with app.test_request_context(), force_locale("zh"):
        return gettext("This customer has %(have)d way(s) to be reached; add contacts until there are at least "
                       "%(need)d (phone, e-mail or IM account).", have=have, need=2)


def _add_customer(admin_client) -> int:
    page = admin_client.get("/customermodelview/add").get_data(as_text=True)
    admin_client.environ_base["HTTP_X_CSRFTOKEN"] = csrf_token(page)
    resp = admin_client.post("/api/v1/customer/", json={"name": f"联络测试{uuid.uuid4().hex[:8]}有限公司"})
    assert resp.status_code == 201, resp.get_data(as_text=True)
    return resp.get_json()["id"]


def _add_contact(admin_client, customer_id: int, **fields):
    page = admin_client.get(f"/contactmodelview/add?_flt_0_customer={customer_id}").get_data(as_text=True)
    return admin_client.post("/contactmodelview/add", data={
        "csrf_token": csrf_token(page), "customer": str(customer_id), **fields}, follow_redirects=True)


def _page(admin_client, customer_id: int) -> str:
    return html.unescape(admin_client.get(f"/customermodelview/show/{customer_id}").get_data(as_text=True))


def test_warning_until_two_ways(app, admin_client):
    cid = _add_customer(admin_client)
    phone = f"138{uuid.uuid4().int % 10**8:08d}"  # a number no other test uses
    assert _warning_zh(app, 0) in _page(admin_client, cid)
    assert admin_client.get(f"/api/v1/customer/{cid}").get_json()["result"]["reach_warning"]

    after_first = html.unescape(_add_contact(admin_client, cid, name="甲", phone=phone).get_data(as_text=True))
    assert _warning_zh(app, 1) in after_first  # flashed right after saving the contact
    # the same number again (other spelling) on a second contact is not a second way
    again = html.unescape(_add_contact(admin_client, cid, name="乙", phone=f"{phone[:3]}-{phone[3:7]}-{phone[7:]}").get_data(as_text=True))
    assert _warning_zh(app, 1) in again  # same customer may share a number: saved, still one way
    assert _warning_zh(app, 1) in _page(admin_client, cid)

    _add_contact(admin_client, cid, name="丙", email="bing@example.com")
    assert "reach-warning" not in _page(admin_client, cid)
    assert admin_client.get(f"/api/v1/customer/{cid}").get_json()["result"]["reach_warning"] is None


def test_minimum_is_configurable(app, admin_client):
    cid = _add_customer(admin_client)
    app.config["CRM_MIN_CONTACT_WAYS"] = 0
    try:
        assert "reach-warning" not in _page(admin_client, cid)
    finally:
        app.config["CRM_MIN_CONTACT_WAYS"] = 2
    assert "reach-warning" in _page(admin_client, cid)


def test_customer_page_tabs_follow_the_five_categories(admin_client):
    """Detail, then 联系信息, 互动记录 (as a timeline, then as a table), 偏好标签, 附件, 修改记录: the
    categories' order, not the order in which the views happened to be registered."""
    import re

    cid = _add_customer(admin_client)
    tabs = re.findall(r'data-toggle="tab">([^<]+)</a>', _page(admin_client, cid))
    assert tabs[1:] == ["联系信息", "时间线", "互动记录", "偏好标签", "附件", "修改记录"], tabs
