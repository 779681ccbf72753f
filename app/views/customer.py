"""Customer files (客户档案), contacts and interaction records: list/add/edit/show and REST."""
from __future__ import annotations

from typing import Callable

from datetime import datetime

from flask import flash, g, request
from flask_appbuilder import ModelRestApi, ModelView
from flask_babel import gettext, lazy_gettext as _l

from app.extensions import db
from app.models import Contact, Customer, Interaction
from app.models.dictionary import choices_of
from app.services.dedupe import (
    CheckResult, CustomerDuplicateError, check_contact_phone, check_customer,
)
from app.security.scopes import ROW_SCOPE, OutOfScopeError, RowScopeFilter, require_in_scope
from app.services.fields import CATEGORY_LABELS
from app.services.followup import TaskInputError, record_interaction
from app.services.numbering import next_number
from app.services.reach import reach_warning
from app.views.followup import TodoRowsField
from app.views.scoped import CachedSearchWidget, LeanListWidget, ScopedApiMixin, ScopedViewMixin, _keep_masked_originals
from app.views.history import CustomerHistoryView
from app.views.merge import CustomerMergeApiMixin, CustomerMergeMixin
from app.views.attachment import AttachableApiMixin, AttachableViewMixin, AttachmentModelView, attachment_files_field
from app.views.export import ExportMixin
from app.views.custom_field import CustomerInterface, CustomFieldsApiMixin, CustomFieldsViewMixin
from app.views.formatting import CrmSQLAInterface, LocalizedValuesMixin, fmt_date, fmt_datetime, fmt_money
from app.views.tag import CustomerTagModelView, add_has_tag_filter, has_tag_search_field, page_tag_links, tag_badges
from app.views.lookup import PickersMixin
from app.views.search import (
    NOT_ARCHIVED, OF_ACTIVE_CUSTOMER, OF_ARCHIVED_CUSTOMER, CustomerArchiveMixin, CustomerArchiveView,
    CustomerSearchApiMixin,
)

LABELS = {
    "customer_no": _l("Customer No."), "name": _l("Customer Name"), "kind": _l("Kind"),
    "credit_code": _l("Credit Code / ID No."), "industry": _l("Industry"), "scale": _l("Scale"),
    "staff_count": _l("Staff Count"), "annual_revenue": _l("Annual Revenue"),
    "type": _l("Customer Type"), "level": _l("Customer Level"), "source": _l("Source"),
    "region": _l("Region"), "first_contact_date": _l("First Contact"),
    "cooperation_start": _l("Cooperation Since"), "last_contact_at": _l("Last Contact"),
    "total_amount": _l("Cumulative Amount"), "main_business": _l("Main Business"),
    "owner": _l("Owner"), "department": _l("Department"), "remark": _l("Remark"),
    "archived": _l("Archived"), "changed_on": _l("Last Updated"), "created_on": _l("Created"),
    "customer": _l("Customer"), "title": _l("Title"), "phone": _l("Phone"), "email": _l("Email"),
    "im_account": _l("IM Account"), "preference": _l("Preference"), "is_primary": _l("Primary"),
    "occurred_at": _l("Time"), "key_points": _l("Key Points"),
    "customer_feedback": _l("Customer Feedback"), "result": _l("Result"),
    "next_step": _l("Next Step"), "created_by": _l("Created by"), "changed_by": _l("Changed by"),
    "tag_links": _l("Tags"), "tags": _l("Tags"), "contacts": _l("Contacts"), "attachments": _l("Attachments"),
    "participants": _l("Participants"), "tasks": _l("To-dos"), "todos": _l("To-dos"),
}
DICT_FIELDS = {"kind": "customer_kind", "industry": "industry", "scale": "customer_scale",
               "type": "customer_type", "level": "customer_level", "source": "customer_source",
               "region": "region"}
FORMATTERS = {"last_contact_at": fmt_datetime, "occurred_at": fmt_datetime, "changed_on": fmt_datetime,
              "created_on": fmt_datetime, "first_contact_date": fmt_date, "cooperation_start": fmt_date,
              "total_amount": fmt_money, "annual_revenue": fmt_money}
