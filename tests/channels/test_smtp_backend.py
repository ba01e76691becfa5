"""SmtpEmailBackend against a real local SMTP server: one session per batch, per-message faults."""

from __future__ import annotations

import ssl
import time
from collections.abc import Callable
from email import message_from_bytes, policy
from email.message import EmailMessage
from typing import Literal

import pytest

from channels.base import Attachment, DeliveryResult, EmailBackend, OutgoingEmail
from channels.errors import PermanentDeliveryError, SenderSideError, TransientDeliveryError
from channels.smtp import SmtpEmailBackend
from tests.servers.smtp_server import SmtpTestServer

MakeEmail = Callable[..., OutgoingEmail]

SENDER = "Synergie – Métropole <synergie@metropole.example>"

ICS = b"BEGIN:VCALENDAR\r\nMETHOD:REQUEST\r\nSUMMARY:Atelier \xc3\xa9t\xc3\xa9\r\nEND:VCALENDAR\r\n"


def received(server: SmtpTestServer) -> dict[str, EmailMessage]:
    """Return the messages the server accepted, by Message-ID, parsed like a mail client would."""
    parsed = {}
    for message in server.messages:
        email = message_from_bytes(message.raw, policy=policy.default)
        assert isinstance(email, EmailMessage)
        assert message.message_id is not None
        parsed[message.message_id] = email
    return parsed


def test_backend_satisfies_the_protocol(smtp_backend: SmtpEmailBackend) -> None:
    assert isinstance(smtp_backend, EmailBackend)


def test_a_batch_uses_one_connection_and_one_ehlo(
    smtp_server: SmtpTestServer, smtp_backend: SmtpEmailBackend, make_email: MakeEmail
) -> None:
    batch = [make_email(i) for i in range(20)]

    results = smtp_backend.send_messages(batch)

    assert [r.key for r in results] == [m.key for m in batch]
    assert all(r.ok for r in results)
    assert [r.provider_id for r in results] == [m.message_id for m in batch]
    assert smtp_server.connections == 1
    assert smtp_server.ehlo_count == 1
    assert smtp_server.helo_count == 0
    assert smtp_backend.connections_opened == 1
    got = smtp_server.messages
    assert [m.message_id for m in got] == [m.message_id for m in batch]  # unique, in order
    assert [m.rcpt_tos for m in got] == [(m.to,) for m in batch]
    assert {m.mail_from for m in got} == {"synergie@metropole.example"}


def test_a_result_recorded_in_the_background_is_waited_for_before_the_next_message_is_accepted(
    smtp_server: SmtpTestServer, smtp_backend: SmtpEmailBackend, make_email: MakeEmail
) -> None:
    """``on_result`` may hand back a waiter: it runs after the next message's first commands
    went out, and before that message can be accepted (and the last one before the batch returns)."""
    smtp_server.reply_to_rcpt("contact3@entreprise.example", "550 5.1.1 No such user")
    events: list[str] = []
    smtp_server.watch_acceptances(lambda message: events.append(f"accepted {message.message_id}"))

    def on_result(result: DeliveryResult) -> Callable[[], None]:
        events.append(f"handed {result.key}")
        return lambda: events.append(f"recorded {result.key}")

    batch = [make_email(i) for i in range(6)]
    smtp_backend.send_messages(batch, on_result=on_result)
    smtp_server.watch_acceptances(None)

    keys = [m.key for m in batch]
    assert [e.removeprefix("recorded ") for e in events if e.startswith("recorded")] == keys
    for k, key in enumerate(keys):
        handed, recorded = events.index(f"handed {key}"), events.index(f"recorded {key}")
        assert handed < recorded  # each waiter runs once, after its result was handed over
        if k + 1 < len(keys) and k + 1 != 3:
            assert recorded < events.index(f"accepted {batch[k + 1].message_id}")
    assert events[-1] == f"recorded {keys[-1]}"


