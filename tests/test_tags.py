"""Tags (标签): seeded dimensions/values, adding and removing a customer's tags by hand on the
customer page and through the REST API (who/when/source recorded), duplicates refused politely,
the 'has tag' list filter, free tags 维度-值 typed by admins."""
from __future__ import annotations

import re
import shutil
import uuid

import pytest

from conftest import ADMIN_PASSWORD, ROOT, USER_PASSWORD, csrf_token, login
from test_i18n import visible


@pytest.fixture()
def customer(app):
    """A fresh customer; returns (id, name)."""
    from app.extensions import db
    from app.models import Customer
    from app.services.actor import as_system_user
    from app.services.numbering import next_number

    def factory(prefix="标签测试客户", owner: str | None = None):
        from app.extensions import appbuilder

        with app.app_context(), as_system_user():
            c = Customer(customer_no=next_number("customer"), name=f"{prefix}{uuid.uuid4().hex[:8]}",
                         owner=appbuilder.sm.find_user(username=owner) if owner else None)
            db.session.add(c)
            db.session.commit()
            return c.id, c.name
    return factory


def tag_id(app, label: str) -> int:
    from app.extensions import db
    from app.services.tagging import find_tag

    with app.app_context():
        tag = find_tag(label)
        assert tag is not None, label
        db.session.rollback()
        return tag.id


def links_of(app, customer_id: int) -> list[tuple]:
    from app.extensions import db
    from app.models import CustomerTag

    with app.app_context():
        rows = db.session.query(CustomerTag).filter_by(customer_id=customer_id).order_by(CustomerTag.id).all()
        return [(l.tag.label, l.source, l.tagged_by.username if l.tagged_by else None, l.tagged_at, l.rule_id)
                for l in rows]


def add_tag_by_form(client, customer_id: int, tag: int | None = None, free: str = ""):
    url = f"/customertagmodelview/add?_flt_0_customer={customer_id}"
    page = client.get(url)
    assert page.status_code == 200, page.status_code
    return client.post(url, data={"csrf_token": csrf_token(page.get_data(as_text=True)),
                                  "tag": str(tag) if tag else "__None", "free_tag": free},
                       follow_redirects=True)


# -- seeds ---------------------------------------------------------------------------------------

def test_seeded_dimensions_and_values(app):
    from app.extensions import db
    from app.models import SeedRecord, Tag, TagDimension

    with app.app_context():
        dims = {d.name: [t.name for t in d.tags] for d in db.session.query(TagDimension).filter(
            TagDimension.key.in_(["region", "spending", "activity", "need"]))}
        assert dims["区域"][:2] == ["华东", "华北"]
        assert dims["消费能力"] == ["高", "中", "低"]
        assert dims["活跃度"] == ["活跃", "一般", "沉睡"]
        assert dims["需求"] == ["技术支持", "产品咨询", "售后投诉"]
        assert db.session.query(SeedRecord).filter_by(kind="tag", key="region.华东").one().noupdate is True
        assert db.session.query(Tag).join(TagDimension).filter(TagDimension.key == "region", Tag.name == "华东").one().label == "区域-华东"


def test_tag_seeds_are_idempotent_and_keep_admin_edits(app):
    from app.extensions import db
    from app.models import Tag, TagDimension
    from app.services.seeding import load_seeds

    with app.app_context():
        before = sorted((t.dimension.key, t.name) for t in db.session.query(Tag))
        tag = db.session.query(Tag).join(TagDimension).filter(TagDimension.key == "activity", Tag.name == "沉睡").one()
        tag.name_en, original = "Sleeping (admin)", tag.name_en
        db.session.commit()
        try:
            report = load_seeds()
            assert report.created == 0 and report.updated == 0
            assert report.by_kind.get("tag", 0) == 0  # every seeded tag is noupdate: kept as it is
            assert sorted((t.dimension.key, t.name) for t in db.session.query(Tag)) == before
            assert db.session.get(Tag, tag.id).name_en == "Sleeping (admin)"
        finally:
            db.session.get(Tag, tag.id).name_en = original
            db.session.commit()


def test_broken_tag_seed_names_file_and_line(app, tmp_path, monkeypatch):
    from app.extensions import db
    from app.models import TagDimension
    from app.services.seeding import SeedError, load_seeds

    seeds = tmp_path / "seeds"
    shutil.copytree(ROOT / "seeds", seeds)
    (seeds / "tags.yaml").write_text(
        "kind: tag_dimension\n"
        "records:\n"
        "  - key: region\n"            # 3
        "    name: 区域\n"
        "    values: [华东, 华东]\n"
        "  - key: bad-dim\n"           # 6
        "    name: 坏-维度\n"
        "    values: [x]\n"
        "  - key: nodims\n"            # 9
        "    name: 无值\n"
        "  - key: new\n"               # 11: valid, must not be written
        "    name: 新维度\n"
        "    values: [甲]\n", encoding="utf-8")
    monkeypatch.setitem(app.config, "CRM_SEED_DIR", str(seeds))
    with app.app_context(), pytest.raises(SeedError) as err:
        load_seeds()
    problems = err.value.problems
    assert any(p.startswith("seeds/tags.yaml:3:") and "华东" in p and "repeats" in p for p in problems), problems
    assert any(p.startswith("seeds/tags.yaml:6:") and "坏-维度" in p for p in problems), problems
    assert any(p.startswith("seeds/tags.yaml:9:") and "'values'" in p for p in problems), problems
    with app.app_context():
        assert db.session.query(TagDimension).filter_by(key="new").count() == 0


