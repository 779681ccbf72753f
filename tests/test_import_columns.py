"""Column-wise import checks (导入校验按列): a whole column of a chunk is parsed at once, with
fast paths for the usual spellings, and the credit codes' check characters, the dedupe keys and
the pinyin search keys are computed per column. Whatever a cell holds, the value saved and the
message shown must be exactly those of checking that cell alone."""
from __future__ import annotations

import random
from datetime import date, datetime

from pypinyin import Style, lazy_pinyin

from app.services.dedupe import (
    CREDIT_CHARSET, credit_check_char, credit_code_reasons, normalise_credit_code, normalise_name, normalise_phone,
    org_code_check_char, validate_credit_code,
)

ODD = {
    "name": [None, "", "  ", " 上海华信有限公司 ", "x" * 300, 12345, 3.5, True, "ＡＢＣ Co., Ltd.", "王芳"],
    "first_contact_date": ["2023-05-01", " 2023-05-01 ", "2023-02-30", "2023-13-01", "0001-01-01", "2023/5/1",
                           "2023年5月1日", "20230501", 45000, 45000.5, "44000", datetime(2023, 1, 2, 3, 4),
                           date(2022, 2, 2), "05/01/2023", "x", True, None, "２０２３-０５-０１"],
    "total_amount": ["1,200.50", "1200", "-5", "12万", "1.5亿元", "¥1,200.50", "1,2,3", "12,34", "1e5", 123.456, 7,
                     10 ** 15, "100000000000000", "abc", "１２３", "00012", True, " 8 "],
    "staff_count": ["12", "12.5", "1,000", 12.0, 12.5, 2 ** 31, "3千", "-3", "x"],
    "contact_phone": ["13800138000", " 13912345678 ", "138 0013 8000", "+86 13800138000", "021-62345678", "12345",
                      "abc", 13800138000, "138001380001", "13800138000转12", "１３８００１３８０００", "12800138000"],
    "contact_email": ["x@example.com", " y@example.com ", "a@b", "bad", "a b@c.d", "z@z.co\n", "a@b.c.", 5],
    "contact_name": ["李" * 100, "李" * 101, " 王芳 ", 7],
    "industry": ["制造业", "制造", "C", "Manufacturing", "汽车", 3.0, "制造业", " 制造业 ", "制造"],
    "kind": ["单位", "个人", "单", "unknown", "单位", " 单位 "],
}


def test_a_column_gives_each_cell_the_value_and_message_it_gets_alone(app):
    from app.services.importer import BLANK, Lookups, Problem, importable_fields, parse_cell, parse_column

    with app.test_request_context():
        specs = {s.key: s for s in importable_fields()}
        lookups = Lookups([specs[k] for k in ODD])
        for key, values in ODD.items():
            column = parse_column(specs[key], "表头", values, lookups, False)
            assert len(column) == len(values)
            for v, got in zip(values, column):
                if v is None or (isinstance(v, str) and not v.strip()):
                    assert got is BLANK, (key, v)
                    continue
                try:
                    want = parse_cell(specs[key], "表头", v, lookups, False)
                except Problem as p:
                    want = p
                assert type(got) is type(want) and got == want, (key, v, got, want)


def test_credit_codes_checked_per_column_give_the_reasons_of_one_by_one(app):
    rnd = random.Random(4)
    codes = []
    for i in range(3000):
        body = "".join(rnd.choice(CREDIT_CHARSET) for _ in range(8))
        first17 = rnd.choice("91NY5A") + rnd.choice("1239") + f"{rnd.randint(0, 999999):06d}" + body \
            + org_code_check_char(body)
        code = first17 + credit_check_char(first17)
        if i % 3 == 0:
            code = code[:-1] + rnd.choice(CREDIT_CHARSET)  # a mistyped check character, mostly
        if i % 7 == 0:
            code = code[:5] + rnd.choice("0123456789ABCIOSZ") + code[6:]
        if i % 11 == 0:
            code = code[:16] + rnd.choice("0123456789X") + code[17:]
        codes.append(code)
    codes += ["", "ABC", "91310000MA1FL8T01X", "0" * 18, "Z" * 18]
    with app.test_request_context():
        reasons = credit_code_reasons(codes)
        assert reasons == [validate_credit_code(c) for c in codes]
        assert 0 < sum(r is None for r in reasons) < len(codes)


def test_dedupe_keys_of_plain_values_are_those_of_the_full_rules():
    from app.models.customer import customer_keys, customer_keys_many

    names = ["上海华信有限公司", "上海华信分公司", "公司", "有限公司", "华信123股份有限公司", "上海华信（中国）有限公司", "ABC公司"]
    assert [normalise_name(n) for n in names] == ["上海华信", "上海华信分公司", "公司", "有限公司", "华信123", "上海华信", "abc"]
    assert [normalise_phone(p) for p in ("13800138000", "8613800138000", "１３８００１３８０００")] == ["13800138000"] * 3
    assert normalise_credit_code("91310000MA1FL8T01X") == "91310000MA1FL8T01X"
    assert normalise_credit_code(" 91310000-ma1fl8t01x ") == "91310000MA1FL8T01X"
    many = customer_keys_many(["上海华信有限公司", "王芳"], [" 91310000-ma1fl8t01x ", None], [False, True])
    assert [{k: v[i] for k, v in many.items()} for i in range(2)] == [
        customer_keys("上海华信有限公司", "91310000MA1FL8T01X", False), customer_keys("王芳", None, True)]
    assert many["unique_name_key"] == ["上海华信", None]


def test_pinyin_search_keys_read_each_name_as_pypinyin_reads_it_whole():
    from app.services.search_keys import _clean, pinyin_keys

    rnd = random.Random(9)
    pool = list("重庆重要银行长沙华星科技有限公司中国上海北京 （）()ABC abc123-_.〇㐀，、ａ①é한かな")
    names = ["重庆重要银行", "重庆华星0000123科技有限公司", "长沙银行行长", "ABC科技", "〇一二三"] + [
        "".join(rnd.choice(pool) for _ in range(rnd.randint(1, 16))) for _ in range(3000)]
    for name in names:
        full = _clean("".join(lazy_pinyin(name, errors="default"))) or None
        initials = _clean("".join(lazy_pinyin(name, style=Style.FIRST_LETTER, errors="default"))) or None
        assert pinyin_keys(name) == (full, initials), name
    assert pinyin_keys("重庆重要银行") == ("chongqingzhongyaoyinhang", "cqzyyh")
