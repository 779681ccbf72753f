"""Every model, imported so that FAB's metadata (and so Alembic) sees them all."""
from app.models.org import CrmUser, Department, UserSession  # noqa: F401
from app.models.dictionary import DictionaryItem, DictionaryType  # noqa: F401
from app.models.system import JobRun, SeedRecord  # noqa: F401
from app.models.customer import Contact, Customer  # noqa: F401
from app.models.interaction import Interaction  # noqa: F401
from app.models.numbering import NumberingRule, SequenceCounter  # noqa: F401
from app.models.tag import CustomerTag, Tag, TagDimension  # noqa: F401
from app.models.attachment import Attachment  # noqa: F401
from app.models.access import RevealLog, RolePolicy  # noqa: F401
from app.models.history import FieldChange  # noqa: F401

import app.services.history  # noqa: E402,F401  (the session listeners that record field history)
from app.models.feedback import (  # noqa: E402,F401
    Feedback, FeedbackKeyword, FeedbackNote, FeedbackRule, PublicChallenge, Revisit, Survey,
)
