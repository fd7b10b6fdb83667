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


async def test_host_sends_a_guest_back_removes_another_and_denies_with_a_reason(
    new_page: NewPage, server: Server, room_name: str
):
    await call(server.room, room_name)
    token = await call(server.owner_token, room_name)
    owner = await open_dashboard(new_page, server, room_name, token)
    people = owner.get_by_role("list", name=re.compile(r"^In the room"))

    # A guest on a phone renames while waiting; the host sees the new name.
    pat = await open_guest(new_page, server, room_name, viewport=PHONE)
    await knock(pat, "Pat")
    await pat.get_by_label("Name shown to the host").fill("Pat Patel")
    await pat.get_by_role("button", name="Change name").click()
    await expect(
        pat.get_by_role("status").filter(has_text="The host now sees you as")
    ).to_have_text("The host now sees you as “Pat Patel”.")
    await shot(pat, "guest-renamed-while-waiting-phone")
    await owner.get_by_role("button", name="Admit Pat Patel").click()
    await expect(pat.locator("html")).to_have_attribute("data-state", "room")

    # Send back to the waiting room: the guest waits again and is told why.
    await owner.get_by_role("button", name="Send to waiting room Pat Patel").click()
    await expect(pat.locator("html")).to_have_attribute("data-state", "waiting")
    await expect(pat.locator("#waiting-status")).to_contain_text(
        "The host moved you back to the waiting room."
    )
    await shot(pat, "guest-sent-back-phone")
    await expect(activity(owner)).to_contain_text("Pat Patel sent back to the waiting room by you")
    await owner.get_by_role("button", name="Admit Pat Patel").click()
    await expect(pat.locator("html")).to_have_attribute("data-state", "room")
    await expect(pat.locator("#participant-list")).to_contain_text("Pat Patel (you)")

    # Remove: the guest is told, with a way to knock again.
    await owner.get_by_role("button", name="Remove from room Pat Patel").click()
    await expect(
        pat.get_by_role("heading", name="The host removed you from the room")
    ).to_be_visible()
    await expect(pat.get_by_role("button", name="Knock again")).to_be_visible()
    await expect(activity(owner)).to_contain_text("Pat Patel removed by you")
    await expect(people).not_to_contain_text("Pat Patel")

    # Deny with a reason typed next to the row.
    dee = await open_guest(new_page, server, room_name)
    await knock(dee, "Dee")
    await owner.get_by_label("Reason for Dee (optional, they will read it)").fill(
        "Wrong day, see you Tuesday"
    )
    await owner.get_by_role("button", name="Deny Dee").click()
    await expect(dee.locator("#outcome-text")).to_contain_text("“Wrong day, see you Tuesday”")
    await expect(activity(owner)).to_contain_text(
        "Dee denied by you (“Wrong day, see you Tuesday”)"
    )
    await shot(owner, "dashboard-host-controls")


async def test_deny_all_asks_first_with_and_without_javascript(
    new_page: NewPage, server: Server, room_name: str
):
    await call(server.room, room_name)
    token = await call(server.owner_token, room_name)
    owner = await open_dashboard(new_page, server, room_name, token)
    # Nobody waiting: the buttons say so instead of "0 guests".
    await owner.get_by_role("button", name="Admit all").click()
    await expect(owner.locator("#action-status")).to_have_text(
        "Nobody is waiting; nobody was admitted."
    )

    a = await open_guest(new_page, server, room_name)
    await knock(a, "Ann")
    b = await open_guest(new_page, server, room_name)
    await knock(b, "Bob")
    await expect(owner.locator("html")).to_have_attribute("data-waiting", "2")
    await owner.get_by_role("button", name="Deny all").click()
    question = owner.get_by_role("alertdialog")
    await expect(question).to_contain_text("Deny all 2 guests waiting?")
    await expect(owner.get_by_role("button", name="Yes, deny everyone waiting")).to_be_focused()
    await shot(owner, "dashboard-deny-all-question")
    await owner.get_by_role("link", name="Keep them waiting").click()
    await expect(question).to_be_hidden()
    assert await a.locator("html").get_attribute("data-state") == "waiting"

    # Without JavaScript the same question is a page of its own.
    plain = await open_dashboard(new_page, server, room_name, token, java_script_enabled=False)
    await plain.get_by_role("button", name="Deny all").click()
    await expect(plain.get_by_role("alertdialog")).to_contain_text("Deny all 2 guests waiting?")
    assert await b.locator("html").get_attribute("data-state") == "waiting"
    await plain.get_by_role("button", name="Yes, deny everyone waiting").click()
    await expect(plain.get_by_role("status").filter(has_text="denied")).to_have_text(
        "2 guests denied."
    )
    for guest in (a, b):
        await expect(guest.locator("html")).to_have_attribute("data-outcome", "ENTRY_DENIED")
    await expect(owner.locator("html")).to_have_attribute("data-waiting", "0")