_BASIC = ["customer_no", "name", "kind", "credit_code", "industry", "scale", "staff_count",
          "annual_revenue", "region"]
_BUSINESS = ["type", "level", "source", "first_contact_date", "cooperation_start",
             "last_contact_at", "total_amount", "main_business", "owner", "department"]
# The five first-level categories (DOMAIN.md, 分类与标签) that group the customer page.
CATEGORIES = {key: _l(msgid) for key, msgid in CATEGORY_LABELS.items()}


def _names(items) -> str:
    return "、".join(str(i) for i in items or [])


def _field(form, name: str):
    return form[name].data if name in form else None


def _check_customer_form(form) -> CheckResult:
    # FAB sets form._id to the edited row's key before validating ("trick to pass unique
    # validation"); it is absent on add.
    return check_customer(_field(form, "name"), _field(form, "credit_code"),
                          getattr(_field(form, "kind"), "code", None), exclude_id=getattr(form, "_id", None))


def _check_contact_form(form) -> CheckResult:
    return check_contact_phone(_field(form, "phone"), getattr(_field(form, "customer"), "id", None),
                               contact_id=getattr(form, "_id", None))


def _with_check(form_cls, check: Callable[..., CheckResult]):
    """The FAB form class, validated further by ``check``: its messages land on the fields they
    concern (a field missing from the form passes its messages to the name), so the user
    reads which customer clashes right next to the name, credit code or phone."""
    def target_of(form, name: str):
        return form[name] if name in form else form["name"] if "name" in form else None

    class CheckedForm(form_cls):
        def validate(self, extra_validators=None):
            valid = super().validate(extra_validators=extra_validators)
            result = check(self)
            for name, messages in result.errors.items():
                target = target_of(self, name)
                if target is not None:
                    target.errors = list(target.errors) + messages
            return valid and result.ok

    CheckedForm.__name__ = form_cls.__name__
    return CheckedForm


class _CheckedApi(ScopedApiMixin, ModelRestApi):
    """POST/PUT answer 422 with the field messages and the clash list when pre_add/pre_update
    raise CustomerDuplicateError (or TaskInputError: every bad due time), 403 when the record
    would leave the user's row scope; nothing is saved (the loaded changes are rolled back)."""

    base_filters = ROW_SCOPE

    def _refusals(self, write):
        try:
            return write()
        except CustomerDuplicateError as exc:
            db.session.rollback()
            return self.response(422, **exc.result.as_dict())
        except TaskInputError as exc:
            db.session.rollback()
            return self.response(422, message=exc.errors)
        except OutOfScopeError as exc:
            db.session.rollback()
            return self.response(403, message=str(exc))

    def post_headless(self):
        return self._refusals(super().post_headless)

    def put_headless(self, pk):
        return self._refusals(lambda: super(_CheckedApi, self).put_headless(pk))


# The customer picker on contact and interaction forms offers only customers in scope (API),
# and in forms it is a type-ahead asking the scoped look-up (PickersMixin, app/views/lookup.py).
_CUSTOMER_IN_SCOPE = {"customer": [["id", RowScopeFilter, None]]}


def _contact_customer(item):
    if item.customer is not None:
        return item.customer
    return db.session.get(Customer, item.customer_id) if item.customer_id else None


