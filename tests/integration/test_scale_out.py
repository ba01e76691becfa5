"""Beyond one laptop: a Prefect server on PostgreSQL, a process work pool with two workers, the CRM on
PostgreSQL and the portal, all started from deploy/, driven through the REST API as the UI does,
and the Prefect UI itself in Chromium (one stack for the module: it stops when the module ends).

Adding a case for another portal event (an RSVP, ``synergie.invitation.answered``) is one small
test: make what the event needs, then ``assert_event_starts(stack, "flow/deployment", emit)``.
"""

from __future__ import annotations

import json
import re
import time
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from playwright.sync_api import Page, expect
from sqlmodel import col, select

from deployments.definitions import build_deployments
from models import CallTask, Campaign, Company, Message, MessageStatus, StaffMember, Visit
from models.db import make_engine, session_scope
from models.enums import Channel, Stage
from synergie.calls.callers import add_caller
from synergie.messaging.links import CallLink, call_log_token, unsubscribe_token
from synergie.messaging.outbox import enqueue, message_key, new_message_id
from synergie.settings import Settings
from synergie.visits.lifecycle import add_staff
from tests.browser import screenshot
from tests.factories import luhn_siret, make_company, make_contact, make_interested_company
from tests.integration.stack import (
    Stack,
    artifacts_of,
    call,
    say,
    start_run,
    wait_final,
    wait_for,
)
from tests.servers.smtp_server import SmtpTestServer

pytestmark = pytest.mark.integration

SAMPLE_COMMUNES = ["21110", "21186", "21194", "21295", "21442", "21464", "21506", "21564", "21714", "21716"]  # fmt: skip
# Fast enough for a test, slow enough that two runs at once share the work.
QUICK = {"batch_size": 5, "rate_per_minute": 300}
# The run whose worker the kill test killed: the module's last test waits for it to be Crashed.
KILLED: dict[str, str] = {}


def crm(stack: Stack) -> sa.Engine:
    return make_engine(stack.crm_url)


def test_the_prefect_api_refuses_a_client_without_the_auth_string(stack: Stack) -> None:
    with stack.client(authenticated=False) as anonymous:
        assert anonymous.post("/deployments/filter", json={}).status_code == 401
        assert anonymous.get("/deployments/name/mailing/mailing").status_code == 401
    wrong = httpx.Client(base_url=stack.api, auth=("admin", "not-the-password"), timeout=10)
    with wrong:
        assert wrong.post("/flow_runs/filter", json={}).status_code == 401
    with stack.client() as client:
        names = {d["name"] for d in call(client, "POST", "/deployments/filter", json={})}
    assert {"import-listing", "mailing", "call-reminders", "visits", "optout-sync"} <= names


