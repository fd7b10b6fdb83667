"""The pages in a second language (German), as a German browser finds them: the language comes
from Accept-Language (the browser context's locale), the page scripts' text from Django's
JavaScript catalogue, and the switcher in the footer changes it, with or without JavaScript."""

from __future__ import annotations

import re

import pytest
from playwright.async_api import expect

from tests.browser.conftest import NewPage, Server, call, shot
from tests.browser.test_pages import open_dashboard, open_guest

pytestmark = [pytest.mark.browser, pytest.mark.asyncio(loop_scope="session")]

GERMAN = {"locale": "de-DE"}  # Chromium sends Accept-Language: de-DE,de;q=0.9


async def test_a_german_guest_knocks_waits_and_enters_in_german(
    new_page: NewPage, server: Server, room_name: str
):
    await call(server.room, room_name)
    owner = await open_dashboard(
        new_page, server, room_name, await call(server.owner_token, room_name)
    )
    guest = await open_guest(new_page, server, room_name, **GERMAN)
    await expect(guest.locator("html")).to_have_attribute("lang", "de")
    await expect(guest.get_by_role("heading", name="Anklopfen")).to_be_visible()
    await expect(
        guest.get_by_text("Der Host sieht Ihren Namen und lässt Sie herein.")
    ).to_be_visible()
    await expect(guest.get_by_label("Sprache")).to_have_value("de")
    await expect(guest.get_by_role("button", name="Sprache wechseln")).to_be_visible()
    await shot(guest, "de-guest-knock-form")

    # Empty name: the (server-rendered) error, in German.
    await guest.get_by_role("button", name="Anklopfen").click()
    await expect(guest.get_by_text("Bitte geben Sie Ihren Namen ein")).to_be_visible()
    await guest.get_by_label("Ihr Name").fill("Jana Schmidt")
    await guest.get_by_label("Notiz für den Host").fill("Termin um 10")
    await guest.get_by_role("button", name="Anklopfen").click()
    await expect(guest.locator("html")).to_have_attribute("data-state", "waiting")

    # Written by guest.js from the live `waiting` frame: the catalogue's German.
    await expect(
        guest.get_by_role("heading", name="Warten, bis der Host Sie hereinlässt")
    ).to_be_focused()
    await expect(guest.locator("#waiting-status")).to_have_text(
        "Sie sind als Nächstes dran. Der Host weiß, dass Sie hier sind."
    )
    await expect(guest.get_by_role("button", name="Abbrechen")).to_be_visible()
    await shot(guest, "de-guest-waiting")

    # The host (an English browser) admits; the guest's room screen is German too.
    await owner.get_by_role("button", name="Admit Jana Schmidt").click()
    await expect(guest.get_by_role("heading", name="Sie sind drin")).to_be_visible()
    await expect(guest.locator("#participant-list")).to_contain_text("Jana Schmidt (Sie)")
    await expect(guest.locator("#participant-list .tag")).to_have_text(["Host"])
    await expect(guest.get_by_role("button", name="Verlassen")).to_be_visible()
    await shot(guest, "de-guest-in-room")
    await guest.get_by_role("button", name="Verlassen").click()
    await expect(guest.get_by_role("heading", name="Sie haben den Raum verlassen")).to_be_visible()
    await expect(guest.get_by_role("button", name="Erneut beitreten")).to_be_visible()


async def test_the_switcher_changes_the_language_without_javascript(
    new_page: NewPage, server: Server, room_name: str
):
    await call(server.room, room_name)
    page = await new_page(java_script_enabled=False, **GERMAN)
    await page.goto(f"{server.base}/r/{room_name}/")
    await expect(page.get_by_role("heading", name="Anklopfen")).to_be_visible()
    await page.get_by_label("Sprache").select_option(label="English")
    await page.get_by_role("button", name="Sprache wechseln").click()
    # Back on the same page (a plain form POST and a redirect), now in English, and it stays.
    await expect(page).to_have_url(re.compile(rf"/r/{room_name}/$"))
    await expect(page.locator("html")).to_have_attribute("lang", "en")
    await expect(page.get_by_role("heading", name="Knock to enter")).to_be_visible()
    await expect(page.get_by_label("Your name")).to_be_visible()
    await page.goto(f"{server.base}/")
    await expect(page.get_by_role("heading", name="A waiting room for video calls")).to_be_visible()
    await page.get_by_label("Language").select_option(label="Deutsch")
    await page.get_by_role("button", name="Change language").click()
    await expect(page.get_by_role("heading", name="Ein Warteraum für Videoanrufe")).to_be_visible()
    await shot(page, "de-home")


