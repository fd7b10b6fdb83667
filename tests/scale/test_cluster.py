"""Several Daphne processes on one fresh PostgreSQL database and Redis (issue 5).

Breakouts span processes; the sweepers of two processes fire one timeout exactly once; a Redis
restart is survived (sockets resubscribe and get a fresh snapshot within 10 s); Redis and
PostgreSQL outages answer ``UNAVAILABLE`` / 503 + ``Retry-After`` and recover; a room idle for
more than 10 s on the Redis layer still hears a knock; ``manage.py loadtest --quick`` completes
with nothing lost.
"""

from __future__ import annotations

import asyncio
import json
import sys

import pytest

from tests.support import ROOT
from tests.support.ws import Ws

from .cluster import (
    REDIS_URL,
    Cluster,
    PrivateRedis,
    TcpProxy,
    fresh_database,
    require_services,
)

pytestmark = [pytest.mark.slow, pytest.mark.scale]


@pytest.fixture(scope="module")
def database():
    require_services()
    with fresh_database() as url:
        yield url


@pytest.fixture
def opened():
    socks: list[Ws] = []
    yield socks
    # Closed by each test's own finally (they need the running loop).


async def _close(socks: list[Ws]) -> None:
    for s in socks:
        await s.close()


async def _wait_refusing(base: str, room: str, timeout: float = 15) -> None:
    """Until the process at ``base`` answers a fresh socket's ``preauth`` (which changes
    nothing) with ``UNAVAILABLE``: its channel-layer watcher counts the layer down."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        probe = await Ws.open(base, room, "probe")
        try:
            ack = await probe.request("preauth", timeout=5)
        finally:
            await probe.close()
        if not ack["ok"] and ack["error"]["code"] == "UNAVAILABLE":
            return
        if loop.time() > deadline:
            raise AssertionError(f"{base} still serves actions: {ack}")
        await asyncio.sleep(0.3)


async def _join(base: str, room: str, token: str | None, label: str, **extra) -> tuple[Ws, dict]:
    ws = await Ws.open(base, room, label)
    fields: dict = {**extra, **({"token": token} if token else {})}
    ack = await ws.request("join", **fields)
    assert ack["ok"], ack
    return ws, ack


async def _wait_ready(cluster: Cluster, want: dict[str, str], i: int = 0, timeout: float = 15):
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        status, body, headers = await asyncio.to_thread(cluster.rest, "GET", "/readyz", None, i)
        if body and body.get("checks") == want:
            return status, body, headers
        if loop.time() > deadline:
            raise AssertionError(f"/readyz never said {want}: {status} {body}")
        await asyncio.sleep(0.3)


# Breakouts across processes --------------------------------------------------------------------


async def test_create_and_invite_reaches_participants_on_both_processes(tmp_path, database):
    cluster = Cluster(tmp_path, database, REDIS_URL).start(2)
    a, b = cluster.bases
    socks: list[Ws] = []
    try:
        cluster.room("split", privacy="public")
        mod, _ = await _join(a, "split", cluster.token("split", is_owner=True, user_id="m"), "mod")
        socks.append(mod)
        people = []
        for i in range(6):
            tok = cluster.token("split", user_id=f"p{i}", user_name=f"P{i}")
            ws, _ = await _join(a if i % 2 else b, "split", tok, f"p{i}")
            people.append(ws)
        socks += people
        ack = await mod.request(
            "breakout-create-and-invite",
            participants=3,
            max_rooms=2,
            audio=True,
            video=True,
            canvas=False,
            share=False,
        )
        assert ack["ok"], ack
        assigned = {p for ids in ack["data"]["assignments"].values() for p in ids}
        assert assigned == {f"p{i}" for i in range(6)}
        invitations = [await p.expect("breakout-invitation") for p in people]
        # A participant on process B joins the room it was invited to.
        on_b = people[0]
        room_id = invitations[0]["room"]["id"]
        joined = await on_b.request("breakout-join", room_id=room_id)
        assert joined["ok"], joined
        await on_b.expect("breakout-joined")
        update = await mod.expect("breakouts-updated")
        assert any(r["id"] == room_id for r in update["rooms"])
    except BaseException:
        print(cluster.logs_text(), file=sys.stderr)
        raise
    finally:
        await _close(socks)
        cluster.stop()


# Sweepers --------------------------------------------------------------------------------------


async def test_two_sweepers_time_a_knock_out_exactly_once(tmp_path, database):
    cluster = Cluster(tmp_path, database, REDIS_URL, ANTEROOM_SWEEP_INTERVAL="0.2").start(2)
    a, b = cluster.bases
    socks: list[Ws] = []
    try:
        cluster.room("ttl")
        mods = []
        for i, base in enumerate((a, b)):
            tok = cluster.token("ttl", is_owner=True, user_id=f"m{i}")
            ws, _ = await _join(base, "ttl", tok, f"mod{i}")
            mods.append(ws)
        socks += mods
        tok = cluster.token("ttl", user_id="g", join_policy={"mode": "ask", "ttl": 10})
        guest, ack = await _join(a, "ttl", tok, "guest")
        socks.append(guest)
        request_id = ack["data"]["request_id"]
        err = await guest.expect("error", timeout=20)
        assert err["error"]["code"] == "ENTRY_TIMEOUT"
        rest = await guest.drain(2)
        assert guest.close_code == 4408
        assert not [f for f in rest if f["type"] == "error"], rest
        for m in mods:
            frames = await m.drain(2)
            canceled = [
                f for f in m.seen if f["type"] == "entry-canceled" and f["request_id"] == request_id
            ]
            assert len(canceled) == 1, frames
            assert canceled[0]["reason"] == "timeout"
    except BaseException:
        print(cluster.logs_text(), file=sys.stderr)
        raise
    finally:
        await _close(socks)
        cluster.stop()


# Redis restart ---------------------------------------------------------------------------------


async def test_a_redis_restart_is_survived_with_a_fresh_snapshot(tmp_path, database):
    redis = PrivateRedis(tmp_path)
    redis.start()
    cluster = Cluster(tmp_path, database, redis.url).start(2)
    a, b = cluster.bases
    socks: list[Ws] = []
    try:
        cluster.room("restart")
        mod, _ = await _join(
            a, "restart", cluster.token("restart", is_owner=True, user_id="m"), "m"
        )
        member, _ = await _join(b, "restart", cluster.token("restart", user_id="p1"), "member")
        guest, ack = await _join(b, "restart", None, "guest", name="Waiting Wendy")
        socks += [mod, member, guest]
        request_id = ack["data"]["request_id"]
        await mod.expect("entry-requested")
        await asyncio.sleep(0.5)
        await asyncio.to_thread(redis.stop)
        await asyncio.sleep(1.5)
        await asyncio.to_thread(redis.start)
        loop = asyncio.get_running_loop()
        t0 = loop.time()
        snap = await mod.expect("joined", timeout=10, resync=True)
        again = await mod.expect("entry-requested", timeout=5)
        assert again["request"]["id"] == request_id
        assert {p["participant_id"] for p in snap["participants"]} >= {"m", "p1"}
        await member.expect("joined", timeout=10, resync=True)
        await guest.expect("queue-position", timeout=10)
        assert loop.time() - t0 < 10
        # The groups are back on both processes: an admit on A reaches the guest on B ...
        ack = await mod.request("admit", request_id=request_id)
        assert ack["ok"] and ack["data"]["effective"], ack
        joined = await guest.expect("joined", timeout=10)
        assert "resync" not in joined
        # ... and a knock on A reaches the moderator on A (mods group re-added).
        late, _ = await _join(a, "restart", None, "late", name="Late Larry")
        socks.append(late)
        frame = await mod.expect("entry-requested", timeout=10)
        assert frame["request"]["name"] == "Late Larry"
    except BaseException:
        print(cluster.logs_text(), file=sys.stderr)
        raise
    finally:
        await _close(socks)
        cluster.stop()
        redis.stop()


# Outages ---------------------------------------------------------------------------------------


async def test_redis_outage_answers_unavailable_and_recovers(tmp_path, database):
    proxy = TcpProxy.to_url(REDIS_URL, 6379)
    await proxy.start()
    cluster = Cluster(tmp_path, database, proxy.url_for(REDIS_URL))
    await asyncio.to_thread(cluster.start, 2)
    a, b = cluster.bases
    socks: list[Ws] = []
    try:
        await asyncio.to_thread(cluster.room, "flaky")
        tok = await asyncio.to_thread(cluster.token, "flaky", is_owner=True, user_id="m")
        mod, _ = await _join(a, "flaky", tok, "mod")
        socks.append(mod)
        await proxy.cut()
        status, body, headers = await _wait_ready(
            cluster, {"database": "ok", "channel_layer": "down"}, i=1
        )
        assert status == 503 and headers["Retry-After"]
        # /readyz says "down" as soon as its own ping fails; each process's watcher finds the
        # outage on its next round (every second). Wait for both watchers before asking either
        # process to act.
        for base in (a, b):
            await _wait_refusing(base, "flaky")
        # Both processes refuse actions while their watcher cannot reach Redis.
        for base in (b, a):
            guest = await Ws.open(base, "flaky", "guest-down")
            socks.append(guest)
            ack = await guest.request("join", name="Too Early", timeout=15)
            assert not ack["ok"] and ack["error"]["code"] == "UNAVAILABLE", ack
        ack = await mod.request("admit-all")
        assert not ack["ok"] and ack["error"]["code"] == "UNAVAILABLE", ack
        status, body, headers = await asyncio.to_thread(
            cluster.rest, "POST", "/rooms", {"name": "later", "privacy": "public"}
        )
        assert status == 503 and body["error"]["code"] == "UNAVAILABLE"
        assert int(headers["Retry-After"]) > 0
        await proxy.restore()
        await _wait_ready(cluster, {"database": "ok", "channel_layer": "ok"}, i=0)
        await _wait_ready(cluster, {"database": "ok", "channel_layer": "ok"}, i=1)
        await mod.expect("joined", timeout=10, resync=True)
        guest, _ = await _join(b, "flaky", None, "guest-up", name="On Time")
        socks.append(guest)
        await guest.expect("waiting")
        frame = await mod.expect("entry-requested", timeout=10)
        assert frame["request"]["name"] == "On Time"
        status, _, _ = await asyncio.to_thread(
            cluster.rest, "POST", "/rooms", {"name": "later", "privacy": "public"}
        )
        assert status == 200
    except BaseException:
        print(cluster.logs_text(), file=sys.stderr)
        raise
    finally:
        await _close(socks)
        await asyncio.to_thread(cluster.stop)
        await proxy.cut()


async def test_postgres_outage_answers_unavailable_and_recovers(tmp_path, database):
    proxy = TcpProxy.to_url(database, 5432)
    await proxy.start()
    cluster = Cluster(tmp_path, proxy.url_for(database), REDIS_URL)
    await asyncio.to_thread(cluster.start, 2)
    a, b = cluster.bases
    socks: list[Ws] = []
    try:
        await asyncio.to_thread(cluster.room, "pgdown")
        tok = await asyncio.to_thread(cluster.token, "pgdown", is_owner=True, user_id="m")
        mod, _ = await _join(a, "pgdown", tok, "mod")
        socks.append(mod)
        await proxy.cut()
        status, body, headers = await _wait_ready(
            cluster, {"database": "down", "channel_layer": "ok"}, i=1
        )
        assert status == 503 and int(headers["Retry-After"]) > 0
        guest = await Ws.open(b, "pgdown", "guest-down")
        socks.append(guest)
        ack = await guest.request("join", name="Too Early", timeout=20)
        assert not ack["ok"] and ack["error"]["code"] == "UNAVAILABLE", ack
        ack = await mod.request("admit-all", timeout=20)
        assert not ack["ok"] and ack["error"]["code"] == "UNAVAILABLE", ack
        for method, path, payload in (
            ("GET", "/rooms", None),
            ("POST", "/rooms", {"name": "later", "privacy": "public"}),
        ):
            status, body, headers = await asyncio.to_thread(cluster.rest, method, path, payload)
            assert status == 503, (method, path, status, body)
            assert body["error"]["code"] == "UNAVAILABLE"
            assert int(headers["Retry-After"]) > 0
        await proxy.restore()
        await _wait_ready(cluster, {"database": "ok", "channel_layer": "ok"}, i=1)
        status, _, _ = await asyncio.to_thread(cluster.rest, "GET", "/rooms")
        assert status == 200
        guest, _ = await _join(b, "pgdown", None, "guest-up", name="On Time")
        socks.append(guest)
        frame = await mod.expect("entry-requested", timeout=10)
        assert frame["request"]["name"] == "On Time"
        ack = await mod.request("admit", request_id=frame["request"]["id"])
        assert ack["ok"] and ack["data"]["effective"]
        await guest.expect("joined", timeout=10)
    except BaseException:
        print(cluster.logs_text(), file=sys.stderr)
        raise
    finally:
        await _close(socks)
        await asyncio.to_thread(cluster.stop)
        await proxy.cut()


# Idle Redis sockets ----------------------------------------------------------------------------


async def test_a_room_idle_for_more_than_10s_on_redis_still_hears_a_knock(tmp_path, database):
    cluster = Cluster(tmp_path, database, REDIS_URL).start(2)
    a, b = cluster.bases
    socks: list[Ws] = []
    try:
        cluster.room("quiet")
        mod, _ = await _join(a, "quiet", cluster.token("quiet", is_owner=True, user_id="m"), "m")
        socks.append(mod)
        idle = await mod.drain(12)  # > redis-py's 5 s socket timeout, twice
        assert all(f["type"] != "error" for f in idle), idle
        guest, _ = await _join(b, "quiet", None, "guest", name="After The Silence")
        socks.append(guest)
        frame = await mod.expect("entry-requested", timeout=5)
        assert frame["request"]["name"] == "After The Silence"
        ack = await mod.request("admit", request_id=frame["request"]["id"])
        assert ack["ok"], ack
        await guest.expect("joined", timeout=5)
    except BaseException:
        print(cluster.logs_text(), file=sys.stderr)
        raise
    finally:
        await _close(socks)
        cluster.stop()


# The benchmark, tiny ---------------------------------------------------------------------------


def test_loadtest_quick_completes_with_nothing_lost(tmp_path, database):
    out = tmp_path / "report.json"
    # A saved report far slower than anything: --compare finds nothing worse (exit 0).
    saved = tmp_path / "saved.json"
    slow = {"lost": 0, "p50_ms": 1e9, "p99_ms": 1e9, "cpu_ms_per_op": 1e9}
    saved.write_text(
        json.dumps(
            {"results": [{"scenario": "knock100", "target": "anteroom-2p-pg-redis", **slow}]}
        )
    )
    proc = __import__("subprocess").run(
        [
            sys.executable,
            "manage.py",
            "loadtest",
            "--quick",
            "--json",
            "--processes",
            "2",
            "--database-url",
            database,
            "--redis-url",
            REDIS_URL,
            "--output",
            str(out),
            "--compare",
            str(saved),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-4000:]
    report = json.loads(out.read_text())
    rows = report["results"]
    targets = {r["target"] for r in rows}
    # Both back ends: the embedded default and PostgreSQL + Redis, each beside its relay.
    assert targets == {
        "anteroom-1p-sqlite-memory",
        "anteroom-2p-pg-redis",
        "relay-1p-memory",
        "relay-2p-redis",
    }, targets
    scenarios = {"knock20", "knock100", "storm", "admit_all", "invite", "connects", "idle"}
    for target in targets:
        assert {r["scenario"] for r in rows if r["target"] == target} == scenarios
    for r in rows:
        assert r["error"] is None, r
        assert r["lost"] == 0, r
        assert r["ops"] > 0, r
        assert r["completion_ms"] is not None, r
        assert r["cpu_ms_per_op"] is not None, r
        if r["scenario"] == "idle":
            # Measured on restarted processes: RSS growth per socket, never the negative
            # figure of a process that had freed the memory of earlier scenarios.
            assert r["kib_per_socket"] is not None and r["kib_per_socket"] > 0, r
        else:
            assert None not in (r["p50_ms"], r["p99_ms"], r["max_ms"]), r
        if r["target"].startswith("anteroom") and r["scenario"] != "idle":
            assert r["x_relay_1p"] is not None and r["x_relay_redis"] is not None, r
    assert report["command"].startswith("python manage.py loadtest")
    assert f"compared 4 figures with {saved}" in proc.stderr, proc.stderr[-2000:]
    assert ": 0 worse by more than 25%" in proc.stderr
