"""Masking of phones, e-mails and individuals' ID numbers, and the log of full values shown to
authorised users (permission can_view_full_contact on ContactInfo)."""
from __future__ import annotations

import uuid

import pytest

from conftest import as_system, USER_PASSWORD
from test_roles import new_customer
from test_scopes import as_user, token

PHONE, EMAIL, IDNO = "13812345678", "zhangwei@example.com", "110101199003071234"


def test_mask_functions():
    from app.security.masking import mask_email, mask_id_number, mask_phone, mask_text

    assert mask_phone("13812345678") == "138****5678"
    assert mask_phone("+86 138 1234 5678").endswith("5678") and "1234" not in mask_phone("+86 138 1234 5678")
    assert mask_phone("010-62345678") == "010-****5678"
    assert mask_email("zhangwei@example.com") == "z***@example.com"
    assert mask_id_number(IDNO) == "1101**********1234"
    assert mask_phone(None) is None and mask_email("") == ""
    assert "12345678" not in mask_text("请拨 13812345678 或写信 zhangwei@example.com")


@pytest.fixture()
def person(app, make_user):
    """A sales staff member and a supervisor of 销售部, and an individual customer of the staff
    member with an ID number and a contact with phone and e-mail."""
    from app.extensions import db
    from app.models import Contact, Customer, DictionaryItem, DictionaryType

    staff, boss = make_user("sales_staff", "sales"), make_user("sales_supervisor", "sales")
    pk = new_customer(app, f"个人客户{uuid.uuid4().hex[:6]}", owner=staff)
    phone = "139" + str(uuid.uuid4().int)[:8]  # unique: phones are a dedupe key
    idno = "11010119900307" + str(uuid.uuid4().int)[:4]  # unique too: one ID number, one person
    with as_system(app):
        kind = (db.session.query(DictionaryItem).join(DictionaryType)
                .filter(DictionaryType.key == "customer_kind", DictionaryItem.code == "person").one())
        c = db.session.get(Customer, pk)
        c.kind, c.credit_code = kind, idno
        contact = Contact(customer_id=pk, name="张伟", phone=phone, email=EMAIL)
        db.session.add(contact)
        db.session.commit()
        contact_id, number = contact.id, c.customer_no
    return {"staff": staff, "boss": boss, "customer": pk, "no": number, "contact": contact_id, "phone": phone,
            "idno": idno}


def masked(phone):
    return phone[:3] + "****" + phone[-4:]


def reveals(app, username):
    from app.extensions import appbuilder, db
    from app.models import RevealLog

    with app.app_context():
        user = appbuilder.sm.find_user(username=username)
        return {(r.model, r.record_id, r.field, r.channel)
                for r in db.session.query(RevealLog).filter_by(user_id=user.id)}


def test_staff_see_masked_values_everywhere(app, client, person):
    phone = person["phone"]
    as_user(client, person["staff"])
    pages = [client.get(f"/contactmodelview/list/?_flt_0_name=张伟&_flt_0_customer={person['no']}"),
             client.get(f"/contactmodelview/show/{person['contact']}"),
             client.get(f"/customermodelview/show/{person['customer']}"),
             client.get(f"/contactmodelview/edit/{person['contact']}")]
    for resp in pages:
        html = resp.get_data(as_text=True)
        assert resp.status_code == 200
        assert phone not in html and EMAIL not in html and person["idno"] not in html
    assert masked(phone) in pages[0].get_data(as_text=True) and "z***@example.com" in pages[1].get_data(as_text=True)
    assert "1101**********" + person["idno"][-4:] in pages[2].get_data(as_text=True)

    auth = token(app, person["staff"])
    listed = client.get("/api/v1/contact/?q=(page_size:100)", headers=auth).get_json()["result"]
    mine = [r for r in listed if r["id"] == person["contact"]]
    assert mine and mine[0]["phone"] == masked(phone) and mine[0]["email"] == "z***@example.com"
    one = client.get(f"/api/v1/contact/{person['contact']}", headers=auth).get_json()["result"]
    assert one["phone"] == masked(phone)
    cust = client.get(f"/api/v1/customer/{person['customer']}", headers=auth).get_json()["result"]
    assert cust["credit_code"] == "1101**********" + person["idno"][-4:]
    assert reveals(app, person["staff"]) == set()


