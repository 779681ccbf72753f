"""系统状态 / System status: job mode, queues, workers, failed jobs; run a periodic job now."""
from __future__ import annotations

import uuid

from flask import flash, redirect, url_for
from flask_appbuilder import BaseView, expose, has_access
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l

from app.jobs import PERIODIC, enqueue
from app.jobs.runner import execute
from app.services.system_status import status


class SystemStatusView(BaseView):
    route_base = "/system"
    default_view = "index"
    base_permissions = ["can_index", "can_run_job"]

    @expose("/status/")
    @has_access
    def index(self):
        self.update_redirect()  # so that switching the language comes back here
        return self.render_template("crm/system_status.html", info=status(), title=_l("System Status"))

    @expose("/jobs/<name>/run", methods=["POST"])
    @has_access
    def run_job(self, name: str):
        job = PERIODIC.get(name)
        if job is None:
            flash(_("Unknown job: %(name)s", name=name), "danger")
            return redirect(url_for("SystemStatusView.index"))
        key = f"manual-{uuid.uuid4().hex[:12]}"
        from app.jobs import mode

        if mode() == "inline":
            try:
                execute(job.func, key, [], mode="manual")
                flash(_("Job %(name)s finished.", name=name), "success")
            except Exception:
                flash(_("Job %(name)s failed; see the recent runs below.", name=name), "danger")
        else:
            enqueue(job.func, run_key=key)
            flash(_("Job %(name)s was queued.", name=name), "success")
        return redirect(url_for("SystemStatusView.index"))
