"""The breakout panel of the dashboard and the breakout view of the guest page (issue 4), in
Chromium against a real Daphne process: create-and-invite with force_join, timers and extend,
broadcast, moving a participant, help requests, destroy-all unmuting the parent; and the same
actions as plain form POSTs with JavaScript off."""

from __future__ import annotations

import asyncio
import re
from typing import Any

import pytest
from playwright.async_api import expect

from tests.browser.conftest import NewPage, Server, call, shot
from tests.browser.test_pages import PHONE, knock, open_dashboard, open_guest
from tests.support.servers import manage

pytestmark = [pytest.mark.browser, pytest.mark.asyncio(loop_scope="session")]

HOSTILE = "<img src=x onerror=alert(1)>"
WIDE = {"width": 1100, "height": 800}
TEN_MINUTES = re.compile(r"^(10:00|9:[0-5]\d)$")


async def admitted(new_page: NewPage, server: Server, room: str, owner: Any, *names: str):
    """Guests who knock and are let in with the dashboard's Admit all, by name."""
    guests = {}
    for name in names:
        guest = await open_guest(new_page, server, room)
        await knock(guest, name)
        guests[name] = guest
    await expect(owner.locator("#waiting-list li")).to_have_count(len(names))
    await owner.get_by_role("button", name="Admit all").click()
    for guest in guests.values():
        await expect(guest.locator("html")).to_have_attribute("data-state", "room")
    return guests


async def create_rooms(owner: Any, *, rooms: int, size: int, minutes: int, force: bool) -> None:
    await owner.get_by_label("Rooms", exact=True).fill(str(rooms))
    await owner.get_by_label("People per room").fill(str(size))
    await owner.get_by_label("Timer").fill(str(minutes))
    if force:
        await owner.get_by_label("Move people in without asking").check()
    await owner.get_by_role("button", name="Create and assign everyone").click()


async def open_section(owner: Any, title: str) -> None:
    """Open one of the breakout panel's disclosures (<details>) by its visible title, as a
    host would, unless it is open already."""
    summary = owner.locator("#breakouts summary", has_text=title)
    if await summary.locator("xpath=..").get_attribute("open") is None:
        await summary.click()
    await expect(summary.locator("xpath=..")).to_have_attribute("open", "")


async def breakout_of(guest: Any) -> int:
    """The breakout room number the guest page shows (it sets ``data-breakout``)."""
    await expect(guest.locator("html")).to_have_attribute("data-breakout", re.compile(r"^\d+$"))
    number = await guest.locator("html").get_attribute("data-breakout")
    await expect(guest.locator("#room-banners")).to_contain_text(
        f"You are in breakout room {number}."
    )
    return int(number)


