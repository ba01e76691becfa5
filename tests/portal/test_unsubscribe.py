"""The unsubscribe pages: confirmation, form and one-click opt-outs, bad links, events."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa

from models import Channel, Stage
from models.db import make_engine
from portal.app import create_app
from portal.events import OptOutEvent
from synergie.messaging.links import UNSUBSCRIBE, sign_token
from synergie.settings import Settings
from tests.factories import NOW
from tests.portal.conftest import Person, Portal, TestClient, unsubscribe_path

ONE_CLICK = b"List-Unsubscribe=One-Click"
FORM = "application/x-www-form-urlencoded"


def test_the_page_names_the_company_and_address_offers_both_choices_and_changes_nothing(
    portal: Portal, person: Person
) -> None:
    answer = portal.client.get(portal.path(person.public_id))
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("text/html")
    page = answer.text
    assert '<html lang="fr">' in page
    assert person.company_name in page and person.email in page
    assert "Me désinscrire" in page
    assert 'name="scope" value="all"' in page
    assert "Ne plus être contacté du tout par ce programme" in page
    assert page.count('<form method="post">') == 2
    assert "<script" not in page and "http" not in page.split("<footer>")[0]  # nothing external
    assert portal.opt_outs() == [] and portal.stage(person.company_id) == Stage.LISTED
    assert portal.events == []


def test_pages_are_kept_out_of_caches_and_referrers(sqlite_portal: Portal) -> None:
    portal = sqlite_portal
    headers = portal.client.get(portal.path(portal.add_person().public_id)).headers
    assert headers["cache-control"] == "no-store"
    assert headers["referrer-policy"] == "no-referrer"
    assert "default-src 'none'" in headers["content-security-policy"]


def test_the_page_escapes_what_the_listing_holds(sqlite_portal: Portal) -> None:
    portal = sqlite_portal
    someone = portal.add_person(company_name="<script>alert(1)</script> & Fils")
    page = portal.client.get(portal.path(someone.public_id)).text
    assert "<script>alert(1)</script>" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt; &amp; Fils" in page


def test_an_sms_link_shows_the_number_in_french_format(sqlite_portal: Portal) -> None:
    portal = sqlite_portal
    page = portal.client.get(portal.path(portal.add_person().public_id, Channel.SMS)).text
    assert "06 39 98 01 01" in page and "de SMS" in page


def test_the_form_opts_out_that_channel_only_and_records_when_and_how(
    portal: Portal, person: Person
) -> None:
    answer = portal.client.post(portal.path(person.public_id), data={"scope": "channel"})
    assert answer.status_code == 200
    assert "C'est noté" in answer.text and person.email in answer.text
    assert "2 novembre 2026 à 10 h 30" in answer.text  # NOW (09:30 UTC) in Europe/Paris
    assert portal.opt_outs() == [(person.contact_id, Channel.EMAIL, "portal", NOW)]
    assert portal.stage(person.company_id) == Stage.LISTED and portal.stage_changes() == []
    assert portal.events == [
        OptOutEvent(
            contact_public_id=person.public_id, company_id=person.company_id,
            channels=(Channel.EMAIL,), source="portal", occurred=NOW, scope="channel",
        )
    ]  # fmt: skip


def test_the_page_then_says_it_is_already_done(sqlite_portal: Portal) -> None:
    portal, person = sqlite_portal, sqlite_portal.add_person()
    portal.client.post(portal.path(person.public_id))
    page = portal.client.get(portal.path(person.public_id)).text
    assert "C'est déjà fait" in page and "Me désinscrire" not in page
    assert "Ne plus être contacté du tout par ce programme" in page


def test_never_again_opts_out_every_channel_and_moves_the_company(
    portal: Portal, person: Person
) -> None:
    answer = portal.client.post(portal.path(person.public_id, Channel.SMS), data={"scope": "all"})
    assert answer.status_code == 200 and "ni e-mail, ni SMS, ni appel" in answer.text
    assert sorted(portal.opt_outs()) == sorted(
        (person.contact_id, channel, "portal", NOW) for channel in Channel
    )
    assert portal.stage(person.company_id) == Stage.OPTED_OUT
    assert portal.stage_changes() == [
        (person.company_id, Stage.LISTED, Stage.OPTED_OUT, "portal", NOW)
    ]
    [event] = portal.events
    assert event.scope == "all" and set(event.channels) == set(Channel)


@pytest.mark.parametrize("encoding", ["urlencoded", "multipart"])
def test_the_rfc_8058_one_click_post_opts_out(
    portal: Portal, person: Person, encoding: str
) -> None:
    path = portal.path(person.public_id)
    if encoding == "urlencoded":
        answer = portal.client.post(path, content=ONE_CLICK, headers={"Content-Type": FORM})
    else:
        answer = portal.client.post(path, files={"List-Unsubscribe": (None, "One-Click")})
        assert answer.request.headers["content-type"].startswith("multipart/form-data")
    assert answer.status_code == 200
    assert portal.opt_outs() == [(person.contact_id, Channel.EMAIL, "one-click", NOW)]
    assert [event.source for event in portal.events] == ["one-click"]


def test_posting_again_changes_nothing_and_emits_nothing(portal: Portal, person: Person) -> None:
    path = portal.path(person.public_id)
    portal.client.post(path, content=ONE_CLICK, headers={"Content-Type": FORM})
    portal.client.post(path, data={"scope": "all"})
    portal.clock.now = NOW + timedelta(days=40)
    for body in ({"scope": "channel"}, {"scope": "all"}):
        answer = portal.client.post(path, data=body)
        assert answer.status_code == 200
        assert "2 novembre 2026" in answer.text  # the first request's date, not today's
    assert [row[1:] for row in portal.opt_outs()] == [
        (Channel.EMAIL, "one-click", NOW), (Channel.SMS, "portal", NOW), (Channel.PHONE, "portal", NOW),
    ]  # fmt: skip
    assert len(portal.stage_changes()) == 1
    assert [event.scope for event in portal.events] == ["channel", "all"]


def test_racing_requests_record_everything_once(portal: Portal, person: Person) -> None:
    path = portal.path(person.public_id)
    start = threading.Barrier(6)
    statuses: list[int] = []

    def click() -> None:
        start.wait()
        statuses.append(portal.client.post(path, data={"scope": "all"}).status_code)

    threads = [threading.Thread(target=click) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert statuses == [200] * 6
    assert len(portal.opt_outs()) == len(Channel)
    assert len(portal.stage_changes()) == 1
    assert len(portal.events) == 1


def _tampered(token: str) -> str:
    flipped = "A" if token[-5] != "A" else "B"
    return token[:-5] + flipped + token[-4:]


def test_a_bad_link_gets_a_clear_page_and_changes_nothing(portal: Portal, person: Person) -> None:
    token = portal.path(person.public_id).rsplit("/", 1)[1]
    key = portal.settings.link_signing_key
    bad_tokens = [
        _tampered(token),
        sign_token(key=key, purpose="rsvp", subject=person.public_id, channel="email"),
        sign_token(
            key=b"not-our-key", purpose=UNSUBSCRIBE, subject=person.public_id, channel="email"
        ),
        "n'importe-quoi",
    ]
    for bad in bad_tokens:
        for method in ("GET", "POST"):
            answer = portal.client.request(method, f"/desinscription/{bad}", data={"scope": "all"})
            assert answer.status_code == 400, (method, bad)
            assert "Lien non valide" in answer.text and "Rien n'a été modifié" in answer.text
    assert portal.opt_outs() == [] and portal.stage_changes() == [] and portal.events == []
    assert portal.stage(person.company_id) == Stage.LISTED


def test_a_token_for_an_unknown_channel_is_a_bad_link(sqlite_portal: Portal) -> None:
    portal, person = sqlite_portal, sqlite_portal.add_person()
    token = sign_token(
        key=portal.settings.link_signing_key, purpose=UNSUBSCRIBE, subject=person.public_id,
        channel="pigeon",
    )  # fmt: skip
    assert portal.client.post(f"/desinscription/{token}").status_code == 400
    assert portal.opt_outs() == []


def test_a_genuine_link_for_a_contact_no_longer_known_gets_404(portal: Portal) -> None:
    for method in ("GET", "POST"):
        answer = portal.client.request(method, portal.path("f" * 32))
        assert answer.status_code == 404
        assert "Destinataire introuvable" in answer.text
    assert portal.opt_outs() == [] and portal.events == []


def test_an_unknown_scope_is_refused(sqlite_portal: Portal) -> None:
    portal, person = sqlite_portal, sqlite_portal.add_person()
    answer = portal.client.post(portal.path(person.public_id), data={"scope": "everything"})
    assert answer.status_code == 400 and portal.opt_outs() == []


def test_a_failing_emitter_still_gives_the_person_their_confirmation(
    make_portal: Callable[..., Portal], person: Person, caplog: pytest.LogCaptureFixture
) -> None:
    def broken(_event: OptOutEvent) -> None:
        raise ConnectionError("Prefect API unreachable")

    portal = make_portal(emit=broken)
    with caplog.at_level(logging.ERROR, logger="portal.app"):
        answer = portal.client.post(portal.path(person.public_id))
    assert answer.status_code == 200 and "C'est noté" in answer.text
    assert portal.opt_outs() == [(person.contact_id, Channel.EMAIL, "portal", NOW)]
    assert "could not be emitted" in caplog.text


def test_logs_name_the_contact_never_the_token(
    sqlite_portal: Portal, caplog: pytest.LogCaptureFixture
) -> None:
    portal, person = sqlite_portal, sqlite_portal.add_person()
    path = portal.path(person.public_id)
    token = path.rsplit("/", 1)[1]
    with caplog.at_level(logging.DEBUG):
        portal.client.get(path)
        portal.client.post(path, data={"scope": "all"})
        portal.client.get(f"/desinscription/{_tampered(token)}")
    # httpx logs the URL it requests: that is the test's client, not the portal.
    server_side = "\n".join(
        r.getMessage() for r in caplog.records if not r.name.startswith("httpx")
    )
    assert person.public_id in server_side
    assert token not in server_side and token.split(".")[2] not in server_side


def test_health_and_unknown_pages(sqlite_portal: Portal) -> None:
    portal = sqlite_portal
    assert portal.client.get("/sante").json() == {"status": "ok"}
    missing = portal.client.get("/nulle-part")
    assert missing.status_code == 404 and "Page introuvable" in missing.text
    assert portal.client.get("/docs").status_code == 404


def test_a_database_failure_gets_a_french_page_not_a_stack_trace(
    sqlite_settings: Settings, tmp_path: Path
) -> None:
    empty = make_engine(f"sqlite:///{tmp_path / 'never-initialised.db'}")
    app = create_app(settings=sqlite_settings, engine=empty, emit=lambda _event: None)
    client = TestClient(app, raise_server_exceptions=False)
    answer = client.post(unsubscribe_path(sqlite_settings, "0" * 32))
    assert answer.status_code == 500
    assert "Service momentanément indisponible" in answer.text and "Traceback" not in answer.text
    client.close()
    empty.dispose()


def test_the_error_log_holds_the_real_traceback(
    sqlite_settings: Settings, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    # Issue 9: the portal's own log printed "NoneType: None" instead of the traceback.
    empty = make_engine(f"sqlite:///{tmp_path / 'never-initialised.db'}")
    app = create_app(settings=sqlite_settings, engine=empty, emit=lambda _event: None)
    client = TestClient(app, raise_server_exceptions=False)
    with caplog.at_level(logging.ERROR, logger="portal.app"):
        assert client.post(unsubscribe_path(sqlite_settings, "0" * 32)).status_code == 500
    client.close()
    empty.dispose()
    [record] = [r for r in caplog.records if r.getMessage() == "portal request failed"]
    logged = logging.Formatter().format(record)
    assert "NoneType: None" not in logged
    assert "Traceback (most recent call last)" in logged and "no such table" in logged


def test_a_link_signed_before_a_key_rotation_still_unsubscribes(
    engine: sa.Engine, tmp_path: Path, person: Person
) -> None:
    old, new = "ancienne-clé-".ljust(40, "o"), "nouvelle-clé-".ljust(40, "n")
    before = Settings(data_dir=tmp_path, secret_key=old)  # type: ignore[arg-type]
    path = unsubscribe_path(before, person.public_id)  # in a message sent before the rotation
    after = Settings(data_dir=tmp_path, secret_key=new, secret_key_previous=old)  # type: ignore[arg-type]
    client = TestClient(create_app(settings=after, engine=engine, emit=lambda _event: None))
    assert client.get(path).status_code == 200
    forged = unsubscribe_path(Settings(data_dir=tmp_path, secret_key="x" * 40), person.public_id)  # type: ignore[arg-type]
    assert client.get(forged).status_code == 400
    alone = TestClient(create_app(settings=Settings(data_dir=tmp_path, secret_key=new),  # type: ignore[arg-type]
                                  engine=engine, emit=lambda _event: None))  # fmt: skip
    assert alone.get(path).status_code == 400  # without SYNERGIE_SECRET_KEY_PREVIOUS
    client.close()
    alone.close()
