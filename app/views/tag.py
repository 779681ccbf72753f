"""Tags (标签): the dimension/value dictionary for admins, a customer's tags (related view on the
customer page and /api/v1/customer_tag/), the "has tag" list filter and the tag badges."""
from __future__ import annotations

from app.security.scopes import ROW_SCOPE, require_in_scope, row_clause

from datetime import datetime
from typing import NamedTuple

from flask import g, request
from flask_appbuilder import ModelRestApi, ModelView
from flask_appbuilder.api import expose, safe
from flask_appbuilder.fields import QuerySelectField
from flask_appbuilder.models.filters import BaseFilter
from flask_appbuilder.models.sqla.filters import FilterEqual
from flask_appbuilder.security.decorators import permission_name, protect
from flask_babel import gettext, lazy_gettext as _l
from markupsafe import Markup, escape
from sqlalchemy import false, true
from wtforms import StringField
from wtforms.validators import Optional

from app.extensions import appbuilder, db
from app.models import Customer, CustomerTag, Tag, TagDimension
from app.models.tag import SOURCE_MANUAL
from app.services import tagging
from app.views.lookup import lookup_field
from app.views.formatting import CrmSQLAInterface, LocalizedValuesMixin, fmt_datetime

TAG_LABELS = {
    "name": _l("Name"), "name_en": _l("English Name"), "key": _l("Key"), "sort": _l("Sort"),
    "active": _l("Active"), "dimension": _l("Tag Dimension"), "tags": _l("Tags"),
    "customer": _l("Customer"), "tag": _l("Tag"), "free_tag": _l("Free Tag"), "source": _l("Source"),
    "tagged_by": _l("Tagged by"), "tagged_at": _l("Tagged at"), "label": _l("Tag"),
    "exclusive": _l("Exclusive"),
}
SOURCE_NAMES = {"manual": _l("Manual"), "rule": _l("Rule")}


def tag_badges(links) -> Markup:
    """A customer's tags as 维度-值 badges (escaped); each tag's badge made once per request (a
    list page shows the same few tags hundreds of times, and each label asks the language)."""
    made = g.setdefault("_crm_tag_badges", {})
    for link in links or []:
        if link.tag is not None and link.tag_id not in made:
            made[link.tag_id] = Markup('<span class="label label-info crm-tag">%s</span>') % escape(link.tag.label)
    return Markup(" ").join(made[link.tag_id] for link in (links or []) if link.tag is not None)


class PageTagLink(NamedTuple):
    """What tag_badges reads of a customer's tag link."""
    tag_id: int
    tag: tagging.TagLabel


def page_tag_links(ids: list[int]) -> dict[int, list[PageTagLink]]:
    """A list page's customers' tag links for tag_badges, without an ORM object per link
    (tagging.tags_of_page)."""
    return {cid: [PageTagLink(t.id, t) for t in tags] for cid, tags in tagging.tags_of_page(ids).items()}


def _source_name(value) -> str:
    return str(SOURCE_NAMES.get(value, value or ""))


def _active_tags():
    return (db.session.query(Tag).join(TagDimension)
            .filter(Tag.active.is_(True), TagDimension.active.is_(True))
            .order_by(TagDimension.sort, TagDimension.id, Tag.sort, Tag.id))


class FilterHasTag(BaseFilter):
    """Customers carrying every tag given: a tag id (the select box) or 维度-值 labels, comma
    separated (typed/URL). Two such filters AND together too; see the any/none filters for OR and NOT."""
    name = _l("Has tag")
    arg_name = "hastag"
    part = "include_all"

    def apply(self, query, value):
        if isinstance(value, (list, tuple)):
            value = ",".join(str(v) for v in value)
        value = str(value or "").strip()
        try:
            clause = tagging.tag_clause(**{self.part: value}) if value else false()
        except tagging.TagError:
            clause = false() if self.part != "exclude" else true()
        return query.filter(clause)


class FilterHasAnyTag(FilterHasTag):
    """Customers carrying at least one of the tags (OR)."""
    name = _l("Has any of the tags")
    arg_name = "hasanytag"
    part = "include_any"


