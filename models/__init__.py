"""Synergie's data: SQLModel tables, enums, the stage machine and the database plumbing."""

from models.enums import (
    STAGE_LABELS_FR,
    Activity,
    CallOutcome,
    Channel,
    MessageStatus,
    Partstat,
    Source,
    Stage,
    VisitStatus,
)
from models.stages import StageTransitionError, allowed_targets, transition
from models.tables import (
    Caller,
    CallTask,
    Campaign,
    Company,
    Contact,
    Message,
    OptOut,
    StaffMember,
    StageChange,
    TimeEntry,
    Visit,
)

__all__ = [
    "Activity",
    "CallOutcome",
    "CallTask",
    "Caller",
    "Partstat",
    "StaffMember",
    "TimeEntry",
    "Visit",
    "VisitStatus",
    "STAGE_LABELS_FR",
    "Campaign",
    "Channel",
    "Company",
    "Contact",
    "Message",
    "MessageStatus",
    "OptOut",
    "Source",
    "Stage",
    "StageChange",
    "StageTransitionError",
    "allowed_targets",
    "transition",
]
