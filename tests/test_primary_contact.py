"""A customer has one primary contact (主要联系人): a contact saved as primary through the form or
the API takes over and the old primary is demoted (recorded in field history); a merge keeps the
survivor's own primary; a contact saved without the flag changes nothing."""
from __future__ import annotations

import uuid

from conftest import csrf_token
from test_history import _changes, api_client  # noqa: F401  (fixture)
from test_merge import _pair


def _customer_with_primary(app) -> tuple[int, int]:
    from app.extensions import db
    from app.models import Contact, Customer
    from app.services.actor import as_system_user
    from app.services.numbering import next_number

    with app.app_context(), as_system_user():
        c = Customer(customer_no=next_number("customer"), name=f"主联{uuid.uuid4().hex[:8]}有限公司")
        c.contacts.append(Contact(name="老张", phone=f"137{uuid.uuid4().int % 10**8:08d}", is_primary=True))
        db.session.add(c)
        db.session.commit()
        return c.id, c.contacts[0].id


def _primaries(app, customer_id: int) -> list[str]:
    from app.extensions import db
    from app.models import Contact

    with app.app_context():
        return sorted(c.name for c in db.session.query(Contact).filter_by(customer_id=customer_id, is_primary=True))


def test_a_new_primary_contact_from_the_form_takes_over_and_history_says_so(app, admin_client):
    cid, old = _customer_with_primary(app)
    page = admin_client.get("/contactmodelview/add").get_data(as_text=True)
    resp = admin_client.post("/contactmodelview/add", data={
        "csrf_token": csrf_token(page), "customer": str(cid), "name": "小李", "is_primary": "y"})
    assert resp.status_code == 302, resp.get_data(as_text=True)[-1500:]
    assert _primaries(app, cid) == ["小李"]
    assert ("update", "contact", "is_primary", "true", "false", "admin") in _changes(app, cid, entity_id=old)

    # a contact added without the flag leaves the primary alone
    resp = admin_client.post("/contactmodelview/add", data={
        "csrf_token": csrf_token(page), "customer": str(cid), "name": "前台"})
    assert resp.status_code == 302
    assert _primaries(app, cid) == ["小李"]

    # making the old one primary again on its edit form hands it back
    edit = admin_client.get(f"/contactmodelview/edit/{old}").get_data(as_text=True)
    resp = admin_client.post(f"/contactmodelview/edit/{old}", data={
        "csrf_token": csrf_token(edit), "customer": str(cid), "name": "老张", "is_primary": "y"})
    assert resp.status_code == 302
    assert _primaries(app, cid) == ["老张"]


def test_the_api_keeps_one_primary_contact(app, api_client):  # noqa: F811
    cid, _ = _customer_with_primary(app)
    resp = api_client.post("/api/v1/contact/", json={"customer": cid, "name": "王总", "is_primary": True})
    assert resp.status_code == 201, resp.get_data(as_text=True)
    assert _primaries(app, cid) == ["王总"]


def test_a_merge_keeps_the_survivors_primary_contact(app, api_client):  # noqa: F811
    from app.extensions import db
    from app.models import Contact
    from app.services.actor import as_system_user

    a, b = _pair(app)
    with app.app_context(), as_system_user():
        db.session.query(Contact).filter(Contact.customer_id.in_([a, b])).update({"is_primary": True})
        db.session.commit()
    resp = api_client.post("/api/v1/customer/merge", json={"survivor_id": a, "merged_id": b})
    assert resp.status_code == 200, resp.get_data(as_text=True)
    assert _primaries(app, a) == ["甲联系人"]
    with app.app_context():
        assert db.session.query(Contact).filter_by(customer_id=a).count() == 2
