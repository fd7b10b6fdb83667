"""The JavaScript client (static/anteroom/client.js) in Chromium, the way an integrator uses it:
a blank page of the server's origin imports the module and calls ``join()``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.browser.conftest import NewPage, Server, call, make_server

pytestmark = [pytest.mark.browser, pytest.mark.asyncio(loop_scope="session")]

# Starts a join and keeps its outcome and every onWaiting report on window.
START_JOIN = """(opts) => {
  window.waits = [];
  window.ctl = new AbortController();
  window.result = null;
  A.join({
    ...opts,
    signal: ctl.signal,
    onWaiting: (w) => waits.push({ ...w, requestedAt: String(w.requestedAt),
                                  expiresAt: w.expiresAt.getTime() }),
  }).then(
    (r) => { window.room = r;
             window.result = { ok: true, state: r.state, self: r.self.name,
                               people: r.participants.map((p) => p.name).sort() }; },
    (e) => { window.result = { ok: false, code: e.code, name: e.name, message: e.message,
                               isAnteroomError: e instanceof A.AnteroomError,
                               isDomException: e instanceof DOMException }; },
  );
}"""

# Joins as a moderator and records room events on window.events.
JOIN_MODERATOR = """async (opts) => {
  window.events = [];
  window.room = await A.join(opts);
  for (const t of ['entry-requested', 'entry-updated', 'entry-resolved', 'entry-canceled',
                   'participant-joined', 'participant-left', 'reconnecting', 'reconnected']) {
    room.on(t, (d) => events.push([t, d?.name ?? d?.participant?.name ?? d?.outcome ?? d?.reason
                                   ?? null]));
  }
  return { state: room.state, role: room.self.role, moderator: room.isModerator };
}"""


async def harness(new_page: NewPage, server: Server, **ctx: Any) -> Any:
    """A plain page of the server's origin with the client module loaded as ``window.A``.

    (A page fulfilled by ``page.route`` would not do: Chromium's local-network-access checks
    then refuse its sockets to 127.0.0.1.) The page's CSP is bypassed so that Playwright's
    ``wait_for_function`` may evaluate its predicates; the pages' CSP is tested in test_pages."""
    page = await new_page(bypass_csp=True, **ctx)
    await page.goto(f"{server.base}/healthz")
    await page.evaluate("async () => { window.A = await import('/static/anteroom/client.js'); }")
    return page


async def outcome(page: Any, timeout: float = 10_000) -> dict[str, Any]:
    await page.wait_for_function("window.result !== null", timeout=timeout)
    result: dict[str, Any] = await page.evaluate("result")
    return result


async def moderator(new_page: NewPage, server: Server, room: str) -> Any:
    page = await harness(new_page, server)
    token = await call(server.owner_token, room)
    joined = await page.evaluate(JOIN_MODERATOR, {"room": room, "token": token})
    assert joined == {"state": "joined", "role": "moderator", "moderator": True}
    return page


async def test_join_waits_then_resolves_on_admission(
    new_page: NewPage, server: Server, room_name: str
):
    await call(server.room, room_name)
    owner = await moderator(new_page, server, room_name)
    guest = await harness(new_page, server)
    await guest.evaluate(START_JOIN, {"room": room_name, "name": "Ann", "metadata": {"topic": "x"}})
    await guest.wait_for_function("waits.length > 0 && waits.at(-1).position === 1")
    wait = await guest.evaluate("waits.at(-1)")
    assert wait["status"] == "waiting" and wait["waiting"] == 1 and not wait["resumed"]
    # expiresAt is on the local clock: about the room's knock_ttl (60 s) from now.
    left = await guest.evaluate("(waits.at(-1).expiresAt - Date.now()) / 1000")
    assert 55 <= left <= 61

    await owner.wait_for_function("room.entryRequests.length === 1")
    req = await owner.evaluate(
        "(() => { const r = room.entryRequests[0];"
        " return { id: r.id, name: r.name, metadata: r.metadata, status: r.status }; })()"
    )
    assert req == {
        "id": wait["requestId"],
        "name": "Ann",
        "metadata": {"topic": "x"},
        "status": "pending",
    }
    ack = await owner.evaluate("room.entryRequests[0].admit()")
    assert ack == {"request_id": req["id"], "outcome": "admitted", "effective": True}

    result = await outcome(guest)
    assert result["ok"] and result["state"] == "joined" and result["self"] == "Ann"
    assert result["people"] == ["Ann", "Dr Owner"]
    await owner.wait_for_function(
        "events.some(([t, n]) => t === 'participant-joined' && n === 'Ann')"
    )
    assert await owner.evaluate("room.entryRequests.length") == 0
    assert ["entry-resolved", "admitted"] in await owner.evaluate("events")
    # A second decision is a no-op that reports the current status.
    again = await owner.evaluate(f"room.deny({req['id']!r})")
    assert again == {"request_id": req["id"], "outcome": "admitted", "effective": False}
    # The admitted guest hears the room: a rename reaches the moderator.
    await guest.evaluate("room.rename('Ann B.')")
    await owner.wait_for_function(
        "room.participants.some((p) => p.name === 'Ann B.')", timeout=5000
    )