class ContactModelView(ExportMixin, PickersMixin, ScopedViewMixin, LocalizedValuesMixin, ModelView):
    """Contacts of active customers (an archived customer's are on its page in 历史档案)."""
    datamodel = CrmSQLAInterface(Contact)
    base_filters = ROW_SCOPE + OF_ACTIVE_CUSTOMER
    masked_model = "contact"
    export_name = "contacts"
    list_title = show_title = _l("Contacts")
    add_title, edit_title = _l("Add Contact"), _l("Edit Contact")
    list_columns = ["customer", "name", "title", "phone", "email", "is_primary"]
    add_columns = edit_columns = ["customer", "name", "title", "phone", "email", "im_account",
                                  "preference", "is_primary"]
    show_columns = add_columns + ["changed_on"]
    search_columns = ["customer", "name", "phone", "email"]
    label_columns = LABELS
    formatters_columns = FORMATTERS

    def _init_forms(self) -> None:
        super()._init_forms()
        self.add_form = _with_check(self.add_form, _check_contact_form)
        self.edit_form = _with_check(self.edit_form, _check_contact_form)

    def pre_add(self, item: Contact) -> None:
        require_in_scope(_contact_customer(item))

    def pre_update(self, item: Contact) -> None:
        super().pre_update(item)
        require_in_scope(_contact_customer(item))

    def post_add(self, item: Contact) -> None:
        _flash_reach_warning(item.customer_id)

    def post_update(self, item: Contact) -> None:
        _flash_reach_warning(item.customer_id)


def _flash_reach_warning(customer_id: int | None) -> None:
    warning = reach_warning(customer_id)
    if warning:
        flash(warning, "warning")


class InteractionModelView(AttachableViewMixin, ExportMixin, PickersMixin, ScopedViewMixin, LocalizedValuesMixin, ModelView):
    """Table-style list for fast entry (newest first), of active customers; the add form takes
    several to-dos, each becoming a task with a due time and an owner, and files (attachments);
    the customer page shows them as a timeline. Participants are our users, contacts the chosen
    customer's (pickers)."""

    datamodel = CrmSQLAInterface(Interaction)
    base_filters = ROW_SCOPE + OF_ACTIVE_CUSTOMER
    export_name = "interactions"
    list_title = show_title = _l("Interactions")
    add_title, edit_title = _l("Add Interaction"), _l("Edit Interaction")
    list_columns = ["occurred_at", "customer", "kind", "key_points", "result", "next_step", "owner"]
    edit_columns = ["customer", "occurred_at", "kind", "participants", "contacts", "key_points",
                    "customer_feedback", "result", "next_step"]
    add_columns = edit_columns + ["todos", "attachment_files"]
    show_columns = edit_columns + ["tasks", "owner", "created_on"]
    show_template = "crm/interaction_show.html"  # + its attachments and 上传附件
    extra_args = {"attachments_of": lambda pk: interaction_attachments(pk)}
    search_columns = ["occurred_at", "kind", "result", "customer"]
    base_order = ("occurred_at", "desc")
    label_columns = LABELS
    formatters_columns = {**FORMATTERS, "participants": _names, "contacts": _names, "tasks": _names}
    add_form_query_rel_fields = edit_form_query_rel_fields = {
        "kind": choices_of("interaction_kind"), "result": choices_of("interaction_result")}
    add_form_extra_fields = {"todos": TodoRowsField(_l("To-dos"), description=_l(
        "Optional: things to do next, each with a due time and an owner (default: you); each becomes a task.")),
        "attachment_files": attachment_files_field()}

    def pre_add(self, item: Interaction) -> None:
        require_in_scope(_contact_customer(item))
        todos = [{k: t[k] for k in ("title", "due_at", "assignee_id", "row")} for t in getattr(item, "todos", None) or []]
        record_interaction(item, todos, g.user.id)
        self.attach_uploads(item)

    def pre_update(self, item: Interaction) -> None:
        require_in_scope(_contact_customer(item))
        record_interaction(item, [], g.user.id)


def interaction_attachments(pk) -> list:
    from app.security.scopes import row_clause

    item = db.session.query(Interaction).filter(Interaction.id == int(pk), row_clause(Interaction)).first()
    return list(item.attachments) if item is not None else []


def interaction_kinds():
    from app.models import DictionaryItem

    return db.session.query(DictionaryItem).filter_by(type_key="interaction_kind", active=True).order_by(DictionaryItem.sort).all()


