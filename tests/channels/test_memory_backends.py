"""Memory backends: an outbox the tests read, failures on demand."""

from __future__ import annotations

from collections.abc import Callable
from email import message_from_bytes

from channels.base import EmailBackend, OutgoingEmail, OutgoingSms, SmsBackend
from channels.errors import (
    PermanentDeliveryError,
    RecipientOptedOutError,
    SenderSideError,
    TransientDeliveryError,
)
from channels.locmem import MemoryEmailBackend, MemorySmsBackend

MakeEmail = Callable[..., OutgoingEmail]
MakeSms = Callable[..., OutgoingSms]


def test_backends_satisfy_the_protocols() -> None:
    assert isinstance(MemoryEmailBackend(), EmailBackend)
    assert isinstance(MemorySmsBackend(), SmsBackend)


def test_emails_land_in_the_outbox_except_chosen_failures(make_email: MakeEmail) -> None:
    bounce = PermanentDeliveryError("5.1.1 no such user", code=550)
    backend = MemoryEmailBackend(failures={"CONTACT1@entreprise.example": bounce})
    backend.fail("contact2@entreprise.example", TransientDeliveryError("try later", code=451))
    batch = [make_email(i) for i in range(4)]

    results = backend.send_messages(batch)

    assert [r.error for r in results[:3]] == [None, bounce, results[2].error]
    assert isinstance(results[2].error, TransientDeliveryError)
    assert backend.outbox == [batch[0], batch[3]]
    assert results[0].provider_id == batch[0].message_id
    assert message_from_bytes(backend.raw[batch[3].key])["Message-ID"] == batch[3].message_id
    assert backend.batch_sizes == [4]


def test_an_uncomposable_email_fails_like_a_real_backend(make_email: MakeEmail) -> None:
    backend = MemoryEmailBackend()

    ours, theirs = backend.send_messages(
        [make_email(1, headers={"Subject": "twice"}), make_email(2, to="a@b, c@d")]
    )

    assert isinstance(ours.error, SenderSideError)  # a header we wrote: not the recipient's fault
    assert isinstance(theirs.error, PermanentDeliveryError)
    assert backend.outbox == []


def test_sms_land_in_the_outbox_except_chosen_failures(make_sms: MakeSms) -> None:
    stop = RecipientOptedOutError("unsubscribed", code=21610)
    backend = MemorySmsBackend(failures={"+33600000001": stop})
    batch = [make_sms(i) for i in range(3)]

    results = backend.send_messages(batch)

    assert results[1].error is stop
    assert backend.outbox == [batch[0], batch[2]]
    assert results[0].provider_id != results[2].provider_id
