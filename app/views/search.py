"""Search (检索) and archive (历史档案) screens and the search API. The work is in
app/services/search.py; these views only read requests and render."""
from __future__ import annotations

from urllib.parse import urlencode

from flask import flash, jsonify, redirect, request, url_for
from flask_appbuilder import BaseView, ModelView, expose, has_access
from flask_appbuilder.actions import action
from flask_appbuilder.api import safe
from flask_appbuilder.models.filters import BaseFilter
from flask_appbuilder.models.sqla.filters import FilterEqual
from flask_appbuilder.security.decorators import permission_name, protect
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from markupsafe import Markup
from sqlalchemy import or_, select
from werkzeug.datastructures import MultiDict

from app.models import Customer
from app.security.scopes import ROW_SCOPE
from app.services import search
from app.services.options import per_stamp
from app.services.paging import is_capped
from app.views.formatting import CrmSQLAInterface, LocalizedValuesMixin
from app.views.scoped import ScopedViewMixin, row_link

NOT_ARCHIVED = [["archived", FilterEqual, False]]
ARCHIVED = [["archived", FilterEqual, True]]


class CustomerArchivedFilter(BaseFilter):
    """Rows (contacts, interactions, tasks) by their customer's archive state: value False = of
    active customers (rows without a customer too), True = of archived ones."""
    name = "customer archived"

    def apply(self, query, value):
        col = self.model.customer_id
        archived = select(Customer.id).where(Customer.archived.is_(True))
        return query.filter(col.in_(archived)) if value else query.filter(or_(col.is_(None), col.not_in(archived)))


OF_ACTIVE_CUSTOMER = [["customer_id", CustomerArchivedFilter, False]]
OF_ARCHIVED_CUSTOMER = [["customer_id", CustomerArchivedFilter, True]]
COLUMN_LABELS = {"customer_no": _l("Customer No."), "name": _l("Customer Name"), "industry": _l("Industry"),
                 "type": _l("Customer Type"), "level": _l("Customer Level"), "region": _l("Region"),
                 "owner": _l("Owner"), "phone": _l("Phone"), "last_contact_at": _l("Last Contact"),
                 "total_amount": _l("Cumulative Amount"), "tags": _l("Tags")}
CONDITION_ROWS = 3
PAGE_SIZES = (25, 50, 100)  # rows per page of the search screen, the first by default (as the lists)


def _scoped_items(view, items) -> list:
    """FAB's action_post loads ticked rows without base filters: load them again within them."""
    items = items if isinstance(items, list) else [items]
    return [view.datamodel.get(i.id, view._base_filters) for i in items if i is not None]


def query_from_request() -> search.SearchQuery:
    """The query of the search page: URL args, plus the condition rows of its form (cf/co/cv)."""
    args = MultiDict(request.args)
    for f, o, v in zip(request.args.getlist("cf"), request.args.getlist("co"), request.args.getlist("cv")):
        if f and v.strip():
            args.add("c", f"{f}:{o}:{v.strip()}")
    return search.SearchQuery.from_args(args)


def count_text(n: int, counting: bool = False) -> str:
    """The search page's count line: "12 customer(s) found", "1,000+ … (counting stops here …)"."""
    text = _("%(n)s customer(s) found", n=n)
    if counting:
        return text + " " + _("(counting…)")
    return text + " " + _("(counting stops here: narrow the search for an exact count)") if is_capped(n) else text


def query_url(query: search.SearchQuery, **extra) -> str:
    if extra.get("page_size") == PAGE_SIZES[0]:
        del extra["page_size"]
    return url_for("CustomerSearchView.index") + "?" + urlencode({**query.as_dict(), **extra}, doseq=True)


def screen_page() -> tuple[int, int]:
    """The search screen's (page, page size) from the URL; a size not offered is the default."""
    size = request.args.get("page_size", PAGE_SIZES[0], type=int)
    return max(0, request.args.get("page", 0, type=int)), size if size in PAGE_SIZES else PAGE_SIZES[0]