def test_each_batch_opens_its_own_session_unless_opened_explicitly(
    smtp_server: SmtpTestServer, smtp_backend: SmtpEmailBackend, make_email: MakeEmail
) -> None:
    smtp_backend.send_messages([make_email(1)])
    smtp_backend.send_messages([make_email(2)])
    assert smtp_server.connections == 2

    smtp_server.reset()
    with smtp_backend:
        smtp_backend.send_messages([make_email(3), make_email(4)])
        smtp_backend.send_messages([make_email(5)])
    assert smtp_server.connections == 1
    assert smtp_server.ehlo_count == 1
    assert len(smtp_server.messages) == 3


def test_what_arrives_is_the_real_text_and_headers_are_intact(
    smtp_server: SmtpTestServer, smtp_backend: SmtpEmailBackend, make_email: MakeEmail
) -> None:
    email = make_email(
        1,
        to_name='Zoé "Dir." <Dupré>\r\nBcc: victim@evil.example',
        subject="Invitation à l'atelier\r\nBcc: victim@evil.example",
    )

    [result] = smtp_backend.send_messages([email])

    assert result.ok
    [raw] = [m.raw for m in smtp_server.messages]
    message = received(smtp_server)[email.message_id]
    assert message["Bcc"] is None
    assert b"\nBcc:" not in raw
    assert message["Subject"] == "Invitation à l'atelier Bcc: victim@evil.example"
    to = message["To"].addresses[0]
    assert (to.display_name, to.addr_spec) == (
        'Zoé "Dir." <Dupré> Bcc: victim@evil.example',
        "contact1@entreprise.example",
    )
    assert message["From"].addresses[0].display_name == "Synergie – Métropole"
    assert message["Reply-To"] == "contact@metropole.example"
    assert message["List-Unsubscribe"] == "<https://synergie.example/u/1>"
    assert raw.count(b"\nMessage-ID:") + raw.startswith(b"Message-ID:") == 1
    plain = message.get_body(preferencelist=("plain",))
    html = message.get_body(preferencelist=("html",))
    assert plain is not None and html is not None
    assert plain.get_content().replace("\r\n", "\n") == email.text
    assert "<p>" not in plain.get_content()
    assert "<b>atelier 1</b>" in html.get_content()


def test_lines_starting_with_a_dot_arrive_as_written(
    smtp_server: SmtpTestServer, smtp_backend: SmtpEmailBackend, make_email: MakeEmail
) -> None:
    # The server takes a dot starting a line away (RFC 5321, 4.5.2): each must be doubled.
    text = ".première ligne\n..\n...\n.\nfin.\n"
    email = make_email(1, text=text, html="<p>.</p>\n.<b>gras</b>\n..")

    [result] = smtp_backend.send_messages([email])

    assert result.ok
    message = received(smtp_server)[email.message_id]
    plain = message.get_body(preferencelist=("plain",))
    html = message.get_body(preferencelist=("html",))
    assert plain is not None and html is not None
    assert plain.get_content().replace("\r\n", "\n") == text
    assert html.get_content().replace("\r\n", "\n") == "<p>.</p>\n.<b>gras</b>\n.."


def test_attachments_and_calendar_alternative_survive_the_trip(
    smtp_server: SmtpTestServer, smtp_backend: SmtpEmailBackend, make_email: MakeEmail
) -> None:
    pdf = bytes(range(256)) * 40
    email = make_email(
        1,
        alternatives=((ICS, "text/calendar; method=REQUEST; charset=utf-8"),),
        attachments=(Attachment("Compte rendu n°1.pdf", pdf, "application/pdf"),),
    )

    assert smtp_backend.send_messages([email])[0].ok

    message = received(smtp_server)[email.message_id]
    assert message.get_content_type() == "multipart/mixed"
    alternative, attachment = message.iter_parts()
    calendar = [p for p in alternative.iter_parts() if p.get_content_type() == "text/calendar"]
    assert len(calendar) == 1
    assert calendar[0].get_param("method") == "REQUEST"
    assert calendar[0].get_payload(decode=True) == ICS
    assert attachment.get_filename() == "Compte rendu n°1.pdf"
    assert attachment.get_payload(decode=True) == pdf


