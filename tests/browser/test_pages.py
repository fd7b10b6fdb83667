"""The guest knock page and the moderator dashboard in Chromium, owner and guest in separate
browser contexts (separate cookies), against a real Daphne process."""

from __future__ import annotations

import re
import time
from typing import Any

import pytest
from playwright.async_api import expect

from tests.browser.conftest import Blip, NewPage, Server, call, shot
from tests.support.servers import manage

pytestmark = [pytest.mark.browser, pytest.mark.asyncio(loop_scope="session")]

PHONE = {"width": 390, "height": 844}


async def open_dashboard(new_page: NewPage, server: Server, room: str, token: str, **ctx: Any):
    page = await new_page(**ctx)
    await page.goto(f"{server.base}/r/{room}/dashboard/?t={token}")
    if ctx.get("java_script_enabled", True):
        await expect(page.locator("html")).to_have_attribute("data-live", "on")
    return page


async def open_guest(new_page: NewPage, server: Server, room: str, query: str = "", **ctx: Any):
    page = await new_page(**ctx)
    await page.goto(f"{server.base}/r/{room}/{query}")
    await expect(page.locator("html")).to_have_attribute("data-ready", "1")
    return page


async def knock(page: Any, name: str, note: str = "") -> None:
    await page.get_by_label("Your name").fill(name)
    if note:
        await page.get_by_label("Note for the host").fill(note)
    await page.get_by_role("button", name="Knock to enter").click()
    await expect(page.locator("html")).to_have_attribute("data-state", "waiting")


def row(dashboard: Any, name: str) -> Any:
    return dashboard.locator("#waiting-list li", has_text=name)


async def test_knock_admit_enters_room(new_page: NewPage, server: Server, room_name: str):
    await call(server.room, room_name)
    token = await call(server.owner_token, room_name)
    owner = await open_dashboard(new_page, server, room_name, token)
    # The token is read by the server, kept in the session and dropped from the address bar.
    assert "t=" not in owner.url and owner.url.endswith(f"/r/{room_name}/dashboard/")
    await expect(owner.locator("#waiting-empty")).to_be_visible()
    await shot(owner, "dashboard-empty")

    guest = await open_guest(new_page, server, room_name)
    await expect(guest.get_by_role("heading", name="Knock to enter")).to_be_visible()
    await shot(guest, "guest-knock-form")
    await knock(guest, "Pat Doe", note="Annual checkup")

    # The guest waits: queue position, time left, a Cancel button; focus moved to the heading.
    await expect(guest.locator("#waiting-status")).to_contain_text("next in line")
    await expect(guest.locator("#time-left")).to_have_text(re.compile(r"^[01]:\d\d$"))
    await expect(guest.get_by_role("button", name="Cancel")).to_be_visible()
    await expect(guest.locator("#waiting-title")).to_be_focused()
    await shot(guest, "guest-waiting")

    # The owner sees the row live, with its metadata, and the title badge.
    pat = row(owner, "Pat Doe")
    await expect(pat).to_be_visible()
    await expect(pat.locator(".meta")).to_contain_text("Annual checkup")
    await expect(pat.locator(".left")).to_have_text(re.compile(r"^[01]:\d\d$"))
    await expect(owner).to_have_title(re.compile(r"^\(1\) waiting"))
    await expect(owner.locator("html")).to_have_attribute("data-knocks", "1")
    await shot(owner, "dashboard-waiting")
    await owner.set_viewport_size(PHONE)
    await shot(owner, "dashboard-waiting-phone")
    assert await owner.evaluate("document.documentElement.scrollWidth <= window.innerWidth")

    await owner.get_by_role("button", name="Admit Pat Doe").click()
    await expect(guest.locator("html")).to_have_attribute("data-state", "room")
    await expect(guest.get_by_role("heading", name="You're in")).to_be_visible()
    people = guest.locator("#participant-list")
    await expect(people).to_contain_text("Pat Doe (you)")
    await expect(people).to_contain_text("Dr Owner")
    await shot(guest, "guest-in-room")

    await expect(pat).to_have_count(0)
    await expect(owner).not_to_have_title(re.compile(r"waiting ·"))
    await expect(owner.locator("#participant-list")).to_contain_text("Pat Doe")
    await expect(owner.locator("#activity-list")).to_contain_text("Pat Doe admitted by you")
    await shot(owner, "dashboard-after-admit")