def condition_rows(fields: list, rows: list[tuple[str, str, str]]) -> list[tuple[Markup, Markup, str]]:
    """The condition rows' field and operator <option>s, each option made once per page and
    marked selected per row (each field's label and operators once, not once per row)."""
    def options(choices, chosen: str) -> Markup:
        return Markup("").join(head + ("selected" if key == chosen else "") + tail for key, head, tail in choices)

    field_choices = [(spec.key, Markup('<option value="%s" data-ops="%s" ') % (spec.key, ",".join(search.allowed_ops(spec))),
                      Markup(">%s</option>") % spec.label) for spec in fields]
    op_choices = [(key, Markup('<option value="%s" ') % key, Markup(">%s</option>") % label)
                  for key, label in search.OPERATORS.items()]
    return [(options(field_choices, f), options(op_choices, o), v) for f, o, v in rows]


def blank_or_condition_rows(fields: list, rows: list[tuple[str, str, str]]) -> list[tuple[Markup, Markup, str]]:
    """condition_rows; the blank rows of a search without conditions (most pages) made once per
    process for each field set, option data and language."""
    if any(row != ("", "eq", "") for row in rows):
        return condition_rows(fields, rows)
    return per_stamp(("blank condition rows", tuple(spec.key for spec in fields), len(rows)),
                     lambda: condition_rows(fields, rows))


def tag_options(chosen: list[str]) -> Markup:
    """The tag pickers' <option>s, ``chosen`` selected; without any chosen (most pages) made once
    per process for the tag table and language."""
    from app.services import tagging

    def options() -> Markup:
        return Markup("").join(Markup("<option%s>%s</option>") % (Markup(" selected") if t in chosen else "", t)
                               for t in tagging.active_labels())
    return options() if chosen else per_stamp("tag options", options)


class CustomerSearchView(BaseView):
    """检索: one box, condition rows, tags in/out, 'not contacted for N months', saved filters."""
    route_base = "/customersearch"
    default_view = "index"
    method_permission_name = {"index": "list", "count": "list", "save": "list", "delete": "list"}
    base_permissions = ["can_list"]

    @expose("/")
    @has_access
    def index(self):
        page, page_size = screen_page()
        result, errors = None, []
        try:
            query = query_from_request()
        except search.SearchError as exc:
            query, errors = search.SearchQuery(q=request.args.get("q", "")), exc.errors
        if not errors and not query.is_empty():
            try:
                # the count comes apart (count below)
                result = search.search(query, page=page, page_size=page_size, count=False)
            except search.SearchError as exc:
                errors = exc.errors
        for message in errors:
            flash(message, "danger")
        rows = list(query.conditions) + [("", "eq", "")] * max(0, CONDITION_ROWS - len(query.conditions))
        saved = [(f, query_url(search.filter_query_safe(f))) for f in search.saved_filters()]
        return self.render_template(
            "crm/search.html", title=_("Search Customers"), query=query, result=result,
            rows=blank_or_condition_rows(search.condition_fields(), rows), labels=COLUMN_LABELS,
            tags_in=tag_options(query.tags_in), tags_out=tag_options(query.tags_out), saved=saved,
            query_url=query_url, query_json=query.as_dict(), count_text=count_text, page_sizes=PAGE_SIZES,
            show_link=row_link("CustomerModelView.show"))

    @expose("/count")
    @has_access
    def count(self):
        """The count line of a search page, asked for by the page once it is shown: counting up to
        the cap may read far when few customers match (a thin filter), the page need not wait."""
        page, page_size = screen_page()
        try:
            n = search.count_matches(query_from_request(), page=page, page_size=page_size)
        except search.SearchError as exc:
            return jsonify(errors=exc.errors), 400
        return jsonify(count=getattr(n, "shown", n), count_capped=is_capped(n), text=count_text(n))

    @expose("/save", methods=["POST"])
    @has_access
    def save(self):
        try:
            query = search.SearchQuery.from_args(MultiDict(
                [(k, v) for k in ("q", "c", "tag", "notag", "idle") for v in request.form.getlist(k)]))
            item = search.save_filter(request.form.get("name", ""), query, request.form.get("shared") == "y")
            flash(_("Filter %(name)s saved.", name=item.name), "success")
        except search.SearchError as exc:
            for message in exc.errors:
                flash(message, "danger")
            return redirect(query_url(query) if "query" in locals() else url_for(".index"))
        return redirect(query_url(query))

    @expose("/delete/<int:pk>", methods=["POST"])
    @has_access
    def delete(self, pk: int):
        if search.delete_filter(pk):
            flash(_("Filter deleted."), "success")
        else:
            flash(_("Only the owner may delete a saved filter."), "warning")
        return redirect(url_for(".index"))


