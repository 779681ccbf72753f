"""One customer, one file (一户一档): the keys that identify a customer and the look-up that
finds the existing customers a new or edited one would duplicate.

Three keys, each stored on its row and indexed, so that a look-up is a handful of indexed
equality queries however many customers there are (no LIKE, no scan):

* ``Customer.name_key``  = normalise_name(name)
* ``Customer.credit_code`` itself, stored normalised (normalise_credit_code)
* ``Contact.phone_key``  = normalise_phone(phone)

The keys are kept up to date by mapper listeners in app/models/customer.py on every insert and
update through the ORM (forms, API, importer, demo data). Bulk ``UPDATE`` statements bypass
them: whoever writes names or phones in bulk must set the keys too.

Name rules (normalise_name), applied in this order:

1. Unicode NFKC: full-width letters, digits, brackets and spaces become half-width
   (ＡＢＣ１２３ -> ABC123, （ -> (, the ideographic space U+3000 -> space).
2. Latin letters lower-cased.
3. A trailing English legal form is dropped as a whole word: "co., ltd.", "co. ltd", "ltd",
   "limited", "inc", "corp", "corporation", "llc" (so "Huaxin Co., Ltd." = "Huaxin").
4. Every whitespace and invisible format character (zero-width space, BOM) is removed.
5. Brackets are unified to round ones: （）［］【】〔〕〖〗｛｝[] {} -> ().
6. The region markers "(中国)" and "(china)" are removed wherever they appear.
7. One legal-form suffix is removed from the end, longest first: 股份有限公司, 集团有限公司,
   有限责任公司, 有限公司, 公司 -- except that the 公司 of a branch (分公司) stays, so a
   branch never equals its head office.
8. If nothing is left (the name was only a legal form), the result of step 6 is kept.

So '上海华信（中国）有限公司', '上海华信有限责任公司' and ' 上海 华信 ' all give '上海华信'.
The bare word 中国 is never removed (中国银行 stays 中国银行).

Individuals (客户类型 个人) are not matched by name: two people called 王芳 are two customers.
Their ID number and phones still match.
"""
from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, field
from typing import Any, Iterable

from flask import g, has_app_context
from flask_babel import gettext as _
from sqlalchemy import select
from sqlalchemy.orm import joinedload

# -- names ------------------------------------------------------------------------------------

_BRACKETS = str.maketrans({"[": "(", "]": ")", "【": "(", "】": ")", "〔": "(", "〕": ")",
                           "〖": "(", "〗": ")", "{": "(", "}": ")"})
_REGION_MARKERS = ("(中国)", "(china)")
_LEGAL_SUFFIXES = ("股份有限公司", "集团有限公司", "有限责任公司", "有限公司", "公司")  # longest first
_EN_LEGAL_FORM = re.compile(
    r"[\s,.]*\b(?:(?:co|company)\b[\s,.]*)?(?:ltd|limited|inc|incorporated|corp|corporation|llc)\b[\s,.]*$")


# Only common Chinese characters and ASCII digits: rules 1-6 change nothing (imports' usual case).
_PLAIN_NAME = re.compile(r"[\u4e00-\u9fff0-9]+")


def normalise_name(name: str | None) -> str:
    """The dedupe key of a customer name (rules in the module docstring); '' for no name."""
    if not name:
        return ""
    if _PLAIN_NAME.fullmatch(name):
        return _strip_legal_suffix(name)
    s = unicodedata.normalize("NFKC", name).lower()
    s = _EN_LEGAL_FORM.sub("", s)
    s = "".join(ch for ch in s if not ch.isspace() and unicodedata.category(ch) != "Cf")
    s = s.translate(_BRACKETS)
    for marker in _REGION_MARKERS:
        s = s.replace(marker, "")
    return _strip_legal_suffix(s)


def _strip_legal_suffix(s: str) -> str:
    """Rules 7 and 8."""
    for suffix in _LEGAL_SUFFIXES:
        if s.endswith(suffix):
            if suffix == "公司" and s.endswith("分公司"):
                break
            stripped = s[: -len(suffix)]
            if stripped:
                s = stripped
            break
    return s


# -- unified social credit code (GB 32100-2015) ------------------------------------------------