async def test_breakout_session_from_the_dashboard(
    new_page: NewPage, server: Server, room_name: str
):
    await call(server.room, room_name)
    owner = await open_dashboard(
        new_page, server, room_name, await call(server.owner_token, room_name)
    )
    names = ["Ada Four", HOSTILE, "Cy Four", "Di Four"]
    guests = await admitted(new_page, server, room_name, owner, *names)

    await owner.get_by_role("button", name="Mute everyone").click()
    for guest in guests.values():
        await expect(guest.locator("#room-banners")).to_contain_text("muted everyone's microphone")

    # Two rooms of up to 3, everyone moved in at once: 2 per room, each with a 10-minute timer.
    await create_rooms(owner, rooms=2, size=3, minutes=10, force=True)
    await expect(owner.locator("#action-status")).to_contain_text(
        "4 participants moved into 2 rooms"
    )
    where = {name: await breakout_of(guest) for name, guest in guests.items()}
    assert sorted(where.values()) == [1, 1, 2, 2]
    for guest in guests.values():
        await expect(guest.locator("#breakout-time-left")).to_have_text(TEN_MINUTES)
        await expect(guest.locator("#breakout-invite")).to_be_hidden()
    rows = owner.locator("#breakout-list li")
    await expect(rows).to_have_count(2)
    for i in range(2):
        await expect(rows.nth(i).locator(".members")).to_contain_text("2/3")
        await expect(rows.nth(i).locator(".left")).to_have_text(TEN_MINUTES)
    await shot(owner, "dashboard-breakouts-live")
    await shot(guests["Ada Four"], "guest-breakout-timer")

    # A broadcast reaches every breakout room.
    await open_section(owner, "Message every breakout room")
    await owner.get_by_label("Message to every breakout room").fill("Five minutes left")
    await owner.get_by_role("button", name="Send to all breakout rooms").click()
    await expect(owner.locator("#action-status")).to_contain_text("Message sent to 2 breakout")
    for guest in guests.values():
        await expect(guest.locator("#breakout-message")).to_have_text(
            re.compile(
                r"^Message from the host to every breakout room \([^)]+\): Five minutes left$"
            )
        )
    await expect(owner.get_by_label("Message to every breakout room")).to_have_value("")

    # +5 minutes for Ada's room: her countdown and the dashboard's follow.
    mover = "Ada Four"
    src = where[mover]
    dst = 3 - src
    await owner.get_by_role("button", name=f"+5 min for room {src}").click()
    extended = re.compile(r"^1[45]:[0-5]\d$")
    await expect(guests[mover].locator("#breakout-time-left")).to_have_text(extended)
    await expect(guests[mover].locator("#breakout-note")).to_contain_text("more time")
    await expect(rows.nth(src - 1).locator(".left")).to_have_text(extended)
    await expect(rows.nth(dst - 1).locator(".left")).to_have_text(TEN_MINUTES)

    # Move Ada to the other breakout room: her page shows the new room and its timer.
    await open_section(owner, "Invite or move people")
    await owner.get_by_label(f"Where to move {mover}").select_option(label=f"Room {dst}")
    await owner.get_by_role("button", name=f"Move {mover}").click()
    ada = guests[mover]
    await expect(ada.locator("html")).to_have_attribute("data-breakout", str(dst))
    await expect(ada.locator("#room-banners")).to_contain_text(f"You are in breakout room {dst}.")
    await expect(ada.locator("#breakout-note")).to_have_text(
        f"The host moved you to breakout room {dst}."
    )
    await expect(ada.locator("#breakout-time-left")).to_have_text(TEN_MINUTES)
    await expect(rows.nth(dst - 1).locator(".members")).to_contain_text("3/3")
    await expect(rows.nth(src - 1).locator(".members")).to_contain_text("1/3")
    mover_row = owner.locator("#move-list li", has_text=mover)
    await expect(mover_row.locator(".where")).to_have_text(f"Room {dst}")
    await shot(ada, "guest-breakout-moved")

    # A guest asks for help: the dashboard lists it (the name as text) until it is answered;
    # asking again meanwhile is refused, and the guest is told so.
    asker = guests[HOSTILE]
    await asker.get_by_role("button", name="Ask the host for help").click()
    await expect(asker.locator("#breakout-note")).to_have_text(
        f"The host has been asked to join you in breakout room {where[HOSTILE]}."
    )
    request = owner.locator("#help-list li")
    await expect(request).to_have_count(1)
    await expect(request).to_contain_text(f"{HOSTILE} asked for help in Room {where[HOSTILE]}")
    await expect(owner.locator("#help-count")).to_have_text("1")
    await asker.get_by_role("button", name="Ask the host for help").click()
    await expect(asker.locator("#breakout-note")).to_contain_text("already asked for help")
    await expect(request).to_have_count(1)
    assert await owner.locator("#breakouts img").count() == 0
    await shot(owner, "dashboard-help-request")
    await owner.set_viewport_size(PHONE)
    await shot(owner, "dashboard-breakouts-phone")
    assert await owner.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    await owner.set_viewport_size(WIDE)
    await owner.get_by_role("button", name=f"Answered {HOSTILE}'s request").click()
    await expect(owner.locator("#help-requests")).to_be_hidden()
    await owner.reload()  # stored on the server: answered, it stays gone
    await expect(owner.locator("#help-requests")).to_be_hidden()

    # Destroy all: everyone back in the main room, told why; the parent unmuted.
    await owner.get_by_role("button", name="Close all breakout rooms").click()
    for guest in guests.values():
        await expect(guest.locator("html")).to_have_attribute("data-breakout", "")
        await expect(guest.locator("#breakout-note")).to_have_text(
            re.compile(
                r"^The host closed the breakout rooms\. You're back in the main room from"
                r" breakout room [12]\.$"
            )
        )
        await expect(guest.locator("#room-banners")).not_to_contain_text("breakout room")
        await expect(guest.locator("#room-banners")).not_to_contain_text("microphone")
        await expect(guest.locator("#breakout-timer")).to_be_hidden()
        await expect(guest.locator("#breakout-actions")).to_be_hidden()
    await expect(owner.locator("#state-audio")).to_have_text("allowed")
    await expect(owner.get_by_role("button", name="Mute everyone")).to_be_visible()
    await expect(rows).to_have_count(0)
    await expect(owner.locator("#breakout-count")).to_have_text("0")
    await expect(owner.locator("#participant-list")).not_to_contain_text("in a breakout")
    assert (await call(server.api, "GET", f"/rooms/{room_name}"))["audio_muted"] is False
    await shot(guests["Cy Four"], "guest-back-from-breakout")
    await shot(owner, "dashboard-breakouts-closed")


