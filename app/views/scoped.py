"""Row scope, column scope and masking applied to FAB ModelViews and ModelRestApis.

The rules live in app/security/scopes.py and app/security/masking.py; these mixins only apply
them at FAB's few choke points: the list and show widgets, the search widget, the edit form,
pre_update, and the API's pre_get/pre_get_list and filter/order handling. Each scoped view or
API also declares ``base_filters = ROW_SCOPE`` (FAB applies base filters to list, show, edit
and delete: a row outside the scope is a 404)."""
from __future__ import annotations

from typing import Any
from urllib.parse import quote

from flask import abort, current_app, url_for
from flask_appbuilder.exceptions import FABException, InvalidOrderByColumnFABException
from flask_appbuilder.widgets import ListWidget, SearchWidget
from flask_babel import get_locale
from markupsafe import Markup, escape
from sqlalchemy import inspect as sa_inspect
from sqlalchemy.orm import joinedload, selectinload
from werkzeug.routing import BuildError

from app.extensions import db
from app.security import masking
from app.security.scopes import hidden_fields, visible
from app.services.options import options_stamp
from app.views.formatting import capped_query


def _filtered_columns(filters) -> set[str]:
    return {f.column_name for f in getattr(filters, "filters", []) if not getattr(f, "is_related_view", False)}


def _keep_masked_originals(model_key: str | None, item: Any) -> None:
    """A form or API client sent back a masked value unchanged (it never had the full one):
    keep the stored value instead of overwriting it with stars."""
    if not model_key:
        return
    state = sa_inspect(item)
    for field, kind in masking.MASKED_FIELDS.get(model_key, {}).items():
        history = state.attrs[field].history
        if history.deleted and history.added:
            old, new = history.deleted[0], history.added[0]
            if old and new == masking.mask(kind, old):
                setattr(item, field, old)


_rendered: dict[tuple, str] = {}  # per process; see CachedSearchWidget


class CachedSearchWidget(SearchWidget):
    """FAB's search widget rendered once per view, language, offered columns, option data
    (options_stamp) and active filters, instead of on every list page: the filter fields' HTML
    (every dictionary's and tag's <option>s) was most of a list page's time. For views whose
    filter choices come only from the option tables (``search_widget = CachedSearchWidget``);
    the fields render empty (a GET builds the form without data), so the HTML is no one's own.
    Columns in exclude_cols (fields the user's role hides) are not offered."""

    def __call__(self, **kwargs):
        args = self.template_args
        form, columns = args["form"], [c for c in args["include_cols"] if c not in set(args.get("exclude_cols") or ())]
        active = self.filters.get_filters_values_tojson()
        nonce = current_app.jinja_env.globals.get("csp_nonce")
        key = (args["route_base"], str(get_locale()), tuple(columns), options_stamp(), repr(active),
               nonce() if nonce else "")
        html = _rendered.get(key)
        if html is None:
            if len(_rendered) >= 256:
                _rendered.clear()
            search_filters = self.filters.get_search_filters()
            kwargs.update(label_columns={c: str(form[c].label.text) for c in columns},
                          form_fields={c: form[c]() for c in columns},
                          search_filters={c: [str(f.name) for f in search_filters[c]] for c in columns},
                          active_filters=active, include_cols=columns)
            html = _rendered[key] = current_app.jinja_env.get_template(self.template).render({**args, **kwargs})
        return html


