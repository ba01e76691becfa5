"""Enumerations shared by the tables: company stages, sources, channels, actors."""

from __future__ import annotations

from enum import StrEnum

import sqlalchemy as sa


class Stage(StrEnum):
    """Where a company stands in the programme's pipeline (DESIGN.md, "Company stages")."""

    LISTED = "listed"
    CONTACTED = "contacted"
    CALLED = "called"
    VISIT_SCHEDULED = "visit_scheduled"
    VISITED = "visited"
    FLOWS_COLLECTED = "flows_collected"
    PARTICIPANT = "participant"
    MEMBER = "member"
    DECLINED = "declined"
    UNREACHABLE = "unreachable"
    OPTED_OUT = "opted_out"
    CLOSED = "closed"


STAGE_LABELS_FR: dict[Stage, str] = {
    Stage.LISTED: "listée",
    Stage.CONTACTED: "contactée",
    Stage.CALLED: "appelée",
    Stage.VISIT_SCHEDULED: "visite planifiée",
    Stage.VISITED: "visitée",
    Stage.FLOWS_COLLECTED: "flux collectés",
    Stage.PARTICIPANT: "participante",
    Stage.MEMBER: "membre",
    Stage.DECLINED: "a décliné",
    Stage.UNREACHABLE: "injoignable",
    Stage.OPTED_OUT: "désinscrite",
    Stage.CLOSED: "fermée",
}


class LocationPrecision(StrEnum):
    """Where a company's coordinates come from: the site itself, or its commune's centroid."""

    SITE = "site"
    COMMUNE = "commune"


class Source(StrEnum):
    """How a company entered the listing."""

    LISTING = "listing"
    SIRENE = "sirene"
    REFERRAL = "referral"
    MANUAL = "manual"


class Channel(StrEnum):
    """A way of reaching a contact; opt-outs are recorded per channel."""

    EMAIL = "email"
    SMS = "sms"
    PHONE = "phone"


CHANNEL_LABELS_FR: dict[Channel, str] = {
    Channel.EMAIL: "courriel",
    Channel.SMS: "SMS",
    Channel.PHONE: "téléphone",
}


class Suppressed(StrEnum):
    """What a suppression forbids: one channel of an address or number, or everything."""

    EMAIL = "email"
    SMS = "sms"
    PHONE = "phone"
    ALL = "all"


class SuppressionSource(StrEnum):
    """How an opt-out reached us."""

    PORTAL = "portal"  # the unsubscribe page's form
    ONE_CLICK = "one-click"  # RFC 8058 POST from a mail client
    MAILTO = "mailto"  # a mail to the List-Unsubscribe mailto: address
    SMS_STOP = "sms-stop"  # STOP to our SMS, reported by the carrier (Twilio 21610)
    STAFF = "staff"  # a letter, a call, recorded by staff
    MIGRATION = "migration"  # an opt-out recorded before the list existed


class MessageStatus(StrEnum):
    """Where an outbox row stands; only ``queued`` rows (and expired ``sending`` leases) are claimed."""

    QUEUED = "queued"
    SENDING = "sending"
    SENT = "sent"
    FAILED = "failed"  # transient failures until the attempts ran out
    BOUNCED = "bounced"  # refused for good: the address or number is wrong
    CANCELLED = "cancelled"  # the recipient opted out before it left


MESSAGE_STATUS_LABELS_FR: dict[MessageStatus, str] = {
    MessageStatus.QUEUED: "en attente d'envoi",
    MessageStatus.SENDING: "en cours d'envoi",
    MessageStatus.SENT: "envoyé",
    MessageStatus.FAILED: "échec (essais épuisés)",
    MessageStatus.BOUNCED: "rejeté (adresse ou numéro invalide)",
    MessageStatus.CANCELLED: "annulé (désinscription)",
}


class CallOutcome(StrEnum):
    """What a phone call gave; it drives the company's stage."""

    REACHED = "reached"
    INTERESTED = "interested"
    NO_ANSWER = "no-answer"
    CALLBACK = "callback"
    REFUSED = "refused"
    WRONG_NUMBER = "wrong-number"


class VisitStatus(StrEnum):
    """Where a site visit stands."""

    BOOKED = "booked"
    CANCELLED = "cancelled"
    DONE = "done"


VISIT_STATUS_LABELS_FR: dict[VisitStatus, str] = {
    VisitStatus.BOOKED: "prévue",
    VisitStatus.CANCELLED: "annulée",
    VisitStatus.DONE: "faite",
}


