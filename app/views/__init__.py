"""FAB views and REST APIs. Views declare; services decide and commit."""
from __future__ import annotations

from flask import current_app
from flask_appbuilder import AppBuilder
from flask_babel import lazy_gettext as _l


def register_views(appbuilder: AppBuilder) -> None:
    from app.views.customer import (
        ArchivedContactView, ArchivedInteractionView, ContactApi, ContactModelView, CustomerApi, CustomerModelView,
        InteractionApi, InteractionModelView,
    )
    from app.views.access import RevealLogModelView, RolePolicyModelView
    from app.views.history import CustomerHistoryApi, CustomerHistoryView
    from app.views.attachment import AttachmentModelView
    from app.views.tag import CustomerTagApi, CustomerTagModelView, TagDimensionModelView, TagModelView
    from app.views.tag_rules import TagAuditView, TaggingRuleConditionModelView, TaggingRuleModelView
    from app.views.custom_field import CustomFieldModelView
    from app.views.dictionary import DictionaryItemModelView, DictionaryTypeModelView
    from app.views.numbering import NumberingRuleModelView
    from app.views.org import DepartmentModelView
    from app.views.system import SystemStatusView
    from app.views.export import ExportLogModelView, MyExportsView
    from app.services.reach import reach_warning
    from app.views.feedback import (
        FeedbackApi, FeedbackModelView, FeedbackNoteModelView, FeedbackProblemsView, FeedbackRuleModelView,
        RevisitModelView, SurveyModelView,
    )
    from app.views import public

    current_app.jinja_env.globals["reach_warning"] = reach_warning  # the customer page's banner
    from app.views.followup import (
        CadenceModelView, CountedLabel, FollowupPlanModelView, TaskModelView, WorkbenchView, inbox_count,
    )
    from app.views.task_api import TaskApi
    from app.views.service import (
        AgentProfileModelView, AssignmentRuleModelView, HolidayModelView, MyTicketModelView, ServiceRecordApi,
        ServiceRecordModelView, SlaPolicyModelView, SupervisorBoardView, TeamModelView, TicketApi, TicketModelView,
        WorkCalendarModelView,
    )
    from app.views.lookup import LookupApi
    from app.views.search import CustomerArchiveView, CustomerSearchView
    from app.views.importing import ImportApi, ImportView

    crm, cfg = "CRM", "Settings"
    crm_l, cfg_l = _l("Customers"), _l("Settings")
    appbuilder.add_view_no_menu(CustomerHistoryView)
    appbuilder.add_view_no_menu(ArchivedContactView)  # tabs of an archived customer's page (历史档案)
    appbuilder.add_view_no_menu(ArchivedInteractionView)
    # Related views of the customer page first, so the customer view reuses these routed instances.
    appbuilder.add_view_no_menu(CustomerTagModelView)
    appbuilder.add_view_no_menu(AttachmentModelView)
    appbuilder.add_view(WorkbenchView, "My Workbench", label=CountedLabel(_l("My Workbench"), inbox_count),
                        icon="fa-inbox", category="Daily Work",
                        category_label=CountedLabel(_l("Daily Work"), inbox_count), category_icon="fa-briefcase")
    appbuilder.add_view(TaskModelView, "Tasks", label=_l("Tasks"), icon="fa-check-square-o",
                        category="Daily Work")
    appbuilder.add_view(FollowupPlanModelView, "Follow-up Plans", label=_l("Follow-up Plans"),
                        icon="fa-calendar", category="Daily Work")
    appbuilder.add_view(CustomerModelView, "Customer Files", label=_l("Customer Files"),
                        icon="fa-address-book", category=crm, category_label=crm_l,
                        category_icon="fa-users")
    appbuilder.add_view(CustomerSearchView, "Search Customers", label=_l("Search Customers"),
                        icon="fa-search", category=crm, category_label=crm_l)
    appbuilder.add_view(CustomerArchiveView, "Archive", label=_l("Archive"), icon="fa-archive",
                        category=crm, category_label=crm_l)
    appbuilder.add_view(ContactModelView, "Contacts", label=_l("Contacts"), icon="fa-phone",
                        category=crm, category_label=crm_l)
    appbuilder.add_view(InteractionModelView, "Interactions", label=_l("Interactions"),
                        icon="fa-comments", category=crm, category_label=crm_l)
    appbuilder.add_view(MyExportsView, "My Exports", label=_l("My Exports"), icon="fa-download",
                        category=crm, category_label=crm_l)
    appbuilder.add_view(TagAuditView, "Tag Audit", label=_l("Monthly Tag Audit"), icon="fa-check-square-o",
                        category=crm, category_label=crm_l)
    svc, svc_l = "Service", _l("Service Desk")
    appbuilder.add_view(TicketModelView, "Service Tickets", label=_l("Service Tickets"), icon="fa-ticket",
                        category=svc, category_label=svc_l, category_icon="fa-life-ring")
    appbuilder.add_view(MyTicketModelView, "My Tickets", label=_l("My Tickets"), icon="fa-user",
                        category=svc, category_label=svc_l)
    appbuilder.add_view(SupervisorBoardView, "Supervisor Board", label=_l("Supervisor Board"),
                        icon="fa-dashboard", category=svc, category_label=svc_l)
    appbuilder.add_view(ServiceRecordModelView, "Service Records", label=_l("Service Records"),
                        icon="fa-wrench", category=svc, category_label=svc_l)
    appbuilder.add_view_no_menu(HolidayModelView)
    for view, name, label, icon in (
            (WorkCalendarModelView, "Working Calendars", _l("Working Calendars"), "fa-calendar"),
            (SlaPolicyModelView, "SLA Policies", _l("SLA Policies"), "fa-hourglass-half"),
            (TeamModelView, "Service Teams", _l("Service Teams"), "fa-users"),
            (AgentProfileModelView, "Agents", _l("Agents"), "fa-headphones"),
            (AssignmentRuleModelView, "Assignment Rules", _l("Assignment Rules"), "fa-random")):
        appbuilder.add_view(view, name, label=label, icon=icon, category=svc, category_label=svc_l)
    appbuilder.add_view(ImportView, "Import Data", label=_l("Import Data"), icon="fa-upload",
                        category=crm, category_label=crm_l)
    fb, fb_l = "Feedback", _l("Feedback")
    appbuilder.add_view_no_menu(FeedbackNoteModelView)
    appbuilder.add_view(FeedbackModelView, "Feedback List", label=_l("Feedback List"), icon="fa-comment",
                        category=fb, category_label=fb_l, category_icon="fa-commenting")
    appbuilder.add_view(RevisitModelView, "Revisits", label=_l("Revisits"), icon="fa-phone-square",
                        category=fb, category_label=fb_l)
    appbuilder.add_view(SurveyModelView, "Satisfaction Follow-ups", label=_l("Satisfaction Follow-ups"),
                        icon="fa-smile-o", category=fb, category_label=fb_l)
    appbuilder.add_view(FeedbackProblemsView, "Frequent Problems", label=_l("Frequent Problems"),
                        icon="fa-bar-chart", category=fb, category_label=fb_l)
    appbuilder.add_view(DepartmentModelView, "Departments", label=_l("Departments"),
                        icon="fa-sitemap", category=cfg, category_label=cfg_l, category_icon="fa-cogs")
    appbuilder.add_view(DictionaryTypeModelView, "Dictionaries", label=_l("Dictionaries"),
                        icon="fa-book", category=cfg, category_label=cfg_l)
    appbuilder.add_view(DictionaryItemModelView, "Dictionary Items", label=_l("Dictionary Items"),
                        icon="fa-list", category=cfg, category_label=cfg_l)
    appbuilder.add_view(CustomFieldModelView, "Custom Fields", label=_l("Custom Fields"),
                        icon="fa-columns", category=cfg, category_label=cfg_l)
    appbuilder.add_view(TagDimensionModelView, "Tag Dimensions", label=_l("Tag Dimensions"),
                        icon="fa-tags", category=cfg, category_label=cfg_l)
    appbuilder.add_view(TagModelView, "Tags", label=_l("Tags"), icon="fa-tag", category=cfg,
                        category_label=cfg_l)
    appbuilder.add_view_no_menu(TaggingRuleConditionModelView)
    appbuilder.add_view(TaggingRuleModelView, "Tagging Rules", label=_l("Tagging Rules"), icon="fa-magic",
                        category=cfg, category_label=cfg_l)
    appbuilder.add_view(CadenceModelView, "Follow-up Cadence", label=_l("Follow-up Cadence"),
                        icon="fa-refresh", category=cfg, category_label=cfg_l)
    appbuilder.add_view(NumberingRuleModelView, "Numbering Rules", label=_l("Numbering Rules"),
                        icon="fa-list-ol", category=cfg, category_label=cfg_l)
    appbuilder.add_view(RolePolicyModelView, "Data Scopes", label=_l("Data Scopes"),
                        icon="fa-filter", category=cfg, category_label=cfg_l)
    appbuilder.add_view(RevealLogModelView, "Full Contact Views", label=_l("Full Contact Views"),
                        icon="fa-eye", category=cfg, category_label=cfg_l)
    appbuilder.add_view(ExportLogModelView, "Export Log", label=_l("Export Log"), icon="fa-file-excel-o",
                        category=cfg, category_label=cfg_l)
    appbuilder.add_view(FeedbackRuleModelView, "Feedback Rules", label=_l("Feedback Rules"),
                        icon="fa-filter", category=cfg, category_label=cfg_l)
    appbuilder.add_view(SystemStatusView, "System Status", label=_l("System Status"),
                        icon="fa-heartbeat", category=cfg, category_label=cfg_l)
    appbuilder.add_api(CustomerApi)
    appbuilder.add_api(ContactApi)
    appbuilder.add_api(InteractionApi)
    appbuilder.add_api(TaskApi)
    appbuilder.add_api(CustomerHistoryApi)
    appbuilder.add_api(CustomerTagApi)
    appbuilder.add_api(TicketApi)
    appbuilder.add_api(ServiceRecordApi)
    appbuilder.add_api(LookupApi)
    appbuilder.add_api(ImportApi)
    appbuilder.add_api(FeedbackApi)
    app = current_app._get_current_object()
    public.init_app(app, appbuilder.sm.limiter if app.config.get("RATELIMIT_ENABLED") else None)
    _order_related_tabs(appbuilder)


def _order_related_tabs(appbuilder: AppBuilder) -> None:
    """FAB attaches related views in registration order, so the customer page's tabs came out
    as 偏好标签, 附件, 修改记录, 联系信息, 互动记录; put them in the order each view declares. FAB
    also attaches subclasses of a declared view (the archive's ArchivedContactView on the
    customer page): keep only the declared classes themselves."""
    for view in appbuilder.baseviews:
        declared = list(getattr(view, "related_views", None) or [])
        if declared and view._related_views:
            view._related_views[:] = sorted((v for v in view._related_views if type(v) in declared),
                                            key=lambda v: declared.index(type(v)))
