"""The Daily-compatible facade (static/anteroom/daily-compat.js), used the way a daily-js app
uses its call object: the page loads the classic script, then talks to ``DailyIframe``."""

from __future__ import annotations

from typing import Any

import pytest

from tests.browser.conftest import NewPage, Server, call

pytestmark = [pytest.mark.browser, pytest.mark.asyncio(loop_scope="session")]

OWNER_JOINS = """async ([url, token]) => {
  window.ev = [];
  window.call = DailyIframe.createCallObject();
  let cameraError = null;
  call
    .on('camera-error', (e) => { cameraError = e.error.type; })
    .on('joined-meeting', (e) => ev.push(['joined-meeting', e.participants.local.user_name]))
    .on('waiting-participant-added', (e) => ev.push(['added', e.participant.name]))
    .on('waiting-participant-updated', (e) => ev.push(['updated', e.participant.name]))
    .on('waiting-participant-removed', (e) => ev.push(['removed', e.participant.name]))
    .on('participant-joined', (e) => ev.push(['participant-joined', e.participant.user_name]))
    .on('participant-left', (e) => ev.push(['participant-left', e.participant.user_name]));
  const participants = await call.join({ url, token });
  return { state: call.meetingState(), access: call.accessState().access,
           local: participants.local, cameraError };
}"""

GUEST_KNOCKS = """async ([url, name]) => {
  window.ev = [];
  window.answer = null;
  window.call = DailyIframe.createCallObject();
  call
    .on('access-state-updated', (e) => ev.push(['access', e.access.level,
                                                 e.awaitingAccess ? e.awaitingAccess.level : null]))
    .on('joined-meeting', () => ev.push(['joined-meeting']))
    .on('participant-joined', (e) => ev.push(['participant-joined', e.participant.user_name]))
    .on('error', (e) => ev.push(['error', e.errorMsg]))
    .on('left-meeting', () => ev.push(['left-meeting']));
  const pre = await call.preAuth({ url });
  await call.join({ url, userName: name });
  const inLobby = call.accessState();
  call.requestAccess({ name }).then((a) => { window.answer = a; });
  return { pre, inLobby, state: call.meetingState(),
           awaiting: call.accessState().awaitingAccess };
}"""


async def daily_page(new_page: NewPage, server: Server) -> Any:
    """A page of the server's origin with the facade loaded by a plain <script src> tag."""
    page = await new_page(bypass_csp=True)
    await page.goto(f"{server.base}/healthz")
    await page.add_script_tag(url="/static/anteroom/daily-compat.js")
    assert await page.evaluate("typeof DailyIframe.createCallObject") == "function"
    return page


async def test_owner_grants_a_waiting_guest(new_page: NewPage, server: Server, room_name: str):
    await call(server.room, room_name)
    url = f"{server.base}/r/{room_name}/"
    owner = await daily_page(new_page, server)
    joined = await owner.evaluate(OWNER_JOINS, [url, await call(server.owner_token, room_name)])
    assert joined["state"] == "joined-meeting" and joined["access"] == {"level": "full"}
    assert joined["local"]["owner"] is True and joined["local"]["local"] is True
    assert joined["local"]["user_name"] == "Dr Owner"
    # This browser has no camera: daily-js's 'blocked' state and reason.
    video = joined["local"]["tracks"]["video"]
    assert video["state"] == "blocked" and video["blocked"] == {"byDeviceMissing": True}
    assert joined["local"]["video"] is False and joined["cameraError"] == "not-found"

    guest = await daily_page(new_page, server)
    knocked = await guest.evaluate(GUEST_KNOCKS, [url, "Gus"])
    assert knocked["pre"] == {"access": {"level": "lobby"}}
    assert knocked["inLobby"] == {"access": {"level": "lobby"}}  # joined, not knocking yet
    assert knocked["state"] == "joined-meeting"
    assert knocked["awaiting"] == {"level": "full"}

    await owner.wait_for_function("Object.keys(call.waitingParticipants()).length === 1")
    waiting = await owner.evaluate("Object.values(call.waitingParticipants())")
    assert [(w["name"], w["awaitingAccess"]) for w in waiting] == [("Gus", {"level": "full"})]
    done = await owner.evaluate(
        "(id) => call.updateWaitingParticipant(id, { grantRequestedAccess: true })",
        waiting[0]["id"],
    )
    assert done == {"id": waiting[0]["id"]}

    await guest.wait_for_function("window.answer !== null")
    assert await guest.evaluate("answer") == {"access": {"level": "full"}, "granted": True}
    events = await guest.evaluate("ev")
    assert ["access", "lobby", "full"] in events and events[-1] != ["left-meeting"]
    assert ["access", "full", None] in events
    assert ["participant-joined", "Dr Owner"] in events
    people = await guest.evaluate("call.participants()")
    assert people["local"]["user_name"] == "Gus" and people["local"]["owner"] is False
    others = [p for k, p in people.items() if k != "local"]
    assert [(p["user_name"], p["owner"]) for p in others] == [("Dr Owner", True)]

    await owner.wait_for_function("ev.some(([t, n]) => t === 'participant-joined' && n === 'Gus')")
    owner_events = await owner.evaluate("ev")
    assert ["added", "Gus"] in owner_events and ["removed", "Gus"] in owner_events
    assert await owner.evaluate("Object.keys(call.waitingParticipants()).length") == 0

    # leave() and destroy() end the meeting for the guest; the owner sees them go.
    await guest.evaluate("call.leave().then(() => call.destroy())")
    assert await guest.evaluate("[call.meetingState(), call.isDestroyed()]") == [
        "left-meeting",
        True,
    ]
    assert ["left-meeting"] in await guest.evaluate("ev")
    await owner.wait_for_function("ev.some(([t, n]) => t === 'participant-left' && n === 'Gus')")


