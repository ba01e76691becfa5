"""The optout-sync flow under a real Prefect API: waiting messages of opted-out contacts are cancelled, once."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa
from sqlmodel import col, select

from flows.optout_sync import OptOutSyncParams, optout_sync
from models import Message, MessageStatus
from models.db import make_engine, session_scope
from models.enums import Channel
from synergie.messaging.optouts import opt_out
from synergie.messaging.outbox import enqueue, message_key, new_message_id
from synergie.settings import Settings
from tests.factories import make_company, make_contact

pytestmark = pytest.mark.usefixtures("prefect_harness")


def test_an_opt_out_cancels_that_companys_waiting_messages_and_a_rerun_finds_nothing(
    settings: Settings,
) -> None:
    engine = make_engine(settings.db_url)
    now = datetime.now(UTC)
    with session_scope(engine) as session:
        leaving, staying = make_company(session), make_company(session)
        contacts = [make_contact(session, leaving), make_contact(session, staying)]
        ids = {"leaving": leaving.id, "staying": staying.id}
        enqueue(session.connection(), [
            {"key": message_key(campaign_id=None, step=step, recipient=f"contact:{c.id}", channel=Channel.EMAIL),
             "campaign_id": None, "step": step, "channel": Channel.EMAIL.value, "contact_id": c.id,
             "company_id": c.company_id, "to_address": c.email, "message_id": new_message_id("example.org")}
            for c in contacts for step in ("premier-courrier", "relance")
        ], now=now)  # fmt: skip
        # A retry due tomorrow still waits: it must go too.
        session.execute(
            sa.update(Message)
            .where(col(Message.step) == "relance")
            .values(next_attempt_at=now + timedelta(days=1))
        )
        opt_out(
            session=session, contact=contacts[0], channels=[Channel.EMAIL], source="test", now=now
        )

    first = optout_sync(OptOutSyncParams(company_id=ids["leaving"]))
    again = optout_sync(OptOutSyncParams())  # the daily catch-up over every company

    assert (first, again) == ({"cancelled": 2}, {"cancelled": 0})
    with session_scope(engine) as session:
        statuses = {(m.company_id, m.step): m.status for m in session.exec(select(Message))}
    assert statuses == {
        (ids["leaving"], "premier-courrier"): MessageStatus.CANCELLED,
        (ids["leaving"], "relance"): MessageStatus.CANCELLED,
        (ids["staying"], "premier-courrier"): MessageStatus.QUEUED,
        (ids["staying"], "relance"): MessageStatus.QUEUED,
    }
    engine.dispose()