CREDIT_CHARSET = "0123456789ABCDEFGHJKLMNPQRTUWXY"  # 31 characters: no I, O, S, V, Z
_CREDIT_VALUE = {c: i for i, c in enumerate(CREDIT_CHARSET)}
CREDIT_WEIGHTS = (1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28)  # 3^(i) mod 31
# 登记管理部门代码 (1st character): 1 机构编制 2 外交 3 司法行政 4 文化 5 民政 6 旅游 7 宗教
# 8 工会 9 工商/市场监管 A 中央军委改革和编制办公室 N 农业 Y 其他.
REGISTRATION_AUTHORITIES = frozenset("123456789ANY")
# GB 11714 organisation code (characters 9-17): weights of its 8 body characters.
ORG_CODE_WEIGHTS = (3, 7, 9, 10, 5, 8, 4, 2)


_CLEAN_CODE = re.compile(r"[0-9A-Z]+")  # already normalised


def normalise_credit_code(code: str | None) -> str:
    """Half-width, upper case, without spaces or dashes: how credit codes are stored."""
    if not code:
        return ""
    if _CLEAN_CODE.fullmatch(code):
        return code
    s = unicodedata.normalize("NFKC", code).upper()
    return "".join(ch for ch in s if not ch.isspace() and ch not in "-_" and unicodedata.category(ch) != "Cf")


def credit_check_char(first17: str) -> str:
    """The 18th character of a credit code: 31 - (Σ value × weight mod 31), 31 -> 0."""
    total = sum(_CREDIT_VALUE[c] * w for c, w in zip(first17, CREDIT_WEIGHTS))
    return CREDIT_CHARSET[(31 - total % 31) % 31]


def org_code_check_char(body8: str) -> str:
    """The 9th character of a GB 11714 organisation code: 11 - (Σ value × weight mod 11),
    10 -> X, 11 -> 0; a letter is worth 10 (A) to 35 (Z)."""
    total = sum((int(c) if c.isdigit() else ord(c) - 55) * w for c, w in zip(body8, ORG_CODE_WEIGHTS))
    c = 11 - total % 11
    return "X" if c == 10 else "0" if c == 11 else str(c)


def validate_credit_code(code: str | None) -> str | None:
    """None when ``code`` (normalised first) is a valid unified social credit code, else the
    reason, in the user's language. Checks, in order: 18 characters; only the GB 32100
    character set; the registration authority (1st); the entity category (2nd, a digit 1-9);
    the region code (3rd-8th, digits); the GB 11714 organisation code check (9th-17th); the
    GB 32100 check character (18th).

    The category is only required to be a digit 1-9, not looked up per authority: the table
    has grown since 2015 and a valid code must never be refused.
    """
    c = normalise_credit_code(code)
    if len(c) != 18:
        return _("A credit code has 18 characters, this one has %(n)d.", n=len(c))
    bad = sorted({ch for ch in c if ch not in _CREDIT_VALUE})
    if bad:
        return _("A credit code never contains %(chars)s (only digits and capital letters "
                 "other than I, O, S, V and Z).", chars=" ".join(bad))
    if c[0] not in REGISTRATION_AUTHORITIES:
        return _("The first character (registration authority) must be one of 1-9, A, N, Y; "
                 "found %(c)s.", c=c[0])
    if c[1] not in "123456789":
        return _("The second character (entity category) must be a digit 1-9; found %(c)s.", c=c[1])
    if not c[2:8].isdigit():
        return _("Characters 3-8 (region code) must be digits; found %(s)s.", s=c[2:8])
    if org_code_check_char(c[8:16]) != c[16]:
        return _("Characters 9-17 (organisation code %(s)s) fail their check: the code is mistyped.",
                 s=c[8:17])
    if credit_check_char(c[:17]) != c[17]:
        return _("The last character (check character) does not match the rest: the code is mistyped.")
    return None


_CREDIT_SHAPE = re.compile(r"[1-9ANY][1-9][0-9]{6}[0-9A-HJ-NPQRTUWXY]{10}")  # all but the two checks