def test_staff_import_mail_twice_at_once_call_and_visit_on_two_workers(
    stack: Stack, stack_smtp: SmtpTestServer, request: pytest.FixtureRequest
) -> None:
    started = time.monotonic()
    with stack.client() as client:
        # The bundled listing, for real, as staff would untick the form's dry run.
        imported = wait_final(
            client, start_run(client, "import_listing/import-listing", {"dry_run": False})["id"]
        )
        assert imported["state_type"] == "COMPLETED", imported["state"]
        assert (
            "| Entreprises créées | 60 |"
            in artifacts_of(client, imported["id"])["import-listing"]["data"]
        )

        engine = crm(stack)
        with session_scope(engine) as session:
            session.add(Campaign(name="Pays de Nuits", year=2026, communes=SAMPLE_COMMUNES))
        before = {m.message_id for m in stack_smtp.messages}
        # Both workers free, so that the two runs below can only go one to each (it once
        # found the import's worker still closing its run's process: the other took both).
        stack.wait_workers_idle()

        # The weekly schedule's run and a manual one, created at the same moment on the same step.
        mailing = call(client, "GET", "/deployments/name/mailing/mailing")
        [weekly] = mailing["schedules"]
        now = datetime.now(UTC).isoformat()
        scheduled = start_run(
            client, "mailing/mailing", {**weekly["parameters"]["params"], **QUICK},
            state={"type": "SCHEDULED", "state_details": {"scheduled_time": now}},
            idempotency_key=f"scheduled {mailing['id']} {weekly['id']} {now}",
        )  # fmt: skip
        manual = start_run(client, "mailing/mailing", {"dry_run": False, **QUICK})
        runs = [wait_final(client, run["id"]) for run in (scheduled, manual)]
        assert [r["state_type"] for r in runs] == ["COMPLETED", "COMPLETED"], [
            r["state"] for r in runs
        ]
        assert {stack.worker_running(r["id"]) for r in runs} == {"1", "2"}, (
            "both workers took a run"
        )

        with session_scope(engine) as session:
            sent = {m.to_address for m in session.exec(select(Message).where(Message.step == "premier-courrier"))
                    if m.status == MessageStatus.SENT}  # fmt: skip
        delivered = Counter(
            rcpt for m in stack_smtp.messages if m.message_id not in before for rcpt in m.rcpt_tos
        )
        assert len(sent) == 59  # every sample company with an address
        assert set(delivered) == sent and set(delivered.values()) == {1}, delivered.most_common(3)
        summaries = [artifacts_of(client, r["id"]) for r in runs]
        assert all({"mailing-summary", "mailing-progress"} <= set(s) for s in summaries)

        # A volunteer and an officer, then the day's calls and the visits, for real.
        with session_scope(engine) as session:
            add_caller(session=session, name="Bénévole Un", phone="06 39 98 00 01",
                       email="benevole@example.org", per_day=10, days=range(1, 8))  # fmt: skip
            add_staff(session=session, name="Chargée de mission", email="eit@example.org")
            make_interested_company(session, name="Entreprise intéressée", commune_code="21464")
        # Both at once, one on each worker.
        started_calls = start_run(
            client, "call_reminders/call-reminders", {"dry_run": False, "after_days": 0}
        )
        started_visits = start_run(client, "visits/visits", {"dry_run": False})
        calls, visits = (wait_final(client, run["id"]) for run in (started_calls, started_visits))
        assert (calls["state_type"], visits["state_type"]) == ("COMPLETED", "COMPLETED")
        [caller] = json.loads(artifacts_of(client, calls["id"])["call-reminders"]["data"])
        assert (caller["appelant"], caller["appels"]) == ("Bénévole Un", 10)
        assert (
            "1 visite(s) réservée(s)"
            in artifacts_of(client, visits["id"])["visits-booked"]["description"]
        )
        received = [r for m in stack_smtp.messages for r in m.rcpt_tos]
        assert "benevole@example.org" in received  # the caller's list of the day, by e-mail
        engine.dispose()
    say(request, f"import, two mailings, calls and visits: {time.monotonic() - started:.0f} s")


def test_a_worker_killed_mid_mailing_loses_nothing_and_resends_at_most_one(
    stack: Stack, stack_smtp: SmtpTestServer, request: pytest.FixtureRequest
) -> None:
    engine = crm(stack)
    with session_scope(engine) as session:
        session.add(Campaign(name="Relance", year=2026, communes=["99001"]))
        for n in range(40):
            company = make_company(session, siret=luhn_siret(900_000 + n), commune_code="99001")
            make_contact(
                session,
                company,
                email=f"k{n}@kill.example.net",
                identity=f"email:k{n}@kill.example.net",
            )
    ours = {f"k{n}@kill.example.net" for n in range(40)}

    def delivered() -> Counter[str]:
        return Counter(r for m in stack_smtp.messages for r in m.rcpt_tos if r in ours)

    with stack.client() as client:
        slow = {"dry_run": False, "campaign": "Relance", "batch_size": 10, "rate_per_minute": 240}
        first = start_run(client, "mailing/mailing", slow)
        wait_for(lambda: sum(delivered().values()) >= 8, timeout=90, what="the first messages")
        victim = wait_for(lambda: stack.worker_running(first["id"]), timeout=5, what="its worker")
        stack.workers[victim].kill_with_children()  # the machine dies: worker and flow run
        KILLED["run"] = first["id"]
        at_kill = sum(delivered().values())
        assert at_kill < len(ours), "the run must be killed mid-way"
        # Its batch's rows stay leased until the lease (SYNERGIE_SEND_LEASE_SECONDS) runs out.
        time.sleep(int(stack.settings["synergie.env"]["SYNERGIE_SEND_LEASE_SECONDS"]) + 1)
        second = wait_final(
            client, start_run(client, "mailing/mailing", {**slow, "rate_per_minute": None})["id"]
        )
        assert second["state_type"] == "COMPLETED", second["state"]
        assert stack.worker_running(second["id"]) not in ("", victim)
    counts = delivered()
    assert set(counts) == ours, f"lost: {sorted(ours - set(counts))}"
    assert sum(counts.values()) - len(ours) <= 1, counts.most_common(3)  # one batch at a time
    with session_scope(engine) as session:
        statuses = Counter(
            m.status for m in session.exec(select(Message).where(col(Message.to_address).in_(ours)))
        )
    assert statuses == {MessageStatus.SENT: 40}
    engine.dispose()
    say(request, f"killed after {at_kill} of 40 messages; duplicates: {sum(counts.values()) - 40}")
    stack.restart_worker(victim)