# -- by hand on the customer page ------------------------------------------------------------------

def test_add_and_remove_tag_on_customer_page(app, admin_client, customer):
    cid, name = customer()
    east = tag_id(app, "区域-华东")
    page = admin_client.get(f"/customermodelview/show/{cid}").get_data(as_text=True)
    assert f"/customertagmodelview/add?_flt_0_customer={cid}" in page  # the add button on the 偏好标签 tab
    resp = add_tag_by_form(admin_client, cid, tag=east)
    assert resp.status_code == 200
    links = links_of(app, cid)
    assert [(l[0], l[1], l[2], l[4]) for l in links] == [("区域-华东", "manual", "admin", None)]
    assert links[0][3] is not None  # when

    show = admin_client.get(f"/customermodelview/show/{cid}").get_data(as_text=True)
    text = visible(show)
    assert "偏好标签" in text and "区域-华东" in text
    for category in ("基础信息", "联系信息", "业务信息", "互动记录", "偏好标签"):
        assert category in text, category
    listing = visible(admin_client.get(f"/customermodelview/list/?_flt_0_name={name}").get_data(as_text=True))
    assert "区域-华东" in listing

    from app.extensions import db
    from app.models import CustomerTag
    with app.app_context():
        link_id = db.session.query(CustomerTag.id).filter_by(customer_id=cid).scalar()
    page = admin_client.get(f"/customermodelview/show/{cid}").get_data(as_text=True)
    assert f"/customertagmodelview/delete/{link_id}" in page
    resp = admin_client.post(f"/customertagmodelview/delete/{link_id}",
                             data={"csrf_token": csrf_token(page)}, follow_redirects=True)
    assert resp.status_code == 200
    assert links_of(app, cid) == []
    assert "区域-华东" not in visible(admin_client.get(f"/customermodelview/show/{cid}").get_data(as_text=True))


def test_duplicate_tag_is_refused_politely(app, admin_client, customer):
    cid, _ = customer()
    high = tag_id(app, "消费能力-高")
    add_tag_by_form(admin_client, cid, tag=high)
    resp = add_tag_by_form(admin_client, cid, tag=high)
    assert resp.status_code == 200
    assert "该客户已有标签 消费能力-高" in " ".join(visible(resp.get_data(as_text=True)))
    assert len(links_of(app, cid)) == 1


def test_free_tag_creates_dimension_and_value(app, admin_client, customer):
    from app.extensions import db
    from app.models import Tag, TagDimension

    cid, _ = customer()
    dim = f"渠道{uuid.uuid4().hex[:4]}"
    resp = add_tag_by_form(admin_client, cid, free=f"{dim}-代理商")
    assert resp.status_code == 200
    assert [l[:3] for l in links_of(app, cid)] == [(f"{dim}-代理商", "manual", "admin")]
    with app.app_context():
        d = db.session.query(TagDimension).filter_by(name=dim).one()
        assert [t.name for t in d.tags] == ["代理商"]
    # an existing dimension gets a new value; nothing duplicated
    resp = add_tag_by_form(admin_client, cid, free="区域－海外")  # full-width dash accepted
    assert resp.status_code == 200
    with app.app_context():
        assert db.session.query(TagDimension).filter_by(name="区域").count() == 1
        assert db.session.query(Tag).join(TagDimension).filter(TagDimension.name == "区域", Tag.name == "海外").count() == 1
    assert "区域-海外" in [l[0] for l in links_of(app, cid)]
    bad = add_tag_by_form(admin_client, cid, free="没有分隔符")
    assert "维度-值" in " ".join(visible(bad.get_data(as_text=True)))


def test_staff_cannot_type_free_tags_but_can_pick_one(app, client, make_user, customer):
    user = make_user("sales_staff", "sales")
    cid, _ = customer(owner=user)  # their own customer: within their row scope
    login(client, user, USER_PASSWORD)
    resp = add_tag_by_form(client, cid, free="新维度X-新值")
    assert "只有管理员" in " ".join(visible(resp.get_data(as_text=True)))
    assert links_of(app, cid) == []
    resp = add_tag_by_form(client, cid, tag=tag_id(app, "活跃度-活跃"))
    assert [l[:3] for l in links_of(app, cid)] == [("活跃度-活跃", "manual", user)]


def test_read_only_role_cannot_add_tags(app, client, make_user, customer):
    cid, _ = customer()
    login(client, make_user("service_staff", "service"), USER_PASSWORD)
    page = client.get(f"/customermodelview/show/{cid}")
    assert page.status_code == 200
    assert "/customertagmodelview/add" not in page.get_data(as_text=True)
    resp = client.get(f"/customertagmodelview/add?_flt_0_customer={cid}")
    assert resp.status_code == 403
    assert links_of(app, cid) == []