def test_refusal_at_connect_fails_every_message_as_transient(
    smtp_server: SmtpTestServer, smtp_backend: SmtpEmailBackend, make_email: MakeEmail
) -> None:
    smtp_server.refuse_next_connections(1)
    batch = [make_email(i) for i in range(5)]

    results = smtp_backend.send_messages(batch)

    assert [r.key for r in results] == [m.key for m in batch]
    for result in results:
        assert isinstance(result.error, TransientDeliveryError)
        assert result.error.code == 421
    assert smtp_server.connections == 1
    assert smtp_server.messages == []


def test_refused_connection_fails_every_message_as_transient(
    closed_port: int, make_email: MakeEmail
) -> None:
    backend = SmtpEmailBackend(
        host="127.0.0.1",
        port=closed_port,
        security="none",
        user=None,
        password=None,
        sender=SENDER,
        timeout=2,
    )

    results = backend.send_messages([make_email(1), make_email(2)])

    assert [type(r.error) for r in results] == [TransientDeliveryError] * 2


def test_silent_server_times_out_quickly(silent_port: int, make_email: MakeEmail) -> None:
    backend = SmtpEmailBackend(
        host="127.0.0.1",
        port=silent_port,
        security="none",
        user=None,
        password=None,
        sender=SENDER,
        timeout=0.3,
    )
    started = time.monotonic()

    results = backend.send_messages([make_email(i) for i in range(10)])

    assert time.monotonic() - started < 2  # one timeout for the batch, not one per message
    assert all(isinstance(r.error, TransientDeliveryError) for r in results)


def test_451_at_rcpt_fails_that_message_only_as_transient(
    smtp_server: SmtpTestServer, smtp_backend: SmtpEmailBackend, make_email: MakeEmail
) -> None:
    batch = [make_email(i) for i in range(5)]
    smtp_server.reply_to_rcpt(batch[2].to, "451 4.7.1 Greylisted, please try again later")

    results = smtp_backend.send_messages(batch)

    error = results[2].error
    assert isinstance(error, TransientDeliveryError)
    assert not isinstance(error, PermanentDeliveryError)
    assert error.code == 451
    assert "Greylisted" in error.detail
    assert [r.ok for r in results] == [True, True, False, True, True]
    assert {m.message_id for m in smtp_server.messages} == {
        m.message_id for i, m in enumerate(batch) if i != 2
    }
    assert smtp_server.connections == 1


def test_550_at_rcpt_is_permanent_with_the_servers_words(
    smtp_server: SmtpTestServer, smtp_backend: SmtpEmailBackend, make_email: MakeEmail
) -> None:
    batch = [make_email(i) for i in range(4)]
    smtp_server.reply_to_rcpt(batch[0].to, "550 5.1.1 <contact0@entreprise.example>: no such user")

    results = smtp_backend.send_messages(batch)

    error = results[0].error
    assert isinstance(error, PermanentDeliveryError)
    assert error.code == 550
    assert error.detail == "5.1.1 <contact0@entreprise.example>: no such user"
    assert [r.ok for r in results] == [False, True, True, True]
    assert len(smtp_server.messages) == 3


def test_disconnect_during_data_fails_that_message_and_the_rest_follow_after_a_reconnect(
    smtp_server: SmtpTestServer, smtp_backend: SmtpEmailBackend, make_email: MakeEmail
) -> None:
    batch = [make_email(i) for i in range(10)]
    smtp_server.drop_during_data(batch[4].message_id)
    started = time.monotonic()

    results = smtp_backend.send_messages(batch)

    assert time.monotonic() - started < 3  # no yagmail-style sleeps
    assert isinstance(results[4].error, TransientDeliveryError)
    assert [r.ok for r in results] == [i != 4 for i in range(10)]
    # Nothing lost: every other message reached the server, the dropped one is marked for retry.
    assert [m.message_id for m in smtp_server.messages] == [
        m.message_id for i, m in enumerate(batch) if i != 4
    ]
    assert smtp_server.connections == 2
    assert smtp_backend.connections_opened == 2