def interaction_timeline(customer_id: int | str, kind: str | None = None, limit: int = 100) -> list[Interaction]:
    """A customer's interactions for the timeline, newest first, optionally of one kind (code);
    within the user's row scope like every list."""
    from sqlalchemy.orm import selectinload

    from app.models import Attachment, DictionaryItem
    from app.security.scopes import row_clause

    query = db.session.query(Interaction).filter(row_clause(Interaction), Interaction.customer_id == int(customer_id))
    query = query.options(selectinload(Interaction.attachments).joinedload(Attachment.uploaded_by))  # one query, not one per entry
    if kind:
        query = query.join(DictionaryItem, Interaction.kind_id == DictionaryItem.id).filter(DictionaryItem.code == kind)
    return query.order_by(Interaction.occurred_at.desc(), Interaction.id.desc()).limit(limit).all()


class _OfArchivedCustomer:
    """An archived customer's rows, read only, as tabs of its page in 历史档案 (CustomerArchiveView):
    the default lists leave them out. Same permissions as the archive view."""
    base_filters = ROW_SCOPE + OF_ARCHIVED_CUSTOMER
    export_name = ""  # not an export of its own: `flask crm export contacts` is always the active list
    class_permission_name = "CustomerArchiveView"
    base_permissions = ["can_list", "can_show", "can_restore"]  # exactly the archive view's
    method_permission_name = {"restore": "restore"}


class ArchivedContactView(_OfArchivedCustomer, ContactModelView):
    route_base = "/archivedcontact"


class ArchivedInteractionView(_OfArchivedCustomer, InteractionModelView):
    route_base = "/archivedinteraction"


CustomerArchiveView.related_views = [ArchivedContactView, ArchivedInteractionView]


class CustomerModelView(ExportMixin, PickersMixin, CustomFieldsViewMixin, CustomerArchiveMixin, CustomerMergeMixin,
                        ScopedViewMixin, LocalizedValuesMixin, ModelView):
    datamodel = CustomerInterface(Customer)
    category_titles = CATEGORIES  # admin-defined fields go into their category's fieldset
    base_filters = ROW_SCOPE + NOT_ARCHIVED  # archived customers: CustomerArchiveView (历史档案)
    masked_model = "customer"
    export_name = "customers"
    method_permission_name = {"merge": "merge", "archive": "archive"}
    list_template = "crm/customer_list.html"  # the search box above the export buttons and the list
    list_widget = LeanListWidget  # 50 rows without a macro call, url_for or translation per row
    list_title = show_title = _l("Customer Files")
    add_title, edit_title = _l("Add Customer"), _l("Edit Customer")
    list_columns = ["customer_no", "name", "industry", "type", "level", "region", "owner",
                    "last_contact_at", "tag_links"]
    list_values = {"tag_links": page_tag_links}  # the page's tags by one plain query (tag_badges)
    show_fieldsets = [
        (CATEGORIES["basic"], {"fields": _BASIC}),
        (CATEGORIES["contact"], {"fields": ["contacts"]}),
        (CATEGORIES["business"], {"fields": [f for f in _BUSINESS if f != "last_contact_at"] + ["attachments"]}),
        (CATEGORIES["interaction"], {"fields": ["last_contact_at"]}),
        (CATEGORIES["preference"], {"fields": ["tag_links"]}),
        (_l("Other"), {"fields": ["remark", "archived", "created_on", "changed_on"], "expanded": False}),
    ]
    show_template = "crm/customer_show.html"
    extra_args = {"related_tabs": {
        "ContactModelView": CATEGORIES["contact"], "InteractionModelView": CATEGORIES["interaction"],
        "CustomerTagModelView": CATEGORIES["preference"], "AttachmentModelView": _l("Attachments")},
        "interaction_timeline": interaction_timeline, "interaction_kinds": interaction_kinds}
    add_fieldsets = edit_fieldsets = [
        (CATEGORIES["basic"], {"fields": [f for f in _BASIC if f != "customer_no"]}),
        (CATEGORIES["business"], {"fields": [f for f in _BUSINESS if f != "last_contact_at"] + ["remark"]}),
    ]  # contacts, interactions, tags and attachments are added on the customer page's tabs
    search_columns = ["customer_no", "name", "credit_code", "industry", "type", "level", "region",
                      "source", "owner", "last_contact_at", "total_amount", "tags"]
    search_form_extra_fields = {"tags": has_tag_search_field()}  # owner: typed (PickersMixin)
    search_widget = CachedSearchWidget  # filter choices: dictionaries, tags, custom fields
    order_columns = ["customer_no", "name", "last_contact_at", "total_amount"]
    base_order = ("id", "desc")
    label_columns = LABELS
    formatters_columns = {**FORMATTERS, "tag_links": tag_badges, "contacts": _names, "attachments": _names}
    related_views = [ContactModelView, InteractionModelView, CustomerTagModelView, AttachmentModelView,
                     CustomerHistoryView]

    def _init_properties(self) -> None:
        super()._init_properties()
        add_has_tag_filter(self)  # 'has tag' (FilterHasTag) on the pseudo-column 'tags'
    add_form_query_rel_fields = edit_form_query_rel_fields = {
        f: choices_of(t) for f, t in DICT_FIELDS.items()}

    def _init_forms(self) -> None:
        super()._init_forms()
        self.add_form = _with_check(self.add_form, _check_customer_form)
        self.edit_form = _with_check(self.edit_form, _check_customer_form)

    def pre_add(self, item: Customer) -> None:
        item.customer_no = next_number("customer", item)
        # Objects, not ids: the form has set the relationships (to None when left blank), and a
        # relationship set to None would overwrite an id at flush, leaving the file ownerless.
        if item.owner is None and item.owner_id is None:
            item.owner = g.user
        if item.department is None and item.department_id is None:
            item.department = getattr(g.user, "department", None)
        require_in_scope(item)

    def pre_update(self, item: Customer) -> None:
        super().pre_update(item)
        require_in_scope(item)