class FilterNotTag(FilterHasTag):
    """Customers carrying none of the tags (NOT)."""
    name = _l("Has none of the tags")
    arg_name = "nottag"
    part = "exclude"


TAG_FILTERS = (FilterHasTag, FilterHasAnyTag, FilterNotTag)


def has_tag_search_field() -> QuerySelectField:
    return QuerySelectField(_l("Tags"), query_func=_active_tags, get_pk_func=lambda t: t.id,
                            get_label=lambda t: t.label, allow_blank=True)


def add_has_tag_filter(view) -> None:
    """Give a customer list view the 'has tag' filter under the pseudo-column 'tags'."""
    filters = view._filters
    made = [f("tags", view.datamodel) for f in TAG_FILTERS]
    filters._search_filters = {**filters._search_filters, "tags": made}
    filters._all_filters = {**filters._all_filters, "tags": made}


class _TagLinkInterface(CrmSQLAInterface):
    """The tag select is optional on the form: a free tag may be typed instead."""

    def is_nullable(self, col_name: str) -> bool:
        return True if col_name == "tag" else super().is_nullable(col_name)


def _may_create_tags() -> bool:
    return appbuilder.sm.has_access("can_add", "TagModelView")


def _tag_link_form(form_cls):
    class TagLinkForm(form_cls):
        def validate(self, extra_validators=None):
            valid = super().validate(extra_validators=extra_validators)
            tag, free = self.tag.data, (self.free_tag.data or "").strip()
            if tag is None and not free:
                self.tag.errors = list(self.tag.errors) + [gettext("Choose a tag or type a free tag.")]
                return False
            if free:
                if not _may_create_tags():
                    self.free_tag.errors = list(self.free_tag.errors) + [
                        gettext("Only administrators may type free tags; choose one from the list.")]
                    return False
                try:
                    tag = tagging.find_tag(free)
                except tagging.TagError as exc:
                    self.free_tag.errors = list(self.free_tag.errors) + [str(exc)]
                    return False
            customer = self.customer.data if "customer" in self else None
            message = tagging.duplicate_message(getattr(customer, "id", None), tag)
            if message:
                field = self.free_tag if free else self.tag
                field.errors = list(field.errors) + [message]
                return False
            return valid
    TagLinkForm.__name__ = form_cls.__name__
    return TagLinkForm


class CustomerTagModelView(LocalizedValuesMixin, ModelView):
    """A customer's tags, shown as a tab (偏好标签) on the customer page. Adding and removing
    need the right to edit customers; links are not edited (remove and add instead)."""
    datamodel = _TagLinkInterface(CustomerTag)
    base_filters = ROW_SCOPE  # tags follow their customer's row scope
    class_permission_name = "CustomerModelView"
    method_permission_name = {"list": "show", "show": "show", "add": "edit", "delete": "edit",
                              "edit": "edit_tag_link", "action": "edit", "action_post": "edit"}
    # Exactly the customer view's permissions, so FAB's permission sync (per view menu) changes
    # nothing there; only can_show and can_edit are used, "edit" maps to one that is never granted.
    base_permissions = ["can_add", "can_delete", "can_download", "can_edit", "can_list", "can_show"]
    list_title = show_title = _l("Preference Tags")
    add_title = _l("Add Tag")
    list_columns = ["tag", "source", "tagged_by", "tagged_at"]
    show_columns = ["customer", "tag", "source", "tagged_by", "tagged_at"]
    add_columns = ["customer", "tag", "free_tag"]
    edit_columns = ["tag"]
    search_columns = ["tag", "source"]
    base_order = ("id", "asc")
    label_columns = TAG_LABELS
    formatters_columns = {"tagged_at": fmt_datetime, "source": _source_name}
    add_form_query_rel_fields = {"tag": [["active", FilterEqual, True]]}
    add_form_extra_fields = {
        "customer": lookup_field(_l("Customer")),
        "free_tag": StringField(_l("Free Tag"), validators=[Optional()],
                                description=_l("Administrators may type a new tag as dimension-value, "
                                               "e.g. 区域-华东; a missing dimension or value is created.")),
    }

    def _init_forms(self) -> None:
        super()._init_forms()
        self.add_form = _tag_link_form(self.add_form)

    def pre_add(self, item: CustomerTag) -> None:
        require_in_scope(item.customer)
        free = (getattr(item, "free_tag", None) or "").strip()
        if free:
            item.tag = tagging.get_or_create_tag(free)
        item.source = SOURCE_MANUAL
        item.rule_id = None
        item.tagged_by_id = g.user.id
        item.tagged_at = datetime.utcnow()