async def test_owner_refuses_everyone_waiting(new_page: NewPage, server: Server, room_name: str):
    await call(server.room, room_name)
    url = f"{server.base}/r/{room_name}/"
    owner = await daily_page(new_page, server)
    await owner.evaluate(OWNER_JOINS, [url, await call(server.owner_token, room_name)])
    guests = []
    for name in ("Ida", "Jo"):
        g = await daily_page(new_page, server)
        await g.evaluate(GUEST_KNOCKS, [url, name])
        guests.append(g)
    await owner.wait_for_function("Object.keys(call.waitingParticipants()).length === 2")

    result = await owner.evaluate(
        "call.updateWaitingParticipants({ '*': { grantRequestedAccess: false } })"
    )
    assert len(result["ids"]) == 2
    for g in guests:
        await g.wait_for_function("ev.some(([t]) => t === 'left-meeting')")
        # As daily-js does: the answer reports lobby, then an error event ejects the guest.
        assert await g.evaluate("answer") == {"access": {"level": "lobby"}, "granted": False}
        assert ["error", "Join request rejected"] in await g.evaluate("ev")
        assert await g.evaluate("call.meetingState()") == "error"
    await owner.wait_for_function("Object.keys(call.waitingParticipants()).length === 0")

    # Unknown ids are refused, as daily-js does.
    err = await owner.evaluate(
        "call.updateWaitingParticipant('nope', { grantRequestedAccess: true })"
        ".then(() => 'ok', (e) => e.message)"
    )
    assert "Unknown waiting participant" in err


async def test_public_room_join_goes_straight_in(new_page: NewPage, server: Server, room_name: str):
    await call(server.room, room_name, privacy="public", enable_knocking=False)
    url = f"{server.base}/r/{room_name}/"
    page = await daily_page(new_page, server)
    out = await page.evaluate(
        """async (url) => {
             const call = DailyIframe.createCallObject({ url });
             const seen = [];
             call.on('joined-meeting', () => seen.push('joined-meeting'))
                 .on('access-state-updated', (e) => seen.push('access:' + e.access.level));
             const pending = await call.room();
             const p = await call.join({ userName: 'Kim' });
             const room = await call.room();
             const topology = await call.getNetworkTopology();
             let duplicate = null;
             try { DailyIframe.createCallObject(); } catch (e) { duplicate = e.message; }
             const second = DailyIframe.createCallObject({ allowMultipleCallInstances: true });
             return { seen, local: p.local.user_name, access: call.accessState(),
                      keys: Object.keys(p), props: call.properties, duplicate,
                      pending, room, topology,
                      instance: DailyIframe.getCallInstance() === call,
                      bad: await second
                        .join({ url: 'https://example.com/not-a-room' })
                        .then(() => 'joined', (e) => e.message) };
           }""",
        url,
    )
    assert out["local"] == "Kim" and out["access"] == {"access": {"level": "full"}}
    assert out["seen"] == ["access:full", "joined-meeting"]
    assert out["keys"] == ["local"]  # join() resolves with the local participant only
    assert out["props"]["url"] == url and out["props"]["userName"] == "Kim"
    # One call object at a time unless the page opts in, as daily-js.
    assert out["duplicate"] == "Duplicate DailyIframe instances are not allowed"
    assert out["instance"] is True
    # room(): pending before the join, then daily-js's DailyRoomInfo shape.
    assert out["pending"] == {"roomUrlPendingJoin": url}
    assert out["room"] == {
        "id": room_name,
        "name": room_name,
        "config": {"enable_knocking": False},
        "domainConfig": {},
        "tokenConfig": {
            "is_owner": False,
            "user_name": "Kim",
            "user_id": out["room"]["tokenConfig"]["user_id"],
        },
    }
    assert out["topology"] == {"topology": "peer"}  # the mesh
    assert "room URL" in out["bad"]


