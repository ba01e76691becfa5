"""SQLModel tables: campaigns, companies, contacts, opt-outs and the stage history."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime
from typing import Any

import sqlalchemy as sa
from sqlmodel import Field, SQLModel

from models.columns import UTCDateTime
from models.enums import (
    Activity,
    Answer,
    CallOutcome,
    Channel,
    LocationPrecision,
    MailOutcome,
    MeetingStatus,
    MessageStatus,
    Partstat,
    Source,
    Stage,
    Suppressed,
    SuppressionSource,
    SynergyKind,
    SynergyStatus,
    UploadStatus,
    VisitStatus,
    enum_column,
)


def utcnow() -> datetime:
    return datetime.now(UTC)


class Campaign(SQLModel, table=True):
    """A territory's programme for one year: its name and the communes it covers."""

    __table_args__ = (sa.UniqueConstraint("name", "year", name="uq_campaign_name_year"),)

    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(max_length=200)
    year: int
    communes: list[str] = Field(default_factory=list, sa_type=sa.JSON)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class CompanyBase(SQLModel):
    """What the listing knows about a site."""

    siret: str | None = Field(default=None, max_length=14)
    name: str = Field(max_length=300)
    naf_code: str | None = Field(default=None, max_length=8)
    staff_band: str | None = Field(default=None, max_length=2)
    address: str | None = Field(default=None, max_length=500)
    postcode: str | None = Field(default=None, max_length=10)
    commune: str | None = Field(default=None, max_length=200)
    commune_code: str | None = Field(default=None, max_length=5, index=True)
    latitude: float | None = None
    longitude: float | None = None
    # "commune" when latitude/longitude are the commune's centroid, not the site's own position.
    location_precision: LocationPrecision | None = Field(
        default=None, sa_type=enum_column(LocationPrecision, "ck_company_location_precision")
    )


class Company(CompanyBase, table=True):
    """A company site of the territory and the stage it has reached."""

    __table_args__ = (
        # SIRET is unique when present; a site without one is known by name + postcode.
        sa.Index("uq_company_siret", "siret", unique=True),
        sa.Index(
            "uq_company_name_postcode",
            "name_key",
            "postcode",
            unique=True,
            sqlite_where=sa.text("siret IS NULL"),
            postgresql_where=sa.text("siret IS NULL"),
        ),
    )

    id: int | None = Field(default=None, primary_key=True)
    name_key: str = Field(max_length=300)
    source: Source = Field(default=Source.LISTING, sa_type=enum_column(Source, "ck_company_source"))
    referred_by_id: int | None = Field(default=None, foreign_key="company.id")
    campaign_id: int | None = Field(default=None, foreign_key="campaign.id")
    stage: Stage = Field(
        default=Stage.LISTED, sa_type=enum_column(Stage, "ck_company_stage"), index=True
    )
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    updated_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class Contact(SQLModel, table=True):
    """A person, or a generic address, at a company."""

    __table_args__ = (
        # One contact per company and identity (e-mail, else phone, else name).
        sa.UniqueConstraint("company_id", "identity", name="uq_contact_company_identity"),
        sa.UniqueConstraint("public_id", name="uq_contact_public_id"),
    )

    id: int | None = Field(default=None, primary_key=True)
    # Links in messages name the contact by this random id, never by a guessable row id.
    public_id: str = Field(default_factory=lambda: uuid.uuid4().hex, max_length=32)
    company_id: int = Field(foreign_key="company.id", index=True)
    identity: str = Field(max_length=320)
    name: str | None = Field(default=None, max_length=200)
    role: str | None = Field(default=None, max_length=200)
    email: str | None = Field(default=None, max_length=320)
    email_invalid_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    phone: str | None = Field(default=None, max_length=20)
    phone_invalid_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class OptOut(SQLModel, table=True):
    """A contact's refusal of one channel: when, and how we learned it."""

    __tablename__ = "opt_out"
    __table_args__ = (
        sa.UniqueConstraint("contact_id", "channel", name="uq_opt_out_contact_channel"),
    )

    id: int | None = Field(default=None, primary_key=True)
    contact_id: int = Field(foreign_key="contact.id", index=True)
    channel: Channel = Field(sa_type=enum_column(Channel, "ck_opt_out_channel"))
    at: datetime = Field(sa_type=UTCDateTime)
    source: str = Field(max_length=100)