def test_reconnects_in_a_row_are_bounded(
    smtp_server: SmtpTestServer, make_email: MakeEmail
) -> None:
    backend = smtp_server.client(sender=SENDER, max_reconnects=1)
    smtp_server.drop_during_data(next_messages=3)
    batch = [make_email(i) for i in range(6)]

    results = backend.send_messages(batch)

    assert all(isinstance(r.error, TransientDeliveryError) for r in results)
    assert "gave up" in str(results[2].error)
    assert smtp_server.connections == 2  # the first session and one reconnect
    assert smtp_server.messages == []


def test_a_relay_that_hangs_up_every_few_messages_is_followed_to_the_end_of_the_batch(
    smtp_server: SmtpTestServer, make_email: MakeEmail
) -> None:
    backend = smtp_server.client(sender=SENDER, max_reconnects=1)
    batch = [make_email(i) for i in range(12)]
    dropped = {2, 5, 8, 11}  # more drops than reconnects allowed, but never two in a row
    smtp_server.drop_during_data(*(batch[i].message_id for i in dropped))

    results = backend.send_messages(batch)

    assert [r.ok for r in results] == [i not in dropped for i in range(12)]
    assert len(smtp_server.messages) == 8 and backend.connections_opened == 4


def test_a_message_that_cannot_be_composed_is_permanent_and_does_not_stop_the_batch(
    smtp_server: SmtpTestServer, smtp_backend: SmtpEmailBackend, make_email: MakeEmail
) -> None:
    batch = [make_email(0), make_email(1, to="two@@addresses"), make_email(2)]

    results = smtp_backend.send_messages(batch)

    assert isinstance(results[1].error, PermanentDeliveryError)
    assert [r.ok for r in results] == [True, False, True]
    assert len(smtp_server.messages) == 2


def test_login_uses_the_user_name_verbatim(
    smtp_auth_server: SmtpTestServer, make_email: MakeEmail
) -> None:
    assert smtp_auth_server.credentials is not None
    user, password = smtp_auth_server.credentials
    backend = SmtpEmailBackend(
        host=smtp_auth_server.host,
        port=smtp_auth_server.port,
        security="none",
        user=user,
        password=password,
        sender=SENDER,
        timeout=5,
    )

    results = backend.send_messages([make_email(1), make_email(2)])

    assert all(r.ok for r in results)
    assert smtp_auth_server.logins == ["apikey"]  # not "apikey@gmail.com", logged in once
    assert len(smtp_auth_server.messages) == 2


def test_wrong_password_fails_the_batch_as_ours(
    smtp_auth_server: SmtpTestServer, make_email: MakeEmail
) -> None:
    backend = SmtpEmailBackend(
        host=smtp_auth_server.host,
        port=smtp_auth_server.port,
        security="none",
        user="apikey",
        password="wrong",
        sender=SENDER,
        timeout=5,
    )

    results = backend.send_messages([make_email(1), make_email(2)])

    # Our login, not the recipients: the outbox stops the run and marks nobody.
    assert [type(r.error) for r in results] == [SenderSideError] * 2
    assert results[0].error is not None and results[0].error.code == 535
    assert smtp_auth_server.messages == []


def test_skipping_login_on_a_server_that_requires_it_fails_as_ours(
    smtp_auth_server: SmtpTestServer, make_email: MakeEmail
) -> None:
    backend = smtp_auth_server.client(sender=SENDER)

    [result] = backend.send_messages([make_email(1)])

    # 530 "authentication required" answers MAIL FROM: about us, not about the recipient.
    assert isinstance(result.error, SenderSideError)
    assert result.error.code == 530


