"""One customer, one file (一户一档): name/credit code/phone keys, the indexed look-up, and the
form and API refusing a duplicate with the clashing customer shown and nothing saved."""
from __future__ import annotations

import random
import re
import uuid

import pytest
from sqlalchemy import event, func, select

from app.services.dedupe import (
    CREDIT_CHARSET, credit_check_char, find_duplicates, normalise_credit_code, normalise_name,
    normalise_phone, org_code_check_char, validate_credit_code,
)
from conftest import csrf_token
from flask_babel import force_locale

# -- normalise_name ---------------------------------------------------------------------------

SAME_NAME = [
    # (variants that must all give the same key, that key)
    (["上海华信（中国）有限公司", "上海华信有限责任公司", " 上海 华信 ", "上海华信", "上海华信有限公司",
      "上海华信(中国)有限公司", "上海华信【中国】有限公司", "上海华信[中国]有限公司", "上海华信股份有限公司",
      "上海华信集团有限公司", "上海华信公司", "上海　华信　有限公司", "上海华信\u200b有限公司",
      "\t上海华信有限公司\n", "上海华信（中国）", "上海华信（ 中国 ）有限公司"], "上海华信"),
    (["北京京东世纪贸易有限公司", "北京京东世纪贸易有限责任公司", "北京 京东 世纪贸易"], "北京京东世纪贸易"),
    (["北京（京东）世纪贸易有限公司", "北京(京东)世纪贸易有限公司", "北京【京东】世纪贸易有限公司",
      "北京[京东]世纪贸易有限公司", "北京〔京东〕世纪贸易有限公司", "北京［京东］世纪贸易有限公司"], "北京(京东)世纪贸易"),
    (["ＡＢＣ科技有限公司", "abc科技有限公司", "ABC 科技有限公司", "Abc科技（中国）有限公司"], "abc科技"),
    (["深圳市腾讯计算机系统有限公司", "深圳市腾讯计算机系统有限责任公司", "深圳市 腾讯计算机系统（中国）"],
     "深圳市腾讯计算机系统"),
    (["杭州海康威视数字技术股份有限公司", "杭州海康威视数字技术有限公司"], "杭州海康威视数字技术"),
    (["Huaxin Co., Ltd.", "HUAXIN CO.,LTD", "Huaxin Limited", "huaxin", "Ｈｕａｘｉｎ Ltd"], "huaxin"),
    (["第１２３号门市部", "第123号门市部"], "第123号门市部"),
]

DIFFERENT_NAMES = [
    ("上海华信有限公司", "上海华讯有限公司"),
    ("上海华信有限公司", "北京华信有限公司"),
    ("上海华信有限公司北京分公司", "上海华信有限公司"),  # a branch is not its head office
    ("上海华信有限公司北京分公司", "上海华信有限公司上海分公司"),
    ("中国银行", "银行"),  # only the bracketed region marker goes
    ("Zinc Trading", "Trading"),
]


@pytest.mark.parametrize("variants,key", SAME_NAME, ids=[k for _, k in SAME_NAME])
def test_name_variants_share_one_key(variants, key):
    assert {v: normalise_name(v) for v in variants} == {v: key for v in variants}


@pytest.mark.parametrize("a,b", DIFFERENT_NAMES)
def test_different_names_keep_different_keys(a, b):
    assert normalise_name(a) != normalise_name(b)


def test_name_edge_cases():
    assert normalise_name(None) == normalise_name("") == normalise_name("   ") == ""
    assert normalise_name("有限公司") == "有限公司"  # nothing but a legal form: kept, never empty
    assert normalise_name("上海华信有限公司有限公司") == "上海华信有限公司"  # one suffix only
    assert normalise_name("北京分公司") == "北京分公司"


# -- credit codes (GB 32100-2015) -----------------------------------------------------------

# Published codes of real companies: each passes both the GB 11714 organisation-code check
# (9th-17th) and the GB 32100 check character (18th).
REAL_CODES = ["91110000600037341L", "914403001922038216", "9144030071526726XG", "91110000710926094P",
              "91330100799655058B", "91110108551385082Q", "91350100M000100Y43"]


