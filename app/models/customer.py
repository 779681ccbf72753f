"""The customer file (客户档案) and its contacts: DOMAIN.md table 1."""
from __future__ import annotations


from flask_appbuilder import Model
from flask_appbuilder.models.mixins import AuditMixin
from sqlalchemy import (
    JSON, Boolean, Column, Date, DateTime, ForeignKey, Index, Integer, Numeric, String, Text, event, select,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Session, relationship

from app.services.dedupe import normalise_credit_code, normalise_name, normalise_phone
from app.services.search_keys import drop_tokens, pinyin_keys, write_tokens


def _dict_fk(name: str):
    return Column(name, Integer, ForeignKey("crm_dictionary_item.id"), nullable=True, index=True)


class Customer(AuditMixin, Model):
    __tablename__ = "crm_customer"
    # The list's sort by last contact (ORDER BY last_contact_at DESC, id DESC: these indexes read
    # backwards; PostgreSQL puts NULLs first there, as they do), for everyone and within one
    # owner's active customers (the staff scope; its capped count reads this index alone).
    # (archived, id): the active customers in id order from the index alone (PostgreSQL's deep pages
    # read their ids by an index-only scan; SQLite's index on archived holds the rowid anyway).
    # The department row scope (app/security/scopes.py department_clause) in two arms, each an
    # index read: (department_id, archived, id) a department's customers in id order from the index
    # alone (a supervisor's deep page); (owner_id, department_id) its members' customers filed in
    # another department (a few index ranges per member, usually empty).
    __table_args__ = (Index("ix_crm_customer_last_contact_order", "last_contact_at", "id"),
                      Index("ix_crm_customer_owner_last_contact", "owner_id", "archived", "last_contact_at", "id"),
                      Index("ix_crm_customer_archived_id", "archived", "id"),
                      Index("ix_crm_customer_department_archived_id", "department_id", "archived", "id"),
                      Index("ix_crm_customer_owner_department", "owner_id", "department_id"))
    id = Column(Integer, primary_key=True)
    customer_no = Column(String(40), unique=True, nullable=False)
    name = Column(String(200), nullable=False, index=True)
    # normalise_name(name), kept by the listeners below: the dedupe look-up key (一户一档)
    name_key = Column(String(200), index=True)
    # Database guards behind the dedupe checks (two simultaneous saves of the same company both
    # pass the check; the second then fails here): name_key of organisations (people may share
    # a name) and the credit code, unique; NULL where no guard applies.
    unique_name_key = Column(String(200), unique=True, index=True)
    unique_credit_code = Column(String(32), unique=True, index=True)
    # search keys (app/services/search.py), kept by the listeners below with the name tokens
    name_pinyin = Column(String(800), index=True)  # 华星科技 -> huaxingkeji
    name_initials = Column(String(200))             # 华星科技 -> hxkj
    kind_id = _dict_fk("kind_id")
    kind = relationship("DictionaryItem", foreign_keys=[kind_id])
    credit_code = Column(String(32), index=True)  # 统一社会信用代码 or ID no., stored normalised
    industry_id = _dict_fk("industry_id")
    industry = relationship("DictionaryItem", foreign_keys=[industry_id])
    scale_id = _dict_fk("scale_id")
    scale = relationship("DictionaryItem", foreign_keys=[scale_id])
    staff_count = Column(Integer)
    annual_revenue = Column(Numeric(16, 2))
    type_id = _dict_fk("type_id")
    type = relationship("DictionaryItem", foreign_keys=[type_id])
    level_id = _dict_fk("level_id")
    level = relationship("DictionaryItem", foreign_keys=[level_id])
    source_id = _dict_fk("source_id")
    source = relationship("DictionaryItem", foreign_keys=[source_id])
    region_id = _dict_fk("region_id")
    region = relationship("DictionaryItem", foreign_keys=[region_id])
    first_contact_date = Column(Date)
    cooperation_start = Column(Date)
    last_contact_at = Column(DateTime)  # indexed with id (__table_args__)
    total_amount = Column(Numeric(16, 2), default=0)  # NULL = not known (e.g. left blank)
    main_business = Column(String(200))
    # looked up through ix_crm_customer_owner_last_contact (owner_id first): no index of its own,
    # one less B-tree for every insert
    owner_id = Column(Integer, ForeignKey("ab_user.id"))
    owner = relationship("CrmUser", foreign_keys=[owner_id])
    department_id = Column(Integer, ForeignKey("crm_department.id"))  # indexed with archived, id (__table_args__)
    department = relationship("Department")
    remark = Column(Text)
    archived = Column(Boolean, nullable=False, default=False)  # indexed with id (__table_args__)
    # Values of the admin-defined fields (字段配置), keyed by CustomField.key; see app/services/fields.py
    extra = Column(JSON().with_variant(JSONB(), "postgresql"))
    contacts = relationship("Contact", back_populates="customer", cascade="all, delete-orphan")

    def __repr__(self) -> str:
        return self.name


class Contact(AuditMixin, Model):
    __tablename__ = "crm_contact"
    id = Column(Integer, primary_key=True)
    customer_id = Column(Integer, ForeignKey("crm_customer.id", ondelete="CASCADE"), nullable=False, index=True)
    customer = relationship(Customer, back_populates="contacts")
    name = Column(String(100), nullable=False, index=True)
    title = Column(String(100))
    phone = Column(String(40), index=True)
    phone_key = Column(String(40), index=True)  # normalise_phone(phone): the dedupe look-up key
    phone_last4 = Column(String(4), index=True)  # search by the last four digits
    email = Column(String(200))
    im_account = Column(String(100))
    preference = Column(String(200))
    is_primary = Column(Boolean, nullable=False, default=False)

    def __repr__(self) -> str:
        return self.name


def customer_keys(name: str | None, credit_code: str | None, person: bool) -> dict:
    """The derived columns of a customer (dedupe keys, their unique guards, search keys), for the
    listeners below."""
    return {column: values[0] for column, values in customer_keys_many([name], [credit_code], [person]).items()}


def customer_keys_many(names: list, credit_codes: list, persons: list, name_keys: list | None = None) -> dict[str, list]:
    """customer_keys over columns (bulk writers such as imports, which bypass the listeners):
    column -> its values. ``name_keys``: normalise_name(name) where the caller has it already."""
    name_key = [(normalise_name(n) if k is None else k) or None
                for n, k in zip(names, name_keys or [None] * len(names))]
    code = [normalise_credit_code(c) or None for c in credit_codes]
    pinyin, initials = zip(*map(pinyin_keys, names)) if names else ((), ())
    return {"name_key": name_key, "credit_code": code,
            "unique_name_key": [None if p else k for k, p in zip(name_key, persons)],
            "unique_credit_code": code, "name_pinyin": list(pinyin), "name_initials": list(initials)}


def contact_keys(phone: str | None) -> dict:
    key = normalise_phone(phone) or None
    return {"phone_key": key, "phone_last4": key[-4:] if key and len(key) >= 4 else None}


@event.listens_for(Customer, "before_insert")
@event.listens_for(Customer, "before_update")
def _customer_keys(mapper, connection, target: Customer) -> None:  # noqa: ARG001
    """Every ORM write keeps the derived keys in step with what they are made of."""
    for column, value in customer_keys(target.name, target.credit_code, _is_person(connection, target)).items():
        setattr(target, column, value)


def _is_person(connection, target: Customer) -> bool:
    from app.models.dictionary import DictionaryItem

    if target.kind is not None:
        return target.kind.code == "person"
    if target.kind_id is None:
        return False
    code = connection.execute(select(DictionaryItem.code).where(DictionaryItem.id == target.kind_id)).scalar()
    return code == "person"


@event.listens_for(Customer, "after_insert")
def _customer_tokens_new(mapper, connection, target: Customer) -> None:  # noqa: ARG001
    """The name's search tokens follow the name, in the same transaction."""
    write_tokens(connection, [(target.id, target.name, target.name_initials)], fresh=True)


def _stored_name_tokens(connection, target: Customer) -> None:
    """Drop the tokens of the name as stored (before this flush's UPDATE / DELETE)."""
    table = Customer.__table__
    row = connection.execute(select(table.c.name, table.c.name_initials).where(table.c.id == target.id)).first()
    if row is not None:
        drop_tokens(connection, [(target.id, row.name, row.name_initials)])


@event.listens_for(Customer, "before_update")
def _customer_tokens_old(mapper, connection, target: Customer) -> None:  # noqa: ARG001
    from sqlalchemy import inspect

    if inspect(target).attrs.name.history.has_changes():
        _stored_name_tokens(connection, target)


@event.listens_for(Customer, "after_update")
def _customer_tokens(mapper, connection, target: Customer) -> None:  # noqa: ARG001
    from sqlalchemy import inspect

    if inspect(target).attrs.name.history.has_changes():
        write_tokens(connection, [(target.id, target.name, target.name_initials)])


@event.listens_for(Customer, "before_delete")
def _customer_tokens_gone(mapper, connection, target: Customer) -> None:  # noqa: ARG001
    _stored_name_tokens(connection, target)


@event.listens_for(Contact, "before_insert")
@event.listens_for(Contact, "before_update")
def _contact_keys(mapper, connection, target: Contact) -> None:  # noqa: ARG001
    for column, value in contact_keys(target.phone).items():
        setattr(target, column, value)


@event.listens_for(Session, "before_flush")
def _one_primary_contact(session: Session, flush_context, instances) -> None:  # noqa: ARG001
    """A customer has one primary contact (主要联系人). A contact saved as primary (new, or its
    flag just set) takes over: the customer's other primaries are demoted, so field history
    records them. A primary contact moved to another customer (a merge) stays primary only if that
    customer has none. Runs before history's own before_flush (models load first)."""
    from sqlalchemy import inspect

    touched = [c for c in (*session.new, *session.dirty)
               if isinstance(c, Contact) and c.is_primary and c not in session.deleted]
    if not touched:
        return
    claimed: dict[int, Contact] = {}
    with session.no_autoflush:
        for contact in touched:
            customer_id = contact.customer.id if contact.customer is not None else contact.customer_id
            if customer_id is None:  # a new customer: nothing stored to demote
                continue
            state = inspect(contact)
            promoted = contact in session.new or state.attrs.is_primary.history.added == [True]
            moved = state.attrs.customer.history.has_changes() or state.attrs.customer_id.history.has_changes()
            if not (promoted or moved):
                continue
            others = [o for o in session.scalars(select(Contact).where(
                Contact.customer_id == customer_id, Contact.is_primary.is_(True)))
                if o is not contact and o.is_primary and o not in session.deleted]
            if customer_id in claimed and claimed[customer_id] is not contact:
                others.append(claimed[customer_id])
            if promoted:
                for other in others:
                    other.is_primary = False
                claimed[customer_id] = contact
            elif others:
                contact.is_primary = False