async def test_breakout_timer_warns_extends_and_returns_everyone(
    new_page: NewPage, server: Server, room_name: str
):
    await call(server.room, room_name)
    owner = await open_dashboard(
        new_page, server, room_name, await call(server.owner_token, room_name)
    )
    guests = await admitted(new_page, server, room_name, owner, "Tim Er")
    guest = guests["Tim Er"]

    # A one-minute timer is inside the last minute at once: the sweeper sends breakout-ending.
    await create_rooms(owner, rooms=1, size=2, minutes=1, force=True)
    assert await breakout_of(guest) == 1
    await expect(guest.locator("#breakout-warning")).to_contain_text("Less than a minute left")
    await expect(guest.locator("#breakout-time-left")).to_have_text(re.compile(r"^(1:00|0:\d\d)$"))
    await shot(guest, "guest-breakout-ending")

    await owner.get_by_role("button", name="Add 5 minutes to every timer").click()
    await expect(guest.locator("#breakout-time-left")).to_have_text(re.compile(r"^[56]:\d\d$"))
    await expect(guest.locator("#breakout-warning")).to_be_hidden()

    # The stored deadline passes (as if the six minutes went by): the sweeper returns everyone.
    code = (
        "from django.utils import timezone; from lobby.models import Room; "
        f"Room.objects.filter(parent__name={room_name!r}).update(ends_at=timezone.now())"
    )
    await call(manage, "shell", "-c", code, env=server.env)
    await expect(guest.locator("#breakout-note")).to_have_text(
        "Time's up: breakout room 1 has ended and you're back in the main room."
    )
    await expect(guest.locator("html")).to_have_attribute("data-breakout", "")
    await expect(guest.locator("#breakout-timer")).to_be_hidden()
    await expect(owner.locator("#breakout-list li")).to_contain_text("0/2")
    await expect(owner.locator("#breakout-list li")).to_contain_text("No timer")
    await expect(owner.locator("#breakout-extend-form")).to_be_hidden()


