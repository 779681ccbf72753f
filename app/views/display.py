"""How plain values read on list and show pages: FAB prints Python's "None", "True" and "False"
as they are, which is English on a Chinese screen."""
from __future__ import annotations

from flask_babel import gettext


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