class TagDimensionModelView(LocalizedValuesMixin, ModelView):
    datamodel = CrmSQLAInterface(TagDimension)
    list_title = show_title = _l("Tag Dimensions")
    add_title, edit_title = _l("Add Tag Dimension"), _l("Edit Tag Dimension")
    list_columns = ["name", "name_en", "key", "sort", "active"]
    add_columns = edit_columns = ["key", "name", "name_en", "sort", "active"]
    show_columns = add_columns
    label_columns = TAG_LABELS
    base_order = ("sort", "asc")


class TagModelView(LocalizedValuesMixin, ModelView):
    datamodel = CrmSQLAInterface(Tag)
    list_title = show_title = _l("Tags")
    add_title, edit_title = _l("Add Tag"), _l("Edit Tag")
    list_columns = ["dimension", "name", "name_en", "sort", "active"]
    add_columns = edit_columns = ["dimension", "name", "name_en", "sort", "active"]
    show_columns = add_columns
    search_columns = ["dimension", "name", "active"]
    label_columns = TAG_LABELS
    base_order = ("dimension_id", "asc")


class CustomerTagApi(ModelRestApi):
    """/api/v1/customer_tag/: list, show, add (POST {customer_id, tag_id | label}) and remove
    (DELETE /<id>) a customer's tags, under the customer API's permissions (read: get; write: put)."""
    resource_name = "customer_tag"
    datamodel = CrmSQLAInterface(CustomerTag)
    base_filters = ROW_SCOPE
    allow_browser_login = True
    class_permission_name = "CustomerApi"
    method_permission_name = {"get_list": "get", "get": "get", "post": "put", "delete": "put",
                              "put": "edit_tag_link", "info": "info"}
    base_permissions = ["can_delete", "can_get", "can_info", "can_merge", "can_post", "can_put"]  # as CustomerApi's
    list_columns = ["id", "customer_id", "customer.name", "tag_id", "tag.name",
                    "source", "rule_id", "tagged_by.username", "tagged_at"]
    show_columns = list_columns
    add_columns = edit_columns = ["customer", "tag"]
    search_columns = ["customer", "tag", "source"]

    @expose("/", methods=["POST"])
    @protect()
    @safe
    @permission_name("post")
    def post(self):
        """Tag a customer: JSON {"customer_id": 1, "tag_id": 2} or {"customer_id": 1, "label": "区域-华东"}.
        A label naming a missing dimension or value creates it only for administrators."""
        data = request.get_json(silent=True)
        if not isinstance(data, dict):
            return self.response_400(message=gettext("Send a JSON object."))
        customer_id, tag_id, label = data.get("customer_id"), data.get("tag_id"), data.get("label")
        if not isinstance(customer_id, int) or (tag_id is None and not label) or \
                (tag_id is not None and not isinstance(tag_id, int)):
            return self.response_400(message=gettext("customer_id and either tag_id or label are required."))
        customer = db.session.query(Customer).filter(Customer.id == customer_id).filter(row_clause(Customer)).first()
        if customer is None:  # missing or outside the caller's row scope: the same answer
            return self.response_404()
        try:
            if tag_id is not None:
                tag = db.session.get(Tag, tag_id)
                if tag is None:
                    return self.response_422(message={"tag_id": [gettext("No such tag.")]})
            else:
                tag = str(label)
            link = tagging.add_tag(customer_id, tag, g.user.id, create=_may_create_tags())
        except tagging.TagError as exc:
            return self.response_422(message=str(exc))
        return self.response(201, id=link.id, result=self.show_model_schema.dump(link, many=False))
