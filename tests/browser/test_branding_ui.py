"""A deployment's own look in Chromium (issue 14 item 10): the product name, logo and accent of
a server started with ANTEROOM_PRODUCT_NAME / ANTEROOM_LOGO_URL / ANTEROOM_ACCENT_COLOR on the
guest page and the dashboard; initials avatars; the empty states (with and without JavaScript).
Screenshots: artifacts/screenshots/brand-*.png."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest
from playwright.async_api import expect

from lobby import avatars
from lobby.branding import make_brand
from tests.browser.conftest import NewPage, Server, _require_chromium, call, make_server, shot
from tests.browser.test_pages import PHONE, knock, open_dashboard, open_guest, row
from tests.lobby.test_avatars import NAMES

pytestmark = [pytest.mark.browser, pytest.mark.asyncio(loop_scope="session")]

LOGO_URL = "https://logo.example.test/riverside.svg"
LOGO_SVG = (
    '<svg xmlns="http://www.w3.org/2000/svg" width="64" height="64" viewBox="0 0 64 64">'
    '<circle cx="32" cy="32" r="30" fill="#0f766e"/>'
    '<path d="M14 40 C24 28 40 28 50 40" stroke="#fff" stroke-width="6" fill="none"/></svg>'
)
# A long name (57 of the 60 characters allowed) must wrap, not widen a phone's page.
SUNNY = "Sunny Side Primary School and Nursery · Parents' Evenings"
RIVERSIDE = {
    "ANTEROOM_PRODUCT_NAME": "Riverside Clinic",
    "ANTEROOM_LOGO_URL": LOGO_URL,
    "ANTEROOM_ACCENT_COLOR": "#0f766e",
}


@pytest.fixture(scope="module")
def riverside(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """A server of its own, started with the three branding variables."""
    _require_chromium()
    s = make_server(tmp_path_factory.mktemp("brand-db"), "riverside", **RIVERSIDE)
    yield s
    s.stop()


@pytest.fixture(scope="module")
def gold(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """A light accent: text on it must turn dark, accent text on white darker."""
    _require_chromium()
    s = make_server(
        tmp_path_factory.mktemp("gold-db"),
        "gold",
        ANTEROOM_PRODUCT_NAME=SUNNY,
        ANTEROOM_ACCENT_COLOR="#ffd700",
    )
    yield s
    s.stop()


async def serve_logo(page: Any) -> None:
    """The logo's host, answered inside the browser (no network in tests)."""

    async def fulfil(route: Any) -> None:
        await route.fulfill(status=200, content_type="image/svg+xml", body=LOGO_SVG)

    await page.context.route("https://logo.example.test/**", fulfil)


@pytest.fixture
def branded_page(new_page: NewPage) -> NewPage:
    """``new_page`` whose context answers the logo's host (every page of the riverside server
    shows the logo)."""

    async def make(**options: Any) -> Any:
        page = await new_page(**options)
        await serve_logo(page)
        return page

    return make


async def colours(locator: Any) -> tuple[str, str]:
    style = "e => [getComputedStyle(e).backgroundColor, getComputedStyle(e).color]"
    bg, fg = await locator.evaluate(style)
    return bg, fg


def rgb(hex_colour: str) -> str:
    h = hex_colour.lstrip("#")
    return f"rgb({int(h[0:2], 16)}, {int(h[2:4], 16)}, {int(h[4:6], 16)})"