async def test_deny_shows_message_and_knock_again(
    new_page: NewPage, server: Server, room_name: str
):
    await call(server.room, room_name)
    owner = await open_dashboard(
        new_page, server, room_name, await call(server.owner_token, room_name)
    )
    guest = await open_guest(new_page, server, room_name)
    await knock(guest, "Dee Nied")
    await owner.get_by_role("button", name="Deny Dee Nied").click()

    await expect(guest.locator("html")).to_have_attribute("data-outcome", "ENTRY_DENIED")
    await expect(guest.get_by_role("heading", name="The host didn't let you in")).to_be_focused()
    await shot(guest, "guest-denied")
    await expect(row(owner, "Dee Nied")).to_have_count(0)
    await expect(owner.locator("#activity-list")).to_contain_text("Dee Nied denied by you")

    # A way to try again: back to the form, name kept.
    await guest.get_by_role("button", name="Knock again").click()
    await expect(guest.locator("html")).to_have_attribute("data-state", "form")
    await expect(guest.get_by_label("Your name")).to_have_value("Dee Nied")


async def test_cancel_withdraws_the_knock(new_page: NewPage, server: Server, room_name: str):
    await call(server.room, room_name)
    owner = await open_dashboard(
        new_page, server, room_name, await call(server.owner_token, room_name)
    )
    guest = await open_guest(new_page, server, room_name)
    await knock(guest, "Cass Cancel")
    await expect(row(owner, "Cass Cancel")).to_be_visible()

    await guest.get_by_role("button", name="Cancel").click()
    await expect(guest.get_by_role("heading", name="You stopped waiting")).to_be_visible()
    await shot(guest, "guest-canceled")
    # The moderator's row disappears (entry-canceled), and the REST view agrees.
    await expect(row(owner, "Cass Cancel")).to_have_count(0)
    canceled = await call(server.api, "GET", f"/rooms/{room_name}/entry-requests?status=canceled")
    assert [r["cancel_reason"] for r in canceled["data"]] == ["aborted"]


async def test_countdown_reaches_timeout(new_page: NewPage, server: Server, room_name: str):
    await call(server.room, room_name, knock_ttl=10)
    owner = await open_dashboard(
        new_page, server, room_name, await call(server.owner_token, room_name)
    )
    guest = await open_guest(new_page, server, room_name)
    await knock(guest, "Tim Out")
    await expect(guest.locator("#time-left")).to_have_text(re.compile(r"^0:(10|0\d)$"))
    await expect(row(owner, "Tim Out")).to_be_visible()
    # Nobody answers: the countdown runs down to its last second (the server's timeout may land
    # before the page paints 0:00) and the server times the knock out.
    await expect(guest.locator("#time-left")).to_have_text(re.compile(r"^0:0[01]$"), timeout=15_000)
    await expect(guest.locator("html")).to_have_attribute(
        "data-outcome", "ENTRY_TIMEOUT", timeout=10_000
    )
    await expect(guest.get_by_role("heading", name="Nobody answered in time")).to_be_visible()
    await expect(guest.get_by_role("button", name="Knock again")).to_be_visible()
    await shot(guest, "guest-timed-out")
    await expect(row(owner, "Tim Out")).to_have_count(0)


