"""The Prefect UI of the scale-out stack, in Chromium: private, listing Synergie's deployments, forms in French."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Page, expect

from tests.browser import screenshot
from tests.integration.stack import Stack, call

pytestmark = pytest.mark.integration

DEPLOYMENTS = ["import-listing", "mailing", "call-reminders", "log-call", "visits", "visit-done",
               "visit-reminders", "optout-sync"]  # fmt: skip


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
    links = page.locator('a[href^="/deployments/deployment/"]')
    expect(links).to_have_count(len(DEPLOYMENTS), timeout=30_000)
    assert sorted(t.strip() for t in links.all_inner_texts()) == sorted(DEPLOYMENTS)
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
            expect(page.get_by_text(field["title"], exact=True).first).to_be_visible()
    screenshot(page, "prefect-ui-mailing-run-form")