def _check_customer_item(item: Customer) -> None:
    result = check_customer(item.name, item.credit_code, getattr(item.kind, "code", None), exclude_id=item.id)
    if not result.ok:
        raise CustomerDuplicateError(result)


def _check_contact_item(item: Contact) -> None:
    customer_id = item.customer.id if item.customer is not None else item.customer_id
    result = check_contact_phone(item.phone, customer_id, contact_id=item.id)
    if not result.ok:
        raise CustomerDuplicateError(result)


class CustomerApi(CustomerSearchApiMixin, CustomFieldsApiMixin, CustomerMergeApiMixin, _CheckedApi):
    resource_name = "customer"
    base_filters = ROW_SCOPE + NOT_ARCHIVED
    masked_model = "customer"
    datamodel = CustomerInterface(Customer)
    allow_browser_login = True
    list_columns = ["id", "customer_no", "name", "industry.name", "type.name", "level.name",
                    "region.name", "owner.username", "last_contact_at", "changed_on"]
    show_columns = ["id", "customer_no", "name", "credit_code", "industry.name", "scale.name",
                    "staff_count", "type.name", "level.name", "source.name", "region.name",
                    "first_contact_date", "cooperation_start", "last_contact_at", "total_amount",
                    "main_business", "owner.username", "remark", "changed_on"]
    add_columns = edit_columns = ["name", "kind", "credit_code", "industry", "scale", "staff_count",
                                  "annual_revenue", "type", "level", "source", "region",
                                  "first_contact_date", "cooperation_start", "total_amount",
                                  "main_business", "remark"]
    search_columns = ["customer_no", "name", "credit_code", "industry", "level", "region"]

    def pre_get(self, data: dict) -> None:
        """The customer's tags (维度-值 labels with who/when/source) in the show answer, after the
        scope mixin has hidden and masked what this user may not see."""
        from app.services.tagging import tags_of

        super().pre_get(data)
        item = db.session.get(Customer, data.get("id"))
        if item is not None and isinstance(data.get("result"), dict):
            data["result"]["tags"] = tags_of(item)
            data["result"]["reach_warning"] = reach_warning(item.id)

    def pre_add(self, item: Customer) -> None:
        self.apply_extra(item)
        _check_customer_item(item)  # before a number is taken
        item.customer_no = next_number("customer", item)
        item.owner_id = item.owner_id or g.user.id
        item.department_id = item.department_id or getattr(g.user, "department_id", None)
        require_in_scope(item)

    def pre_update(self, item: Customer) -> None:
        _keep_masked_originals(self.masked_model, item)
        self.apply_extra(item)
        require_in_scope(item)
        _check_customer_item(item)