async def test_owner_ejects_with_update_participant(
    new_page: NewPage, server: Server, room_name: str
):
    await call(server.room, room_name, privacy="public", enable_knocking=False)
    url = f"{server.base}/r/{room_name}/"
    owner = await daily_page(new_page, server)
    guest = await daily_page(new_page, server)
    track_events = """async ([url, token, name]) => {
      window.ev = [];
      window.call = DailyIframe.createCallObject();
      call.on('participant-counts-updated', (e) => ev.push(['counts', e.participantCounts]))
          .on('participant-left', (e) => ev.push(['participant-left', e.participant.user_name]))
          .on('nonfatal-error', (e) => ev.push(['nonfatal', e.type]))
          .on('error', (e) => ev.push(['error', e.error.type]))
          .on('left-meeting', (e) => ev.push([e.action]))
          .on('call-instance-destroyed', (e) => ev.push([e.action]));
      const p = await call.join({ url, token, userName: name });
      return { id: p.local.session_id,
               canAdmin: p.local.permissions.canAdmin instanceof Set
                 ? [...p.local.permissions.canAdmin] : p.local.permissions.canAdmin };
    }"""
    me = await owner.evaluate(track_events, [url, await call(server.owner_token, room_name), ""])
    assert me["canAdmin"] == ["participants"]
    them = await guest.evaluate(track_events, [url, None, "Gus"])
    assert them["canAdmin"] is False
    await owner.wait_for_function("call.participantCounts().present === 2")
    assert await owner.evaluate("call.participantCounts()") == {"present": 2, "hidden": 0}
    assert ["counts", {"present": 2, "hidden": 0}] in await owner.evaluate("ev")

    # A guest may not eject anyone: the server refuses, the page hears a nonfatal error.
    chained = await guest.evaluate(
        "(id) => call.updateParticipant(id, { eject: true }) === call", me["id"]
    )
    assert chained is True
    await guest.wait_for_function("ev.some(([t, x]) => t === 'nonfatal')")
    assert ["nonfatal", "participant-update-error"] in await guest.evaluate("ev")
    # Remote mute is not something Anteroom has: refused with a warning, still chainable.
    assert await owner.evaluate(
        "(id) => call.updateParticipant(id, { setAudio: false }) === call", them["id"]
    )

    # The owner ejects the guest: the guest's call ends with an error, the owner sees them go.
    await owner.evaluate("(id) => call.updateParticipant(id, { eject: true })", them["id"])
    await guest.wait_for_function("ev.some(([t]) => t === 'left-meeting')")
    assert ["error", "ejected"] in await guest.evaluate("ev")
    assert await guest.evaluate("call.meetingState()") == "error"
    await owner.wait_for_function("ev.some(([t, n]) => t === 'participant-left' && n === 'Gus')")
    assert await owner.evaluate("call.participantCounts()") == {"present": 1, "hidden": 0}

    # destroy(): call-instance-destroyed, then the object refuses to be used (strict mode).
    after = await guest.evaluate(
        "call.destroy().then(() => call.join({})).then(() => 'joined', (e) => e.message)"
    )
    assert after == "Use after destroy"
    assert ["call-instance-destroyed"] in await guest.evaluate("ev")
    assert await guest.evaluate("DailyIframe.getCallInstance() === undefined")
