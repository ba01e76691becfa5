"""Synergie's data: SQLModel tables, enums, the stage machine and the database plumbing."""

from models.enums import STAGE_LABELS_FR, Channel, MessageStatus, Source, Stage
from models.stages import StageTransitionError, allowed_targets, transition
from models.tables import Campaign, Company, Contact, Message, OptOut, StageChange

__all__ = [
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
