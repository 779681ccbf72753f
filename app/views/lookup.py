"""Type-ahead pickers for forms that reference a customer, a user or a customer's contacts: the
form holds only the current choice, the browser asks /api/v1/lookup/customer?q= (or /user, or
/contact?customer=<id>) for at most 20 matches, and the posted id is checked again on the server
(row scope, not archived, active user). List filters on such a relation are typed text. No form
or filter ever loads a whole large table into a dropdown: PickersMixin makes every relation to
these tables in a view's add, edit and search forms a picker or a typed filter."""
from __future__ import annotations

from flask import request, url_for
from flask_appbuilder.api import BaseApi, expose, safe
from flask_appbuilder.models.sqla.filters import FilterRelation
from flask_appbuilder.security.decorators import permission_name, protect
from flask_appbuilder.security.sqla.models import User
from flask_babel import gettext, lazy_gettext as _l
from markupsafe import Markup
from sqlalchemy import inspect as sa_inspect, or_, select
from wtforms import Field, StringField
from wtforms.validators import DataRequired, Optional, StopValidation

from app.extensions import db
from app.models import Contact, CrmUser, Customer
from app.security.scopes import row_clause
from app.services import search


def _customer_in_scope(pk: int):
    return db.session.execute(select(Customer).where(Customer.id == pk, Customer.archived.is_(False),
                                                     row_clause(Customer))).scalar()


def _active_user(pk: int):
    return db.session.execute(select(CrmUser).where(CrmUser.id == pk, CrmUser.active.is_(True),
                                                    CrmUser.is_system.is_(False))).scalar()


def _contact_in_scope(pk: int):
    return db.session.execute(select(Contact).join(Customer, Contact.customer_id == Customer.id).where(
        Contact.id == pk, Customer.archived.is_(False), row_clause(Contact))).scalar()


def _customer_text(c) -> str:
    return f"{c.name} ({c.customer_no})"


def _user_text(u) -> str:
    return f"{u!r} ({u.username})"


def _contact_text(c) -> str:
    return f"{c.name} {c.title or ''}".strip()


KINDS = {"customer": (_customer_in_scope, _customer_text), "user": (_active_user, _user_text),
         "contact": (_contact_in_scope, _contact_text)}
KIND_OF_MODEL = {Customer: "customer", CrmUser: "user", Contact: "contact", User: "user"}  # FAB's groups name User


class LookupWidget:
    """<select class="crm-lookup"> holding only the current choice(s); crm-lookup.js asks the
    server while the user types. A contact picker sends the form's chosen customer along."""

    def __call__(self, field, **kwargs):
        kwargs.setdefault("id", field.id)
        css = f"{kwargs.pop('class', '')} {kwargs.pop('class_', '')} form-control crm-lookup".strip()
        options = Markup("").join(Markup('<option value="%s" selected>%s</option>') % (o.id, field.text(o))
                                  for o in field.chosen()) or Markup('<option value=""></option>')
        extra = Markup(' multiple data-multiple="1"') if field.multiple else Markup("")
        if field.kind == "contact":
            extra += Markup(' data-lookup-customer="customer"')
        return Markup('<select name="%s" id="%s" class="%s" data-lookup-url="%s" data-placeholder="%s"%s>%s</select>') % (
            field.name, kwargs["id"], css, url_for("LookupApi.lookup", kind=field.kind), gettext("Type to search"),
            extra, options)


class LookupField(Field):
    """A customer, user or contact reference chosen by typing: data is the object (or None).
    The posted id is loaded again through the kind's check; a value the record already had
    (e.g. a participant who has left since) is kept."""
    widget = LookupWidget()
    multiple = False

    def __init__(self, label=None, validators=None, kind: str = "customer", **kwargs):
        super().__init__(label, validators, **kwargs)
        self.kind = kind
        self.loader, self.text = KINDS[kind]
        self._invalid = False

    def chosen(self) -> list:
        return [self.data] if self.data is not None else []

    def _value(self):
        return str(self.data.id) if self.data is not None else ""

    def _load(self, raw: str):
        raw = (raw or "").strip()
        if not raw or raw == "__None":
            return None
        kept = self.object_data if isinstance(self.object_data, (list, tuple)) else [self.object_data]
        known = next((o for o in kept if o is not None and str(getattr(o, "id", "")) == raw), None)
        found = known or (self.loader(int(raw)) if raw.isdigit() else None)
        self._invalid = self._invalid or found is None
        return found

    def process_formdata(self, valuelist):
        self.data = self._load(valuelist[0] if valuelist else "")

    def pre_validate(self, form):
        if self._invalid:  # stop here: DataRequired would replace this with "required" (the id came, unknown)
            raise StopValidation(gettext("Not a valid choice: pick one from the list while typing."))


class LookupMultipleField(LookupField):
    """Several references chosen by typing (collaborators, participants, contacts): data is a list."""
    multiple = True

    def chosen(self) -> list:
        return list(self.data or [])

    def _value(self):
        return ",".join(str(o.id) for o in self.chosen())

    def process_formdata(self, valuelist):
        found = [self._load(v) for v in valuelist if (v or "").strip() and v != "__None"]
        self.data = list({o.id: o for o in found if o is not None}.values())


def lookup_field(label, kind: str = "customer", required: bool = True, multiple: bool = False) -> LookupField:
    cls = LookupMultipleField if multiple else LookupField
    return cls(label, [DataRequired() if required else Optional()], kind=kind)