class Suppression(SQLModel, table=True):
    """An address or number that must not be reached on a channel, whatever row it hangs on.

    Keyed on what identifies a person to a channel: the normalised e-mail address, or the
    E.164 number. It outlives re-imports: every selection and every claim checks it. A row
    is never deleted; a staff removal stamps ``lifted_*`` and the row stays as the record.
    """

    __table_args__ = (
        # One active suppression per address and channel; lifted ones stay as history.
        sa.Index(
            "uq_suppression_active",
            "address",
            "channel",
            unique=True,
            sqlite_where=sa.text("lifted_at IS NULL"),
            postgresql_where=sa.text("lifted_at IS NULL"),
        ),
    )

    id: int | None = Field(default=None, primary_key=True)
    address: str = Field(max_length=320)
    channel: Suppressed = Field(sa_type=enum_column(Suppressed, "ck_suppression_channel"))
    reason: str = Field(max_length=1000)
    source: SuppressionSource = Field(
        sa_type=enum_column(SuppressionSource, "ck_suppression_source")
    )
    at: datetime = Field(sa_type=UTCDateTime)
    actor: str = Field(max_length=200)
    # The contact row it came from, if any: for the record only, never used to match.
    contact_id: int | None = None
    lifted_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    lifted_by: str | None = Field(default=None, max_length=200)
    lifted_why: str | None = Field(default=None, max_length=1000)


class StageChange(SQLModel, table=True):
    """One move of a company from a stage to another: when, why and by whom."""

    __tablename__ = "stage_change"

    id: int | None = Field(default=None, primary_key=True)
    company_id: int = Field(foreign_key="company.id", index=True)
    from_stage: Stage = Field(sa_type=enum_column(Stage, "ck_stage_change_from"))
    to_stage: Stage = Field(sa_type=enum_column(Stage, "ck_stage_change_to"))
    at: datetime = Field(sa_type=UTCDateTime)
    why: str = Field(max_length=1000)
    actor: str = Field(max_length=200)


class Message(SQLModel, table=True):
    """The outbox: one row per message, written and claimed before the transport is called.

    ``key`` is the unique key of a send (campaign step + recipient + channel): a rerun or
    a second run at the same time can never produce a second row, and a row marked sent
    is never claimed again.
    """

    __table_args__ = (
        sa.UniqueConstraint("key", name="uq_message_key"),
        sa.UniqueConstraint("message_id", name="uq_message_message_id"),
        sa.Index("ix_message_claim", "status", "next_attempt_at"),
        sa.Index("ix_message_campaign_step", "campaign_id", "step"),
    )

    id: int | None = Field(default=None, primary_key=True)
    key: str = Field(max_length=300)
    campaign_id: int | None = Field(default=None, foreign_key="campaign.id")
    step: str = Field(max_length=100)
    channel: Channel = Field(sa_type=enum_column(Channel, "ck_message_channel"))
    contact_id: int | None = Field(default=None, foreign_key="contact.id", index=True)
    company_id: int | None = Field(default=None, foreign_key="company.id")
    to_address: str = Field(max_length=320)
    message_id: str = Field(max_length=200)
    status: MessageStatus = Field(
        default=MessageStatus.QUEUED, sa_type=enum_column(MessageStatus, "ck_message_status")
    )
    attempts: int = 0
    next_attempt_at: datetime = Field(sa_type=UTCDateTime)
    lease_until: datetime | None = Field(default=None, sa_type=UTCDateTime)
    claimed_by: str | None = Field(default=None, max_length=100)
    last_error: str | None = Field(default=None, max_length=1000)
    error_code: int | None = None
    provider_id: str | None = Field(default=None, max_length=200)
    context: dict[str, Any] | None = Field(default=None, sa_type=sa.JSON)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    sent_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    updated_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class Caller(SQLModel, table=True):
    """A volunteer of the partner (or a staff member) who phones companies."""

    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(max_length=200)
    phone: str | None = Field(default=None, max_length=20)
    email: str | None = Field(default=None, max_length=320)
    calls_per_day: int = Field(default=5, ge=1, le=200)
    # ISO weekdays (1 = Monday) the caller is available.
    days_available: list[int] = Field(default_factory=lambda: [1, 2, 3, 4, 5], sa_type=sa.JSON)
    active: bool = True
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class CallTask(SQLModel, table=True):
    """One call to make to a company: who calls, when, and what came of it."""

    __tablename__ = "call_task"
    __table_args__ = (
        # One open call per company at a time.
        sa.Index(
            "uq_call_task_open_company",
            "company_id",
            unique=True,
            sqlite_where=sa.text("outcome IS NULL"),
            postgresql_where=sa.text("outcome IS NULL"),
        ),
    )

    id: int | None = Field(default=None, primary_key=True)
    company_id: int = Field(foreign_key="company.id", index=True)
    contact_id: int | None = Field(default=None, foreign_key="contact.id")
    caller_id: int | None = Field(default=None, foreign_key="caller.id", index=True)
    due_on: date
    assigned_on: date | None = None
    attempt: int = Field(default=1, ge=1)
    outcome: CallOutcome | None = Field(
        default=None, sa_type=enum_column(CallOutcome, "ck_call_task_outcome")
    )
    callback_on: date | None = None
    notes: str | None = Field(default=None, max_length=2000)
    logged_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    logged_by: str | None = Field(default=None, max_length=200)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class StaffMember(SQLModel, table=True):
    """A programme officer who visits companies: working hours and days off."""

    __tablename__ = "staff_member"

    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(max_length=200)
    email: str = Field(max_length=320)
    phone: str | None = Field(default=None, max_length=20)
    # {"0": [["09:00", "12:30"], ["13:30", "17:30"]], ...}: weekday (0 = Monday) → local windows.
    weekly_hours: dict[str, list[list[str]]] = Field(default_factory=dict, sa_type=sa.JSON)
    days_off: list[str] = Field(default_factory=list, sa_type=sa.JSON)  # ISO dates
    active: bool = True