async def test_product_name_logo_and_accent_on_the_guest_page_and_dashboard(
    branded_page: NewPage, riverside: Server
):
    room_name = await call(riverside.room, "checkups")
    token = await call(riverside.owner_token, room_name)

    guest = await branded_page()
    await guest.goto(f"{riverside.base}/r/{room_name}/")
    await expect(guest.locator("html")).to_have_attribute("data-ready", "1")
    await expect(guest).to_have_title(f"{room_name} · Riverside Clinic")
    banner = guest.get_by_role("banner")
    await expect(banner).to_have_text("Riverside Clinic")
    logo = banner.locator("img.brand-logo")
    await expect(logo).to_have_attribute("src", LOGO_URL)
    await expect(logo).to_have_attribute("alt", "")  # decorative: the name is beside it
    # It loaded (the CSP lets its origin in: a refusal would also fail the test as a console error).
    await guest.wait_for_function(
        "() => { const i = document.querySelector('img.brand-logo'); return i.complete"
        " && i.naturalWidth > 0 }"
    )
    await expect(guest.get_by_role("contentinfo")).to_contain_text(
        "Riverside Clinic — a waiting room for video calls · powered by Anteroom"
    )
    await guest.get_by_label("Your name").fill("Pat Doe")
    knock_button = guest.get_by_role("button", name="Knock to enter")
    await expect(knock_button).to_be_enabled()
    assert await colours(knock_button) == (rgb("#0f766e"), rgb("#ffffff"))
    await shot(guest, "brand-guest-knock")
    await knock_button.click()
    await expect(guest.locator("html")).to_have_attribute("data-state", "waiting")
    await shot(guest, "brand-guest-waiting")

    owner = await branded_page()
    await owner.goto(f"{riverside.base}/r/{room_name}/dashboard/?t={token}")
    await expect(owner.locator("html")).to_have_attribute("data-live", "on")
    await expect(owner.get_by_role("banner")).to_have_text("Riverside Clinic")
    # The live title keeps the product name while it counts who is waiting.
    await expect(owner).to_have_title(f"(1) waiting · {room_name} · Riverside Clinic dashboard")
    admit = owner.get_by_role("button", name="Admit Pat Doe")
    assert await colours(admit) == (rgb("#0f766e"), rgb("#ffffff"))
    await shot(owner, "brand-dashboard")
    await admit.click()
    await expect(owner).to_have_title(f"{room_name} · Riverside Clinic dashboard")
    await expect(guest.locator("html")).to_have_attribute("data-state", "room")

    # The front page and the error pages carry it too.
    await guest.goto(f"{riverside.base}/")
    await expect(guest).to_have_title("Riverside Clinic — a waiting room for video calls")
    await expect(guest.get_by_role("banner")).to_have_text("Riverside Clinic")
    await guest.goto(f"{riverside.base}/no/such/page")
    await expect(guest).to_have_title("Page not found · Riverside Clinic")
    await expect(guest.get_by_role("heading", name="There is no page here")).to_be_visible()
    await expect(guest.get_by_role("banner")).to_have_text("Riverside Clinic")
    await shot(guest, "brand-404")


async def test_a_light_accent_gets_dark_text_and_a_darker_shade_for_text_on_white(
    new_page: NewPage, gold: Server
):
    brand = make_brand(name=SUNNY, logo="", accent="#ffd700")
    room_name = await call(gold.room, "year-6-parents")
    guest = await open_guest(new_page, gold, room_name)
    await expect(guest.get_by_role("banner")).to_have_text(SUNNY)
    await expect(guest.get_by_role("banner").locator("img")).to_have_count(0)  # no logo set
    await guest.get_by_label("Your name").fill("Ada")
    knock_button = guest.get_by_role("button", name="Knock to enter")
    await expect(knock_button).to_be_enabled()
    # Gold with white text would be 1.4:1; the page ink on it reads at 11.8:1.
    assert await colours(knock_button) == (rgb("#ffd700"), rgb(brand.accent_ink))
    await shot(guest, "brand-gold-guest-knock")
    await knock(guest, "Ada")
    cancel = guest.get_by_role("button", name="Cancel")  # a secondary button: accent text
    assert await colours(cancel) == (rgb("#ffffff"), rgb(brand.accent_text))
    await shot(guest, "brand-gold-guest-waiting")
    await guest.set_viewport_size(PHONE)
    assert await guest.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    await shot(guest, "brand-gold-guest-waiting-phone")


async def test_initials_avatars_beside_names_live_and_server_rendered(
    branded_page: NewPage, riverside: Server
):
    server, new_page = riverside, branded_page
    room_name = await call(server.room, "family-practice")
    token = await call(server.owner_token, room_name)
    owner = await open_dashboard(new_page, server, room_name, token)
    guests = {}
    for name in ("Pat Doe", "Ölaf Ünal", "ada"):
        guests[name] = await open_guest(new_page, server, room_name)
        await knock(guests[name], name)

    for name, letters in (("Pat Doe", "PD"), ("Ölaf Ünal", "ÖÜ"), ("ada", "A")):
        face = row(owner, name).locator(".avatar")
        await expect(face).to_have_text(letters)  # the live row (avatar.js)
        await expect(face).to_have_attribute("aria-hidden", "true")
        await expect(face).to_have_class(f"avatar avatar-{avatars.colour_index(name)}")
        # The name stays the text people and screen readers get; the initials add nothing.
        await expect(owner.get_by_role("button", name=f"Admit {name}", exact=True)).to_be_visible()
    await shot(owner, "brand-avatars-waiting")

    # The same rows rendered by the server (what a page without JavaScript shows).
    plain = await open_dashboard(new_page, server, room_name, token, java_script_enabled=False)
    await expect(row(plain, "Pat Doe").locator(".avatar")).to_have_text("PD")
    await expect(row(plain, "Ölaf Ünal").locator(".avatar")).to_have_class(
        f"avatar avatar-{avatars.colour_index('Ölaf Ünal')}"
    )

    await owner.get_by_role("button", name="Admit Pat Doe").click()
    pat = guests["Pat Doe"]
    await expect(pat.locator("html")).to_have_attribute("data-state", "room")
    me = pat.locator("#participant-list li", has_text="Pat Doe (you)")
    await expect(me.locator(".avatar")).to_have_text("PD")
    host = pat.locator("#participant-list li", has_text="Dr Owner")
    await expect(host.locator(".avatar")).to_have_text("DO")
    in_room = owner.locator("#participant-list li", has_text="Pat Doe")
    await expect(in_room.locator(".avatar")).to_have_text("PD")
    await shot(pat, "brand-avatars-guest-in-room")