async def test_deny_rejects_with_entry_denied_and_reason(
    new_page: NewPage, server: Server, room_name: str
):
    await call(server.room, room_name)
    owner = await moderator(new_page, server, room_name)
    guest = await harness(new_page, server)
    await guest.evaluate(START_JOIN, {"room": room_name, "name": "Bo"})
    await owner.wait_for_function("room.entryRequests.length === 1")
    await owner.evaluate("room.entryRequests[0].deny('The clinic is closed today')")
    result = await outcome(guest)
    assert result["ok"] is False and result["code"] == "ENTRY_DENIED"
    assert result["message"] == "The clinic is closed today" and result["isAnteroomError"]


async def test_abort_cancels_the_knock(new_page: NewPage, server: Server, room_name: str):
    await call(server.room, room_name)
    owner = await moderator(new_page, server, room_name)
    guest = await harness(new_page, server)
    await guest.evaluate(START_JOIN, {"room": room_name, "name": "Cy"})
    await guest.wait_for_function("waits.length > 0")
    await owner.wait_for_function("room.entryRequests.length === 1")
    await guest.evaluate("ctl.abort()")
    result = await outcome(guest)
    assert result["name"] == "AbortError" and result["isDomException"]
    await owner.wait_for_function(
        "events.some(([t, r]) => t === 'entry-canceled' && r === 'aborted')"
    )
    assert await owner.evaluate("room.entryRequests.length") == 0

    # A signal aborted before the join starts rejects at once, without knocking.
    early = await guest.evaluate(
        """(room) => { const c = new AbortController(); c.abort();
             return A.join({ room, name: 'Never', signal: c.signal })
               .then(() => 'joined', (e) => e.name); }""",
        room_name,
    )
    assert early == "AbortError"
    pending = await call(server.api, "GET", f"/rooms/{room_name}/entry-requests")
    assert pending["total_count"] == 0


async def test_unanswered_knock_rejects_with_entry_timeout(
    new_page: NewPage, server: Server, room_name: str
):
    await call(server.room, room_name, knock_ttl=10)
    guest = await harness(new_page, server)
    await guest.evaluate(START_JOIN, {"room": room_name, "name": "Di"})
    await guest.wait_for_function("waits.length > 0")
    left = await guest.evaluate("(waits[0].expiresAt - Date.now()) / 1000")
    assert 7 <= left <= 11
    result = await outcome(guest, timeout=20_000)
    assert result["code"] == "ENTRY_TIMEOUT" and result["isAnteroomError"]