def _parse_todos(raw) -> list[dict]:
    """The ``todos`` of an interaction POST: [{"title", "due_at" (ISO 8601), "assignee_id"}]."""
    if raw is None:
        return []
    if not isinstance(raw, list):
        raise TaskInputError({"todos": [gettext("todos must be a list.")]})
    todos, errors = [], {}
    for n, todo in enumerate(raw, start=1):
        todo = todo if isinstance(todo, dict) else {}
        due = todo.get("due_at")
        try:
            due = datetime.fromisoformat(str(due)).replace(tzinfo=None) if due else None
        except ValueError:
            errors[f"todos[{n}].due_at"] = [gettext("To-do %(n)d: '%(value)s' is not a date and time (YYYY-MM-DD HH:MM).",
                                                    n=n, value=due)]
        owner = todo.get("assignee_id")
        if owner is not None and not isinstance(owner, int):
            errors[f"todos[{n}].assignee_id"] = [gettext("To-do %(n)d: the owner must be an active user.", n=n)]
        todos.append({"title": todo.get("title"), "due_at": due, "assignee_id": owner})
    if errors:
        raise TaskInputError(errors)
    return todos


class InteractionApi(AttachableApiMixin, _CheckedApi):
    """/api/v1/interaction/: row-scoped like customers. POST may carry ``todos``; files go to
    ``POST /api/v1/interaction/<pk>/attachments``."""

    resource_name = "interaction"
    base_filters = ROW_SCOPE + OF_ACTIVE_CUSTOMER
    datamodel = CrmSQLAInterface(Interaction)
    allow_browser_login = True
    add_query_rel_fields = edit_query_rel_fields = {**_CUSTOMER_IN_SCOPE, "contacts": ROW_SCOPE}
    list_columns = ["id", "customer.id", "customer.name", "occurred_at", "kind.code", "kind.name", "key_points",
                    "result.name", "next_step", "owner.username"]
    show_columns = list_columns + ["customer_feedback", "participants.username", "contacts.name", "tasks.id", "tasks.title"]
    add_columns = edit_columns = ["customer", "occurred_at", "kind", "participants", "contacts", "key_points",
                                  "customer_feedback", "result", "next_step"]
    search_columns = ["customer", "occurred_at", "kind", "result"]
    order_columns = ["occurred_at", "id"]
    base_order = ("occurred_at", "desc")

    def post_headless(self):
        body = request.get_json(silent=True)
        g.crm_todos = body.pop("todos", None) if isinstance(body, dict) else None
        return super().post_headless()

    def pre_add(self, item: Interaction) -> None:
        require_in_scope(_contact_customer(item))
        record_interaction(item, _parse_todos(g.pop("crm_todos", None)), g.user.id)

    def pre_update(self, item: Interaction) -> None:
        require_in_scope(_contact_customer(item))
        record_interaction(item, [], g.user.id)


class ContactApi(_CheckedApi):
    resource_name = "contact"
    base_filters = ROW_SCOPE + OF_ACTIVE_CUSTOMER
    masked_model = "contact"
    add_query_rel_fields = edit_query_rel_fields = _CUSTOMER_IN_SCOPE
    datamodel = CrmSQLAInterface(Contact)
    allow_browser_login = True
    list_columns = ["id", "customer.name", "name", "title", "phone", "email", "is_primary"]
    show_columns = list_columns + ["im_account", "preference"]
    add_columns = edit_columns = ["customer", "name", "title", "phone", "email", "im_account",
                                  "preference", "is_primary"]

    def pre_add(self, item: Contact) -> None:
        require_in_scope(_contact_customer(item))
        _check_contact_item(item)

    def pre_update(self, item: Contact) -> None:
        _keep_masked_originals(self.masked_model, item)
        require_in_scope(_contact_customer(item))
        _check_contact_item(item)
