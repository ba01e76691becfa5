"""File backends: one parseable file per message, safe names, atomic writes."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from email import message_from_bytes, policy
from pathlib import Path

from channels.base import EmailBackend, OutgoingEmail, OutgoingSms, SmsBackend
from channels.errors import PermanentDeliveryError, SenderSideError, TransientDeliveryError
from channels.filebased import FileEmailBackend, FileSmsBackend, file_name_for

MakeEmail = Callable[..., OutgoingEmail]
MakeSms = Callable[..., OutgoingSms]
NOW = datetime(2025, 3, 14, 9, 30, tzinfo=UTC)
SENDER = "Synergie – Métropole <synergie@metropole.example>"


def test_backends_satisfy_the_protocols(tmp_path: Path) -> None:
    assert isinstance(FileEmailBackend(directory=tmp_path, sender=SENDER), EmailBackend)
    assert isinstance(FileSmsBackend(directory=tmp_path, sender="Synergie"), SmsBackend)


def test_one_parseable_eml_per_message(tmp_path: Path, make_email: MakeEmail) -> None:
    outbox = tmp_path / "outbox" / "mail"  # created on first use
    backend = FileEmailBackend(directory=outbox, sender=SENDER, clock=lambda: NOW)
    batch = [make_email(i) for i in range(5)]

    results = backend.send_messages(batch)

    assert [r.provider_id for r in results] == [m.message_id for m in batch]
    files = sorted(outbox.iterdir())
    assert len(files) == 5
    assert all(f.suffix == ".eml" for f in files)
    for message in batch:
        parsed = message_from_bytes(backend.path_for(message).read_bytes(), policy=policy.default)
        assert parsed["Message-ID"] == message.message_id
        assert parsed["To"].addresses[0].addr_spec == message.to
        assert parsed["Date"].datetime == NOW
        plain = parsed.get_body(preferencelist=("plain",))
        assert plain is not None
        assert plain.get_content().replace("\r\n", "\n") == message.text


def test_file_names_are_safe_and_distinct(tmp_path: Path, make_email: MakeEmail) -> None:
    backend = FileEmailBackend(directory=tmp_path / "out", sender=SENDER)
    keys = ["../../etc/passwd", "a/b", "a:b", "a_b", "", "..", "x" * 500]
    batch = [make_email(i, key=key) for i, key in enumerate(keys)]

    assert all(r.ok for r in backend.send_messages(batch))

    files = list((tmp_path / "out").iterdir())
    assert len(files) == len(keys)
    assert list(tmp_path.iterdir()) == [tmp_path / "out"]  # nothing escaped the directory
    for name in (f.name for f in files):
        assert "/" not in name and ":" not in name and not name.startswith(".")
        assert len(name) < 120
    assert file_name_for("a/b", ".eml") == file_name_for("a/b", ".eml")  # stable across runs


def test_sending_the_same_key_again_rewrites_one_file(
    tmp_path: Path, make_email: MakeEmail
) -> None:
    backend = FileEmailBackend(directory=tmp_path, sender=SENDER)
    backend.send_messages([make_email(1, subject="first")])
    backend.send_messages([make_email(1, subject="second")])

    [only] = list(tmp_path.iterdir())
    assert message_from_bytes(only.read_bytes())["Subject"] == "second"


def test_a_failed_write_leaves_no_partial_file(tmp_path: Path, make_email: MakeEmail) -> None:
    backend = FileEmailBackend(directory=tmp_path, sender=SENDER)
    blocked, fine = make_email(1), make_email(2)
    backend.path_for(blocked).mkdir()  # os.replace cannot put a file where a directory is

    results = backend.send_messages([blocked, fine])

    assert isinstance(results[0].error, TransientDeliveryError)
    assert results[1].ok
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        [backend.path_for(blocked).name, backend.path_for(fine).name]
    )  # and no temporary file left behind


def test_an_uncomposable_email_blames_the_recipient_only_for_its_address(
    tmp_path: Path, make_email: MakeEmail
) -> None:
    backend = FileEmailBackend(directory=tmp_path, sender=SENDER)
    bad_address = make_email(1, to="two@@addresses")
    bad_id = make_email(2, message_id="missing-brackets")  # made by us, not by the recipient

    address, ours = backend.send_messages([bad_address, bad_id])

    assert isinstance(address.error, PermanentDeliveryError)
    assert isinstance(ours.error, SenderSideError)
    assert list(tmp_path.iterdir()) == []


def test_a_from_without_an_address_is_our_fault(tmp_path: Path, make_email: MakeEmail) -> None:
    # Issue 9, item 2: this used to be a permanent failure, marking every recipient invalid.
    backend = FileEmailBackend(directory=tmp_path, sender="Synergie sans adresse")

    [result] = backend.send_messages([make_email(1)])

    assert isinstance(result.error, SenderSideError)


def test_one_sms_file_per_message(tmp_path: Path, make_sms: MakeSms) -> None:
    backend = FileSmsBackend(directory=tmp_path, sender="Synergie", clock=lambda: NOW)
    batch = [make_sms(1, key="c:1/sms\nX-Evil: 1", body="Bonjour é\nligne 2"), make_sms(2)]

    results = backend.send_messages(batch)

    assert all(r.ok for r in results)
    assert len({r.provider_id for r in results}) == 2
    text = backend.path_for(batch[0]).read_text(encoding="utf-8")
    head, body = text.split("\n\n", 1)
    assert head.splitlines() == [
        "From: Synergie",
        "To: +33600000001",
        f"Date: {NOW.isoformat()}",
        "Key: c:1/sms X-Evil: 1",
        f"Id: {results[0].provider_id}",
    ]
    assert body == "Bonjour é\nligne 2"
    assert len(list(tmp_path.iterdir())) == 2