async def test_feedback_tells_the_truth(new_page: NewPage, server: Server, room_name: str):
    await call(server.room, room_name)
    token = await call(server.owner_token, room_name)
    owner = await open_dashboard(new_page, server, room_name, token)
    pill = owner.locator("#live-status")
    await expect(pill).to_have_text("Connected")
    # The pill is the connection; the room's own state is in its controls.
    await owner.get_by_role("button", name="Pause the room").click()
    await expect(owner.locator("#state-paused")).to_have_text("paused")
    await expect(pill).to_have_text("Connected")
    await owner.get_by_role("button", name="Resume the room").click()
    await expect(owner.locator("#state-paused")).to_have_text("running")

    # A notice says what just happened, then goes.
    await owner.get_by_role("button", name="Deny all").click()
    notice = owner.locator("#action-status")
    await expect(notice).to_have_text("Nobody is waiting; nobody was denied.")
    await expect(notice).to_be_hidden(timeout=12_000)

    # Too many knocks says when the guest may knock again.
    guest = await open_guest(new_page, server, room_name)
    for _ in range(3):
        await knock(guest, "Kim Knocks")
        await guest.get_by_role("button", name="Cancel").click()
        await guest.get_by_role("button", name="Knock again").click()
    await guest.get_by_role("button", name="Knock to enter").click()
    await expect(guest.get_by_role("heading", name="Too many knocks")).to_be_visible()
    await expect(guest.locator("#outcome-text")).to_have_text(
        re.compile(r"You can knock again in about 5 minutes \(at \d\d?:\d\d( [AP]M)?\)\.$")
    )
    await shot(guest, "guest-too-many-knocks")


async def test_host_talks_to_the_waiting_room(new_page: NewPage, server: Server, room_name: str):
    await call(server.room, room_name, knock_ttl=60)
    token = await call(server.owner_token, room_name)
    owner = await open_dashboard(new_page, server, room_name, token)
    pat = await open_guest(new_page, server, room_name, viewport=PHONE)
    await knock(pat, "Pat")
    await expect(pat.locator("#time-left")).to_have_text(re.compile(r"^[01]:\d\d$"))

    await owner.get_by_label("Message to everyone waiting").fill(
        "Dr Lee is running 10 minutes late"
    )
    await owner.get_by_label("Give everyone waiting more time").select_option("10")
    await owner.get_by_role("button", name="Show to everyone waiting").click()
    await expect(owner.locator("#lobby-message-current")).to_have_text(
        "Everyone waiting sees: “Dr Lee is running 10 minutes late”"
    )
    await expect(pat.locator("#lobby-message")).to_have_text(
        "Message from the host to everyone waiting: Dr Lee is running 10 minutes late"
    )
    await expect(pat.locator("#time-left")).to_have_text(re.compile(r"^1[01]:\d\d$"))

    await owner.get_by_label("Message to Pat").fill("Your forms are at the desk")
    await owner.get_by_role("button", name="Send to Pat").click()
    await expect(pat.locator("#host-message")).to_have_text(
        "Message from the host to you: Your forms are at the desk"
    )
    await shot(pat, "guest-waiting-with-host-messages-phone")
    await shot(owner, "dashboard-waiting-room-message")
    # A guest who knocks later sees the room message at once.
    late = await open_guest(new_page, server, room_name)
    await knock(late, "Lou")
    await expect(late.locator("#lobby-message")).to_contain_text("running 10 minutes late")
    await expect(late.locator("#host-message")).to_be_hidden()
    # Without JavaScript the host clears it.
    plain = await open_dashboard(new_page, server, room_name, token, java_script_enabled=False)
    await plain.get_by_role("button", name="Clear the message").click()
    await expect(plain.locator("#lobby-message-current")).to_have_text(
        "Nobody waiting sees a message from you."
    )
    await expect(late.locator("#lobby-message")).to_be_hidden()