def test_has_tag_filter_narrows_the_list(app, admin_client, customer):
    marker = f"筛选{uuid.uuid4().hex[:6]}"
    tagged, tagged_name = customer(marker + "甲")
    _, other_name = customer(marker + "乙")
    need = tag_id(app, "需求-技术支持")
    add_tag_by_form(admin_client, tagged, tag=need)
    both = visible(admin_client.get(f"/customermodelview/list/?_flt_2_name={marker}").get_data(as_text=True))
    assert tagged_name in both and other_name in both
    for value in (str(need), "需求-技术支持"):
        page = admin_client.get(f"/customermodelview/list/?_flt_2_name={marker}&_flt_0_tags={value}")
        assert page.status_code == 200
        text = visible(page.get_data(as_text=True))
        assert tagged_name in text and other_name not in text, value
    # the filter is offered in the search form with the tag names
    html = admin_client.get("/customermodelview/list/").get_data(as_text=True)
    assert "含标签" in html and "需求-技术支持" in html


# -- REST ----------------------------------------------------------------------------------------

def jwt(client, username="admin", password=ADMIN_PASSWORD) -> dict:
    resp = client.post("/api/v1/security/login", json={"username": username, "password": password,
                                                       "provider": "db"})
    assert resp.status_code == 200, resp.get_data(as_text=True)
    return {"Authorization": f"Bearer {resp.get_json()['access_token']}"}


def test_api_add_show_and_remove_tags(app, client, customer):
    cid, _ = customer()
    auth = jwt(client)
    resp = client.post("/api/v1/customer_tag/", json={"customer_id": cid, "label": "区域-华南"}, headers=auth)
    assert resp.status_code == 201, resp.get_data(as_text=True)
    link_id = resp.get_json()["id"]
    resp = client.post("/api/v1/customer_tag/", json={"customer_id": cid, "tag_id": tag_id(app, "活跃度-沉睡")},
                       headers=auth)
    assert resp.status_code == 201
    show = client.get(f"/api/v1/customer/{cid}", headers=auth).get_json()["result"]
    assert [(t["label"], t["source"], t["tagged_by"]) for t in show["tags"]] == [
        ("区域-华南", "manual", "admin"), ("活跃度-沉睡", "manual", "admin")]
    assert all(t["tagged_at"] for t in show["tags"])

    dup = client.post("/api/v1/customer_tag/", json={"customer_id": cid, "label": "区域-华南"}, headers=auth)
    assert dup.status_code == 422 and "区域-华南" in str(dup.get_json()["message"])
    assert len(links_of(app, cid)) == 2

    listed = client.get(f"/api/v1/customer_tag/?q=(filters:!((col:customer,opr:rel_o_m,value:{cid})))",
                        headers=auth).get_json()
    assert listed["count"] == 2

    assert client.delete(f"/api/v1/customer_tag/{link_id}", headers=auth).status_code == 200
    assert [l[0] for l in links_of(app, cid)] == ["活跃度-沉睡"]


def test_api_with_session_cookie_needs_csrf_header(app, admin_client, customer):
    cid, _ = customer()
    body = {"customer_id": cid, "label": "消费能力-中"}
    assert admin_client.post("/api/v1/customer_tag/", json=body).status_code == 400
    assert links_of(app, cid) == []
    token = csrf_token(admin_client.get("/customermodelview/add").get_data(as_text=True))
    resp = admin_client.post("/api/v1/customer_tag/", json=body, headers={"X-CSRFToken": token})
    assert resp.status_code == 201, resp.get_data(as_text=True)
    assert [l[:3] for l in links_of(app, cid)] == [("消费能力-中", "manual", "admin")]


def test_api_read_only_role_cannot_tag(app, client, make_user, customer):
    cid, _ = customer()
    auth = jwt(client, make_user("analytics_staff", "analytics"), USER_PASSWORD)
    resp = client.post("/api/v1/customer_tag/", json={"customer_id": cid, "label": "区域-华东"}, headers=auth)
    assert resp.status_code == 403
    assert links_of(app, cid) == []


def test_tags_follow_the_customer_row_scope(app, client, make_user, customer):
    """A salesperson can neither see nor add tags on someone else's customer (UI and API)."""
    cid, _ = customer()
    user = make_user("sales_staff", "sales")
    login(client, user, USER_PASSWORD)
    add_tag_by_form(client, cid, tag=tag_id(app, "活跃度-活跃"))
    assert links_of(app, cid) == []
    api = app.test_client()  # no browser cookie: a JWT caller
    api.environ_base["REMOTE_ADDR"] = f"10.253.{uuid.uuid4().int % 250}.{uuid.uuid4().int % 250 + 1}"
    resp = api.post("/api/v1/customer_tag/", json={"customer_id": cid, "tag_id": tag_id(app, "活跃度-活跃")},
                    headers=jwt(api, user, USER_PASSWORD))
    assert resp.status_code == 404 and links_of(app, cid) == []