@pytest.mark.parametrize("code", REAL_CODES)
def test_real_credit_codes_are_valid(code):
    assert validate_credit_code(code) is None
    assert credit_check_char(code[:17]) == code[17]
    assert org_code_check_char(code[8:16]) == code[16]


def test_check_characters_by_hand():
    """Worked by hand (the figures are in the docstring of the final report too)."""
    v = {c: i for i, c in enumerate(CREDIT_CHARSET)}
    w = (1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28)
    # 91110000600037341L: 9+3+9+27+0+0+0+0+120+0+0+0+24+168+30+120+28 = 538; 538 mod 31 = 11;
    # 31 - 11 = 20 -> L. Organisation code 60003734|1: 18+0+0+0+15+56+12+8 = 109; 109 mod 11 = 10;
    # 11 - 10 = 1.
    assert sum(v[c] * k for c, k in zip("91110000600037341", w)) == 538
    assert CREDIT_CHARSET[31 - 538 % 31] == "L" == credit_check_char("91110000600037341")
    assert org_code_check_char("60003734") == "1"
    # 914403001922038216: 9+3+36+108+0+78+0+0+20+261+50+26+0+72+80+60+28 = 831; 831 mod 31 = 25;
    # 31 - 25 = 6. Organisation code 19220382|1: 3+63+18+20+0+24+32+4 = 164; 164 mod 11 = 10 -> 1.
    assert sum(v[c] * k for c, k in zip("91440300192203821", w)) == 831
    assert credit_check_char("91440300192203821") == "6"
    assert org_code_check_char("19220382") == "1"
    # 9144030071526726XG: organisation code 71526726: 21+7+45+20+30+56+8+12 = 199; 199 mod 11 = 1;
    # 11 - 1 = 10 -> X. Sum with X = 29 at weight 28: 1782; 1782 mod 31 = 15; 31 - 15 = 16 -> G.
    assert org_code_check_char("71526726") == "X"
    assert sum(v[c] * k for c, k in zip("9144030071526726X", w)) == 1782
    assert credit_check_char("9144030071526726X") == "G"


def make_credit_code(rnd: random.Random | None = None, first2: str = "91") -> str:
    """A valid code with a random organisation code (for tests that need fresh ones)."""
    rnd = rnd or random.Random()
    body = "".join(rnd.choice("0123456789ABCDEFGHJKLMNPQRTUWXY") for _ in range(8))
    org = body + org_code_check_char(body)
    first17 = first2 + "310115" + org
    return first17 + credit_check_char(first17)


def test_check_character_31_becomes_0():
    rnd = random.Random(7)
    for _ in range(5000):
        code = make_credit_code(rnd)
        if code[-1] == "0":
            assert validate_credit_code(code) is None
            break
    else:
        pytest.fail("no code with check character 0 in 5000 tries")


def test_generated_codes_are_valid_and_any_single_change_is_caught():
    rnd = random.Random(42)
    for _ in range(200):
        code = make_credit_code(rnd, first2=rnd.choice(["91", "92", "93", "11", "12", "51", "52", "53", "Y1"]))
        assert validate_credit_code(code) is None, code
        i = rnd.randrange(8, 18)  # mistype one character of the organisation code or check char
        other = rnd.choice([c for c in CREDIT_CHARSET if c != code[i]])
        assert validate_credit_code(code[:i] + other + code[i + 1:]) is not None


@pytest.mark.parametrize("typed", ["91110000600037341l", " 9111 0000 6000 3734 1L ", "91110000-600037341L",
                                   "９１１１００００６０００３７３４１Ｌ"])
def test_credit_code_spellings_are_normalised(typed):
    assert normalise_credit_code(typed) == "91110000600037341L"
    assert validate_credit_code(typed) is None