def test_a_user_without_password_is_refused_rather_than_asking_a_keyring() -> None:
    with pytest.raises(ValueError, match="password"):
        SmtpEmailBackend(
            host="127.0.0.1",
            port=25,
            security="starttls",
            user="someone",
            password=None,
            sender=SENDER,
        )


@pytest.mark.parametrize("security", ["starttls", "ssl"])
def test_tls_sessions_log_in_and_verify_the_certificate(
    security: Literal["starttls", "ssl"], make_email: MakeEmail
) -> None:
    with SmtpTestServer(tls=security, credentials=("apikey", "pw")) as server:
        assert server.certificate is not None
        trusting = ssl.create_default_context(cafile=str(server.certificate))
        backend = SmtpEmailBackend(
            host="127.0.0.1",
            port=server.port,
            security=security,
            user="apikey",
            password="pw",
            sender=SENDER,
            timeout=5,
            ssl_context=trusting,
        )

        assert all(r.ok for r in backend.send_messages([make_email(1), make_email(2)]))
        assert server.connections == 1
        assert server.logins == ["apikey"]
        assert len(server.messages) == 2
        # STARTTLS means a second EHLO on the encrypted channel, by protocol (RFC 3207).
        assert server.ehlo_count == (2 if security == "starttls" else 1)

        server.reset()
        default_trust = SmtpEmailBackend(
            host="127.0.0.1",
            port=server.port,
            security=security,
            user="apikey",
            password="pw",
            sender=SENDER,
            timeout=5,
        )
        [result] = default_trust.send_messages([make_email(3)])

        # smtplib alone would have accepted the self-signed certificate (Python 3.11).
        assert isinstance(result.error, SenderSideError)  # a setting to fix, not a bad moment
        assert "CERTIFICATE_VERIFY_FAILED" in result.error.detail
        assert server.logins == []
        assert server.messages == []


@pytest.mark.parametrize(
    ("reply", "kind"),
    [
        ("550 5.1.1 <x@example.org>: Recipient address rejected: User unknown in relay recipient "
         "table", PermanentDeliveryError),
        ("550 5.1.1 No such user", PermanentDeliveryError),
        ("550 relay denied", SenderSideError),
        ("554 5.7.1 <x@example.org>: Relay access denied", SenderSideError),
        ("550 5.7.1 Unable to relay", SenderSideError),
        ("553 5.1.8 <bounce@example.org>: Sender address rejected: Domain not found",
         SenderSideError),
        ("554 5.7.1 <client.test.invalid>: Client host rejected: Access denied", SenderSideError),
        ("451 4.7.1 Greylisted, try again", TransientDeliveryError),
    ],
)  # fmt: skip
def test_a_refused_rcpt_blames_the_recipient_only_when_it_is_about_them(
    smtp_server: SmtpTestServer,
    smtp_backend: SmtpEmailBackend,
    make_email: MakeEmail,
    reply: str,
    kind: type[Exception],
) -> None:
    smtp_server.refuse_every_rcpt(reply)

    [result] = smtp_backend.send_messages([make_email(1)])

    assert type(result.error) is kind


def test_mail_from_refused_is_ours_and_the_probe_says_so_before_anything_is_sent(
    smtp_server: SmtpTestServer, smtp_backend: SmtpEmailBackend, make_email: MakeEmail
) -> None:
    smtp_backend.probe()  # nothing refused: it returns, and sends nothing
    smtp_server.refuse_mail_from("550 5.7.1 Sender not allowed")

    with pytest.raises(SenderSideError, match="Sender not allowed"):
        smtp_backend.probe()
    [result] = smtp_backend.send_messages([make_email(1)])

    assert isinstance(result.error, SenderSideError) and result.error.code == 550
    assert smtp_server.messages == []
