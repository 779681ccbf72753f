"""Seed files (seeds/): idempotent loading, content, noupdate, validation before any write,
no code in data, demo data."""
from __future__ import annotations

import json
import re
import shutil
import subprocess

import pytest

from conftest import ROOT, csrf_token, flask_cmd, subprocess_env

INDUSTRY = dict(zip("ABCDEFGHIJKLMNOPQRST", [
    "农、林、牧、渔业", "采矿业", "制造业", "电力、热力、燃气及水生产和供应业", "建筑业", "批发和零售业",
    "交通运输、仓储和邮政业", "住宿和餐饮业", "信息传输、软件和信息技术服务业", "金融业", "房地产业",
    "租赁和商务服务业", "科学研究和技术服务业", "水利、环境和公共设施管理业", "居民服务、修理和其他服务业",
    "教育", "卫生和社会工作", "文化、体育和娱乐业", "公共管理、社会保障和社会组织", "国际组织"]))
ROLES = {"admin": "管理员", "sales_staff": "销售部普通员工", "sales_supervisor": "销售部主管",
         "service_staff": "客服部普通员工", "service_supervisor": "客服部主管",
         "analytics_staff": "数据分析部普通员工", "analytics_supervisor": "数据分析部主管",
         "product_manager": "产品经理"}
PROBLEM = re.compile(r"^seeds/[\w/.-]+:\d+: (?=.*[\u4e00-\u9fff]).+ / [A-Za-z].+$")


def flask(*args, **env):
    return subprocess.run(flask_cmd(*args), cwd=ROOT, env=subprocess_env(**env), capture_output=True,
                          text=True, timeout=120)


def json_after(prefix: str, text: str) -> dict:
    line = next(l for l in text.splitlines() if l.startswith(prefix))
    return json.loads(line[len(prefix):])


def snapshot(app) -> dict:
    """What an admin would see change: departments, roles, dictionary items, each role's permissions."""
    from app.extensions import appbuilder, db
    from app.models import Department, DictionaryItem, DictionaryType

    with app.app_context():
        sm = appbuilder.sm
        return {
            "departments": sorted((d.key, d.name) for d in db.session.query(Department)),
            "dictionary_types": db.session.query(DictionaryType).count(),
            "dictionary_items": sorted((i.type_key, i.code, i.name) for i in db.session.query(DictionaryItem)),
            "roles": {r.name: sorted((pv.permission.name, pv.view_menu.name) for pv in r.permissions)
                      for r in db.session.query(sm.role_model)},
        }


def seeded_role(role_key: str):
    from app.extensions import appbuilder, db
    from app.models import SeedRecord

    link = db.session.query(SeedRecord).filter_by(kind="role", key=role_key).one()
    return db.session.get(appbuilder.sm.role_model, link.record_id)


def test_seeding_twice_changes_nothing(app):
    first = flask("crm", "seed")
    assert first.returncode == 0, first.stderr[-2000:]
    before = snapshot(app)
    second = flask("crm", "seed")
    assert second.returncode == 0, second.stderr[-2000:]
    report = json_after("种子数据 / seeds: ", second.stdout)
    assert report["created"] == 0 and report["updated"] == 0 and report["unchanged"] + report["kept"] > 0
    assert snapshot(app) == before


def test_seed_content(app):
    from app.extensions import db
    from app.models import Department, DictionaryItem, DictionaryType, SeedRecord

    with app.app_context():
        assert {d.name for d in db.session.query(Department)} >= {"销售部", "客服部", "数据分析部"}
        assert {k: seeded_role(k).name for k in ROLES} == ROLES
        assert seeded_role("sales_staff").permissions, "department roles come with their permission matrix"
        assert db.session.query(SeedRecord).filter_by(kind="role").count() == 8
        types = {t.key for t in db.session.query(DictionaryType)}
        assert {"industry", "customer_kind", "customer_type", "customer_level", "customer_scale",
                "customer_source", "region", "interaction_kind", "interaction_result"} <= types
        industry = {i.code: i.name for i in db.session.query(DictionaryItem).filter_by(type_key="industry")}
        assert industry == INDUSTRY
        for key in types:
            assert db.session.query(DictionaryItem).filter_by(type_key=key).count() > 0, key


