"""Small factories for test data: valid SIRETs, companies, listing files."""

from __future__ import annotations

import itertools
from datetime import UTC, date, datetime
from pathlib import Path

from sqlmodel import Session
from stdnum import luhn

from models import CallOutcome, CallTask, Company, Contact, Stage

_counter = itertools.count(1)


def luhn_siret(seed: int) -> str:
    """A 14-digit SIRET (valid SIREN and SIRET Luhn keys), different for each seed.

    ``make_company`` numbers its companies from a counter shared by every test of the
    process: in a database several tests share, give fixed seeds from 100,000 up.
    """
    siren = f"{73282932 + seed:08d}"
    siren += luhn.calc_check_digit(siren)
    body = siren + f"{seed % 10000:04d}"
    return body + luhn.calc_check_digit(body)


def make_company(session: Session, *, stage: Stage = Stage.LISTED, **fields: object) -> Company:
    number = next(_counter)
    values: dict[str, object] = {
        "siret": luhn_siret(number),
        "name": f"Entreprise {number}",
        "name_key": f"entreprise {number}",
        "postcode": "21700",
        "commune_code": "21464",
        "stage": stage,
    }
    values.update(fields)
    company = Company(**values)  # type: ignore[arg-type]
    session.add(company)
    session.flush()
    return company


def make_contact(session: Session, company: Company, **fields: object) -> Contact:
    number = next(_counter)
    values: dict[str, object] = {
        "company_id": company.id,
        "identity": f"email:contact{number}@example.org",
        "email": f"contact{number}@example.org",
        "name": f"Contact {number}",
    }
    values.update(fields)
    contact = Contact(**values)  # type: ignore[arg-type]
    session.add(contact)
    session.flush()
    return contact


def write_csv(path: Path, text: str, *, encoding: str = "utf-8") -> Path:
    """Write ``text`` as a file, newlines kept as given (``\\r\\n`` for Excel-like files)."""
    path.write_bytes(text.encode(encoding))
    return path


NOW = datetime(2026, 11, 2, 9, 30, tzinfo=UTC)


def make_interested_company(
    session: Session, *, phone: str | None = "+33612345678", **fields: object
) -> Company:
    """A company at ``called`` whose last call found it interested, with one contact: ready for a visit."""
    company = make_company(session, stage=Stage.CALLED, **fields)
    contact = make_contact(session, company, phone=phone)
    session.add(
        CallTask(
            company_id=company.id,  # type: ignore[arg-type]
            contact_id=contact.id,
            due_on=date(2026, 10, 30),
            outcome=CallOutcome.INTERESTED,
            logged_at=NOW,
        )
    )
    session.flush()
    return company