class StaffSignIn(SQLModel, table=True):
    """A one-time sign-in link that was used, and the session it opened (until it ends or expires).

    ``nonce`` is the link's random id: a second use finds this row and is refused. The session
    cookie names the same nonce, so signing out (``ended_at``) ends that cookie everywhere.
    """

    __tablename__ = "staff_sign_in"
    __table_args__ = (sa.UniqueConstraint("nonce", name="uq_staff_sign_in_nonce"),)

    id: int | None = Field(default=None, primary_key=True)
    nonce: str = Field(max_length=64)
    staff_id: int = Field(foreign_key="staff_member.id", index=True)
    used_at: datetime = Field(sa_type=UTCDateTime)
    expires_at: datetime = Field(sa_type=UTCDateTime)
    ended_at: datetime | None = Field(default=None, sa_type=UTCDateTime)


class ListingUpload(SQLModel, table=True):
    """A listing staff uploaded on the portal, and what its import did.

    The import (in the portal's process, or the ``import-listing`` run its event started) finds
    the row by ``stored_path``, the file kept under the data directory, and writes its outcome
    here, so the portal can show it to staff who cannot reach Prefect.
    """

    __tablename__ = "listing_upload"
    __table_args__ = (sa.UniqueConstraint("stored_path", name="uq_listing_upload_stored_path"),)

    id: int | None = Field(default=None, primary_key=True)
    staff_id: int = Field(foreign_key="staff_member.id", index=True)
    file_name: str = Field(max_length=300)  # as staff named it
    stored_path: str = Field(max_length=1000)  # absolute, under the data directory
    dry_run: bool = False
    status: UploadStatus = Field(
        default=UploadStatus.QUEUED, sa_type=enum_column(UploadStatus, "ck_listing_upload_status")
    )
    kind: str | None = Field(default=None, max_length=20)
    rows_read: int = 0
    filtered_out: int = 0
    created: int = 0
    updated: int = 0
    rejected: int = 0
    not_diffusible: int = 0  # SIRENE's partially diffusible sites and legal units, never imported
    unplaced: int = 0  # imported without a commune code (staff complete them)
    # The first rejected rows, for the page: [[line, French reason], ...].
    rejections: list[list[Any]] = Field(default_factory=list, sa_type=sa.JSON)
    unplaced_rows: list[list[Any]] = Field(default_factory=list, sa_type=sa.JSON)
    rejects_path: str | None = Field(default=None, max_length=1000)
    error: str | None = Field(default=None, max_length=2000)  # French, for staff
    uploaded_at: datetime = Field(sa_type=UTCDateTime)
    started_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    finished_at: datetime | None = Field(default=None, sa_type=UTCDateTime)