async def test_late_moderator_sees_every_waiting_guest(
    new_page: NewPage, server: Server, room_name: str
):
    await call(server.room, room_name)
    names = ["Ann Early", "Bob Early", "Cy Early"]
    guests = []
    for name in names:
        g = await open_guest(new_page, server, room_name)
        await knock(g, name)
        guests.append(g)
    await expect(guests[2].locator("#waiting-status")).to_contain_text("number 3 in line")

    owner = await open_dashboard(
        new_page, server, room_name, await call(server.owner_token, room_name)
    )
    for name in names:
        await expect(row(owner, name)).to_be_visible()
    await expect(owner.locator("#waiting-count")).to_have_text("3")
    await expect(owner).to_have_title(re.compile(r"^\(3\) waiting"))

    # Admit all: everyone gets in; the queue empties.
    await owner.get_by_role("button", name="Admit all").click()
    for g in guests:
        await expect(g.locator("html")).to_have_attribute("data-state", "room")
    await expect(owner.locator("#waiting-list li")).to_have_count(0)
    await expect(owner.locator("#participant-count")).to_have_text("4")


async def test_knock_alert_is_throttled(new_page: NewPage, server: Server, room_name: str):
    await call(server.room, room_name)
    owner = await open_dashboard(
        new_page, server, room_name, await call(server.owner_token, room_name)
    )
    await owner.get_by_label("Sound when someone knocks").check()  # a gesture unlocks audio
    for name in ("Knock One", "Knock Two"):
        g = await open_guest(new_page, server, room_name)
        await knock(g, name)
    await expect(owner.locator("html")).to_have_attribute("data-knocks", "2")
    await expect(owner).to_have_title(re.compile(r"^\(2\) waiting"))
    # Two knocks within the throttle window: at most one beep.
    beeps = await owner.evaluate("Number(document.documentElement.dataset.beeps || 0)")
    assert beeps <= 1


async def test_dashboard_without_javascript_admits_by_form(
    new_page: NewPage, server: Server, room_name: str
):
    await call(server.room, room_name)
    token = await call(server.owner_token, room_name)
    owner = await open_dashboard(new_page, server, room_name, token, java_script_enabled=False)
    assert "t=" not in owner.url
    guest = await open_guest(new_page, server, room_name)
    await knock(guest, "Nora Script", note="no JS on the other side")

    await owner.reload()
    nora = row(owner, "Nora Script")
    await expect(nora).to_be_visible()
    await expect(nora.locator(".meta")).to_contain_text("no JS on the other side")
    await expect(owner).to_have_title(re.compile(r"^\(1\) waiting"))
    await shot(owner, "dashboard-no-js")

    await owner.get_by_role("button", name="Admit Nora Script").click()  # a plain POST
    await expect(owner.locator(".messages")).to_contain_text("Nora Script: admitted.")
    await expect(owner.locator("#participant-list")).to_contain_text("Nora Script")
    await expect(guest.locator("html")).to_have_attribute("data-state", "room")

    # Room controls work as forms too; the guest sees the banner live.
    await owner.get_by_role("button", name="Pause the room").click()
    await expect(owner.locator(".messages")).to_contain_text("The room is paused.")
    await expect(owner.get_by_role("button", name="Resume the room")).to_be_visible()
    await expect(guest.locator("#room-banners")).to_contain_text("paused the room")

    # The form's decision is recorded as the token's moderator.
    decided = await call(server.api, "GET", f"/rooms/{room_name}/entry-requests?status=admitted")
    assert [r["resolved_by"] for r in decided["data"]] == ["owner-1"]


async def test_hostile_name_is_shown_as_text(new_page: NewPage, server: Server, room_name: str):
    await call(server.room, room_name)
    owner = await open_dashboard(
        new_page, server, room_name, await call(server.owner_token, room_name)
    )
    evil = "<img src=x onerror=alert(1)>"
    guest = await open_guest(new_page, server, room_name)
    await knock(guest, evil, note="<script>alert(2)</script>")

    evil_row = row(owner, evil)
    await expect(evil_row.locator(".name")).to_have_text(evil)
    await expect(evil_row.locator(".meta")).to_contain_text("<script>alert(2)</script>")
    assert await owner.locator("#waiting-list img").count() == 0
    # The server-rendered page (after a reload) escapes it too.
    await owner.reload()
    await expect(owner.locator("html")).to_have_attribute("data-live", "on")
    await expect(row(owner, evil).locator(".name")).to_have_text(evil)
    assert await owner.locator('main img, main script:not([type="application/json"])').count() == 0
    await shot(owner, "dashboard-hostile-name")

    await owner.get_by_role("button", name=f"Admit {evil}").click()
    await expect(guest.locator("#participant-list")).to_contain_text(f"{evil} (you)")
    assert await guest.locator("main img").count() == 0
    assert guest.watch.dialogs == [] and owner.watch.dialogs == []