def test_admin_rename_of_dictionary_item_survives_reseeding(app, admin_client):
    from app.extensions import db
    from app.models import DictionaryItem
    from app.services.seeding import load_seeds

    with app.app_context():
        item = db.session.query(DictionaryItem).filter_by(type_key="priority").order_by(DictionaryItem.sort).first()
        item_id, type_id, original = item.id, item.type_id, item.name
        code, name_en, sort = item.code, item.name_en, item.sort
    page = admin_client.get(f"/dictionaryitemmodelview/edit/{item_id}").get_data(as_text=True)
    resp = admin_client.post(f"/dictionaryitemmodelview/edit/{item_id}", data={
        "csrf_token": csrf_token(page), "type": str(type_id), "code": code, "name": "管理员改过的名称",
        "name_en": name_en or "", "sort": str(sort), "active": "y"})
    assert resp.status_code == 302, resp.get_data(as_text=True)[-2000:]
    try:
        with app.app_context():
            report = load_seeds()
            assert report.kept > 0
            assert db.session.get(DictionaryItem, item_id).name == "管理员改过的名称"
    finally:
        with app.app_context():
            db.session.get(DictionaryItem, item_id).name = original
            db.session.commit()


def test_role_permissions_reset_unless_role_is_noupdate(app, tmp_path, monkeypatch):
    from app.extensions import db
    from app.services.seeding import load_seeds

    with app.app_context():
        role = seeded_role("sales_staff")
        seeded = sorted(pv.id for pv in role.permissions)
        role.permissions = role.permissions[1:]  # an admin removes a permission
        db.session.commit()
        report = load_seeds()
        assert report.updated >= 1
        assert sorted(pv.id for pv in seeded_role("sales_staff").permissions) == seeded

    # the same role marked `noupdate: true` in roles.yaml keeps the admin's edit
    seeds = tmp_path / "seeds"
    shutil.copytree(ROOT / "seeds", seeds)
    text = (seeds / "roles.yaml").read_text(encoding="utf-8")
    text = text.replace("  - key: sales_staff\n", "  - key: sales_staff\n    noupdate: true\n", 1)
    (seeds / "roles.yaml").write_text(text, encoding="utf-8")
    monkeypatch.setitem(app.config, "CRM_SEED_DIR", str(seeds))
    try:
        with app.app_context():
            role = seeded_role("sales_staff")
            role.permissions = role.permissions[1:]
            db.session.commit()
            load_seeds()
            assert len(seeded_role("sales_staff").permissions) == len(seeded) - 1
    finally:
        monkeypatch.setitem(app.config, "CRM_SEED_DIR", None)
        with app.app_context():
            load_seeds()
            assert sorted(pv.id for pv in seeded_role("sales_staff").permissions) == seeded


def _append(path, text: str) -> None:
    path.write_text(path.read_text(encoding="utf-8") + text, encoding="utf-8")


def _line_of(path, needle: str) -> int:
    return next(n for n, l in enumerate(path.read_text(encoding="utf-8").splitlines(), 1) if needle in l)


@pytest.fixture()
def broken_seeds(tmp_path):
    """seeds/ copied and broken in many ways at once. Returns (dir, expected 'file:line' + text)."""
    seeds = tmp_path / "seeds"
    shutil.copytree(ROOT / "seeds", seeds)
    (seeds / "departments.yaml").write_text(
        "kind: department\n"
        "noupdate: true\n"
        "records:\n"
        "  - key: sales\n"                # 4
        "    name: 销售部\n"
        "  - key: service\n"              # 6
        "    name: 客服部\n"
        "    colour: blue\n"              # unknown field
        "  - key: analytics\n"            # 9
        "    name: 数据分析部\n"
        "  - name: 法务部\n"               # 11: missing key
        "  - key: sales\n"                # 12: duplicate key
        "    name: 销售二部\n"
        "  - key: legal\n"                # 14: a valid new record, must not be written
        "    name: 法务部门\n"
        "  - just a word\n", encoding="utf-8")  # 16: not a mapping
    _append(seeds / "dictionaries" / "priority.csv", "zz,紧急二,Urgent 2,extra\n")
    csv_line = len((seeds / "dictionaries" / "priority.csv").read_text(encoding="utf-8").splitlines())
    roles = seeds / "roles.yaml"
    roles.write_text(roles.read_text(encoding="utf-8").replace(
        "      CustomerModelView: [list, show, add, edit]\n",
        "      CustomerModelView: [list, show, add, edit, fly]\n", 1), encoding="utf-8")
    (seeds / "broken.yaml").write_text("kind: department\nrecords:\n  - key: x\n    name: [unclosed\n",
                                       encoding="utf-8")
    (seeds / "widget.yaml").write_text("kind: widget\nrecords: []\n", encoding="utf-8")
    manifest = (seeds / "manifest.yaml").read_text(encoding="utf-8").replace(
        "  - roles.yaml\n", "  - roles.yaml\n  - broken.yaml\n  - widget.yaml\n", 1)
    (seeds / "manifest.yaml").write_text(manifest, encoding="utf-8")
    expected = [
        ("seeds/departments.yaml:6:", "colour"),
        ("seeds/departments.yaml:11:", "'key'"),
        ("seeds/departments.yaml:12:", "sales"),
        ("seeds/departments.yaml:16:", "mapping"),
        (f"seeds/dictionaries/priority.csv:{csv_line}:", "4"),
        (f"seeds/roles.yaml:{_line_of(roles, 'key: sales_staff')}:", "can_fly"),
        ("seeds/broken.yaml:", "YAML"),
        ("seeds/widget.yaml:1:", "unknown kind 'widget'"),
    ]
    return seeds, expected