class CustomerArchiveMixin:
    """For CustomerModelView: the 'archive' action (list and show), permission can_archive."""

    @action("archive", _l("Archive"), _l("Move the selected customers to the archive?"), "fa-archive")
    def archive(self, items):
        n = search.set_archived(_scoped_items(self, items), True)
        flash(_("%(n)s customer(s) moved to the archive.", n=n), "success")
        return redirect(url_for(".list"))


class CustomerArchiveView(ScopedViewMixin, LocalizedValuesMixin, ModelView):
    """历史档案: archived customers, for supervisors and admins; restore puts them back."""
    route_base = "/customerarchive"
    datamodel = CrmSQLAInterface(Customer)
    base_filters = ROW_SCOPE + ARCHIVED
    masked_model = "customer"
    base_permissions = ["can_list", "can_show", "can_restore"]
    method_permission_name = {"restore": "restore"}
    list_title = show_title = _l("Archive")
    list_columns = ["customer_no", "name", "industry", "level", "owner", "last_contact_at", "changed_on"]
    show_columns = ["customer_no", "name", "kind", "credit_code", "industry", "type", "level", "region",
                    "owner", "department", "last_contact_at", "total_amount", "remark", "changed_on"]
    search_columns = ["customer_no", "name"]
    base_order = ("changed_on", "desc")
    related_views: list = []  # the archived customer's contacts and interactions (app/views/customer.py)
    label_columns = {**COLUMN_LABELS, "kind": _l("Kind"), "credit_code": _l("Credit Code / ID No."),
                     "department": _l("Department"), "remark": _l("Remark"), "changed_on": _l("Last Updated")}

    @action("restore", _l("Restore"), _l("Restore the selected customers to the active lists?"), "fa-undo")
    def restore(self, items):
        n = search.set_archived(_scoped_items(self, items), False)
        flash(_("%(n)s customer(s) restored.", n=n), "success")
        return redirect(url_for(".list"))


class CustomerSearchApiMixin:
    """For CustomerApi: GET /api/v1/customer/search?q=华星&c=industry:eq:制造业&tag=..&page=0&page_size=50."""

    @expose("/search", methods=["GET"])
    @protect()
    @safe
    @permission_name("get")
    def search(self):
        """Customers matching the one-box text and conditions, scoped and masked like the list.
        ---
        get:
          parameters:
          - {in: query, name: q, schema: {type: string}}
          - {in: query, name: c, schema: {type: array, items: {type: string}}, description: "field:op:value"}
          - {in: query, name: tag, schema: {type: array, items: {type: string}}}
          - {in: query, name: notag, schema: {type: array, items: {type: string}}}
          - {in: query, name: idle, schema: {type: integer}, description: not contacted for N months}
          - {in: query, name: page, schema: {type: integer}}
          - {in: query, name: page_size, schema: {type: integer}}
          responses:
            200:
              description: one page of results
            400:
              $ref: '#/components/responses/400'
        """
        try:
            query = search.SearchQuery.from_args(request.args)
            result = search.search(query, page=request.args.get("page", 0, type=int),
                                   page_size=request.args.get("page_size", search.PAGE_SIZE, type=int))
        except search.SearchError as exc:
            return self.response_400(message=exc.errors)
        return self.response(200, count=getattr(result.count, "shown", result.count),
                             count_capped=is_capped(result.count), page=result.page, page_size=result.page_size,
                             columns=result.columns, ids=[r["id"] for r in result.rows], result=result.rows,
                             query=query.as_dict())