# Headless Chromium shows no desktop: the page's Notification is recorded instead (everything
# else — permission prompt result, hidden tab, the dashboard's own logic — is the real page's).
RECORD_NOTIFICATIONS = """
window.__notes = [];
window.__hidden = false;
Object.defineProperty(document, 'hidden', { get: () => window.__hidden });
Object.defineProperty(document, 'visibilityState', {
  get: () => (window.__hidden ? 'hidden' : 'visible'),
});
class RecordedNotification {
  static permission = 'default';
  static async requestPermission() {
    RecordedNotification.permission = window.__answer || 'granted';
    return RecordedNotification.permission;
  }
  constructor(title, options) {
    window.__notes.push({ title, ...options });
  }
  close() {}
}
window.Notification = RecordedNotification;
"""


async def test_opt_in_notifications_for_knocks_while_the_tab_is_hidden(
    new_page: NewPage, server: Server, room_name: str
):
    await call(server.room, room_name)
    token = await call(server.owner_token, room_name)
    owner = await new_page()
    await owner.add_init_script(RECORD_NOTIFICATIONS)
    await owner.goto(f"{server.base}/r/{room_name}/dashboard/?t={token}")
    await expect(owner.locator("html")).to_have_attribute("data-live", "on")
    box = owner.get_by_label("Notify me when someone knocks while this tab is in the background")
    await expect(box).not_to_be_checked()  # opt-in

    # Visible tab, not opted in: nothing. Opted in but visible: nothing either.
    first = await open_guest(new_page, server, room_name)
    await knock(first, "Vera Visible")
    await box.check()
    await expect(
        owner.get_by_role("status").filter(has_text="You'll get a notification")
    ).to_be_visible()
    second = await open_guest(new_page, server, room_name)
    await knock(second, "Vic Visible")
    await expect(owner.locator("html")).to_have_attribute("data-waiting", "2")
    assert await owner.evaluate("window.__notes.length") == 0

    # Hidden tab: a notification naming the guest and the room.
    await owner.evaluate("window.__hidden = true")
    third = await open_guest(new_page, server, room_name)
    await knock(third, "Hana Hidden")
    await expect(owner.locator("html")).to_have_attribute("data-notified", "1")
    notes = await owner.evaluate("window.__notes")
    assert notes == [
        {
            "title": "Hana Hidden is knocking",
            "body": f"Room {room_name}: 3 guests waiting",
            "tag": f"anteroom:{room_name}",
        }
    ]


async def test_a_refused_notification_permission_is_explained(
    new_page: NewPage, server: Server, room_name: str
):
    await call(server.room, room_name)
    token = await call(server.owner_token, room_name)
    owner = await new_page()
    await owner.add_init_script(RECORD_NOTIFICATIONS + "window.__answer = 'denied';")
    await owner.goto(f"{server.base}/r/{room_name}/dashboard/?t={token}")
    await expect(owner.locator("html")).to_have_attribute("data-live", "on")
    box = owner.get_by_label("Notify me when someone knocks while this tab is in the background")
    await box.click()  # the page unticks it again when the browser says no
    await expect(box).not_to_be_checked()
    await expect(owner.locator("#notify-status")).to_have_text(
        "Your browser blocks notifications for this site; "
        "the sound and the tab title still tell you."
    )
