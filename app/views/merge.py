"""Merging two customers from the screens and the API: an action on the customer list (exactly
two rows) opens a confirmation page (choose the survivor, see what moves, confirm with a CSRF-
protected POST); POST /api/v1/customer/merge does the same for programs. Both need the one
permission can_merge; the work is app.services.merge.merge_customers."""
from __future__ import annotations

from flask import flash, redirect, request, url_for
from flask_appbuilder import expose, has_access
from flask_appbuilder.actions import action
from flask_appbuilder.api import safe
from flask_appbuilder.security.decorators import permission_name, protect
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l

from app.services.merge import MergeError, merge_customers, plan_merge


class CustomerMergeMixin:
    """For CustomerModelView. The action and the confirmation page share can_merge."""
    method_permission_name = {"merge": "merge"}

    def _scoped(self, pk: int):
        return self.datamodel.get(pk, self._base_filters)

    @action("merge", _l("Merge"), multiple=True, single=False, icon="fa-compress")
    def merge(self, items):
        items = [i for i in (items if isinstance(items, list) else [items]) if i is not None]
        if len(items) != 2:
            flash(_("Select exactly two customers to merge."), "warning")
            return redirect(url_for(".list"))
        return redirect(url_for(".merge_confirm", a=items[0].id, b=items[1].id))

    @expose("/merge/", methods=["GET", "POST"])
    @has_access
    @permission_name("merge")
    def merge_confirm(self):
        a, b = request.values.get("a", type=int), request.values.get("b", type=int)
        if request.method == "POST":
            survivor = request.form.get("survivor", type=int)
            if survivor in (a, b):
                merged = b if survivor == a else a
                try:
                    plan = merge_customers(survivor, merged, loader=self._scoped)
                except MergeError as exc:
                    for message in exc.errors:
                        flash(message, "danger")
                    return redirect(url_for(".list"))
                flash(_("%(merged)s was merged into %(survivor)s.", merged=plan.merged_label,
                        survivor=plan.survivor_label), "success")
                return redirect(url_for(".show", pk=survivor))
            flash(_("Choose which customer to keep."), "warning")
        plans = []
        try:
            for survivor, merged in ((a, b), (b, a)):
                plans.append(plan_merge(survivor, merged, loader=self._scoped))
        except MergeError as exc:
            for message in exc.errors:
                flash(message, "danger")
            return redirect(url_for(".list"))
        return self.render_template("crm/merge_confirm.html", plans=plans, a=a, b=b,
                                    title=_l("Merge Customers"))


class CustomerMergeApiMixin:
    """For CustomerApi: POST /api/v1/customer/merge {"survivor_id": 1, "merged_id": 2}."""

    @expose("/merge", methods=["POST"])
    @protect()
    @safe
    @permission_name("merge")
    def merge(self):
        """Merge merged_id into survivor_id; 422 with every problem, nothing changed.
        ---
        post:
          requestBody:
            content:
              application/json:
                schema:
                  type: object
                  properties:
                    survivor_id: {type: integer}
                    merged_id: {type: integer}
          responses:
            200:
              description: merged
            422:
              $ref: '#/components/responses/422'
        """
        body = request.get_json(silent=True) or {}
        try:
            plan = merge_customers(body.get("survivor_id"), body.get("merged_id"),
                                   loader=lambda pk: self.datamodel.get(pk, self._base_filters))
        except MergeError as exc:
            return self.response(422, message=exc.errors)
        return self.response(200, **plan.as_dict())