class Visit(SQLModel, table=True):
    """A site visit: 1 h of preparation and 1 h on site, with its calendar invitation's life."""

    __table_args__ = (sa.UniqueConstraint("uid", name="uq_visit_uid"),)

    id: int | None = Field(default=None, primary_key=True)
    uid: str = Field(max_length=200)
    company_id: int = Field(foreign_key="company.id", index=True)
    contact_id: int | None = Field(default=None, foreign_key="contact.id")
    staff_id: int = Field(foreign_key="staff_member.id", index=True)
    starts_at: datetime = Field(sa_type=UTCDateTime)
    ends_at: datetime = Field(sa_type=UTCDateTime)
    reserved_start: datetime = Field(sa_type=UTCDateTime)
    reserved_end: datetime = Field(sa_type=UTCDateTime)
    sequence: int = 0
    status: VisitStatus = Field(
        default=VisitStatus.BOOKED, sa_type=enum_column(VisitStatus, "ck_visit_status")
    )
    partstat: Partstat = Field(
        default=Partstat.NEEDS_ACTION, sa_type=enum_column(Partstat, "ck_visit_partstat")
    )
    notes: str | None = Field(default=None, max_length=4000)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    updated_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class TimeEntry(SQLModel, table=True):
    """Staff time spent, compared by reports with the seed's budget (5 h listing, 60 h visits…)."""

    __tablename__ = "time_entry"

    id: int | None = Field(default=None, primary_key=True)
    activity: Activity = Field(sa_type=enum_column(Activity, "ck_time_entry_activity"))
    hours: float = Field(ge=0, le=24)
    company_id: int | None = Field(default=None, foreign_key="company.id", index=True)
    day: date
    actor: str = Field(max_length=200)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class MailboxMail(SQLModel, table=True):
    """One incoming mail the mailbox flow handled: written with its effect, so it is applied once.

    ``digest`` (SHA-256 of the raw mail) is the key: it survives a mailbox whose UIDVALIDITY
    changed and a mail copied back into the watched folder; the IMAP coordinates and the
    Message-ID are kept to find the mail again.
    """

    __tablename__ = "mailbox_mail"
    __table_args__ = (sa.UniqueConstraint("digest", name="uq_mailbox_mail_digest"),)

    id: int | None = Field(default=None, primary_key=True)
    digest: str = Field(max_length=64)
    message_id: str | None = Field(default=None, max_length=300, index=True)
    folder: str = Field(max_length=200)
    uidvalidity: int = Field(sa_type=sa.BigInteger)
    uid: int = Field(sa_type=sa.BigInteger)
    outcome: MailOutcome = Field(sa_type=enum_column(MailOutcome, "ck_mailbox_mail_outcome"))
    detail: str = Field(default="", max_length=1000)
    handled_at: datetime = Field(sa_type=UTCDateTime)
    moved_to: str | None = Field(default=None, max_length=200)
    moved_at: datetime | None = Field(default=None, sa_type=UTCDateTime)