def _check_problems(problems: list[str], expected) -> None:
    for p in problems:
        assert PROBLEM.match(p), f"not 'seeds/<file>:<line>: 中文 / English': {p!r}"
    # only real problems: a department with a bad field is still known to the roles that name it
    assert not any("unknown department" in p for p in problems), problems
    for where, word in expected:
        assert any(p.startswith(where) and word in p for p in problems), f"{where} {word} not in {problems}"


def test_broken_seed_files_report_every_problem_and_write_nothing(app, broken_seeds, monkeypatch):
    from app.extensions import db
    from app.models import Department
    from app.services.seeding import SeedError, load_seeds

    seeds, expected = broken_seeds
    before = snapshot(app)

    monkeypatch.setitem(app.config, "CRM_SEED_DIR", str(seeds))
    with app.app_context(), pytest.raises(SeedError) as err:
        load_seeds()
    _check_problems(err.value.problems, expected)
    monkeypatch.setitem(app.config, "CRM_SEED_DIR", None)

    proc = flask("crm", "seed", CRM_SEED_DIR=str(seeds))
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert "未写入任何内容" in proc.stderr and "nothing was written" in proc.stderr
    listed = [l.strip() for l in proc.stderr.splitlines() if l.strip().startswith("seeds/")]
    _check_problems(listed, expected)

    assert sorted(listed) == sorted(err.value.problems)

    assert snapshot(app) == before
    with app.app_context():
        assert db.session.query(Department).filter_by(key="legal").count() == 0


def test_seed_files_cannot_run_code(app, tmp_path, monkeypatch):
    from app.services.seeding import SeedError, load_seeds

    marker = tmp_path / "pwned"
    seeds = tmp_path / "seeds"
    shutil.copytree(ROOT / "seeds", seeds)
    dept = seeds / "departments.yaml"
    dept.write_text(dept.read_text(encoding="utf-8").replace(
        "    name: 销售部\n", f'    name: !!python/object/apply:os.system ["touch {marker}"]\n', 1),
        encoding="utf-8")
    monkeypatch.setitem(app.config, "CRM_SEED_DIR", str(seeds))
    with app.app_context(), pytest.raises(SeedError) as err:
        load_seeds()
    assert not marker.exists(), "a YAML tag ran code"
    line = _line_of(dept, "!!python/object")
    assert any(p.startswith(f"seeds/departments.yaml:{line}:") for p in err.value.problems), err.value.problems


def test_demo_data_is_generated_once_per_number(app):
    from app.extensions import appbuilder, db
    from app.models import Contact, Customer, Interaction, SeedRecord

    def demo_keys() -> dict[int, int]:
        with app.app_context():
            return {int(k.rsplit("-", 1)[1]): rid for k, rid in
                    db.session.query(SeedRecord.key, SeedRecord.record_id).filter_by(kind="demo_customer")}

    m = max(demo_keys(), default=0)  # demo customers 1..m exist already (normally none)
    with app.app_context():
        customers0 = db.session.query(Customer).count()
        interactions0 = db.session.query(Interaction).count()

    first = flask("crm", "seed", "--demo", str(m + 15))
    assert first.returncode == 0, first.stderr[-2000:]
    demo = json_after("演示数据 / demo: ", first.stdout)
    assert demo["customers_created"] == 15
    new = [rid for i, rid in demo_keys().items() if i > m]
    assert len(new) == 15
    with app.app_context():
        assert db.session.query(Customer).count() == customers0 + 15
        for cid in new:
            customer = db.session.get(Customer, cid)
            assert customer.name and customer.customer_no
            assert db.session.query(Contact).filter_by(customer_id=cid).count() >= 1
        assert db.session.query(Interaction).count() - interactions0 == demo["interactions"] > 0
        assert len(demo["demo_users"]) == 8
        for username in demo["demo_users"]:
            user = appbuilder.sm.find_user(username=username)
            assert user is not None and user.department is not None and user.roles

    again = flask("crm", "seed", "--demo", str(m + 15))
    assert json_after("演示数据 / demo: ", again.stdout)["customers_created"] == 0
    more = flask("crm", "seed", "--demo", str(m + 20))
    assert json_after("演示数据 / demo: ", more.stdout)["customers_created"] == 5
    with app.app_context():
        assert db.session.query(Customer).count() == customers0 + 20