async def test_guest_token_is_removed_from_the_address_bar(
    new_page: NewPage, server: Server, room_name: str
):
    await call(server.room, room_name)
    ask = await call(
        server.token, room_name, user_name="Tess Token", join_policy={"mode": "ask", "ttl": 120}
    )
    owner = await open_dashboard(
        new_page, server, room_name, await call(server.owner_token, room_name)
    )
    guest = await open_guest(new_page, server, room_name, query=f"?t={ask}&lang=en")
    assert "t=" not in guest.url and guest.url.endswith(f"/r/{room_name}/?lang=en")
    assert ask not in await guest.evaluate("location.href + JSON.stringify(history.state)")
    # The name comes from the token; knocking uses it (time left from the token's ttl).
    await expect(guest.locator("#token-name")).to_have_text("You are joining as Tess Token.")
    await guest.get_by_role("button", name="Knock to enter").click()
    await expect(guest.locator("#time-left")).to_have_text(re.compile(r"^(2:00|1:5\d)$"))
    await expect(row(owner, "Tess Token")).to_be_visible()

    # A personal direct token (in the #fragment this time) goes straight in.
    direct = await call(server.token, room_name, user_name="Dana Direct", user_id="dana")
    page = await open_guest(new_page, server, room_name, query=f"#t={direct}")
    await expect(page.locator("html")).to_have_attribute("data-state", "room")
    assert direct not in page.url
    await expect(page.locator("#participant-list")).to_contain_text("Dana Direct (you)")


async def test_clear_messages_for_no_access_bad_link_and_rate_limit(
    new_page: NewPage, server: Server, room_name: str
):
    closed = await call(server.room, room_name, enable_knocking=False)
    page = await open_guest(new_page, server, closed, viewport=PHONE)
    await expect(page.get_by_role("heading", name="This room is private")).to_be_visible()
    await expect(page.get_by_role("button", name="Try again")).to_be_visible()
    await shot(page, "guest-no-access-phone")

    revoked = await call(server.token, closed, user_name="Rex")
    claims = await call(server.api, "POST", "/meeting-tokens/decode", {"token": revoked})
    await call(server.api, "POST", "/meeting-tokens/revoke", {"jti": claims["jti"]})
    page = await open_guest(new_page, server, closed, query=f"?t={revoked}")
    await expect(
        page.get_by_role("heading", name="This invitation link was withdrawn")
    ).to_be_visible()
    assert revoked not in page.url

    # Token-less guests: 3 knocks per browser per 5 minutes, then a clear message.
    knocky = f"{room_name}-k"
    await call(server.room, knocky)
    page = await open_guest(new_page, server, knocky, viewport=PHONE)
    for _ in range(3):
        await knock(page, "Rita Retry")
        await page.get_by_role("button", name="Cancel").click()
        await page.get_by_role("button", name="Knock again").click()
    await page.get_by_role("button", name="Knock to enter").click()
    await expect(page.get_by_role("heading", name="Too many knocks")).to_be_visible()
    await expect(page.get_by_role("button", name="Try again")).to_be_visible()
    await shot(page, "guest-rate-limited-phone")