@pytest.mark.parametrize("code,reason", [
    ("91110000600037341K", "check character"),      # wrong check character
    ("91110000600037341M", "check character"),
    ("914403001922038217", "check character"),
    ("91110000600037342L", "organisation code"),    # organisation code mistyped
    ("9111000060003734", "18 characters"),          # 16
    ("91110000600037341", "18 characters"),         # 17
    ("91110000600037341LL", "18 characters"),       # 19
    ("", "18 characters"),
    ("9111000060003734IL", "never contains I"),     # forbidden letters
    ("9111000060003734OL", "never contains O"),
    ("9111000060003734ZL", "never contains Z"),
    ("9111000060003734SL", "never contains S"),
    ("9111000060003734VL", "never contains V"),
    ("91110000600037341*", "never contains *"),
    ("B1110000600037341L", "registration authority"),
    ("90110000600037341L", "entity category"),
    ("911100A0600037341L", "region code"),
])
def test_invalid_credit_codes_say_why(code, reason):
    message = validate_credit_code(code)
    assert message is not None and reason in message, message


# -- phones -----------------------------------------------------------------------------------

@pytest.mark.parametrize("typed,key", [
    ("13800138000", "13800138000"), ("138 0013 8000", "13800138000"), ("138-0013-8000", "13800138000"),
    ("+86 138 0013 8000", "13800138000"), ("+8613800138000", "13800138000"), ("0086 13800138000", "13800138000"),
    ("8613800138000", "13800138000"), ("１３８００１３８０００", "13800138000"), ("(+86) 138.0013.8000", "13800138000"),
    ("021-62345678", "02162345678"), ("(021) 6234 5678", "02162345678"), ("+86 21 6234 5678", "02162345678"),
    ("0086-21-62345678", "02162345678"), ("+86 (0)21 62345678", "02162345678"), ("０２１－６２３４５６７８", "02162345678"),
    ("010-62345678", "01062345678"), ("+86 10 6234 5678", "01062345678"), ("010-62345678转123", "01062345678"),
    ("010-62345678 ext. 8", "01062345678"), ("0755-86013388分机2", "075586013388"),
    ("400-820-8820", "4008208820"), ("62345678", "62345678"),
    ("00852 2345 6789", "+85223456789"), ("+852 2345 6789", "+85223456789"),
    ("", ""), (None, ""), ("123", ""), ("无", ""),
])
def test_normalise_phone(typed, key):
    assert normalise_phone(typed) == key


# -- the look-up on the database ------------------------------------------------------------------

def _unique(prefix: str = "测试") -> str:
    return prefix + uuid.uuid4().hex[:8].upper()


def _mobile() -> str:
    return "139" + "".join(random.choice("0123456789") for _ in range(8))


@pytest.fixture()
def make_customer(app):
    """make_customer(name, credit_code=None, phones=(), owner=username, kind='org') -> (id, customer_no)."""
    from app.extensions import appbuilder, db
    from app.models import Contact, Customer, DictionaryItem
    from app.services.actor import as_system_user
    from app.services.numbering import next_number

    def factory(name, credit_code=None, phones=(), owner=None, kind="org"):
        with app.app_context(), as_system_user():
            user = appbuilder.sm.find_user(username=owner) if owner else None
            c = Customer(customer_no=next_number("customer"), name=name, credit_code=credit_code, owner=user,
                         department_id=user.department_id if user else None,
                         kind=db.session.query(DictionaryItem).filter_by(type_key="customer_kind", code=kind).one())
            for i, p in enumerate(phones):
                c.contacts.append(Contact(name=f"联系人{i}", phone=p))
            db.session.add(c)
            db.session.commit()
            return c.id, c.customer_no
    return factory


def _owner(app, make_user, dept="sales", first="伟", last="张"):
    from app.extensions import appbuilder, db

    username = make_user("sales_staff", dept)
    with app.app_context():
        u = appbuilder.sm.find_user(username=username)
        u.first_name, u.last_name = first, last
        db.session.commit()
    return username


def test_keys_are_stored_on_write(ctx, make_customer):
    from app.extensions import db
    from app.models import Contact, Customer
    from app.services.actor import as_system_user

    name = _unique("上海")
    cid, _ = make_customer(f" {name}（中国）有限公司 ", "９１１１００００６０００３７３４１ｌ", ["+86 21 6234 5678"])
    c = db.session.get(Customer, cid)
    assert (c.name_key, c.credit_code) == (name.lower(), "91110000600037341L")
    assert [k.phone_key for k in c.contacts] == ["02162345678"]
    with as_system_user():
        c.name = f"{name}二号有限责任公司"
        c.contacts[0].phone = "138 0013 8000"
        db.session.commit()
    assert db.session.get(Customer, cid).name_key == f"{name}二号".lower()
    assert db.session.query(Contact.phone_key).filter_by(customer_id=cid).scalar() == "13800138000"


