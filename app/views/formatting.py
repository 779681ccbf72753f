"""Display helpers shared by the views: dates without microseconds, blanks instead of None,
是/否 for booleans (FAB prints Python's None/True/False, English on a Chinese screen), and a
visible placeholder for "no value" in select boxes."""
from __future__ import annotations

from contextlib import contextmanager
from datetime import date, datetime
from decimal import Decimal

from flask_appbuilder.exceptions import DatabaseException
from flask_appbuilder.fields import QuerySelectField
from flask_appbuilder.models.sqla.filters import SQLAFilterConverter
from flask_appbuilder.models.sqla.interface import SQLAInterface
from flask_babel import gettext
from sqlalchemy.exc import IntegrityError


def fmt_datetime(value: datetime | None) -> str:
    return value.strftime("%Y-%m-%d\u00a0%H:%M") if value else ""  # no line break inside


def fmt_date(value: date | None) -> str:
    return value.strftime("%Y-%m-%d") if value else ""


def fmt_money(value: Decimal | None) -> str:
    return f"{value:,.2f}" if value is not None else ""


_original_iter_choices = QuerySelectField.iter_choices


def _iter_choices_with_placeholder(self):
    """WTForms 3.3 shows an empty option's value ('__None') as its label in FAB's selects."""
    for choice in _original_iter_choices(self):
        if choice[0] == "__None" and not choice[1]:
            choice = ("__None", "—", *choice[2:])
        yield choice


QuerySelectField.iter_choices = _iter_choices_with_placeholder

def display_value(value):
    if value is None:
        return ""
    if value is True:
        return gettext("Yes")
    if value is False:
        return gettext("No")
    return value


class LocalizedValuesMixin:
    """Empty cells for NULL and 是/否 (Yes/No) for booleans, unless a view sets its own formatter."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        columns = list(self.list_columns or []) + list(self.show_columns or [])
        self.formatters_columns = {**{c: display_value for c in columns}, **(self.formatters_columns or {})}


class _CachedFilterConverter(SQLAFilterConverter):
    """FAB builds every column's filters anew each time it makes a Filters object (three times a
    list page: ~140 columns' worth); a column's filters depend only on its type, so each
    interface builds them once. Filters hold no values (the Filters object does): sharing is safe."""

    def convert(self, col_name):
        cache = self.datamodel.__dict__.setdefault("_crm_filters", {})
        if col_name not in cache:
            cache[col_name] = super().convert(col_name)
        made = cache[col_name]
        return list(made) if made is not None else None  # callers may extend their list


class CrmSQLAInterface(SQLAInterface):
    """FAB's interface, but a NOT NULL boolean is not "required" in forms: FAB would otherwise
    demand the box be ticked (an unticked box is a valid False)."""

    filter_converter_class = _CachedFilterConverter

    def is_nullable(self, col_name: str) -> bool:
        if self.is_boolean(col_name):
            return True
        return super().is_nullable(col_name)

    def query(self, filters=None, order_column="", order_direction="", page=None, page_size=None,
              select_columns=None, outer_default_load=False):
        """FAB's query (REST lists, related fields) with the count capped like the lists'."""
        return capped_query(self, filters, order_column, order_direction, page, page_size, select_columns,
                            outer_default_load)

    def add(self, item, commit: bool = True) -> None:
        with _duplicate_race_as_clash(item):
            super().add(item, commit)

    def edit(self, item, commit: bool = True) -> None:
        with _duplicate_race_as_clash(item):
            super().edit(item, commit)


def capped_query(datamodel, filters=None, order_column="", order_direction="", page=None, page_size=None,
                 select_columns=None, outer_default_load=False, loads=()) -> tuple[int, list]:
    """FAB's SQLAInterface.query for big tables: the count capped (app/services/paging.py)
    instead of counting every row (query_count stays exact: exports report their total), read
    from the primary key alone where FAB selects no columns; ``loads`` (loader options) load the
    page's relations with the page instead of one query per row."""
    from sqlalchemy import inspect as sa_inspect

    from app.security.scopes import scope_arms
    from app.services.paging import capped_count, merged_page

    query = datamodel.session.query(datamodel.obj)
    keys = datamodel._apply_inner_all(query, filters, select_columns=select_columns, aliases_mapping={})
    if not select_columns:
        keys = keys.with_entities(*sa_inspect(datamodel.obj).primary_key)
    pk = sa_inspect(datamodel.obj).primary_key
    paged = page_size and not select_columns and len(pk) == 1
    # a supervisor's page newest first: the department row scope read in its two arms, each an
    # index read (scopes.department_arms)
    arms = scope_arms(datamodel.obj, filters) if paged and (order_column, order_direction) == (pk[0].key, "desc") \
        else None
    if arms:
        count, ids = merged_page(keys, pk[0], arms, (page or 0) * page_size, page_size)
    else:
        count = capped_count(keys, (page or 0) * (page_size or 0))
    if paged:
        # the page's ids first (a deep OFFSET then skips index entries, not whole rows), then its rows
        if not arms:
            ids = [r[0] for r in datamodel._apply_inner_all(query, filters, order_column, order_direction, page,
                                                             page_size, aliases_mapping={}).with_entities(pk[0])]
        found = {getattr(r, pk[0].key): r for r in query.filter(pk[0].in_(ids)).options(*loads)} if ids else {}
        return count, [found[i] for i in ids if i in found]
    rows = datamodel.apply_all(query, filters, order_column, order_direction, page, page_size, select_columns,
                               outer_default_load).options(*loads).all()
    name = datamodel.obj.__name__
    return count, [getattr(r, name) if hasattr(r, name) else r for r in rows]


@contextmanager
def _duplicate_race_as_clash(item):
    """A customer saved at the same moment as the same company by someone else passes the
    dedupe check and then hits the database's unique guard: the user gets the same clash
    message as if the other save had come first, not a database error."""
    from app.models import Customer
    from app.services.dedupe import CustomerDuplicateError, check_customer

    if not isinstance(item, Customer):
        yield
        return
    values = (item.name, item.credit_code, getattr(item.kind, "code", None), item.id)
    try:
        yield
    except (IntegrityError, DatabaseException) as exc:
        if not isinstance(exc, IntegrityError) and not isinstance(exc.__cause__, IntegrityError):
            raise
        name, credit_code, kind_code, pk = values
        result = check_customer(name, credit_code, kind_code, exclude_id=pk)
        if result.ok:
            raise
        raise CustomerDuplicateError(result) from exc