async def test_room_controls_reach_the_guest_live(
    new_page: NewPage, server: Server, room_name: str
):
    await call(server.room, room_name)
    owner = await open_dashboard(
        new_page, server, room_name, await call(server.owner_token, room_name)
    )
    guest = await open_guest(new_page, server, room_name, viewport=PHONE)
    await knock(guest, "Mo Bile")
    await owner.get_by_role("button", name="Admit Mo Bile").click()
    await expect(guest.locator("html")).to_have_attribute("data-state", "room")

    await owner.get_by_role("button", name="Pause the room").click()
    await expect(owner.locator("#state-paused")).to_have_text("paused")
    await expect(guest.locator("#room-banners")).to_contain_text("paused the room")
    await owner.get_by_role("button", name="Mute everyone").click()
    await owner.get_by_role("button", name="Turn cameras off").click()
    await expect(guest.locator("#room-banners")).to_contain_text("muted everyone's microphone")
    await expect(guest.locator("#room-banners")).to_contain_text("camera off")
    await shot(guest, "guest-in-room-paused-phone")
    await shot(owner, "dashboard-controls")
    # Phone width: nothing scrolls sideways.
    assert await guest.evaluate("document.documentElement.scrollWidth <= window.innerWidth")

    await owner.get_by_role("button", name="Resume the room").click()
    await owner.get_by_role("button", name="Allow microphones").click()
    await expect(guest.locator("#room-banners")).not_to_contain_text("paused")
    await expect(guest.locator("#room-banners")).to_contain_text("camera off")
    await expect(guest.locator("#room-banners")).not_to_contain_text("microphone")


async def test_staff_user_moderates_from_the_dashboard(
    new_page: NewPage, server: Server, room_name: str
):
    await call(server.room, room_name, enable_knocking=True)
    username = f"staff{room_name[-6:]}"
    env = {**server.env, "DJANGO_SUPERUSER_PASSWORD": "correct horse battery staple"}
    await call(
        manage,
        "createsuperuser",
        "--noinput",
        "--username",
        username,
        "--email",
        "s@example.com",
        env=env,
    )
    staff = await new_page()
    await staff.goto(f"{server.base}/r/{room_name}/dashboard/")
    await expect(
        staff.get_by_role("heading", name=re.compile("for the room's moderators"))
    ).to_be_visible()
    await staff.get_by_role("link", name="Sign in as staff").click()
    await staff.get_by_label("Username").fill(username)
    await staff.get_by_label("Password").fill("correct horse battery staple")
    await staff.get_by_role("button", name="Log in").click()
    await expect(staff.locator("html")).to_have_attribute("data-live", "on")

    guest = await open_guest(new_page, server, room_name)
    await knock(guest, "Stella Staffed")
    await staff.get_by_role("button", name="Deny Stella Staffed").click()
    await expect(guest.locator("html")).to_have_attribute("data-outcome", "ENTRY_DENIED")
    await expect(staff.locator("#activity-list")).to_contain_text("Stella Staffed denied by you")
    denied = await call(server.api, "GET", f"/rooms/{room_name}/entry-requests?status=denied")
    assert [r["resolved_by"] for r in denied["data"]] == [f"staff:{username}"]

    # The admin (under the same CSP: the page watcher fails on any refusal) links the pages.
    await staff.goto(f"{server.base}/admin/lobby/room/?q={room_name}")
    await shot(staff, "admin-rooms")
    await staff.get_by_role("link", name="dashboard").click()
    await expect(staff.locator("html")).to_have_attribute("data-live", "on")
    await staff.goto(f"{server.base}/admin/lobby/entryrequest/?q={room_name}")
    await expect(staff.locator("#result_list")).to_contain_text("Stella Staffed")
    await shot(staff, "admin-entry-requests")


async def test_pages_send_a_content_security_policy(
    new_page: NewPage, server: Server, room_name: str
):
    await call(server.room, room_name)
    page = await new_page()
    for path in (f"/r/{room_name}/", f"/r/{room_name}/dashboard/", "/r/no-such-room/"):
        resp = await page.goto(server.base + path)
        csp = resp.headers.get("content-security-policy", "")
        assert "script-src 'self'" in csp and "frame-ancestors 'none'" in csp, path
        assert "unsafe-inline" not in csp
    await expect(page.get_by_role("heading", name=re.compile("There is no room"))).to_be_visible()
    await shot(page, "guest-no-such-room")