def test_find_duplicates_by_each_key(app, ctx, make_customer, make_user):
    owner = _owner(app, make_user)
    name, code, phone = _unique("杭州"), make_credit_code(), _mobile()
    cid, no = make_customer(f"{name}（中国）有限公司", code, [phone, "0571-88886666"], owner=owner)

    by_name = find_duplicates(f"{name}有限责任公司", None, [], viewer=None)
    assert [(c.customer_id, c.customer_no, c.matched_on) for c in by_name] == [(cid, no, ["name"])]
    by_code = find_duplicates("完全不同的名字" + _unique(), code.lower(), [], viewer=None)
    assert [(c.customer_id, c.matched_on) for c in by_code] == [(cid, ["credit_code"])]
    by_phone = find_duplicates(None, None, ["+86 " + phone[:3] + " " + phone[3:7] + " " + phone[7:]], viewer=None)
    assert [(c.customer_id, c.matched_on, c.phones) for c in by_phone] == [(cid, ["phone"], [phone])]
    landline = find_duplicates(None, None, ["+86 571 8888 6666"], viewer=None)
    assert [c.customer_id for c in landline] == [cid]
    everything = find_duplicates(f" {name} ", code, [phone], viewer=None)
    assert len(everything) == 1 and everything[0].matched_on == ["name", "credit_code", "phone"]

    assert find_duplicates(f"{name}有限公司", code, [phone], exclude_id=cid) == []  # itself
    assert find_duplicates(f"{name}有限公司", None, [], match_name=False) == []  # individuals
    assert find_duplicates(_unique("无关"), make_credit_code(), [_mobile()]) == []
    assert find_duplicates(None, None, [], viewer=None) == []


def test_individuals_are_not_matched_by_name(app, ctx, make_customer):
    from app.services.dedupe import check_customer

    name = "王" + _unique("")
    make_customer(name, kind="person")
    assert check_customer(name, None, "person", viewer=None).ok
    assert not check_customer(name, None, "org", viewer=None).ok
    # an individual's credit-code field holds an ID or passport number: not checked as a code
    assert check_customer(_unique("李"), "E12345678", "person", viewer=None).ok
    assert "credit_code" in check_customer(_unique("某"), "E12345678", "org", viewer=None).errors


def test_owner_is_shown_only_to_who_may_see_it(app, ctx, make_customer, make_user):
    from app.extensions import appbuilder

    owner = _owner(app, make_user, dept="sales")
    name = _unique("苏州")
    make_customer(name + "有限公司", owner=owner)
    # Exactly who has the customer in their row scope (app/security/scopes.py): a colleague on
    # 'own' scope does not; the department's supervisor does.
    colleague = appbuilder.sm.find_user(username=make_user("sales_staff", "sales"))
    supervisor = appbuilder.sm.find_user(username=make_user("sales_supervisor", "sales"))
    outsider = appbuilder.sm.find_user(username=make_user("sales_supervisor", "service"))
    admin = appbuilder.sm.find_user(username="admin")
    owner_user = appbuilder.sm.find_user(username=owner)
    for viewer, shown in [(owner_user, "张伟"), (colleague, None), (supervisor, "张伟"), (admin, "张伟"),
                          (outsider, None), (None, None)]:
        [clash] = find_duplicates(name, None, [], viewer=viewer)
        assert clash.owner == shown, viewer
    with force_locale("en"):
        assert "(owner: 张伟)" in find_duplicates(name, None, [], viewer=admin)[0].message()
    assert "owner" not in find_duplicates(name, None, [], viewer=outsider)[0].message()