# Portal events and the deployments that react to them.


def assert_event_starts(stack: Stack, deployment: str, emit: Callable[[], None]) -> dict[str, Any]:
    """Call ``emit`` (the portal emitting an event), then wait for the run the trigger starts; return it, completed."""
    with stack.client() as client:
        found = call(client, "GET", f"/deployments/name/{deployment}")
        since = datetime.now(UTC)
        emit()

        def triggered() -> dict[str, Any] | None:
            runs = call(client, "POST", "/flow_runs/filter",
                        json={"flow_runs": {"deployment_id": {"any_": [found["id"]]}}})  # fmt: skip
            started = [
                r
                for r in runs
                if not r["auto_scheduled"] and datetime.fromisoformat(r["created"]) >= since
            ]
            return started[0] if started else None

        run = wait_for(triggered, timeout=90, what=f"{deployment} started by the event", every=1)
        final = wait_final(client, run["id"])
    assert final["state_type"] == "COMPLETED", final["state"]
    return final


def test_an_opt_out_on_the_portal_starts_optout_sync_for_that_company(stack: Stack) -> None:
    engine = crm(stack)
    now = datetime.now(UTC)
    with session_scope(engine) as session:
        company = make_company(session, siret=luhn_siret(990_000), stage=Stage.CONTACTED)
        contact = make_contact(session, company)
        company_id, public_id = company.id, contact.public_id
        # A reminder waiting in the outbox (its retry due tomorrow): the opt-out must cancel it.
        enqueue(session.connection(), [{
            "key": message_key(campaign_id=None, step="relance", recipient=f"contact:{contact.id}", channel=Channel.EMAIL),
            "campaign_id": None, "step": "relance", "channel": Channel.EMAIL.value, "contact_id": contact.id,
            "company_id": company_id, "to_address": contact.email, "message_id": new_message_id("example.org"),
        }], now=now)  # fmt: skip
        session.execute(
            sa.update(Message)
            .where(col(Message.contact_id) == contact.id)
            .values(next_attempt_at=now + timedelta(days=1))
        )
    secret_key = stack.settings["synergie.env"]["SYNERGIE_SECRET_KEY"]
    token = unsubscribe_token(Settings(secret_key=secret_key), public_id, Channel.EMAIL)  # type: ignore[arg-type]

    def unsubscribe() -> None:  # what the company's click on « Me désinscrire » posts
        response = httpx.post(
            f"{stack.portal_url}/desinscription/{token}", data={"scope": "channel"}
        )
        assert response.status_code == 200, response.text[:500]

    run = assert_event_starts(stack, "optout_sync/optout-sync", unsubscribe)

    assert run["parameters"] == {"params": {"company_id": company_id}}
    with session_scope(engine) as session:
        [waiting] = session.exec(select(Message).where(Message.company_id == company_id))
        assert waiting.status == MessageStatus.CANCELLED
    engine.dispose()