async def test_avatar_js_gives_the_server_s_answers(new_page: NewPage, server: Server):
    page = await new_page()
    await page.goto(f"{server.base}/")
    got = await page.evaluate(
        """async (names) => {
            const m = await import('/static/anteroom/avatar.js');
            return names.map((n) => [m.initials(n), m.colourIndex(n)]);
        }""",
        list(NAMES),
    )
    expected = [[avatars.initials(n), avatars.colour_index(n)] for n in NAMES]
    assert got == expected
    assert [g[0] for g in got] == list(NAMES.values())


async def test_empty_states_say_what_happens_and_copy_the_guest_link(
    branded_page: NewPage, riverside: Server
):
    server, new_page = riverside, branded_page
    room_name = await call(server.room, "intake")
    token = await call(server.owner_token, room_name)
    owner = await open_dashboard(new_page, server, room_name, token)
    await owner.context.grant_permissions(["clipboard-read", "clipboard-write"])
    guest_url = f"{server.base}/r/{room_name}/"

    waiting = owner.locator("#waiting")
    await expect(waiting).to_contain_text(
        "Nobody is waiting. When a guest knocks, they appear here with buttons to admit or deny "
        "them, and the tab's title counts who is waiting."
    )
    link = owner.get_by_role("textbox", name="To invite guests, send them this room's guest link:")
    await expect(link).to_have_value(guest_url)
    await owner.get_by_role("button", name="Copy the guest link").click()
    await expect(owner.get_by_role("status").filter(has_text="Guest link copied")).to_have_text(
        "Guest link copied. Paste it into an e-mail or a chat message to invite someone."
    )
    assert await owner.evaluate("navigator.clipboard.readText()") == guest_url
    await expect(owner.locator("#activity-list")).to_contain_text(
        "Nothing yet. What became of each knock (admitted, denied, timed out, cancelled or left) "
        "is listed here with its time."
    )
    await expect(owner.locator("#breakout-empty")).to_contain_text(
        "No breakout rooms yet. To split the people here into groups"
    )
    await shot(owner, "brand-empty-dashboard")

    # A knock replaces the empty state; when the guest gives up it comes back.
    guest = await open_guest(new_page, server, room_name)
    await knock(guest, "Ann Other")
    await expect(row(owner, "Ann Other")).to_be_visible()
    await expect(owner.get_by_text("Nobody is waiting.")).to_be_hidden()
    await guest.get_by_role("button", name="Cancel").click()
    await expect(row(owner, "Ann Other")).to_have_count(0)
    await expect(owner.get_by_text("Nobody is waiting.")).to_be_visible()
    await expect(owner.locator("#activity-list")).not_to_contain_text("Nothing yet.")

    # Without JavaScript (a room nobody is in: a live dashboard is itself a participant): the
    # same sentences, the link to select and copy by hand, no button.
    quiet = await call(server.room, "evening-clinic")
    quiet_token = await call(server.owner_token, quiet)
    plain = await open_dashboard(new_page, server, quiet, quiet_token, java_script_enabled=False)
    await expect(plain.get_by_text("Nobody is waiting.")).to_be_visible()
    plain_link = plain.get_by_role("textbox", name=re.compile("send them this room's guest link"))
    await expect(plain_link).to_have_value(f"{server.base}/r/{quiet}/")
    await expect(plain.get_by_role("button", name="Copy the guest link")).to_be_hidden()
    await expect(plain.locator("#participants-empty")).to_have_text(
        "Nobody is in the room yet. Guests you admit appear here; from here you can send someone "
        "back to the waiting room or remove them."
    )
    await shot(plain, "brand-empty-dashboard-no-js")
    await plain.set_viewport_size(PHONE)
    assert await plain.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    await shot(plain, "brand-empty-dashboard-phone")
