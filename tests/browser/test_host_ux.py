"""What a host sees and does on the dashboard, and what a guest then sees, in Chromium: the
activity list, several tabs, host controls, feedback, waiting-room messages."""

from __future__ import annotations

import re

import pytest
from playwright.async_api import expect

from tests.browser.conftest import NewPage, Server, call, shot
from tests.browser.test_pages import PHONE, knock, open_dashboard, open_guest

pytestmark = [pytest.mark.browser, pytest.mark.asyncio(loop_scope="session")]


def activity(page):
    return page.get_by_role("list", name="Activity")


async def test_activity_lists_every_outcome_live_and_without_javascript(
    new_page: NewPage, server: Server, room_name: str
):
    await call(server.room, room_name, knock_ttl=10)
    token = await call(server.owner_token, room_name)
    owner = await open_dashboard(new_page, server, room_name, token)
    await expect(activity(owner)).to_contain_text("Nothing yet.")

    quitter = await open_guest(new_page, server, room_name)
    await knock(quitter, "Cass Quits")
    await quitter.get_by_role("button", name="Cancel").click()
    await expect(activity(owner)).to_contain_text("Cass Quits stopped waiting")

    late = await open_guest(new_page, server, room_name)
    await knock(late, "Tess Timeout")
    # Nobody answers: the knock times out on its own, and the host is told.
    await expect(activity(owner)).to_contain_text(
        "Tess Timeout timed out (nobody answered)", timeout=20_000
    )

    guest = await open_guest(new_page, server, room_name)
    await knock(guest, "Lee Leaves")
    await owner.get_by_role("button", name="Admit Lee Leaves").click()
    await expect(activity(owner)).to_contain_text("Lee Leaves admitted by you")
    await expect(guest.locator("html")).to_have_attribute("data-state", "room")
    await guest.get_by_role("button", name="Leave").click()
    await expect(activity(owner)).to_contain_text("Lee Leaves left")
    items = activity(owner).get_by_role("listitem")
    await expect(items.first).to_contain_text("Lee Leaves left")  # newest first
    await expect(items.first.locator("time")).to_have_text(re.compile(r"^\d\d:\d\d"))
    await shot(owner, "dashboard-activity")

    # The same list without JavaScript, from the server.
    plain = await open_dashboard(
        new_page, server, room_name, token, java_script_enabled=False, viewport=PHONE
    )
    listed = activity(plain)
    for text in (
        "Lee Leaves left",
        "Lee Leaves admitted by you",
        "Tess Timeout timed out (nobody answered)",
        "Cass Quits stopped waiting",
    ):
        await expect(listed).to_contain_text(text)
    assert await plain.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    await shot(plain, "dashboard-activity-nojs-phone")


async def test_a_moderator_works_from_two_tabs_and_a_second_device(
    new_page: NewPage, server: Server, room_name: str
):
    await call(server.room, room_name)
    token = await call(server.owner_token, room_name)
    first = await open_dashboard(new_page, server, room_name, token)
    # A second tab in the same browser (same session), and a phone with the same owner link.
    second = await first.context.new_page()
    await second.goto(f"{server.base}/r/{room_name}/dashboard/")
    await expect(second.locator("html")).to_have_attribute("data-live", "on")
    phone = await open_dashboard(new_page, server, room_name, token, viewport=PHONE)
    # Reloading the first tab kicks nobody.
    await first.reload()
    await expect(first.locator("html")).to_have_attribute("data-live", "on")

    guest = await open_guest(new_page, server, room_name)
    await knock(guest, "Tabitha Tabs")
    for page in (first, second, phone):
        await expect(page.locator("#waiting-list li", has_text="Tabitha Tabs")).to_be_visible()
        await expect(page.locator("#live-status")).not_to_contain_text("Disconnected")
    await phone.get_by_role("button", name="Admit Tabitha Tabs").click()
    await expect(guest.locator("html")).to_have_attribute("data-state", "room")
    for page in (first, second):
        await expect(page.locator("#waiting-list li", has_text="Tabitha Tabs")).to_have_count(0)
        await expect(activity(page)).to_contain_text("Tabitha Tabs admitted by you")
    await shot(phone, "dashboard-second-device-phone")
    # Closing one tab leaves the others live.
    await second.close()
    await expect(first.locator("html")).to_have_attribute("data-live", "on")
    await expect(phone.locator("#live-status")).not_to_contain_text("Disconnected")