def test_an_interested_call_on_the_portal_starts_that_companys_visit(stack: Stack) -> None:
    engine = crm(stack)
    today = datetime.now(UTC).date()
    with session_scope(engine) as session:
        if session.exec(select(StaffMember)).first() is None:
            add_staff(session=session, name="Chargée de mission", email="eit@example.org")
        caller = add_caller(session=session, name="Bénévole", phone=None,
                            email="benevole@example.org", per_day=5)  # fmt: skip
        company = make_company(session, siret=luhn_siret(991_000), stage=Stage.CONTACTED,
                               name="Tonnellerie intéressée", commune_code="21464")  # fmt: skip
        contact = make_contact(session, company, phone="+33639980199")
        task = CallTask(company_id=company.id, contact_id=contact.id, caller_id=caller.id,  # type: ignore[arg-type]
                        due_on=today, assigned_on=today)  # fmt: skip
        session.add(task)
        session.flush()
        link = CallLink(task.id, caller.id, company.id)  # type: ignore[arg-type]
        company_id, siret = company.id, company.siret
    secret_key = stack.settings["synergie.env"]["SYNERGIE_SECRET_KEY"]
    token = call_log_token(Settings(secret_key=secret_key), link,  # type: ignore[arg-type]
                           expires_at=datetime.now(UTC) + timedelta(days=1))  # fmt: skip

    def interested() -> None:  # what the volunteer's phone posts from the digest's link
        response = httpx.post(f"{stack.portal_url}/appel/{token}", data={"resultat": "interested"})
        assert response.status_code == 200 and "noté" in response.text, response.text[:500]

    run = assert_event_starts(stack, "visits/visits", interested)

    assert run["parameters"]["params"]["company_siret"] == siret
    assert run["parameters"]["params"]["dry_run"] is False
    with session_scope(engine) as session:
        assert session.get_one(Company, company_id).stage == Stage.VISIT_SCHEDULED
        assert [
            v.company_id for v in session.exec(select(Visit).where(Visit.company_id == company_id))
        ] == [company_id]
    engine.dispose()


# The Prefect UI, in Chromium.


# Every deployment the one source defines, read at import: inside a browser test an event loop
# runs, and Prefect's to_deployment would then hand back a coroutine.
DEPLOYMENT_NAMES = [deployment.name for deployment in build_deployments()]


def sign_in(page: Page, stack: Stack) -> str:
    """Open the UI, which asks for the password first, and give it; return the UI's base URL."""
    ui = stack.api.removesuffix("/api")
    page.goto(f"{ui}/deployments")
    password = page.locator("input").first
    expect(password).to_be_visible(timeout=30_000)
    screenshot(page, "prefect-ui-login")
    password.fill(stack.auth_string)
    page.get_by_role("button", name=re.compile("log ?in", re.I)).click()
    return ui


def test_the_prefect_ui_asks_for_the_password_then_lists_synergies_deployments(
    stack: Stack, page: Page
) -> None:
    ui = sign_in(page, stack)
    page.goto(f"{ui}/deployments")
    names = DEPLOYMENT_NAMES
    links = page.locator('a[href^="/deployments/deployment/"]')
    # The UI shows ten deployments a page: every one it shows is ours, and the page is full.
    expect(links).to_have_count(min(len(names), 10), timeout=30_000)
    assert {t.strip() for t in links.all_inner_texts()} <= set(names)
    screenshot(page, "prefect-ui-deployments")


def test_the_mailing_run_form_speaks_french(stack: Stack, page: Page) -> None:
    with stack.client() as client:
        mailing = call(client, "GET", "/deployments/name/mailing/mailing")
    fields = mailing["parameter_openapi_schema"]["definitions"]["MailingParams"]["properties"]
    ui = sign_in(page, stack)
    page.goto(f"{ui}/deployments/deployment/{mailing['id']}/run")
    expect(page.get_by_text("Essai à blanc", exact=False).first).to_be_visible(timeout=30_000)
    for name, field in fields.items():
        expect(page.get_by_text(field["description"], exact=False).first).to_be_visible()
        if "title" in field and field["title"] != name.replace("_", " ").title():
            # A French title given with Field(title=...), not pydantic's from the field's name.
            # The UI adds " (Optional)" after the title of a field that has a default.
            title = re.compile(rf"^{re.escape(field['title'])}( \(Optional\))?$")
            expect(page.get_by_text(title).first).to_be_visible()
    screenshot(page, "prefect-ui-mailing-run-form")


def test_the_killed_run_is_marked_crashed_by_the_automation(stack: Stack) -> None:
    """Last of the module: the other tests ran while the killed run's heartbeats were missed."""
    if "run" not in KILLED:
        pytest.skip("the kill test did not run in this session")
    with stack.client() as client:
        automations = call(client, "POST", "/automations/filter", json={})
        assert [a["name"] for a in automations].count("synergie-crash-zombie-runs") == 1
        crashed = wait_for(
            lambda: (run := call(client, "GET", f"/flow_runs/{KILLED['run']}"))["state_type"]
            == "CRASHED" and run,
            timeout=240, what="the killed run marked Crashed", every=2,
        )  # fmt: skip
    assert "Aucun signe de vie" in (crashed["state"]["message"] or "")
