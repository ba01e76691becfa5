"""The mailbox flow under a real (temporary) Prefect API and a real Dovecot: form default, real pass, artifact."""

from __future__ import annotations

import json

import pytest
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import (
    ArtifactFilter,
    ArtifactFilterKey,
    FlowRunFilter,
    FlowRunFilterId,
)
from sqlmodel import Session, select

from flows.mailbox import MailboxParams, mailbox
from models import MailboxMail, MailOutcome
from models.db import make_engine
from synergie.settings import Settings
from tests.servers.imap_server import ImapAccount
from tests.synergie.mailbox.mails import GARBAGE, out_of_office

pytestmark = pytest.mark.usefixtures("prefect_harness")


@pytest.fixture
def mailbox_env(
    sqlite_settings: Settings, imap_account: ImapAccount, monkeypatch: pytest.MonkeyPatch
) -> ImapAccount:
    """SYNERGIE_IMAP_* pointing at the test's Dovecot mailbox, as a worker's environment would."""
    for name, value in {
        "HOST": imap_account.host, "PORT": str(imap_account.port), "SECURITY": "none",
        "USER": imap_account.user, "PASSWORD": imap_account.password,
    }.items():  # fmt: skip
        monkeypatch.setenv(f"SYNERGIE_IMAP_{name}", value)
    imap_account.append(GARBAGE)
    imap_account.append(out_of_office(sender="p@example.org", subject="Absence : Votre entreprise"))
    return imap_account


def summary_of(flow_run_id: object) -> list[dict[str, str]]:
    with get_client(sync_client=True) as client:
        [found] = client.read_artifacts(
            artifact_filter=ArtifactFilter(key=ArtifactFilterKey(any_=["mailbox-summary"])),
            flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[flow_run_id])),  # type: ignore[list-item]
        )
    return json.loads(str(found.data))


def test_by_hand_the_form_is_a_dry_run_then_a_real_pass_files_each_mail(
    mailbox_env: ImapAccount, sqlite_settings: Settings
) -> None:
    assert MailboxParams().dry_run is True
    preview = mailbox(MailboxParams())
    assert (preview["to-review"], preview["auto-reply"]) == (1, 1)
    assert mailbox_env.folders() == {"INBOX": 2}

    state = mailbox(MailboxParams(dry_run=False), return_state=True)
    counts = state.result()
    assert (counts["to-review"], counts["auto-reply"], counts["bounced"]) == (1, 1, 0)
    folders = mailbox_env.folders()
    assert (folders["INBOX"], folders["Synergie/À traiter"]) == (0, 1)
    assert folders["Synergie/Réponses automatiques"] == 1
    summary = {row["dossier"]: row["nombre"] for row in summary_of(state.state_details.flow_run_id)}
    assert (summary["À traiter"], summary["Réponses automatiques"], summary["Rejets"]) == (
        "1",
        "1",
        "0",
    )
    engine = make_engine(sqlite_settings.db_url)
    with Session(engine) as session:
        outcomes = sorted(row.outcome for row in session.exec(select(MailboxMail)))
    engine.dispose()
    assert outcomes == [MailOutcome.AUTO_REPLY, MailOutcome.TO_REVIEW]
    assert mailbox(MailboxParams(dry_run=False))["to-review"] == 0