async def test_breakout_panel_works_without_javascript(
    new_page: NewPage, server: Server, room_name: str
):
    await call(server.room, room_name)
    token = await call(server.owner_token, room_name)
    owner = await open_dashboard(new_page, server, room_name, token, java_script_enabled=False)
    guest = await open_guest(new_page, server, room_name)
    await knock(guest, "Nico Script")
    await owner.reload()
    await owner.get_by_role("button", name="Admit Nico Script").click()
    await expect(guest.locator("html")).to_have_attribute("data-state", "room")

    await create_rooms(owner, rooms=1, size=2, minutes=10, force=True)
    await expect(owner.locator(".messages")).to_contain_text("1 participant moved into 1 room.")
    assert await breakout_of(guest) == 1
    room1 = owner.locator("#breakout-list li")
    await expect(room1.locator(".members")).to_have_text("1/2: Nico Script")
    await expect(room1.locator(".left")).to_have_text(TEN_MINUTES)

    await owner.get_by_role("button", name="+5 min for room 1").click()
    await expect(owner.locator(".messages")).to_contain_text("5 minutes added (room 1).")
    await expect(guest.locator("#breakout-time-left")).to_have_text(re.compile(r"^1[45]:\d\d$"))

    await open_section(owner, "Message every breakout room")
    await owner.get_by_label("Message to every breakout room").fill("Wrap up, please")
    await owner.get_by_role("button", name="Send to all breakout rooms").click()
    await expect(owner.locator(".messages")).to_contain_text("Message sent to 1 breakout room.")
    await expect(guest.locator("#breakout-message")).to_contain_text("to every breakout room")
    await expect(guest.locator("#breakout-message")).to_contain_text(": Wrap up, please")
    await shot(owner, "dashboard-breakouts-no-js")

    # A help request is on the page after a reload; without the page's live connection the
    # host cannot join a call, so only "Answered" is offered.
    await guest.get_by_role("button", name="Ask the host for help").click()
    await expect(guest.locator("#breakout-note")).to_contain_text("asked to join you")
    await owner.reload()
    await expect(owner.locator("#help-list li")).to_contain_text(
        "Nico Script asked for help in Room 1"
    )
    await expect(owner.get_by_role("button", name="Join Room 1 to help Nico Script")).to_be_hidden()
    await owner.get_by_role("button", name="Answered Nico Script's request").click()
    await expect(owner.locator(".messages")).to_contain_text(
        "Nico Script's help request (breakout room 1) is marked as answered."
    )
    await expect(owner.locator("#help-requests")).to_be_hidden()
    await expect(guest.locator("#breakout-note")).to_have_text(
        "The host answered your request for help in breakout room 1."
    )

    await open_section(owner, "Invite or move people")
    await owner.get_by_label("Where to move Nico Script").select_option(label="Main room")
    await owner.get_by_role("button", name="Move Nico Script").click()
    await expect(owner.locator(".messages")).to_contain_text("Nico Script is in the main room now.")
    await expect(guest.locator("#breakout-note")).to_have_text(
        "The host moved you from breakout room 1 back to the main room."
    )
    await expect(guest.locator("html")).to_have_attribute("data-breakout", "")

    # Invited again and declined: the reloaded page shows the answer on the room's card.
    await open_section(owner, "Invite or move people")
    await owner.get_by_label("Participant", exact=True).select_option(label="Nico Script")
    await owner.get_by_role("button", name="Invite to breakout room").click()
    await expect(owner.locator(".messages")).to_contain_text(
        "Nico Script invited to breakout room 1."
    )
    await expect(room1.locator(".inv-pending dd")).to_have_text("Nico Script")
    await guest.get_by_role("button", name="Not now").click()
    # The answer travels over the guest's socket; a host without JavaScript sees it by
    # reloading, so reload until it is there (under load the first reload can come first).
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 15
    while True:
        await owner.reload()
        if await room1.locator(".inv-declined").count() or loop.time() > deadline:
            break
        await asyncio.sleep(0.3)
    await expect(room1.locator(".inv-declined dd")).to_have_text("Nico Script")
    await expect(room1.locator(".inv-pending")).to_have_count(0)
    await shot(owner, "dashboard-breakouts-no-js-declined")

    await owner.get_by_role("button", name="Close all breakout rooms").click()
    await expect(owner.locator(".messages")).to_contain_text(
        "Breakout rooms closed; 0 returned to the main room."
    )
    await expect(owner.locator("#breakout-list li")).to_have_count(0)
    await expect(owner.locator("#breakout-end-form")).to_be_hidden()


def card(owner: Any, number: int) -> Any:
    """A breakout room's card on the dashboard, found by its visible title."""
    return owner.locator(
        "#breakout-list li.breakout-card",
        has=owner.get_by_role("heading", name=f"Room {number}", exact=True),
    )