async def test_errors_carry_codes(new_page: NewPage, server: Server, room_name: str):
    public = await call(server.room, f"{room_name}-pub", privacy="public", enable_knocking=False)
    closed = await call(server.room, f"{room_name}-closed", enable_knocking=False)
    lobby = await call(server.room, room_name)
    page = await harness(new_page, server)
    levels = await page.evaluate(
        """async (rooms) => Promise.all(rooms.map((room) => A.preauth({ room })
             .then((a) => a.level, (e) => e.code)))""",
        [public, lobby, closed, "no-such-room"],
    )
    assert levels == ["full", "lobby", "none", "ROOM_NOT_FOUND"]

    revoked = await call(server.token, lobby, user_name="Rev")
    jti = (await call(server.api, "POST", "/meeting-tokens/decode", {"token": revoked}))["jti"]
    await call(server.api, "POST", "/meeting-tokens/revoke", {"jti": jti})
    valid = await call(server.token, lobby, user_name="Val")
    tampered = valid[:-4] + ("AAAA" if not valid.endswith("AAAA") else "BBBB")
    codes = await page.evaluate(
        """async ([closed, lobby, revoked, tampered]) => {
             const code = (p) => p.then(() => 'joined', (e) => e.code);
             return [
               await code(A.join({ room: closed, name: 'X' })),
               await code(A.join({ room: lobby, token: revoked })),
               await code(A.join({ room: lobby, token: tampered })),
               await code(A.join({ room: 'no-such-room', name: 'X' })),
               await code(A.preauth({ room: lobby, token: tampered })),
             ];
           }""",
        [closed, lobby, revoked, tampered],
    )
    assert codes == [
        "ACCESS_DENIED",
        "TOKEN_REVOKED",
        "INVALID_TOKEN",
        "ROOM_NOT_FOUND",
        "INVALID_TOKEN",
    ]

    # At most 3 knocks per token per 5 minutes: the 4th is ENTRY_RATE_LIMITED.
    ask = await call(server.token, lobby, user_name="Ray", join_policy={"mode": "ask"})
    codes = await page.evaluate(
        """async ([room, token]) => {
             const out = [];
             for (let i = 0; i < 4; i++) {
               const ctl = new AbortController();
               const p = A.join({ room, token, signal: ctl.signal,
                                  onWaiting: () => ctl.abort() });
               // (A DOMException has a numeric .code too: test .name for AbortError.)
               out.push(await p.then(() => 'joined',
                                     (e) => (e.name === 'AbortError' ? e.name : e.code)));
             }
             return out;
           }""",
        [lobby, ask],
    )
    assert codes == ["AbortError", "AbortError", "AbortError", "ENTRY_RATE_LIMITED"]


async def test_moderator_methods(new_page: NewPage, server: Server, room_name: str):
    await call(server.room, room_name)
    owner = await moderator(new_page, server, room_name)
    guests = []
    for name in ("Eve", "Fay", "Gil"):
        g = await harness(new_page, server)
        await g.evaluate(START_JOIN, {"room": room_name, "name": name})
        await g.wait_for_function("waits.length > 0")
        guests.append(g)
    await owner.wait_for_function("room.entryRequests.length === 3")
    assert await owner.evaluate("room.entryRequests.map((r) => r.name)") == ["Eve", "Fay", "Gil"]
    assert await guests[2].evaluate("waits.at(-1).position") == 3

    assert await owner.evaluate("room.denyAll()") == {"count": 3}
    for g in guests:
        assert (await outcome(g))["code"] == "ENTRY_DENIED"
    assert await owner.evaluate("room.admitAll()") == {"count": 0}

    # Room controls: state comes back on the ack and as room-updated.
    info = await owner.evaluate("room.pause().then(() => room.info)")
    assert info["paused"] is True
    info = await owner.evaluate("room.mute({ audio: true }).then(() => room.info)")
    assert info["audio_muted"] is True and info["video_muted"] is False
    info = await owner.evaluate(
        "room.unmute({ audio: true }).then(() => room.resume()).then(() => room.info)"
    )
    assert (info["paused"], info["audio_muted"]) == (False, False)

    # Not a moderator: INVALID_PERMISSIONS, and the socket stays usable.
    member = await harness(new_page, server)
    token = await call(server.token, room_name, user_name="Hal", user_id="hal")
    codes = await member.evaluate(
        """async ([room, token]) => {
             const r = await A.join({ room, token });
             const a = await r.admitAll().then(() => 'ok', (e) => e.code);
             const b = await r.rename('Hal 2').then((d) => d.name, (e) => e.code);
             await r.leave();
             return [a, b, r.state];
           }""",
        [room_name, token],
    )
    assert codes == ["INVALID_PERMISSIONS", "Hal 2", "closed"]