class Meeting(SQLModel, table=True):
    """A quarterly meeting at a host company, with its capacity and its invitation's life (UID, SEQUENCE)."""

    __table_args__ = (sa.UniqueConstraint("uid", name="uq_meeting_uid"),)

    id: int | None = Field(default=None, primary_key=True)
    # Random (synergie.calendar.itip.meeting_uid): the same for every version sent to everyone.
    uid: str = Field(max_length=200)
    title: str = Field(max_length=300)
    format: str = Field(default="World Café", max_length=100)
    starts_at: datetime = Field(sa_type=UTCDateTime)
    ends_at: datetime = Field(sa_type=UTCDateTime)
    place: str = Field(max_length=500)
    host_company_id: int | None = Field(default=None, foreign_key="company.id")
    campaign_id: int | None = Field(default=None, foreign_key="campaign.id")
    capacity: int = Field(default=15, ge=1, le=10_000)  # people, not companies
    per_company: int = Field(default=2, ge=1, le=100)
    agenda: str = Field(default="", max_length=4000)
    status: MeetingStatus = Field(
        default=MeetingStatus.PLANNED, sa_type=enum_column(MeetingStatus, "ck_meeting_status")
    )
    sequence: int = 0
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    updated_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class Registration(SQLModel, table=True):
    """One company invited to one meeting: its answer, people coming, place on the waiting list, attendance.

    ``version`` counts the answers (and promotions) that changed it; each version gets one
    confirmation, under an outbox key naming it, so a rerun never sends one twice.
    """

    __table_args__ = (
        sa.UniqueConstraint("meeting_id", "company_id", name="uq_registration_meeting_company"),
        sa.Index("ix_registration_meeting_status", "meeting_id", "status"),
    )

    id: int | None = Field(default=None, primary_key=True)
    meeting_id: int = Field(foreign_key="meeting.id")
    company_id: int = Field(foreign_key="company.id", index=True)
    contact_id: int | None = Field(default=None, foreign_key="contact.id")  # who answered last
    status: Answer = Field(
        default=Answer.NO_ANSWER, sa_type=enum_column(Answer, "ck_registration_status")
    )
    people: int = Field(default=0, ge=0, le=100)
    note: str | None = Field(default=None, max_length=1000)
    waiting_since: datetime | None = Field(default=None, sa_type=UTCDateTime)
    answered_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    promoted_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    version: int = 0
    confirmed_version: int = 0
    removed: bool = False  # staff took the company off this meeting's list
    # Times staff put it back on the list after taking it off: each round has its invitation.
    rounds: int = 0
    attended: bool | None = None
    invited_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    updated_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class Synergy(SQLModel, table=True):
    """An exchange of materials or a shared collection between companies (or with the authority).

    The trips and kilometres it removes are prefilled from the flows' current outlets and
    edited by staff; the vehicle names a row of synergie/reporting/factors.toml.
    """

    id: int | None = Field(default=None, primary_key=True)
    title: str = Field(max_length=300)
    kind: SynergyKind = Field(
        default=SynergyKind.SUBSTITUTION, sa_type=enum_column(SynergyKind, "ck_synergy_kind")
    )
    status: SynergyStatus = Field(
        default=SynergyStatus.IDEA,
        sa_type=enum_column(SynergyStatus, "ck_synergy_status"),
        index=True,
    )
    trips_per_month: float = Field(default=0, ge=0, le=10_000)
    km_per_trip: float = Field(default=0, ge=0, le=10_000)
    tonnes_per_year: float = Field(default=0, ge=0, le=10_000_000)
    vehicle: str = Field(default="articulated-40t-long-distance", max_length=100)
    notes: str | None = Field(default=None, max_length=4000)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    updated_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class Referral(SQLModel, table=True):
    """A company brought to a meeting by a participant ("bring a company of your network")."""

    __table_args__ = (
        sa.UniqueConstraint("meeting_id", "company_id", name="uq_referral_meeting_company"),
    )

    id: int | None = Field(default=None, primary_key=True)
    meeting_id: int = Field(foreign_key="meeting.id", index=True)
    referrer_company_id: int = Field(foreign_key="company.id")
    referrer_contact_id: int = Field(foreign_key="contact.id")
    company_id: int = Field(foreign_key="company.id")
    contact_id: int = Field(foreign_key="contact.id")
    consent: bool
    invited_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class SynergyParty(SQLModel, table=True):
    """A party to a synergy: a company, or the authority itself (``company_id`` empty)."""

    __tablename__ = "synergy_party"
    __table_args__ = (
        sa.UniqueConstraint("synergy_id", "company_id", name="uq_synergy_party_company"),
        sa.CheckConstraint(
            "(company_id IS NULL) = is_authority", name="ck_synergy_party_company_or_authority"
        ),
    )

    id: int | None = Field(default=None, primary_key=True)
    synergy_id: int = Field(foreign_key="synergy.id", index=True)
    company_id: int | None = Field(default=None, foreign_key="company.id", index=True)
    is_authority: bool = False
    role: str = Field(default="partner", max_length=20)  # giver, taker, partner


class SynergyFlow(SQLModel, table=True):
    """A material flow of the inventory that a synergy links.

    Deleting the flow (a company replacing its portal answer) removes the link, not the
    synergy: its trips, km and tonnes were copied when it was created.
    """

    __tablename__ = "synergy_flow"
    __table_args__ = (sa.UniqueConstraint("synergy_id", "flow_id", name="uq_synergy_flow"),)

    id: int | None = Field(default=None, primary_key=True)
    synergy_id: int = Field(foreign_key="synergy.id", index=True)
    flow_id: int = Field(foreign_key="material_flow.id", ondelete="CASCADE", index=True)


class SynergyStatusChange(SQLModel, table=True):
    """One move of a synergy from a status to another: when, why and by whom."""

    __tablename__ = "synergy_status_change"

    id: int | None = Field(default=None, primary_key=True)
    synergy_id: int = Field(foreign_key="synergy.id", index=True)
    from_status: SynergyStatus | None = Field(
        default=None, sa_type=enum_column(SynergyStatus, "ck_synergy_status_change_from")
    )
    to_status: SynergyStatus = Field(
        sa_type=enum_column(SynergyStatus, "ck_synergy_status_change_to")
    )
    at: datetime = Field(sa_type=UTCDateTime)
    why: str = Field(max_length=1000)
    actor: str = Field(max_length=200)