async def test_the_host_sees_answers_to_invitations_and_joins_a_breakout_to_help(
    new_page: NewPage, server: Server, room_name: str
):
    await call(server.room, room_name)
    owner = await open_dashboard(
        new_page, server, room_name, await call(server.owner_token, room_name)
    )
    guests = await admitted(new_page, server, room_name, owner, "Ann Vite", "Bo Vite", "Cy Vite")
    ann, bo, cy = guests["Ann Vite"], guests["Bo Vite"], guests["Cy Vite"]

    # Two empty rooms, then invitations one by one from the "Invite or move people" section.
    await owner.get_by_label("Rooms", exact=True).fill("2")
    await owner.get_by_label("People per room").fill("3")
    await owner.get_by_role("button", name="Create empty rooms").click()
    await expect(owner.locator("#action-status")).to_contain_text("2 breakout rooms created.")
    await expect(owner.locator("#breakout-list li.breakout-card")).to_have_count(2)
    await open_section(owner, "Invite or move people")
    for name, number in (("Ann Vite", 1), ("Bo Vite", 1), ("Cy Vite", 2)):
        await owner.get_by_label("Participant", exact=True).select_option(label=name)
        await owner.get_by_label("Breakout room", exact=True).select_option(label=f"Room {number}")
        await owner.get_by_role("button", name="Invite to breakout room").click()
        await expect(owner.locator("#action-status")).to_have_text(
            f"{name} invited to breakout room {number}."
        )
    pending = card(owner, 1).locator(".inv-pending")
    await expect(pending.locator("dt")).to_have_text("No answer yet")
    await expect(pending.locator("dd")).to_have_text("Ann Vite, Bo Vite")
    await expect(card(owner, 2).locator(".inv-pending")).to_contain_text("Cy Vite")

    # Ann accepts, Bo declines: the host sees both answers live, Cy's is still open.
    await ann.get_by_role("button", name="Join the breakout room").click()
    await bo.get_by_role("button", name="Not now").click()
    room1 = card(owner, 1)
    await expect(room1.locator(".inv-accepted dd")).to_have_text("Ann Vite")
    await expect(room1.locator(".inv-declined dd")).to_have_text("Bo Vite")
    await expect(room1.locator(".inv-pending")).to_have_count(0)
    await expect(room1.locator(".members")).to_have_text("1/3: Ann Vite")
    await expect(card(owner, 2).locator(".inv-pending dd")).to_have_text("Cy Vite")
    await shot(owner, "dashboard-breakout-invitations")
    await expect(cy.locator("#breakout-invite")).to_contain_text("invited to breakout room 2")

    # Ann sees who is in her breakout room (only hers); Bo, in the main room, sees no such list.
    await expect(ann.locator("#breakout-people")).to_contain_text("With you in breakout room 1")
    await expect(ann.locator("#breakout-member-list li")).to_have_count(1)
    await expect(ann.locator("#breakout-member-list li")).to_contain_text("Ann Vite (you)")
    await expect(bo.locator("#breakout-people")).to_be_hidden()

    # Ann asks for help: the host is offered "Join Room 1", and a reload keeps the request.
    await ann.get_by_role("button", name="Ask the host for help").click()
    join = owner.get_by_role("button", name="Join Room 1 to help Ann Vite")
    await expect(join).to_be_visible()
    await owner.reload()
    await expect(owner.locator("html")).to_have_attribute("data-live", "on")
    await expect(owner.locator("#help-list li")).to_have_count(1)
    await expect(owner.locator("#help-list li")).to_contain_text(
        "Ann Vite asked for help in Room 1"
    )
    await expect(join).to_be_visible()
    await shot(owner, "dashboard-help-join-offered")

    await join.click()
    await expect(owner.locator("#action-status")).to_have_text(
        "You joined breakout room 1 to help Ann Vite."
    )
    await expect(owner.locator("#help-requests")).to_be_hidden()
    await expect(owner.locator("#breakout-self")).to_contain_text(
        "You are in breakout room 1 with Ann Vite."
    )
    await expect(room1.locator(".members")).to_have_text("2/3: Ann Vite, Dr Owner (host)")
    # Ann hears that her request was answered and sees the host arrive in her room.
    await expect(ann.locator("#breakout-note")).to_have_text(
        "The host answered your request for help in breakout room 1."
    )
    await expect(ann.locator("#breakout-member-list .name")).to_have_text(["Ann Vite", "Dr Owner"])
    await expect(ann.locator("#breakout-member-list li").nth(1)).to_contain_text("host")
    await shot(ann, "guest-breakout-members")
    await ann.set_viewport_size(PHONE)
    await expect(ann.get_by_role("heading", name="With you in breakout room 1")).to_be_visible()
    assert await ann.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    await shot(ann, "guest-breakout-members-phone")
    await owner.set_viewport_size(PHONE)
    assert await owner.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    await shot(owner, "dashboard-host-in-breakout-phone")
    await owner.set_viewport_size(WIDE)
    await shot(owner, "dashboard-host-in-breakout")

    await owner.get_by_role("button", name="Back to the main room").click()
    await expect(owner.locator("#action-status")).to_have_text("You're back in the main room.")
    await expect(owner.locator("#breakout-self")).to_be_hidden()
    await expect(room1.locator(".members")).to_have_text("1/3: Ann Vite")
    await expect(ann.locator("#breakout-member-list li")).to_have_count(1)
    await expect(ann.locator("#breakout-member-list li")).to_contain_text("Ann Vite (you)")
    await owner.reload()  # answered on the server: it stays gone
    await expect(owner.locator("html")).to_have_attribute("data-live", "on")
    await expect(owner.locator("#help-requests")).to_be_hidden()
    await expect(card(owner, 1).locator(".inv-accepted dd")).to_have_text("Ann Vite")
    # Ann's note ("answered") was the one current note; it goes by itself after 12 s.
    await expect(ann.locator("#breakout-note")).to_be_hidden(timeout=20_000)
