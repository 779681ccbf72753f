"""Every model, imported so that FAB's metadata (and so Alembic) sees them all."""
from app.models.org import CrmUser, Department, UserSession  # noqa: F401
from app.models.dictionary import DictionaryItem, DictionaryType  # noqa: F401
from app.models.system import JobRun, SeedRecord  # noqa: F401
from app.models.customer import Contact, Customer  # noqa: F401
from app.models.custom_field import CustomField  # noqa: F401
from app.models.interaction import Interaction  # noqa: F401
from app.models.followup import Cadence, FollowupPlan, Reminder, Task  # noqa: F401
from app.models.numbering import NumberingRule, SequenceCounter  # noqa: F401
from app.models.tag import (  # noqa: F401
    CustomerTag, Tag, TagAuditItem, TagAuditRound, TagChange, TagDimension, TaggingRule,
    TaggingRuleCondition, TagSuppression,
)
from app.models.attachment import Attachment  # noqa: F401
from app.models.access import RevealLog, RolePolicy  # noqa: F401
from app.models.history import FieldChange  # noqa: F401
from app.models.export import ExportLog  # noqa: F401
from app.models.service import (  # noqa: F401
    AgentProfile, AssignmentRule, Holiday, ServiceRecord, SlaAlert, SlaPolicy, Team, Ticket, TicketEvent,
    WorkCalendar,
)
from app.models.search import CustomerToken, SavedFilter  # noqa: F401
from app.models.importing import ImportBatch, ImportItem, ImportTemplate  # noqa: F401

import app.services.history  # noqa: E402,F401  (the session listeners that record field history)
from app.models.feedback import (  # noqa: E402,F401
    Feedback, FeedbackKeyword, FeedbackNote, FeedbackRule, PublicChallenge, Revisit, Survey,
)