def credit_code_reasons(codes: list[str]) -> list[str | None]:
    """validate_credit_code over a column of normalised codes, the two check characters computed
    for all of them at once (numpy); the reason is only worked out for the bad ones."""
    import numpy as np

    shaped = [i for i, c in enumerate(codes) if _CREDIT_SHAPE.fullmatch(c)]
    good = set()
    if shaped:
        chars = np.frombuffer("".join(codes[i] for i in shaped).encode("ascii"), dtype=np.uint8).reshape(-1, 18)
        value = np.zeros(128, dtype=np.int64)
        value[[ord(c) for c in CREDIT_CHARSET]] = range(len(CREDIT_CHARSET))
        values = value[chars]
        check = (31 - (values[:, :17] @ np.array(CREDIT_WEIGHTS)) % 31) % 31
        body = chars[:, 8:16].astype(np.int64)
        org = 11 - (np.where(body <= ord("9"), body - 48, body - 55) @ np.array(ORG_CODE_WEIGHTS)) % 11
        org_char = np.where(org == 10, ord("X"), np.where(org == 11, ord("0"), org + 48))
        ok = (check == values[:, 17]) & (org_char == chars[:, 16])
        good = {i for i, passed in zip(shaped, ok.tolist()) if passed}
    return [None if i in good else validate_credit_code(c) for i, c in enumerate(codes)]


# -- phones -----------------------------------------------------------------------------------

_EXTENSION = re.compile(r"(转|分机|ext\.?|x|#).*$", re.IGNORECASE)
_MOBILE = re.compile(r"^1[3-9]\d{9}$")
PLAIN_MOBILE = re.compile(r"1[3-9][0-9]{9}")  # already its own key
MIN_PHONE_DIGITS = 7


def normalise_phone(phone: str | None) -> str:
    """The dedupe key of a phone number, '' when it has fewer than 7 digits.

    Full-width digits become half-width; an extension (转 123, 分机, ext, x, #) is dropped, so
    the switchboard is the key; spaces, dashes, dots and brackets go. The country prefix +86,
    0086 (or 86 before an 11-digit mobile) is removed and the trunk 0 of a landline restored:
    '+86 21 6234 5678', '(021) 6234-5678' and '021-62345678' all give '02162345678';
    '+86 138-0013-8000', '８６１３８００１３８０００' and '138 0013 8000' give '13800138000'.
    Other countries keep a leading '+' ('00852 2345 6789' -> '+85223456789'). A landline
    written without its area code stays as written (it cannot be completed safely).
    """
    if not phone:
        return ""
    if PLAIN_MOBILE.fullmatch(phone):
        return phone
    s = unicodedata.normalize("NFKC", phone).strip()
    s = _EXTENSION.sub("", s)
    international = s.startswith("+")
    digits = re.sub(r"\D", "", s)
    if digits.startswith("00"):
        international, digits = True, digits[2:]
    if international or (digits.startswith("86") and _MOBILE.match(digits[2:])):
        if digits.startswith("86"):
            digits = digits[2:]
            if digits.startswith("0"):  # '+86 (0)21 ...'
                digits = digits[1:]
            if not _MOBILE.match(digits):
                digits = "0" + digits
        else:
            digits = "+" + digits
    if sum(ch.isdigit() for ch in digits) < MIN_PHONE_DIGITS:
        return ""
    return digits


# -- the look-up ------------------------------------------------------------------------------

MATCH_LIMIT = 10  # per key: enough to show, bounded even when legacy data holds many copies


@dataclass
class Clash:
    """An existing customer that the checked data would duplicate, and on which keys."""
    customer_id: int
    customer_no: str
    name: str
    owner: str | None  # display name, None when the viewer may not see it
    matched_on: list[str] = field(default_factory=list)  # "name", "credit_code", "phone"
    phones: list[str] = field(default_factory=list)  # the matching phone keys

    def message(self) -> str:
        if self.owner:
            return _("Duplicate of existing customer %(no)s %(name)s (owner: %(owner)s)",
                     no=self.customer_no, name=self.name, owner=self.owner)
        return _("Duplicate of existing customer %(no)s %(name)s", no=self.customer_no, name=self.name)

    def as_dict(self) -> dict[str, Any]:
        return {"id": self.customer_id, "customer_no": self.customer_no, "name": self.name,
                "owner": self.owner, "matched_on": list(self.matched_on), "message": self.message()}