async def test_reload_keeps_the_place_in_line(new_page: NewPage, server: Server, room_name: str):
    await call(server.room, room_name)
    owner = await open_dashboard(
        new_page, server, room_name, await call(server.owner_token, room_name)
    )
    first = await open_guest(new_page, server, room_name)
    await knock(first, "Ray First")
    guest = await open_guest(new_page, server, room_name)
    await knock(guest, "Ray Load")
    await expect(guest.locator("#waiting-status")).to_contain_text("number 2 in line")
    before = await call(server.api, "GET", f"/rooms/{room_name}/entry-requests")

    # A reload is not a Cancel: the page resumes the same knock (resume key in sessionStorage).
    await guest.reload()
    await expect(guest.locator("html")).to_have_attribute("data-state", "waiting")
    await expect(guest.locator("#waiting-status")).to_contain_text("number 2 in line")
    after = await call(server.api, "GET", f"/rooms/{room_name}/entry-requests")
    assert [r["id"] for r in after["data"]] == [r["id"] for r in before["data"]]
    await expect(owner.locator("#waiting-list li")).to_have_count(2)

    await owner.get_by_role("button", name="Admit Ray Load").click()
    await expect(guest.locator("html")).to_have_attribute("data-state", "room")
    await expect(first.locator("#waiting-status")).to_contain_text("next in line")


async def test_breakout_panel_invites_and_brings_everyone_back(
    new_page: NewPage, server: Server, room_name: str
):
    await call(server.room, room_name)
    owner = await open_dashboard(
        new_page, server, room_name, await call(server.owner_token, room_name)
    )
    guests = []
    for name in ("Una Break", "Vic Break"):
        g = await open_guest(new_page, server, room_name)
        await knock(g, name)
        guests.append(g)
    await owner.get_by_role("button", name="Admit all").click()
    for g in guests:
        await expect(g.locator("html")).to_have_attribute("data-state", "room")

    await owner.get_by_label("Rooms", exact=True).fill("1")
    await owner.get_by_label("People per room").fill("2")
    await owner.get_by_role("button", name="Create and assign everyone").click()
    await expect(owner.locator("#action-status")).to_contain_text("2 participants invited")
    await expect(owner.locator("#breakout-list li")).to_have_count(1)

    for g in guests:
        await expect(g.locator("#breakout-invite")).to_contain_text("invited to breakout room 1")
        await g.get_by_role("button", name="Join the breakout room").click()
        await expect(g.locator("#room-banners")).to_contain_text("You are in breakout room 1")
    await expect(owner.locator("#breakout-list")).to_contain_text("2/2")
    await expect(owner.locator("#participant-list")).to_contain_text("in a breakout")
    await shot(owner, "dashboard-breakouts")
    await shot(guests[0], "guest-in-breakout")

    await owner.get_by_role("button", name="Bring everyone back").click()
    for g in guests:
        await expect(g.locator("#room-banners")).not_to_contain_text("breakout room")
    await owner.get_by_role("button", name="Close all breakout rooms").click()
    await expect(owner.locator("#breakout-list li")).to_have_count(0)
    await expect(owner.locator("#breakout-count")).to_have_text("0")


async def test_network_blip_keeps_the_place_in_line(
    new_page: NewPage, server: Server, room_name: str
):
    await call(server.room, room_name)
    blip = await Blip(server.base).start()
    try:
        guest = await new_page()
        guest.watch.expected.append("WebSocket connection to")
        await guest.goto(f"{blip.base}/r/{room_name}/")
        await expect(guest.locator("html")).to_have_attribute("data-ready", "1")
        await knock(guest, "Nell Network")
        await expect(guest.locator("#waiting-status")).to_contain_text("next in line")
        before = await call(server.api, "GET", f"/rooms/{room_name}/entry-requests")

        blip.cut(stay_down=True)
        await expect(guest.locator("#waiting-status")).to_contain_text(
            "Connection lost — reconnecting. Your place in line is kept."
        )
        await shot(guest, "guest-reconnecting")
        blip.restore()
        await expect(guest.locator("#waiting-status")).to_contain_text(
            "next in line", timeout=15_000
        )
        after = await call(server.api, "GET", f"/rooms/{room_name}/entry-requests")
        assert [r["id"] for r in after["data"]] == [r["id"] for r in before["data"]]
        assert after["data"][0]["connected"] is True

        owner = await open_dashboard(
            new_page, server, room_name, await call(server.owner_token, room_name)
        )
        await owner.get_by_role("button", name="Admit Nell Network").click()
        await expect(guest.locator("html")).to_have_attribute("data-state", "room")
    finally:
        await blip.close()


