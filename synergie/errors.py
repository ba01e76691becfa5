"""Which errors a person can cause: a setting, a file, a name, a date. Shown as one French line.

Each step keeps its own error class, next to the code that raises it; this module only names
them all, for the CLI (one red line, exit 1) and for the flows (a failed run whose message is
that line, without a traceback). Anything else is a bug and keeps its traceback.
"""

from __future__ import annotations

import functools


@functools.cache
def person_errors() -> tuple[type[Exception], ...]:
    """Return the error classes whose French message is all a person needs to see."""
    # Imported on first use: this module sits below every step and must not import them early.
    from models.companies import CompanyNotFound, StageConflict
    from models.db import DatabaseError
    from models.stages import StageTransitionError
    from synergie.calendar.itip import InvalidReply
    from synergie.calls.callers import CallError
    from synergie.listing.reading import ListingFileError
    from synergie.mailing.campaigns import CampaignNotFound
    from synergie.messaging.rendering import TemplateProblem
    from synergie.settings import SettingsError
    from synergie.surveys.definition import SurveyFileError
    from synergie.surveys.outreach import SurveyError
    from synergie.visits.diary import SchedulingError
    from synergie.visits.lifecycle import VisitError

    return (SettingsError, DatabaseError, ListingFileError, StageTransitionError, CompanyNotFound,
            StageConflict, CampaignNotFound, TemplateProblem, CallError, VisitError,
            SchedulingError, InvalidReply, SurveyError, SurveyFileError)  # fmt: skip