class Partstat(StrEnum):
    """The company's answer to the calendar invitation (iTIP PARTSTAT)."""

    NEEDS_ACTION = "needs-action"
    ACCEPTED = "accepted"
    DECLINED = "declined"
    TENTATIVE = "tentative"


PARTSTAT_LABELS_FR: dict[Partstat, str] = {
    Partstat.NEEDS_ACTION: "en attente de réponse",
    Partstat.ACCEPTED: "acceptée",
    Partstat.DECLINED: "refusée",
    Partstat.TENTATIVE: "peut-être",
}


class MeetingStatus(StrEnum):
    """Where a quarterly meeting stands."""

    PLANNED = "planned"
    INVITED = "invited"
    HELD = "held"
    CANCELLED = "cancelled"


class Answer(StrEnum):
    """A company's answer to a meeting invitation; ``waiting`` is a yes beyond capacity."""

    REGISTERED = "registered"
    WAITING = "waiting"
    DECLINED = "declined"
    MAYBE = "maybe"
    NO_ANSWER = "no-answer"


ANSWER_LABELS_FR: dict[Answer, str] = {
    Answer.REGISTERED: "inscrite",
    Answer.WAITING: "en liste d'attente",
    Answer.DECLINED: "ne vient pas",
    Answer.MAYBE: "peut-être",
    Answer.NO_ANSWER: "sans réponse",
}


class Activity(StrEnum):
    """What staff time was spent on, for the time ledger against the seed's budget."""

    LISTING = "listing"
    CALL = "call"
    VISIT = "visit"
    FLOWS_COLLECTION = "flows-collection"
    MEETING = "meeting"


class MailOutcome(StrEnum):
    """What the mailbox flow made of one incoming mail; each has its own IMAP folder."""

    BOUNCED = "bounced"  # a DSN: permanent failure, the address is marked invalid
    DELAYED = "delayed"  # a DSN: delay or temporary failure, nothing to do
    UNSUBSCRIBED = "unsubscribed"  # a mail to the List-Unsubscribe mailto
    REPLIED = "replied"  # an iTIP REPLY from the invited contact, recorded
    AUTO_REPLY = "auto-reply"  # out-of-office and other automatic answers, ignored
    TO_REVIEW = "to-review"  # anything else: for staff to read


class SynergyStatus(StrEnum):
    """Where a synergy stands: an idea, under study, agreed, running, stopped."""

    IDEA = "idea"
    STUDY = "study"
    AGREED = "agreed"
    RUNNING = "running"
    STOPPED = "stopped"


SYNERGY_STATUS_LABELS_FR: dict[SynergyStatus, str] = {
    SynergyStatus.IDEA: "idée",
    SynergyStatus.STUDY: "à l'étude",
    SynergyStatus.AGREED: "conclue",
    SynergyStatus.RUNNING: "en service",
    SynergyStatus.STOPPED: "arrêtée",
}


class SynergyKind(StrEnum):
    """What a synergy does: one site's output replaces another's input, or sites share a collection."""

    SUBSTITUTION = "substitution"
    POOLING = "pooling"


SYNERGY_KIND_LABELS_FR: dict[SynergyKind, str] = {
    SynergyKind.SUBSTITUTION: "substitution",
    SynergyKind.POOLING: "mutualisation",
}


class PartyRole(StrEnum):
    """What a party does in a synergy (``synergy_party.role``): gives a material, takes it, or shares."""

    GIVER = "giver"
    TAKER = "taker"
    PARTNER = "partner"


PARTY_ROLE_LABELS_FR: dict[PartyRole, str] = {
    PartyRole.GIVER: "donne",
    PartyRole.TAKER: "reçoit",
    PartyRole.PARTNER: "partenaire",
}


class UploadStatus(StrEnum):
    """Where a listing uploaded on the staff portal stands."""

    QUEUED = "queued"  # kept, its import not started yet (waiting for the Prefect run)
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"


UPLOAD_STATUS_LABELS_FR: dict[UploadStatus, str] = {
    UploadStatus.QUEUED: "en attente",
    UploadStatus.RUNNING: "en cours",
    UploadStatus.DONE: "terminée",
    UploadStatus.FAILED: "échouée",
}


def enum_column(enum: type[StrEnum], constraint: str, length: int = 32) -> sa.Enum:
    """An Enum column storing the member *value*, validated, with a CHECK named ``constraint``.

    SQLModel would store member names with no CHECK (see STACK-NOTES); the name must be unique
    per table, which PostgreSQL enforces.
    """
    return sa.Enum(
        enum,
        native_enum=False,
        values_callable=lambda e: [m.value for m in e],
        validate_strings=True,
        create_constraint=True,
        length=length,
        name=constraint,
    )
