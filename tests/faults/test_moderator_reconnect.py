"""A moderator's socket drops while another moderator decides (issue 6, item 5): whatever the
dropped moderator missed, the snapshot it gets on reconnecting — by resuming or by a fresh
join — no longer lists what was decided or canceled meanwhile and lists every knock still
pending, including one that arrived while it was away. A click on its stale list is a no-op.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import pytest

from tests.scale.cluster import Cluster
from tests.support.ws import Ws

from .helpers import close_all, join, sqlite_cluster, unread, wait_closed

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def server(tmp_path_factory) -> Iterator[Cluster]:
    with sqlite_cluster(tmp_path_factory.mktemp("reconnect")) as cluster:
        yield cluster


@pytest.mark.parametrize("how", ["resume", "fresh-join"])
async def test_a_dropped_moderator_reconnects_to_the_current_queue(server, how):
    room = f"ward-{how}"
    await asyncio.to_thread(server.room, room, knock_ttl=600)
    tok_a = await asyncio.to_thread(server.token, room, is_owner=True, user_id="dr-a")
    tok_b = await asyncio.to_thread(server.token, room, is_owner=True, user_id="dr-b")
    base = server.bases[0]
    socks: list[Ws] = []
    try:
        a, _ = await join(base, room, "dr-a", token=tok_a)
        b, _ = await join(base, room, "dr-b", token=tok_b)
        socks += [a, b]
        resume_a = (await a.expect("joined"))["resume"]
        guests: dict[str, Ws] = {}
        ids: dict[str, str] = {}
        for name in ("Ann", "Ben", "Cat", "Dan"):
            g, ack = await join(base, room, name, name=name)
            socks.append(g)
            guests[name], ids[name] = g, ack["data"]["request_id"]
        for mod in (a, b):
            listed = [(await mod.expect("entry-requested"))["request"]["id"] for _ in range(4)]
            assert listed == [ids[n] for n in ("Ann", "Ben", "Cat", "Dan")]

        # Dr A's network goes (no close frame) while Dr B admits Ann and denies Ben, Dan gives
        # up, and Eve knocks.
        a.ws.transport.abort()
        await b.send(type="admit", rid="ann", request_id=ids["Ann"])
        await b.send(type="deny", rid="ben", request_id=ids["Ben"])
        await guests["Dan"].send(type="cancel", rid="dan")
        acks = [
            await b.expect("ack", rid="ann"),
            await b.expect("ack", rid="ben"),
            await guests["Dan"].expect("ack", rid="dan"),
        ]
        assert [x["ok"] for x in acks] == [True, True, True], acks
        assert acks[0]["data"]["effective"] and acks[1]["data"]["effective"], acks
        eve, ack = await join(base, room, "Eve", name="Eve")
        socks.append(eve)
        ids["Eve"] = ack["data"]["request_id"]
        await guests["Ann"].expect("joined")
        assert (await guests["Ben"].expect("error"))["error"]["code"] == "ENTRY_DENIED"
        await guests["Dan"].expect("canceled")
        await wait_closed(a)

        # Dr A comes back.
        fields: dict[str, Any] = {"resume": resume_a} if how == "resume" else {"token": tok_a}
        a2, ack = await join(base, room, "dr-a again", **fields)
        socks.append(a2)
        assert ack["ok"] and ack["data"]["participant_id"] == "dr-a", ack
        snap = await a2.expect("joined")
        assert snap["participant"]["role"] == "moderator"
        listed = [f["request"] for f in unread(a2, "entry-requested")]
        assert [r["id"] for r in listed] == [ids["Cat"], ids["Eve"]]
        assert [r["name"] for r in listed] == ["Cat", "Eve"]
        assert all(r["connected"] for r in listed)
        # The room as it is now: Ann (admitted while A was away) is in it.
        present = {p["participant_id"]: p["name"] for p in snap["participants"]}
        assert "Ann" in present.values()
        assert {"dr-a", "dr-b"} <= set(present)
        code, body, _ = await asyncio.to_thread(server.rest, "GET", f"/rooms/{room}/entry-requests")
        assert code == 200 and [r["id"] for r in body["data"]] == [ids["Cat"], ids["Eve"]]

        # Clicks on A's stale list are no-ops that say what happened; the new list is live.
        ack = await a2.request("admit", request_id=ids["Ben"])
        assert ack["data"] == {"request_id": ids["Ben"], "outcome": "denied", "effective": False}
        ack = await a2.request("deny", request_id=ids["Dan"])
        assert ack["data"] == {"request_id": ids["Dan"], "outcome": "canceled", "effective": False}
        ack = await a2.request("admit", request_id=ids["Cat"])
        assert ack["data"]["effective"] is True, ack
        await guests["Cat"].expect("joined")
        resolved = await b.expect("entry-resolved", request_id=ids["Cat"])
        assert resolved["by"] == "dr-a"
        # Dr B's view never showed Dr A leaving the room.
        await b.drain(0.3)
        assert not [
            f
            for f in b.seen
            if f["type"] == "participant-left" and f["participant"]["participant_id"] == "dr-a"
        ]
    finally:
        close_all(socks)