def display_name(user) -> str:
    """张伟 for Chinese names (family name first, no space), 'Wei Zhang' otherwise."""
    first, last = (user.first_name or "").strip(), (user.last_name or "").strip()
    if any("\u4e00" <= ch <= "\u9fff" for ch in first + last):
        return f"{last}{first}"
    return " ".join(p for p in (first, last) if p) or user.username


def may_see_owner(viewer, customer) -> bool:
    """Whether ``viewer`` may learn who owns ``customer``: exactly when the customer lies in
    the viewer's row scope (app/security/scopes.py), i.e. when they could open it anyway."""
    from app.security.scopes import in_scope, policy_for

    if viewer is None or customer.owner is None:
        return False
    return policy_for(viewer).scope != "none" and in_scope(customer, viewer)


def _current_viewer():
    if has_app_context():
        user = g.get("user")
        if user is not None and getattr(user, "is_authenticated", True):
            return user
    return None


_DEFAULT = object()


def find_duplicates(name: str | None, credit_code: str | None, phones: Iterable[str | None] = (),
                    exclude_id: int | None = None, *, match_name: bool = True,
                    exclude_contact_id: int | None = None, viewer: Any = _DEFAULT) -> list[Clash]:
    """Existing customers sharing the normalised name, the credit code or a contact phone with
    the given data, one Clash per customer (in the order name, credit code, phone).

    ``exclude_id``: the customer being edited (never a clash with itself; its own contacts'
    phones neither). ``match_name=False`` for individuals. ``exclude_contact_id``: the contact
    being edited. ``viewer``: whose eyes the owner is shown to (default: the logged-in user).
    Each key is one indexed equality (or IN) query, bounded by MATCH_LIMIT.
    """
    from app.extensions import db

    if viewer is _DEFAULT:
        viewer = _current_viewer()
    # The look-up must not flush what is being checked (an API PUT has already loaded the new
    # values into the row): it reads what is stored, and the row itself is excluded anyway.
    with db.session.no_autoflush:
        return _find(name, credit_code, phones, exclude_id, match_name, exclude_contact_id, viewer)


def _find(name, credit_code, phones, exclude_id, match_name, exclude_contact_id, viewer) -> list[Clash]:
    from app.extensions import db
    from app.models import Contact, Customer

    found: dict[int, Clash] = {}

    def add(customer, key: str, phone: str | None = None) -> None:
        clash = found.get(customer.id)
        if clash is None:
            owner = display_name(customer.owner) if may_see_owner(viewer, customer) else None
            clash = found[customer.id] = Clash(customer.id, customer.customer_no, customer.name, owner)
        if key not in clash.matched_on:
            clash.matched_on.append(key)
        if phone and phone not in clash.phones:
            clash.phones.append(phone)

    def customers(*where):
        q = select(Customer).options(joinedload(Customer.owner)).where(*where)
        if exclude_id is not None:
            q = q.where(Customer.id != exclude_id)
        # No ORDER BY: with one, a planner may walk the primary key instead of the key's index.
        return sorted(db.session.execute(q.limit(MATCH_LIMIT)).unique().scalars(), key=lambda c: c.id)

    name_key = normalise_name(name) if match_name else ""
    if name_key:
        for c in customers(Customer.name_key == name_key):
            add(c, "name")
    code = normalise_credit_code(credit_code)
    if code:
        for c in customers(Customer.credit_code == code):
            add(c, "credit_code")
    keys = sorted({k for k in (normalise_phone(p) for p in phones or ()) if k})
    if keys:
        q = (select(Contact.phone_key, Customer).join(Customer, Contact.customer_id == Customer.id)
             .options(joinedload(Customer.owner)).where(Contact.phone_key.in_(keys)))
        if exclude_id is not None:
            q = q.where(Contact.customer_id != exclude_id)
        if exclude_contact_id is not None:
            q = q.where(Contact.id != exclude_contact_id)
        rows = sorted(db.session.execute(q.limit(MATCH_LIMIT)).unique(), key=lambda r: r[1].id)
        for phone_key, c in rows:
            add(c, "phone", phone_key)
    return list(found.values())