async def test_waiting_guest_rename_reaches_moderators(
    new_page: NewPage, server: Server, room_name: str
):
    await call(server.room, room_name)
    owner = await moderator(new_page, server, room_name)
    guest = await harness(new_page, server)
    await guest.evaluate(
        """(room) => { window.result = null;
             A.join({ room, name: 'Old Name', onWaiting: (w, r) => { window.waitingRoom = r; } })
              .then((r) => { window.result = { ok: true, self: r.self.name }; },
                    (e) => { window.result = { ok: false, code: e.code }; }); }""",
        room_name,
    )
    await guest.wait_for_function("window.waitingRoom")
    assert await guest.evaluate("waitingRoom.rename('New Name')") == {"name": "New Name"}
    await owner.wait_for_function(
        "events.some(([t, n]) => t === 'entry-updated' && n === 'New Name')"
    )
    await owner.evaluate("room.admitAll()")
    assert await outcome(guest) == {"ok": True, "self": "New Name"}


async def test_reconnect_resumes_the_same_knock_after_a_server_restart(
    new_page: NewPage, tmp_path: Path, room_name: str
):
    srv = await call(make_server, tmp_path, "restart")
    try:
        await call(srv.room, room_name)
        owner = await moderator(new_page, srv, room_name)
        guest = await harness(new_page, srv)
        for page in (owner, guest):
            page.watch.expected.append("WebSocket connection to")
        await guest.evaluate(
            START_JOIN,
            {"room": room_name, "name": "Resa", "reconnect": {"baseMs": 200, "maxMs": 1000}},
        )
        await guest.wait_for_function("waits.length > 0 && waits.at(-1).position === 1")
        first = await guest.evaluate("waits.at(-1)")
        await owner.wait_for_function("room.entryRequests.length === 1")

        await call(srv.restart)  # every socket drops; the process comes back on the same port

        await guest.wait_for_function("waits.some((w) => w.status === 'reconnecting')")
        await guest.wait_for_function(
            "waits.at(-1).status === 'waiting' && waits.at(-1).resumed", timeout=20_000
        )
        resumed = await guest.evaluate("waits.at(-1)")
        assert resumed["requestId"] == first["requestId"]
        assert resumed["expiresAt"] == first["expiresAt"]
        await guest.wait_for_function("waits.at(-1).position === 1")
        pending = await call(srv.api, "GET", f"/rooms/{room_name}/entry-requests")
        assert [r["id"] for r in pending["data"]] == [first["requestId"]]
        assert pending["data"][0]["connected"] is True

        # The moderator's room reconnected too, with the knock still listed.
        await owner.wait_for_function("events.some(([t]) => t === 'reconnected')", timeout=20_000)
        assert await owner.evaluate("room.entryRequests.map((r) => r.id)") == [first["requestId"]]
        await owner.evaluate("room.entryRequests[0].admit()")
        result = await outcome(guest)
        assert result["ok"] and result["people"] == ["Dr Owner", "Resa"]
    finally:
        srv.stop()


async def test_breakout_options_are_camel_case_and_the_documented_wire_names_still_work(
    new_page: NewPage, server: Server, room_name: str
):
    """docs/client.md: one option casing (camelCase); ``max_rooms`` and ``force_join``, which
    earlier versions documented, stay accepted (the camelCase one wins when both are given)."""
    await call(server.room, room_name)
    owner = await moderator(new_page, server, room_name)
    member = await harness(new_page, server)
    token = await call(server.token, room_name, user_name="Ivy", user_id="ivy")
    await member.evaluate(
        "async (t) => { window.room = await A.join(t); }", {"room": room_name, "token": token}
    )
    await owner.wait_for_function("room.participants.length === 2")
    made = await owner.evaluate(
        """async () => {
             const out = [];
             const count = (d) => d.rooms.length;
             out.push(await room.createBreakouts({ participants: 2, maxRooms: 2 }).then(count));
             await room.clearBreakouts();
             out.push(await room.createBreakouts({ participants: 2, max_rooms: 3 }).then(count));
             await room.clearBreakouts();
             out.push(await room.createBreakouts({ participants: 2, maxRooms: 1, max_rooms: 4 })
               .then(count));
             await room.clearBreakouts();
             const d = await room.createAndInviteBreakouts(
               { participants: 2, maxRooms: 1, forceJoin: true });
             out.push(count(d), Object.values(d.assignments).flat().length);
             return out;
           }"""
    )
    assert made == [2, 3, 1, 1, 1]
    # forceJoin moved the member at once (no invitation to answer)
    await member.wait_for_function("!!room.breakout")
    await owner.evaluate("room.destroyBreakouts()")
