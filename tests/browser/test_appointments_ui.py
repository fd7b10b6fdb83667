"""Appointment windows in Chromium: a patient arrives early, reads when the room opens (and
nothing else about it), the dashboard shows the window and tags the early arrival, and once the
window opens the host admits them. Knocks far too early, or after the window, are told so."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from playwright.async_api import expect

from tests.browser.conftest import NewPage, Server, call, shot
from tests.browser.test_pages import knock, open_dashboard, open_guest, row

pytestmark = [pytest.mark.browser, pytest.mark.asyncio(loop_scope="session")]


def iso(**delta: float) -> str:
    """A time from now on the server's clock (the Daphne process runs on this machine's)."""
    value = datetime.now(UTC).replace(microsecond=0) + timedelta(**delta)
    return value.isoformat().replace("+00:00", "Z")


async def test_an_early_guest_waits_for_the_window_and_is_admitted_once_it_opens(
    new_page: NewPage, server: Server, room_name: str
):
    await call(server.room, room_name, opens_at=iso(minutes=20), closes_at=iso(minutes=50))
    token = await call(server.owner_token, room_name)
    owner = await open_dashboard(new_page, server, room_name, token)
    window = owner.get_by_role("status").filter(has_text="Appointment window")
    await expect(window).to_contain_text("Guests may knock from")
    await expect(window).to_contain_text("you may admit them earlier")

    guest = await open_guest(new_page, server, room_name)
    await expect(guest.get_by_text("You can knock now and wait for it.")).to_be_visible()
    await knock(guest, "Ada Early")
    await expect(guest.get_by_role("heading", name="Waiting for the room to open")).to_be_visible()
    status = guest.locator("#waiting-status")
    await expect(status).to_contain_text("The room opens at")
    await expect(status).to_contain_text("you are in line")
    await expect(status).to_contain_text("in about 20 minutes")
    # Honest, and nothing else about the room: no participants, no window end, no host names.
    page_text = await guest.locator("#step-waiting").inner_text()
    assert "closes" not in page_text and "Dr Owner" not in page_text
    await shot(guest, "guest-waiting-before-opening")

    early = row(owner, "Ada Early")
    await expect(early).to_be_visible()
    await expect(early.get_by_text("early", exact=True)).to_be_visible()
    await shot(owner, "dashboard-appointment-window")

    # The same window without JavaScript, from the server (in UTC).
    plain = await open_dashboard(new_page, server, room_name, token, java_script_enabled=False)
    await expect(plain.get_by_role("status").filter(has_text="Appointment window")).to_contain_text(
        "(UTC)"
    )
    await expect(row(plain, "Ada Early").get_by_text("early", exact=True)).to_be_visible()

    # The clinic brings the appointment forward: it opens in 3 seconds. The waiting guest hears
    # the new time, then, once it passes, waits for the host as any guest.
    await call(
        server.api, "PATCH", f"/rooms/{room_name}", {"properties": {"opens_at": iso(seconds=3)}}
    )
    await expect(status).to_contain_text("in less than a minute")
    await expect(
        guest.get_by_role("heading", name="Waiting for the host to let you in")
    ).to_be_visible(timeout=15_000)
    await expect(status).to_contain_text("You're next in line")
    await owner.get_by_role("button", name="Admit Ada Early").click()
    await expect(guest.locator("html")).to_have_attribute("data-state", "room")
    await expect(guest.get_by_role("heading", name="You're in")).to_be_visible()


async def test_knocks_too_early_or_after_the_window_are_told_when(
    new_page: NewPage, server: Server, room_name: str
):
    soon = f"{room_name}-soon"[:64]
    await call(server.room, soon, opens_at=iso(hours=2), closes_at=iso(hours=3))
    guest = await open_guest(new_page, server, soon)
    await expect(guest.get_by_text("You can knock and wait from")).to_be_visible()
    await guest.get_by_label("Your name").fill("Otto Overeager")
    await guest.get_by_role("button", name="Knock to enter").click()
    await expect(guest.get_by_role("heading", name="The room isn't open yet")).to_be_visible()
    text = guest.locator("#outcome-text")
    await expect(text).to_contain_text("The room opens at")
    await expect(text).to_contain_text("You can knock and wait from")
    await expect(text).to_contain_text("in about 90 minutes")
    await shot(guest, "guest-too-early")

    over = f"{room_name}-over"[:64]
    await call(server.room, over, opens_at=iso(hours=-2), closes_at=iso(hours=-1))
    late = await open_guest(new_page, server, over)
    await late.get_by_label("Your name").fill("Lou Late")
    await late.get_by_role("button", name="Knock to enter").click()
    await expect(late.get_by_role("heading", name="This room is closed")).to_be_visible()
    await expect(late.locator("#outcome-text")).to_contain_text("The appointment time ended at")
    await expect(late.get_by_role("button", name="Try again")).to_be_visible()


@pytest.fixture
def own_server(tmp_path_factory: pytest.TempPathFactory):
    """A server of this test's own, so restarting it disturbs no other test."""
    from tests.browser.conftest import make_server

    s = make_server(tmp_path_factory.mktemp("appointments-db"), "appointments")
    yield s
    s.stop()


async def test_an_early_guest_keeps_the_wait_across_a_restart_and_may_be_admitted_early(
    own_server: Server, new_page: NewPage, room_name: str
):
    # own_server comes first so that it is torn down after the pages are closed.
    server = own_server
    await call(server.room, room_name, opens_at=iso(minutes=15), closes_at=iso(minutes=45))
    token = await call(server.owner_token, room_name)
    guest = await open_guest(new_page, server, room_name)
    guest.watch.expected.append("WebSocket connection")  # refused while the server restarts
    await knock(guest, "Rhea Restart")
    status = guest.locator("#waiting-status")
    await expect(status).to_contain_text("The room opens at")
    left_before = await guest.locator("#time-left").inner_text()

    await call(server.restart)
    # The page reconnects with its resume key: same place, same stored deadline, same words.
    await expect(status).to_contain_text("The room opens at", timeout=20_000)
    await expect(status).to_contain_text("you are in line")
    left_after = await guest.locator("#time-left").inner_text()
    assert int(left_after.split(":")[0]) >= int(left_before.split(":")[0]) - 1  # about 45 minutes

    # The host is ready early and lets the guest in before the window opens.
    owner = await open_dashboard(new_page, server, room_name, token)
    await expect(row(owner, "Rhea Restart").get_by_text("early", exact=True)).to_be_visible()
    await owner.get_by_role("button", name="Admit Rhea Restart").click()
    await expect(guest.get_by_role("heading", name="You're in")).to_be_visible()