async def test_the_switcher_with_javascript_keeps_the_scripts_in_step(
    new_page: NewPage, server: Server, room_name: str
):
    """An English browser switches to German: the page and the script's own text follow."""
    await call(server.room, room_name)
    guest = await open_guest(new_page, server, room_name)
    await expect(guest.get_by_role("heading", name="Knock to enter")).to_be_visible()
    await guest.get_by_label("Language").select_option(label="Deutsch")
    await guest.get_by_role("button", name="Change language").click()
    await expect(guest.locator("html")).to_have_attribute("data-ready", "1")
    await expect(guest.locator("html")).to_have_attribute("lang", "de")
    await guest.get_by_label("Ihr Name").fill("Ola")
    await guest.get_by_role("button", name="Anklopfen").click()
    await expect(guest.locator("#waiting-status")).to_contain_text("Sie sind als Nächstes dran")


async def test_a_german_host_s_dashboard_is_german_live_and_without_javascript(
    new_page: NewPage, server: Server, room_name: str
):
    await call(server.room, room_name)
    token = await call(server.owner_token, room_name)
    owner = await open_dashboard(new_page, server, room_name, token, **GERMAN)
    await expect(owner.locator("html")).to_have_attribute("lang", "de")
    await expect(owner.get_by_role("heading", name=re.compile(r"^Wartend"))).to_be_visible()
    await expect(owner.locator("#live-status")).to_have_text("Verbunden")  # written by dashboard.js
    await expect(owner.get_by_text("Niemand wartet.", exact=True)).to_be_visible()
    await expect(owner.get_by_role("button", name="Gast-Link kopieren")).to_be_visible()
    await expect(owner.get_by_role("heading", name="Raumsteuerung")).to_be_visible()
    await expect(owner.get_by_role("button", name="Raum pausieren")).to_be_visible()
    # "Deny all" with nobody waiting says so (a notice dashboard.js words).
    await owner.get_by_role("button", name="Alle abweisen").click()
    await expect(owner.locator("#action-status")).to_have_text(
        "Niemand wartet; niemand wurde abgewiesen."
    )

    # An English guest knocks: the live row (built by dashboard.js) is German for the host.
    guest = await open_guest(new_page, server, room_name)
    await guest.get_by_label("Your name").fill("Pat Doe")
    await guest.get_by_role("button", name="Knock to enter").click()
    row = owner.locator("#waiting-list li", has_text="Pat Doe")
    await expect(row).to_contain_text("Gewartet")
    await expect(row.get_by_role("button", name="Einlassen Pat Doe")).to_be_visible()
    await expect(row.get_by_role("button", name="Abweisen Pat Doe")).to_be_visible()
    await expect(row.get_by_placeholder("Nachricht an diesen Gast")).to_be_visible()
    await expect(owner).to_have_title(re.compile(r"^\(1\) wartet · "))
    await shot(owner, "de-dashboard-waiting")
    await row.get_by_role("button", name="Einlassen Pat Doe").click()
    await expect(guest.get_by_role("heading", name="You're in")).to_be_visible()
    await expect(owner.locator("#activity-list")).to_contain_text("Pat Doe von Ihnen eingelassen")
    await expect(owner.locator("#participant-list")).to_contain_text("Pat Doe")
    await expect(
        owner.get_by_role("button", name="In den Warteraum schicken Pat Doe")
    ).to_be_visible()
    await shot(owner, "de-dashboard-after-admit")

    # The same dashboard without JavaScript: server-rendered, and the POST's message, German.
    plain = await new_page(java_script_enabled=False, **GERMAN)
    await plain.goto(f"{server.base}/r/{room_name}/dashboard/?t={token}")
    await expect(plain.locator("#activity-list")).to_contain_text("Pat Doe von Ihnen eingelassen")
    await expect(plain.locator("#live-status")).to_contain_text("Nicht verbunden")
    await expect(plain.locator("#live-status")).to_contain_text(
        "Schaltflächen funktionieren trotzdem"
    )
    await plain.get_by_role("button", name="Raum pausieren").click()
    await expect(plain.get_by_text("Der Raum ist pausiert.")).to_be_visible()
    await expect(plain.locator("#state-paused")).to_have_text("pausiert")
    await shot(plain, "de-dashboard-no-js")
