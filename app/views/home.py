"""The home page: a short overview of the user's own work and of the system."""
from __future__ import annotations

from datetime import datetime, timedelta

from flask import g
from flask_appbuilder import IndexView, expose
from sqlalchemy import func

from app.extensions import db
from app.models import Customer, Feedback, Interaction, Revisit
from app.security.scopes import row_clause


class CrmIndexView(IndexView):
    index_template = "crm/index.html"

    @expose("/")
    def index(self):
        stats = None
        user = getattr(g, "user", None)
        if user is not None and user.is_authenticated:
            week_ago = datetime.utcnow() - timedelta(days=7)
            # Every count within the user's row scope (app/security/scopes.py), like the lists.
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
            stats["my_feedback"] = db.session.query(func.count(Feedback.id)).filter(
                Feedback.handler_id == user.id, Feedback.status.in_(("pending", "processing"))).scalar()
            revisits = (db.session.query(Revisit).filter(Revisit.assignee_id == user.id, Revisit.done_at.is_(None))
                        .order_by(Revisit.due_at).limit(20).all())
        else:
            revisits = []
        return self.render_template(self.index_template, appbuilder=self.appbuilder, stats=stats, revisits=revisits)