class LookupApi(BaseApi):
    """GET /api/v1/lookup/customer?q=, /api/v1/lookup/user?q= and
    /api/v1/lookup/contact?customer=<id>&q=: at most 20 {id, text} for type-ahead pickers;
    customers (and their contacts) in the caller's row scope and not archived, active users."""
    resource_name = "lookup"
    allow_browser_login = True
    method_permission_name = {"lookup": "get"}
    base_permissions = ["can_get"]

    @expose("/<kind>", methods=["GET"])
    @protect()
    @safe
    @permission_name("get")
    def lookup(self, kind: str):
        """Type-ahead matches.
        ---
        get:
          parameters:
          - {in: path, name: kind, schema: {type: string, enum: [customer, user, contact]}}
          - {in: query, name: q, schema: {type: string}}
          - {in: query, name: customer, schema: {type: integer}, description: "contact: the customer's id"}
          responses:
            200:
              description: at most 20 matches
        """
        q = request.args.get("q", "")
        if kind == "customer":
            return self.response(200, result=search.lookup_customers(q))
        if kind == "user":
            return self.response(200, result=search.lookup_users(q))
        if kind == "contact":
            return self.response(200, result=search.lookup_contacts(request.args.get("customer", type=int), q))
        return self.response_404()



def _matching_ids(kind: str, text: str):
    """A SELECT of the ids of ``kind`` rows matching typed text (a user's or contact's id from a
    link matches too; a customer's digits are its number or a phone, its last four included —
    with a million customers every four digits would also be some customer's id)."""
    if kind == "customer":
        ids = search.text_match_ids(text)
    elif kind == "user":
        ids = search.user_ids_matching(text)
    else:
        ids = select(Contact.id).where(Contact.name.startswith(text.strip()))
    if kind != "customer" and text.strip().isdigit():
        model = {"customer": Customer, "user": CrmUser, "contact": Contact}[kind]
        ids = select(model.id).where(or_(model.id == int(text.strip()), model.id.in_(ids)))
    return ids


class FilterRelationText(FilterRelation):
    """A customer, user or contact column filtered by typed text (a customer's name piece, number
    or phone; a user's user name or name), never a dropdown of every row. A FilterRelation, so
    links like ``?_flt_0_customer=<id>`` (a customer page's 'add contact') still pre-fill forms."""
    NAMES = {"customer": _l("Name, number or phone"), "user": _l("Name contains"), "contact": _l("Name starts with")}
    arg_name = "reltext"

    def __init__(self, column_name, datamodel, is_related_view=False, kind=None):
        super().__init__(column_name, datamodel, is_related_view)
        # FAB makes fresh copies per request with (column_name, datamodel) only: the kind is the
        # relation's own (a handler is a user, not a customer)
        self.kind = kind or picker_kind(datamodel, column_name) or "customer"
        self.name = self.NAMES[self.kind]

    def apply(self, query, value):
        value = str((value[0] if isinstance(value, (list, tuple)) and value else value) or "").strip()
        if not value:
            return query
        ids = _matching_ids(self.kind, value)
        rel = sa_inspect(self.model).relationships[self.column_name]
        if rel.direction.name == "MANYTOONE":
            return query.filter(next(iter(rel.local_columns)).in_(ids))
        return query.filter(getattr(self.model, self.column_name).any(rel.mapper.class_.id.in_(ids)))


def picker_kind(datamodel, column: str) -> str | None:
    """'customer', 'user' or 'contact' when ``column`` is a relation to that table."""
    rel = sa_inspect(datamodel.obj).relationships.get(column)
    return KIND_OF_MODEL.get(rel.mapper.class_) if rel is not None else None


def use_text_filter(view, column: str, kind: str) -> None:
    """Replace FAB's related-dropdown filter on ``column`` by FilterRelationText."""
    filters = view._filters
    flt = [FilterRelationText(column, view.datamodel, kind=kind)]
    filters._search_filters = {**filters._search_filters, column: flt}
    filters._all_filters = {**filters._all_filters, column: flt}


class PickersMixin:
    """For ModelViews: every add/edit form column that is a relation to customers, users or
    contacts becomes a type-ahead picker (several values: LookupMultipleField), every such
    search column a typed-text filter, unless the view declares its own field."""

    def _init_properties(self) -> None:
        super()._init_properties()
        model = sa_inspect(self.datamodel.obj)
        for columns, attr in ((self.add_columns, "add_form_extra_fields"), (self.edit_columns, "edit_form_extra_fields")):
            fields = dict(getattr(self, attr) or {})
            for col in columns or []:
                kind = picker_kind(self.datamodel, col)
                if kind and col not in fields:
                    rel = model.relationships[col]
                    required = rel.direction.name == "MANYTOONE" and not all(c.nullable for c in rel.local_columns)
                    fields[col] = lookup_field(self.label_columns.get(col, col), kind, required=required,
                                               multiple=rel.uselist)
            setattr(self, attr, fields)
        search_fields = dict(self.search_form_extra_fields or {})
        for col in self.search_columns or []:
            kind = picker_kind(self.datamodel, col)
            if kind:
                search_fields.setdefault(col, StringField(self.label_columns.get(col, col)))
                use_text_filter(self, col, kind)
        self.search_form_extra_fields = search_fields
