"""The home page: a short overview of the user's own work and of the system."""
from __future__ import annotations

from datetime import datetime, timedelta

from flask import current_app, g, redirect, url_for
from flask_appbuilder import IndexView, expose
from sqlalchemy import func

from app.extensions import db
from app.models import Customer, Feedback, Interaction, Revisit
from app.security.scopes import row_clause
from app.services.sla import service_stats


def overview_stats(user) -> dict:
    """The overview counts (home page, and the top of 我的工作台), all within the user's row scope
    (app/security/scopes.py), like the lists."""
    week_ago = datetime.utcnow() - timedelta(days=7)
    in_scope, interactions_in_scope = row_clause(Customer), row_clause(Interaction)
    stats = {
        "customers": db.session.query(func.count(Customer.id)).filter(in_scope).scalar(),
        "mine": db.session.query(func.count(Customer.id)).filter(in_scope, Customer.owner_id == user.id).scalar(),
        "interactions_week": db.session.query(func.count(Interaction.id))
        .filter(interactions_in_scope, Interaction.occurred_at >= week_ago).scalar(),
        "stale": db.session.query(func.count(Customer.id))
        .filter(in_scope, Customer.owner_id == user.id,
                (Customer.last_contact_at.is_(None)) | (Customer.last_contact_at < datetime.utcnow() - timedelta(days=30)))
        .scalar(),
    }
    stats.update(service_stats(user))  # my open tickets and SLA alerts
    stats["my_feedback"] = db.session.query(func.count(Feedback.id)).filter(
        Feedback.handler_id == user.id, Feedback.status.in_(("pending", "processing"))).scalar()
    stats["revisits"] = (db.session.query(Revisit).filter(Revisit.assignee_id == user.id, Revisit.done_at.is_(None))
                         .order_by(Revisit.due_at).limit(20).all())  # low satisfaction scores to call back
    return stats


class CrmIndexView(IndexView):
    index_template = "crm/index.html"

    @expose("/")
    def index(self):
        stats = None
        user = getattr(g, "user", None)
        if user is not None and user.is_authenticated and self._staff(user):
            return redirect(url_for("WorkbenchView.index"))  # 我的工作台 is the staff's home page
        if user is not None and user.is_authenticated:
            stats = overview_stats(user)
        return self.render_template(self.index_template, appbuilder=self.appbuilder, stats=stats)

    def _staff(self, user) -> bool:
        """Users with the workbench, except admins (their home is this overview)."""
        admin = current_app.config.get("AUTH_ROLE_ADMIN")
        return not any(r.name == admin for r in user.roles) and \
            self.appbuilder.sm.has_access("can_index", "WorkbenchView")