class ScopedViewMixin:
    """For ModelViews: hidden fields never rendered, sensitive values masked (full values on
    the show and edit pages for authorised users, each one logged)."""

    masked_model: str | None = None  # key in masking.MASKED_FIELDS
    # column -> function(the page's ids) -> {id: value}: list columns read for the whole page by a
    # plain query instead of loading ORM objects (e.g. 250 tag links on a page of customers)
    list_values: dict = {}

    def _list_loads(self, columns: list[str]) -> list:
        """The list's relations, loaded with the page: many-to-one joined, collections in one
        more query each (FAB would load them row by row)."""
        dm, loads = self.datamodel, []
        for root in dict.fromkeys(c.split(".")[0] for c in columns):
            if dm.is_relation(root):
                attr = getattr(dm.obj, root)
                loads.append(joinedload(attr) if dm.is_relation_many_to_one(root) or dm.is_relation_one_to_one(root)
                             else selectinload(attr))
        return loads

    def _mask_rows(self, items, rows: list[dict], full: bool) -> list[dict]:
        for item, row in zip(items, rows):
            if self.masked_model:
                fields = masking.mask_row(self.masked_model, item, row, full=full)
                if full:
                    masking.log_reveals(self.masked_model, item.id, fields, "ui")
        return rows

    def _get_list_widget(self, filters, actions=None, order_column="", order_direction="", page=None,
                         page_size=None, widgets=None, **kwargs):
        hidden = hidden_fields()
        unsortable = hidden | masking.unsortable(self.masked_model)
        if _filtered_columns(filters) & hidden or (order_column or "").split(".")[0] in unsortable:
            abort(403)
        if masking.probing_filter(self.masked_model, filters):
            abort(403)
        widgets = widgets or {}
        actions = actions or self.actions
        page_size = page_size or self.page_size
        if not order_column and self.base_order:
            order_column, order_direction = self.base_order
        joined_filters = filters.get_joined_filters(self._base_filters)
        columns = visible(self.list_columns)
        own = {c: self.list_values[c] for c in columns if c in self.list_values}
        loaded = [c for c in columns if c not in own]
        count, lst = capped_query(self.datamodel, joined_filters, order_column, order_direction, page, page_size,
                                  loads=self._list_loads(loaded))
        pks = [self._serialize_pk_if_composite(pk) for pk in self.datamodel.get_keys(lst)]
        rows = list(self.datamodel.get_values(lst, loaded))
        for column, values_of in own.items():
            values = values_of([item.id for item in lst]) if lst else {}
            for item, row in zip(lst, rows):
                row[column] = values.get(item.id)
        rows = self._mask_rows(lst, rows, full=False)
        widgets["list"] = self.list_widget(
            label_columns=self.label_columns, include_columns=columns, value_columns=rows,
            order_columns=[c for c in self.order_columns if c.split(".")[0] not in unsortable],
            formatters_columns=self.formatters_columns,
            page=page, page_size=page_size, count=count, pks=pks, actions=actions, filters=filters,
            modelview_name=self.__class__.__name__, **kwargs)
        return widgets

    def _get_show_widget(self, pk, item, widgets=None, actions=None, show_fieldsets=None):
        widgets = widgets or {}
        actions = actions or self.actions
        columns = visible(self.show_columns)
        fieldsets = [(title, {**spec, "fields": visible(spec["fields"])})
                     for title, spec in (show_fieldsets or self.show_fieldsets or [])]
        values = dict(zip(self.show_columns, self.datamodel.get_values_item(item, self.show_columns)))
        values = self._mask_rows([item], [values], full=masking.may_view_full())[0]
        widgets["show"] = self.show_widget(
            pk=pk, label_columns=self.label_columns, include_columns=columns,
            value_columns=[values[c] for c in columns], formatters_columns=self.formatters_columns,
            actions=actions, fieldsets=fieldsets or None, modelview_name=self.__class__.__name__)
        return widgets

    def _get_search_widget(self, form=None, exclude_cols=None, widgets=None):
        exclude = list(exclude_cols or []) + sorted(hidden_fields())
        return super()._get_search_widget(form=form, exclude_cols=exclude, widgets=widgets)

    def prefill_form(self, form, pk) -> None:
        super().prefill_form(form, pk)
        if not self.masked_model:
            return
        item = self.datamodel.get(pk, self._base_filters)
        full = masking.may_view_full()
        values = {f: form[f].data for f in masking.masked_fields(self.masked_model) if f in form}
        shown = masking.mask_row(self.masked_model, item, values, full=full)
        if full:
            masking.log_reveals(self.masked_model, item.id, shown, "ui")
        for f, v in values.items():
            form[f].data = v

    def pre_update(self, item) -> None:
        _keep_masked_originals(self.masked_model, item)
        super().pre_update(item)


