"""Anteroom (a Daphne process with ANTEROOM_MEDIA=janus) and a real Janus, over the socket
protocol: admitted guests get a Janus credential that works, leaving or denial leaves none
that does, /readyz names the media server, and a Janus outage never costs a knock.
"""

from __future__ import annotations

import asyncio
import json
import signal
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from lobby.media.janus import JanusBackend, JanusConfig
from tests.faults.helpers import db_rows, join, sqlite_cluster
from tests.scale.cluster import Cluster
from tests.support.ws import Ws

from .conftest import Janus, session_with, start_janus

pytestmark = [pytest.mark.janus, pytest.mark.slow]


@pytest.fixture
def stack(tmp_path: Path) -> Iterator[tuple[Cluster, Janus]]:
    j = start_janus(tmp_path / "janus", "janus-server")
    try:
        with sqlite_cluster(
            tmp_path,
            **j.env(),
            ANTEROOM_JANUS_RECONCILE_INTERVAL="0.3",
            ANTEROOM_ADDRESS_KNOCK_LIMIT="1000/300",
            ANTEROOM_MAX_SOCKETS_PER_ADDRESS="1000",
        ) as cluster:
            yield cluster, j
    finally:
        j.stop()


def readyz(cluster: Cluster) -> tuple[int, dict[str, Any]]:
    try:
        with urllib.request.urlopen(cluster.bases[0] + "/readyz", timeout=5) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def backend_like_the_server(cluster: Cluster, j: Janus) -> JanusBackend:
    """The ids and tokens the server derives (same signing key): what a guest who knows the
    scheme could compute by hand."""
    return JanusBackend(
        JanusConfig(
            url=j.url,
            public_url=j.url,
            admin_url=j.admin_url,
            api_secret=j.api_secret,
            admin_secret=j.admin_secret,
            room_admin_key=j.room_admin_key,
            signing_key=cluster.env["ANTEROOM_SIGNING_KEY"],
        ),
        autostart=False,
    )


async def knock_and_admit(cluster: Cluster, room: str, owner: Ws, name: str) -> tuple[Ws, str]:
    guest, ack = await join(cluster.bases[0], room, name, name=name)
    assert ack["ok"] and ack["data"]["level"] == "lobby", ack
    waiting = await guest.expect("waiting")
    req = waiting["request"]["id"]
    await owner.expect("entry-requested")
    decided = await owner.request("admit", request_id=req)
    assert decided["ok"], decided
    joined = await guest.expect("joined")
    return guest, joined["participant"]["participant_id"]


async def sfu_of(ws: Ws, timeout: float = 10) -> dict[str, Any]:
    """The next media-state that carries Janus's connection details."""
    while True:
        state = await ws.expect("media-state", timeout=timeout)
        if state.get("sfu"):
            return dict(state["sfu"])


async def test_admitted_guest_gets_a_working_credential_and_leaving_voids_it(stack):
    cluster, j = stack
    room = "sfu-room"
    await asyncio.to_thread(cluster.room, room, knock_ttl=600)
    owner_token = await asyncio.to_thread(cluster.token, room, is_owner=True, user_id="dr")
    owner, ack = await join(cluster.bases[0], room, "owner", token=owner_token)
    assert ack["ok"], ack
    joined = await owner.expect("joined")
    assert joined["media"]["mode"] == "sfu"
    guest, pid = await knock_and_admit(cluster, room, owner, "Pat")
    sfu = await sfu_of(guest)
    assert sfu["url"] == j.url and isinstance(sfu["room"], int) and sfu["display"] == pid
    session_with(j, sfu["token"])  # a hand-made request with it works while admitted

    await guest.send(type="leave")
    with pytest.raises(PermissionError, match="Unauthorized"):
        for _ in range(50):  # the backend call runs after commit, on the media worker
            session_with(j, sfu["token"])
            await asyncio.sleep(0.1)

    # A denied guest never had a credential: the one the server would derive is refused.
    denied, ack = await join(cluster.bases[0], room, "Dee", name="Dee")
    waiting = await denied.expect("waiting")
    denied_pid = (await owner.expect("entry-requested"))["request"]["participant_id"]
    assert (await owner.request("deny", request_id=waiting["request"]["id"]))["ok"]
    rows = db_rows(cluster.env["DATABASE_URL"], "SELECT id FROM lobby_room WHERE name = %s", room)
    room_id = uuid.UUID(str(rows[0][0]))
    derived = backend_like_the_server(cluster, j)
    assert derived.room_id(room_id) == sfu["room"]  # the scheme is the server's
    for pid_ in (denied_pid, pid):  # the denied guest; the one who left
        with pytest.raises(PermissionError, match="Unauthorized"):
            session_with(j, derived.token(pid_, room_id))
    for frame in denied.seen + denied.unread:
        assert "sfu" not in frame and "media" not in frame  # it learned nothing of the call
    await asyncio.gather(owner.close(), guest.close(), denied.close())


async def test_janus_outage_readyz_names_it_knocks_go_on_and_media_resumes(stack):
    cluster, j = stack
    room = "outage-room"
    await asyncio.to_thread(cluster.room, room, knock_ttl=600)
    owner_token = await asyncio.to_thread(cluster.token, room, is_owner=True, user_id="dr")
    owner, ack = await join(cluster.bases[0], room, "owner", token=owner_token)
    assert ack["ok"], ack
    status, body = readyz(cluster)
    assert status == 200 and body["checks"]["media"] == "ok", body
    assert body["media"]["backend"] == "janus"
    first, _ = await knock_and_admit(cluster, room, owner, "Ann")
    before = await sfu_of(first)

    j.stop(signal.SIGKILL)
    status, body = readyz(cluster)
    assert status == 503 and body["checks"]["media"] == "down", body
    assert body["media"]["detail"] == "media server (janus) unreachable"
    assert body["checks"]["database"] == "ok"

    # The lobby goes on: a knock during the outage reaches the moderator and is admitted.
    second, _ = await knock_and_admit(cluster, room, owner, "Bo")
    state = await second.expect("media-state")
    assert state.get("error") == "UNAVAILABLE" and not state.get("sfu"), state

    await asyncio.to_thread(j.start)  # empty: no rooms, no tokens
    sfu = await sfu_of(second, timeout=20)  # re-sent when Janus answers again
    session_with(j, sfu["token"])
    assert sfu["room"] == before["room"]
    session_with(j, before["token"])  # the first guest's credential was restored too
    status, body = readyz(cluster)
    assert status == 200, body
    await asyncio.gather(owner.close(), first.close(), second.close())