def test_look_up_uses_the_indexes_never_a_scan(app, ctx, make_customer):
    """Every statement find_duplicates sends is planned as index look-ups (on PostgreSQL with
    sequential scans disabled, since a tiny test table would rightly be scanned)."""
    from app.extensions import db

    make_customer(_unique("宁波") + "有限公司", make_credit_code(), [_mobile()])
    statements = []

    def capture(conn, cursor, statement, parameters, context, executemany):  # noqa: ARG001
        statements.append((statement, parameters))

    engine = db.engine
    event.listen(engine, "before_cursor_execute", capture)
    try:
        find_duplicates("某某有限公司", make_credit_code(), [_mobile(), "021-62345678"], exclude_id=1, viewer=None)
    finally:
        event.remove(engine, "before_cursor_execute", capture)
    assert len(statements) == 3
    conn = db.session.connection()
    for statement, params in statements:
        if engine.dialect.name == "sqlite":
            plan = " | ".join(str(r[-1]) for r in conn.exec_driver_sql("EXPLAIN QUERY PLAN " + statement, params))
            assert re.search(r"SCAN (crm_customer|crm_contact)\b", plan) is None, plan
            assert "USING INDEX ix_crm_c" in plan, plan
        else:
            conn.exec_driver_sql("SET LOCAL enable_seqscan = off")
            plan = " | ".join(r[0] for r in conn.exec_driver_sql("EXPLAIN " + statement, params))
            assert "Seq Scan" not in plan, plan
            assert re.search(r"Index.* on (crm_customer|crm_contact)", plan), plan
    db.session.rollback()


# -- the form ---------------------------------------------------------------------------------

def _count(app, **by):
    from app.extensions import db
    from app.models import Customer

    with app.app_context():
        return db.session.scalar(select(func.count()).select_from(Customer).filter_by(**by))


def _english(client):
    client.get("/lang/en")


def test_form_refuses_a_duplicate_and_shows_the_clash(app, admin_client, make_customer, make_user):
    owner = _owner(app, make_user)
    name = _unique("上海")
    cid, no = make_customer(f"{name}（中国）有限公司", owner=owner)
    _english(admin_client)
    page = admin_client.get("/customermodelview/add")
    resp = admin_client.post("/customermodelview/add", data={
        "csrf_token": csrf_token(page.get_data(as_text=True)), "name": f" {name} 有限责任公司", "total_amount": "0"})
    html = resp.get_data(as_text=True)
    assert resp.status_code == 200  # the form again, not a redirect
    assert f"Duplicate of existing customer {no} {name}（中国）有限公司 (owner: 张伟)" in html
    assert _count(app, name_key=name.lower()) == 1


def test_form_in_chinese_shows_the_customer_no(app, admin_client, make_customer):
    """Default language: whatever the catalog says, the clashing customer's number is on the form."""
    name = _unique("广州")
    _, no = make_customer(name + "有限公司")
    page = admin_client.get("/customermodelview/add")
    resp = admin_client.post("/customermodelview/add", data={
        "csrf_token": csrf_token(page.get_data(as_text=True)), "name": name, "total_amount": "0"})
    assert resp.status_code == 200 and no in resp.get_data(as_text=True)
    assert _count(app, name_key=name.lower()) == 1


def test_form_refuses_an_invalid_or_taken_credit_code(app, admin_client, make_customer):
    code = make_credit_code()
    _, no = make_customer(_unique("天津") + "有限公司", code)
    _english(admin_client)
    for typed, expected in [(code[:17] + ("0" if code[17] != "0" else "1"), "check character"),
                            ("91110000600037341", "18 characters"),
                            (code.lower(), f"Duplicate of existing customer {no}")]:
        name = _unique("重庆")
        page = admin_client.get("/customermodelview/add")
        resp = admin_client.post("/customermodelview/add", data={
            "csrf_token": csrf_token(page.get_data(as_text=True)), "name": name, "credit_code": typed,
            "total_amount": "0"})
        assert resp.status_code == 200 and expected in resp.get_data(as_text=True), typed
        assert _count(app, name_key=name.lower()) == 0