class ScopedApiMixin:
    """For ModelRestApis: hidden fields dropped from answers and refused in filters and
    ordering; sensitive values masked (full on GET /<id> for authorised users, logged)."""

    masked_model: str | None = None

    def _handle_filters_args(self, rison_args):
        hidden = hidden_fields()
        for flt in rison_args.get("filters", []) or []:
            if isinstance(flt, dict) and (str(flt.get("col", "")).split(".")[0] in hidden or not masking.filter_allowed(
                    self.masked_model, str(flt.get("col", "")), str(flt.get("opr", "")), flt.get("value"))):
                raise FABException(f"Filter column: {flt.get('col')} not allowed to filter")
        return super()._handle_filters_args(rison_args)

    def _handle_order_args(self, rison_args):
        if str(rison_args.get("order_column", "")).split(".")[0] in hidden_fields() | masking.unsortable(self.masked_model):
            raise InvalidOrderByColumnFABException(f"Invalid order by column: {rison_args.get('order_column')}")
        return super()._handle_order_args(rison_args)

    def info_headless(self, **kwargs):
        """_info without hidden columns (in add/edit columns, filters, labels ...) and without
        piecewise filters on masked fields for users who see them masked."""
        response = super().info_headless(**kwargs)
        data = response.get_json(silent=True)
        hidden = hidden_fields()
        if not isinstance(data, dict) or response.status_code != 200:
            return response
        for key, value in list(data.items()):
            if isinstance(value, list):
                data[key] = [v for v in value if not (isinstance(v, dict) and str(v.get("name", "")).split(".")[0] in hidden)
                             and not (isinstance(v, str) and v.split(".")[0] in hidden)]
            elif isinstance(value, dict) and key != "permissions":
                data[key] = {k: v for k, v in value.items() if k.split(".")[0] not in hidden}
        for col, ops in (data.get("filters") or {}).items():
            data["filters"][col] = [o for o in ops if masking.filter_allowed(self.masked_model, col, o.get("operator", ""), "0000")]
        return self.response(200, **data)

    def _strip_hidden(self, data: dict, rows: list[dict]) -> None:
        hidden = hidden_fields()
        if not hidden:
            return
        for row in rows:
            for key in [k for k in row if k.split(".")[0] in hidden]:
                del row[key]
        for meta in ("list_columns", "show_columns", "description_columns", "label_columns"):
            value = data.get(meta)
            if isinstance(value, list):
                data[meta] = [c for c in value if c.split(".")[0] not in hidden]
            elif isinstance(value, dict):
                data[meta] = {k: v for k, v in value.items() if k.split(".")[0] not in hidden}

    def _items(self, ids) -> dict:
        model = self.datamodel.obj
        return {o.id: o for o in db.session.query(model).filter(model.id.in_(list(ids)))} if ids else {}

    def pre_get_list(self, data: dict) -> None:
        rows = data.get("result") or []
        self._strip_hidden(data, rows)
        if self.masked_model:
            items = self._items(data.get("ids") or [])
            for pk, row in zip(data.get("ids") or [], rows):
                masking.mask_row(self.masked_model, items.get(pk), row, full=False)

    def pre_get(self, data: dict) -> None:
        row = data.get("result") or {}
        self._strip_hidden(data, [row])
        if self.masked_model:
            item = self._items([data["id"]]).get(data["id"])
            full = masking.may_view_full()
            fields = masking.mask_row(self.masked_model, item, row, full=full)
            if full:
                masking.log_reveals(self.masked_model, data["id"], fields, "api")

    def pre_update(self, item) -> None:
        _keep_masked_originals(self.masked_model, item)
        super().pre_update(item)


_PK = "__crm_pk__"  # stands for a row's key in the links built once per page
_PK_HTML = "__crm_pk_html__"  # ... and for the key as HTML text (LeanListWidget)


def row_link(endpoint: str, **values) -> tuple[str, str] | None:
    """A page's link to ``endpoint`` for each row, built once: (before the key, after the key);
    None where the endpoint does not exist. A row's link is before + its key + after."""
    try:
        return tuple(url_for(endpoint, pk=_PK, **values).split(_PK, 1))
    except BuildError:
        return None


class LeanListWidget(ListWidget):
    """FAB's list widget, same HTML, for big pages (the customer list): the row's start
    (checkbox and buttons) is rendered once with placeholders for the row's key and completed
    per row; each column's formatter is looked up once and the cells formatted and escaped
    here. FAB's template called a macro, 3 url_for and 6 translations per row and a formatter
    look-up per cell: about half of a list page's rendering."""

    template = "crm/widgets/lean_list.html"

    def __call__(self, **kwargs):
        args = {**self.template_args, **kwargs}
        formatters = args.get("formatters_columns") or {}
        cells = [(c, formatters.get(c)) for c in args["include_columns"]]
        set_filters = current_app.jinja_env.filters["set_link_filters"]
        links = {kind: row_link(f"{args['modelview_name']}.{kind}") for kind in ("show", "edit", "delete")}
        for kind in ("show", "edit"):  # FAB's links carry a related view's filters
            if links[kind]:
                links[kind] = (links[kind][0], set_filters(links[kind][1], args["filters"]))

        def render_rows(row_start: Markup) -> Markup:
            out = []
            for pk, row in zip(args["pks"], args["value_columns"]):
                out.append(row_start.replace(_PK_HTML, escape(pk)).replace(_PK, quote(str(pk), safe="")))
                out.extend(f"<td>{escape(fmt(row[c]) if fmt else row[c])}</td>" for c, fmt in cells)
                out.append("</tr>\n")
            return Markup("".join(out))

        nonce = current_app.jinja_env.globals.get("csp_nonce")
        args.update(links=links, pk=Markup(_PK_HTML), key=Markup(_PK), render_rows=render_rows,
                    nonce=nonce() if nonce else "")
        return current_app.jinja_env.get_template(self.template).render(args)