def existing_keys(name_keys: Iterable[str], credit_codes: Iterable[str], phone_keys: Iterable[str],
                  chunk: int = 5000) -> dict[str, dict[str, list[tuple[int, str, str]]]]:
    """The set-based look-up for many rows at once (imports): for each kind of key ("name",
    "credit_code", "phone"), key -> [(customer id, customer no., name)] of the stored customers
    holding it. Keys must already be normalised (normalise_name / _credit_code / _phone). One
    indexed IN query per chunk of keys and kind, never one query per row."""
    from app.extensions import db
    from app.models import Contact, Customer

    out: dict[str, dict[str, list[tuple[int, str, str]]]] = {"name": {}, "credit_code": {}, "phone": {}}
    plans = (("name", Customer.name_key, sorted(set(name_keys) - {""}), False),
             ("credit_code", Customer.credit_code, sorted(set(credit_codes) - {""}), False),
             ("phone", Contact.phone_key, sorted(set(phone_keys) - {""}), True))
    with db.session.no_autoflush:
        for kind, column, keys, via_contact in plans:
            for start in range(0, len(keys), chunk):
                q = select(column, Customer.id, Customer.customer_no, Customer.name)
                if via_contact:
                    q = q.select_from(Contact).join(Customer, Contact.customer_id == Customer.id)
                for key, cid, no, name in db.session.execute(q.where(column.in_(keys[start:start + chunk]))):
                    hits = out[kind].setdefault(key, [])
                    if all(h[0] != cid for h in hits):
                        hits.append((cid, no, name))
    return out


# -- checks for the views, the API and the importer --------------------------------------------

class CustomerDuplicateError(Exception):
    """Raised by the API's pre_add/pre_update when a check fails; carries the CheckResult."""

    def __init__(self, result: "CheckResult"):
        self.result = result
        super().__init__("; ".join(m for ms in result.errors.values() for m in ms))


@dataclass
class CheckResult:
    """Field -> messages for the form or the 422 answer, and the clashes behind them."""
    errors: dict[str, list[str]] = field(default_factory=dict)
    clashes: list[Clash] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.errors

    def add(self, field_name: str, message: str) -> None:
        self.errors.setdefault(field_name, []).append(message)

    def as_dict(self) -> dict[str, Any]:
        return {"message": self.errors, "clashes": [c.as_dict() for c in self.clashes]}


def _stored_credit_code(customer_id: int) -> str:
    from app.extensions import db
    from app.models import Customer

    with db.session.no_autoflush:
        stored = db.session.execute(select(Customer.credit_code).where(Customer.id == customer_id)).scalar()
    return normalise_credit_code(stored)


def check_customer(name: str | None, credit_code: str | None, kind_code: str | None = None,
                   exclude_id: int | None = None, phones: Iterable[str | None] = (),
                   viewer: Any = _DEFAULT) -> CheckResult:
    """Everything that stops a customer from being saved as a file of its own: an invalid
    credit code (organisations; an individual's field holds an ID or passport number) and
    clashes with existing customers, each message on the field that matched.

    On edit (``exclude_id``) a credit code is only validated when it changes, so that a legacy
    row with a bad code can still have its other fields updated."""
    result = CheckResult()
    person = kind_code == "person"
    code = normalise_credit_code(credit_code)
    if code and not person and not (exclude_id is not None and code == _stored_credit_code(exclude_id)):
        reason = validate_credit_code(credit_code)
        if reason:
            result.add("credit_code", reason)
    result.clashes = find_duplicates(name, credit_code, phones, exclude_id, match_name=not person,
                                     viewer=viewer)
    field_of = {"name": "name", "credit_code": "credit_code", "phone": "phones"}
    for clash in result.clashes:
        for key in clash.matched_on:
            result.add(field_of[key], clash.message())
    return result


def check_contact_phone(phone: str | None, customer_id: int | None, contact_id: int | None = None,
                        viewer: Any = _DEFAULT) -> CheckResult:
    """A contact's phone must not belong to a contact of another customer (the same customer's
    contacts may share a switchboard)."""
    result = CheckResult()
    result.clashes = find_duplicates(None, None, [phone], customer_id, match_name=False,
                                     exclude_contact_id=contact_id, viewer=viewer)
    for clash in result.clashes:
        result.add("phone", clash.message())
    return result