def test_saving_a_masked_value_keeps_the_stored_one(app, client, person):
    from app.extensions import db
    from app.models import Contact

    auth = token(app, person["staff"])
    one = client.get(f"/api/v1/contact/{person['contact']}", headers=auth).get_json()["result"]
    resp = client.put(f"/api/v1/contact/{person['contact']}", headers=auth,
                      json={"phone": one["phone"], "email": one["email"], "title": "经理"})
    assert resp.status_code == 200, resp.get_data(as_text=True)
    with app.app_context():
        c = db.session.get(Contact, person["contact"])
        assert (c.phone, c.email, c.title) == (person["phone"], EMAIL, "经理")


def test_supervisor_sees_full_values_on_record_pages_and_is_logged(app, client, person):
    phone = person["phone"]
    as_user(client, person["boss"])
    listing = client.get(f"/contactmodelview/list/?_flt_0_name=张伟&_flt_0_customer={person['no']}").get_data(as_text=True)
    assert phone not in listing and masked(phone) in listing  # lists stay masked for everybody (the row is there)
    html = client.get(f"/contactmodelview/show/{person['contact']}").get_data(as_text=True)
    assert phone in html and EMAIL in html
    assert person["idno"] in client.get(f"/customermodelview/show/{person['customer']}").get_data(as_text=True)
    auth = token(app, person["boss"])
    assert client.get(f"/api/v1/contact/{person['contact']}", headers=auth).get_json()["result"]["phone"] == phone
    logged = reveals(app, person["boss"])
    assert {("contact", person["contact"], "phone", "ui"), ("contact", person["contact"], "email", "ui"),
            ("customer", person["customer"], "credit_code", "ui"),
            ("contact", person["contact"], "phone", "api")} <= logged


def test_admin_reads_the_reveal_log(app, person, admin_client):
    path = f"/api/v1/contact/{person['contact']}"
    assert app.test_client().get(path, headers=token(app, person["boss"])).status_code == 200
    html = admin_client.get("/reveallogmodelview/list/").get_data(as_text=True)
    assert "phone" in html and path in html


def test_staff_cannot_read_the_reveal_log(person, client):
    as_user(client, person["staff"])
    assert client.get("/reveallogmodelview/list/").status_code == 403


def test_staff_role_lacks_the_permission_and_supervisors_have_it(app):
    import yaml

    from conftest import ROOT

    roles = {r["key"]: r for r in yaml.safe_load((ROOT / "seeds" / "roles.yaml").read_text(encoding="utf-8"))["records"]}
    have = {k for k, r in roles.items() if "view_full_contact" in (r.get("grants") or {}).get("ContactInfo", [])}
    assert have == {"sales_supervisor", "service_supervisor", "analytics_supervisor"}


def test_survey_address_is_masked_like_other_contact_data(app, client, make_user):
    """满意度回访's 发送至 (the address the survey link went to): masked on the record page for an
    analyst without 'view full contact info', shown in full (and logged) to one with it."""
    from datetime import datetime, timedelta

    from app.extensions import db
    from app.models import Feedback, Survey

    address = f"kehu{uuid.uuid4().hex[:8]}@example.com"
    with as_system(app):
        fb = Feedback(feedback_no=f"FM{uuid.uuid4().hex[:8]}", channel="staff", content="回访地址", status="closed",
                      submitted_at=datetime.utcnow())
        db.session.add(fb)
        db.session.flush()
        survey = Survey(subject_kind="feedback", subject_id=fb.id, subject_no=fb.feedback_no, sent_to=address,
                        expires_at=datetime.utcnow() + timedelta(days=1))
        db.session.add(survey)
        db.session.commit()
        pk = survey.id
    staff, boss = make_user("analytics_staff", "analytics"), make_user("analytics_supervisor", "analytics")
    as_user(client, staff)
    resp = client.get(f"/surveymodelview/show/{pk}")
    html = resp.get_data(as_text=True)
    assert resp.status_code == 200 and "发送至" in html  # the record page itself
    assert address not in html and "k***@example.com" in html
    client.get("/logout/")
    as_user(client, boss)
    assert address in client.get(f"/surveymodelview/show/{pk}").get_data(as_text=True)
    assert ("survey", pk, "sent_to", "ui") in reveals(app, boss)

