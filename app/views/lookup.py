"""Type-ahead pickers for forms that reference a customer or a user: the form holds only the
current choice, the browser asks /api/v1/lookup/customer?q= (or /user) for at most 20 matches,
and the posted id is checked again on the server (row scope, not archived, active user). No
form or filter ever loads a whole large table into a dropdown."""
from __future__ import annotations

from flask import request, url_for
from flask_appbuilder.api import BaseApi, expose, safe
from flask_appbuilder.models.filters import BaseFilter
from flask_appbuilder.security.decorators import permission_name, protect
from flask_babel import gettext, lazy_gettext as _l
from markupsafe import Markup
from sqlalchemy import select
from wtforms import Field
from wtforms.validators import DataRequired, Optional, ValidationError

from app.extensions import db
from app.models import CrmUser, Customer
from app.security.scopes import row_clause
from app.services import search


def _customer_in_scope(pk: int):
    return db.session.execute(select(Customer).where(Customer.id == pk, Customer.archived.is_(False),
                                                     row_clause(Customer))).scalar()


def _active_user(pk: int):
    return db.session.execute(select(CrmUser).where(CrmUser.id == pk, CrmUser.active.is_(True),
                                                    CrmUser.is_system.is_(False))).scalar()


def _customer_text(c) -> str:
    return f"{c.name} ({c.customer_no})"


def _user_text(u) -> str:
    return f"{u!r} ({u.username})"


KINDS = {"customer": (_customer_in_scope, _customer_text), "user": (_active_user, _user_text)}


class LookupWidget:
    def __call__(self, field, **kwargs):
        kwargs.setdefault("id", field.id)
        css = f"{kwargs.pop('class', '')} {kwargs.pop('class_', '')} form-control crm-lookup".strip()
        current = field.data
        option = Markup('<option value="%s" selected>%s</option>') % (current.id, field.text(current)) \
            if current is not None else Markup('<option value=""></option>')
        return Markup('<select name="%s" id="%s" class="%s" data-lookup-url="%s" data-placeholder="%s">%s</select>') % (
            field.name, kwargs["id"], css, url_for("LookupApi.lookup", kind=field.kind), gettext("Type to search"),
            option)


class LookupField(Field):
    """A customer or user reference chosen by typing: data is the object (or None)."""
    widget = LookupWidget()

    def __init__(self, label=None, validators=None, kind: str = "customer", **kwargs):
        super().__init__(label, validators, **kwargs)
        self.kind = kind
        self.loader, self.text = KINDS[kind]
        self._invalid = False

    def _value(self):
        return str(self.data.id) if self.data is not None else ""

    def process_formdata(self, valuelist):
        raw = (valuelist[0] if valuelist else "") or ""
        self.data = None
        if raw.strip() and raw.strip() != "__None":
            self.data = self.loader(int(raw)) if raw.strip().isdigit() else None
            self._invalid = self.data is None

    def pre_validate(self, form):
        if self._invalid:
            raise ValidationError(gettext("Not a valid choice: pick one from the list while typing."))


def lookup_field(label, kind: str = "customer", required: bool = True) -> LookupField:
    return LookupField(label, [DataRequired() if required else Optional()], kind=kind)


class LookupApi(BaseApi):
    """GET /api/v1/lookup/customer?q= and /api/v1/lookup/user?q=: at most 20 {id, text} for
    type-ahead pickers; customers in the caller's row scope and not archived."""
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
          - {in: path, name: kind, schema: {type: string, enum: [customer, user]}}
          - {in: query, name: q, schema: {type: string}}
          responses:
            200:
              description: at most 20 matches
        """
        q = request.args.get("q", "")
        if kind == "customer":
            return self.response(200, result=search.lookup_customers(q))
        if kind == "user":
            return self.response(200, result=search.lookup_users(q))
        return self.response_404()



class FilterUserText(BaseFilter):
    """A user column filtered by typing part of a user name or a person's name (a text box,
    never a dropdown of every user)."""
    name = _l("Name contains")
    arg_name = "usertext"

    def apply(self, query, value):
        value = str((value[0] if isinstance(value, (list, tuple)) and value else value) or "").strip()
        if not value:
            return query
        fk = getattr(self.model, f"{self.column_name}_id")
        return query.filter(fk.in_(search.user_ids_matching(value)))


def use_text_user_filter(view, column: str) -> None:
    """Replace FAB's related-dropdown filter on ``column`` (a user) by FilterUserText; the view
    must also declare ``search_form_extra_fields = {column: StringField(...)}``."""
    filters = view._filters
    flt = [FilterUserText(column, view.datamodel)]
    filters._search_filters = {**filters._search_filters, column: flt}
    filters._all_filters = {**filters._all_filters, column: flt}