def test_form_adds_a_new_customer_and_edits_it_without_clashing_with_itself(app, admin_client):
    from app.extensions import db
    from app.models import Customer

    name, code = _unique("成都"), make_credit_code()
    page = admin_client.get("/customermodelview/add")
    resp = admin_client.post("/customermodelview/add", data={
        "csrf_token": csrf_token(page.get_data(as_text=True)), "name": name + "有限公司", "credit_code": code,
        "total_amount": "0"})
    assert resp.status_code == 302, resp.get_data(as_text=True)[:3000]
    with app.app_context():
        cid = db.session.query(Customer.id).filter_by(name_key=name.lower()).scalar()
    page = admin_client.get(f"/customermodelview/edit/{cid}")
    resp = admin_client.post(f"/customermodelview/edit/{cid}", data={
        "csrf_token": csrf_token(page.get_data(as_text=True)), "name": name + "有限责任公司",
        "credit_code": code, "remark": "改了备注", "total_amount": "0"})
    assert resp.status_code == 302, resp.get_data(as_text=True)[:3000]
    with app.app_context():
        c = db.session.get(Customer, cid)
        assert (c.name, c.remark) == (name + "有限责任公司", "改了备注")


def test_form_edit_onto_another_customers_name_is_refused(app, admin_client, make_customer):
    from app.extensions import db
    from app.models import Customer

    other = _unique("武汉")
    _, other_no = make_customer(other + "有限公司")
    cid, _ = make_customer(_unique("长沙") + "有限公司")
    page = admin_client.get(f"/customermodelview/edit/{cid}")
    resp = admin_client.post(f"/customermodelview/edit/{cid}", data={
        "csrf_token": csrf_token(page.get_data(as_text=True)), "name": other + "（中国）有限公司",
        "total_amount": "0"})
    assert resp.status_code == 200 and other_no in resp.get_data(as_text=True)
    with app.app_context():
        assert db.session.get(Customer, cid).name_key != other.lower()


def test_contact_form_refuses_a_phone_of_another_customer(app, admin_client, make_customer):
    from app.extensions import db
    from app.models import Contact

    phone = _mobile()
    _, no = make_customer(_unique("西安") + "有限公司", phones=[phone])
    mine, _ = make_customer(_unique("郑州") + "有限公司")
    _english(admin_client)
    page = admin_client.get("/contactmodelview/add")
    typed = f"+86 {phone[:3]}-{phone[3:7]}-{phone[7:]}"
    resp = admin_client.post("/contactmodelview/add", data={
        "csrf_token": csrf_token(page.get_data(as_text=True)), "customer": str(mine), "name": "王五", "phone": typed,
        "is_primary": "y"})
    assert resp.status_code == 200 and f"Duplicate of existing customer {no}" in resp.get_data(as_text=True)
    with app.app_context():
        assert db.session.query(Contact).filter_by(customer_id=mine).count() == 0
    # a fresh number is fine
    resp = admin_client.post("/contactmodelview/add", data={
        "csrf_token": csrf_token(page.get_data(as_text=True)), "customer": str(mine), "name": "王五", "phone": _mobile(),
        "is_primary": "y"})
    assert resp.status_code == 302


# -- the API ----------------------------------------------------------------------------------

@pytest.fixture()
def api_client(admin_client):
    """The admin's browser session calling the API as our pages do: with the X-CSRFToken header."""
    page = admin_client.get("/customermodelview/add").get_data(as_text=True)
    admin_client.environ_base["HTTP_X_CSRFTOKEN"] = csrf_token(page)
    return admin_client


def test_api_post_refuses_a_duplicate_with_the_clash_list(app, api_client, make_customer, make_user):
    owner = _owner(app, make_user)
    name, code = _unique("南京"), make_credit_code()
    cid, no = make_customer(name + "股份有限公司", code, owner=owner)
    _english(api_client)
    resp = api_client.post("/api/v1/customer/", json={"name": f"{name}（中国）有限公司", "credit_code": code})
    assert resp.status_code == 422, resp.get_json()
    body = resp.get_json()
    assert body["clashes"] == [{"id": cid, "customer_no": no, "name": name + "股份有限公司", "owner": "张伟",
                                "matched_on": ["name", "credit_code"],
                                "message": f"Duplicate of existing customer {no} {name}股份有限公司 (owner: 张伟)"}]
    assert set(body["message"]) == {"name", "credit_code"}
    assert _count(app, name_key=name.lower()) == 1