async def test_row_decided_by_another_moderator_disappears(
    new_page: NewPage, server: Server, room_name: str
):
    await call(server.room, room_name)
    first = await open_dashboard(
        new_page, server, room_name, await call(server.owner_token, room_name)
    )
    other = await call(
        server.token, room_name, user_name="Dr Two", user_id="mod-2", grant={"canModerate": True}
    )
    second = await open_dashboard(new_page, server, room_name, other)
    guest = await open_guest(new_page, server, room_name)
    await knock(guest, "Quinn Both")
    await expect(row(first, "Quinn Both")).to_be_visible()
    await expect(row(second, "Quinn Both")).to_be_visible()

    await second.get_by_role("button", name="Admit Quinn Both").click()
    await expect(row(first, "Quinn Both")).to_have_count(0)
    await expect(first.locator("#activity-list")).to_contain_text("Quinn Both admitted by Dr Two")
    await expect(second.locator("#activity-list")).to_contain_text("Quinn Both admitted by you")
    await expect(first).not_to_have_title(re.compile(r"waiting ·"))


@pytest.fixture
def short_grace_server(tmp_path_factory: pytest.TempPathFactory):
    from tests.browser.conftest import make_server

    s = make_server(tmp_path_factory.mktemp("grace-db"), "grace", ANTEROOM_DISCONNECT_GRACE="2")
    yield s
    s.stop()


async def test_guest_away_longer_than_the_grace_knocks_again(
    short_grace_server: Server, new_page: NewPage, room_name: str
):
    # short_grace_server comes first so that it is torn down after the pages are closed.
    server = short_grace_server
    await call(server.room, room_name)
    blip = await Blip(server.base).start()
    try:
        owner = await open_dashboard(
            new_page, server, room_name, await call(server.owner_token, room_name)
        )
        guest = await new_page()
        guest.watch.expected.append("WebSocket connection to")
        await guest.goto(f"{blip.base}/r/{room_name}/")
        await expect(guest.locator("html")).to_have_attribute("data-ready", "1")
        await knock(guest, "Lena Lapsed")
        await owner.get_by_role("button", name="Admit Lena Lapsed").click()
        await expect(guest.locator("html")).to_have_attribute("data-state", "room")
        # The owner hears of Lena's arrival after Lena does: wait for it, or the check below
        # that she left would pass before she was ever listed, and the blip would end inside
        # the grace (the guest then simply resumes, and never knocks again).
        await expect(owner.locator("#participant-list")).to_contain_text("Lena Lapsed")

        blip.cut(stay_down=True)
        cut_at = time.monotonic()
        # The server lets the presence lapse after the 2 s grace (not before): the owner sees
        # Lena leave.
        await expect(owner.locator("#participant-list")).not_to_contain_text(
            "Lena Lapsed", timeout=30_000
        )
        assert time.monotonic() - cut_at >= 2.0
        blip.restore()
        await expect(guest.locator("html")).to_have_attribute(
            "data-state", "waiting", timeout=30_000
        )
        await expect(guest.locator("#waiting-status")).to_contain_text("knocked again")
        await owner.get_by_role("button", name="Admit Lena Lapsed").click()
        await expect(guest.locator("html")).to_have_attribute("data-state", "room")
        await expect(guest.locator("#participant-list")).to_contain_text("Lena Lapsed")
    finally:
        await blip.close()