def test_api_post_refuses_an_invalid_credit_code(app, api_client):
    _english(api_client)
    name = _unique("青岛")
    resp = api_client.post("/api/v1/customer/", json={"name": name, "credit_code": "9111000060003734OL"})
    assert resp.status_code == 422
    assert "never contains O" in resp.get_json()["message"]["credit_code"][0]
    assert _count(app, name_key=name.lower()) == 0
    resp = api_client.post("/api/v1/customer/", json={"name": name, "credit_code": make_credit_code()})
    assert resp.status_code == 201, resp.get_json()


def test_api_put_own_name_is_fine_and_another_ones_is_refused(app, api_client, make_customer):
    from app.extensions import db
    from app.models import Customer

    mine, other = _unique("厦门"), _unique("福州")
    cid, _ = make_customer(mine + "有限公司", make_credit_code())
    _, other_no = make_customer(other + "有限公司")
    resp = api_client.put(f"/api/v1/customer/{cid}", json={"name": mine + "有限责任公司", "remark": "同一家"})
    assert resp.status_code == 200, resp.get_json()
    resp = api_client.put(f"/api/v1/customer/{cid}", json={"name": f"{other}（中国）", "remark": "不该保存"})
    assert resp.status_code == 422 and resp.get_json()["clashes"][0]["customer_no"] == other_no
    with app.app_context():
        c = db.session.get(Customer, cid)
        assert (c.name, c.remark) == (mine + "有限责任公司", "同一家")


def test_api_contact_phone_clash(app, api_client, make_customer):
    phone = _mobile()
    owner_id, no = make_customer(_unique("合肥") + "有限公司", phones=[phone])
    mine, _ = make_customer(_unique("南昌") + "有限公司")
    resp = api_client.post("/api/v1/contact/", json={"customer": mine, "name": "赵六", "phone": phone})
    assert resp.status_code == 422 and resp.get_json()["clashes"][0]["customer_no"] == no
    # the same customer may list the same switchboard twice
    resp = api_client.post("/api/v1/contact/", json={"customer": owner_id, "name": "前台", "phone": phone})
    assert resp.status_code == 201, resp.get_json()


def test_api_legacy_bad_code_does_not_block_other_edits(app, api_client, make_customer):
    cid, _ = make_customer(_unique("大连") + "有限公司", "91110000600037341K")  # stored before the check
    resp = api_client.put(f"/api/v1/customer/{cid}", json={"remark": "只改备注"})
    assert resp.status_code == 200, resp.get_json()
    resp = api_client.put(f"/api/v1/customer/{cid}", json={"credit_code": "91110000600037341M"})
    assert resp.status_code == 422 and "credit_code" in resp.get_json()["message"]


def test_simultaneous_creates_of_one_company_make_one_file(app):
    """8 API clients post the same new company at the same instant, 10 times over: each time
    exactly one file is created and the other seven get the clash message (422), never a second
    file or a database error. The dedupe check alone cannot promise that; the unique guard does."""
    import threading

    from test_numbering import _api_login

    from app.extensions import db
    from app.models import Customer

    threads_n, rounds = 8, 10
    clients = [_api_login(app, 200 + i) for i in range(threads_n)]
    tag = uuid.uuid4().hex[:6]
    results: list[tuple[int, int, dict]] = []
    lock = threading.Lock()
    start = threading.Barrier(threads_n)

    def writer(n: int) -> None:
        c, auth = clients[n]
        for r in range(rounds):
            start.wait()
            resp = c.post("/api/v1/customer/", json={"name": f"同时{tag}第{r}科技有限公司"}, headers=auth)
            with lock:
                results.append((r, resp.status_code, resp.get_json(silent=True) or {}))

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(threads_n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for r in range(rounds):
        codes = sorted(code for rr, code, _ in results if rr == r)
        assert codes == [201] + [422] * (threads_n - 1), (r, codes)
    refused = [body for _, code, body in results if code == 422]
    assert all(body["clashes"] and "同时" in body["clashes"][0]["name"] for body in refused), refused[:2]
    with app.app_context():
        count = db.session.scalar(select(func.count()).select_from(Customer).where(Customer.name.like(f"同时{tag}%")))
    assert count == rounds
