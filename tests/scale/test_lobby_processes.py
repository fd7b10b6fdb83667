"""The lobby across real server processes (SPEC §2: "It survives a server restart").

(a) One Daphne on a SQLite file with guests waiting is stopped (SIGTERM, then SIGKILL) and
    started again: every guest resumes with its request id and original deadline, and a
    moderator who connects afterwards is shown every pending request.
(b) Two Daphne processes share PostgreSQL and Redis: a knock on one reaches a moderator on the
    other, and two moderators (one per process) admitting the same request at the same moment
    make exactly one effective decision.

Clients are the ``websockets`` library, as a browser would connect (with an ``Origin``).
"""

from __future__ import annotations

import asyncio
import json
import os
import secrets
import socket
import urllib.request
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import pytest

from tests.support.servers import manage, start_daphne, stop_daphne
from tests.support.ws import Ws

pytestmark = pytest.mark.slow


# Clients -------------------------------------------------------------------------------------


def rest(base: str, key: str, method: str, path: str, body: Any = None) -> Any:
    req = urllib.request.Request(
        base + "/api/v1" + path,
        method=method,
        data=json.dumps(body).encode() if body is not None else None,
        headers={"Authorization": f"Bearer {key}", "Content-Type": "application/json"},
    )
    with urllib.request.urlopen(req, timeout=15) as resp:
        return json.loads(resp.read())


def setup_room(base: str, key: str, room: str) -> None:
    rest(
        base,
        key,
        "POST",
        "/rooms",
        {
            "name": room,
            "privacy": "private",
            "properties": {"enable_knocking": True, "knock_ttl": 600},
        },
    )


def owner_token(base: str, key: str, room: str, sub: str) -> str:
    body = {"properties": {"room_name": room, "is_owner": True, "user_id": sub, "user_name": sub}}
    return str(rest(base, key, "POST", "/meeting-tokens", body)["token"])


def last_line(out: str) -> str:
    return out.strip().splitlines()[-1].strip()


def show_logs(*paths: Path) -> str:
    return "\n".join(f"--- {p.name}\n{p.read_text()[-4000:]}" for p in paths if p.exists())


@asynccontextmanager
async def sockets() -> AsyncIterator[list[Ws]]:
    opened: list[Ws] = []
    try:
        yield opened
    finally:
        for ws in opened:
            await ws.close()


# (a) Restart on SQLite -----------------------------------------------------------------------


@pytest.mark.parametrize("sig", ["term", "kill"])
async def test_waiting_guests_survive_a_server_restart(tmp_path, sig):
    env = {
        "DATABASE_URL": f"sqlite:///{tmp_path / 'anteroom.sqlite3'}",
        "ANTEROOM_SIGNING_KEY": secrets.token_urlsafe(48),
        "ANTEROOM_SWEEP_INTERVAL": "0.5",
        "REDIS_URL": "",
        "LOG_LEVEL": "WARNING",
    }
    manage("migrate", "--noinput", env=env)
    key = last_line(manage("create_api_key", "scale", env=env))
    log = tmp_path / "daphne.log"
    proc, base = start_daphne(env, log)
    try:
        await _restart_scenario(proc, base, key, env, log, sig)
    finally:
        stop_daphne(proc, "kill")


async def _restart_scenario(
    proc: Any, base: str, key: str, env: dict[str, str], log: Path, sig: str
) -> None:
    await asyncio.to_thread(setup_room, base, key, "clinic")
    token = await asyncio.to_thread(owner_token, base, key, "clinic", "dr")
    async with sockets() as opened:
        host = await Ws.open(base, "clinic", "host")
        opened.append(host)
        await host.send(type="join", token=token)
        await host.expect("joined")
        waiting: dict[str, dict[str, Any]] = {}
        # Five guests who will come back, and one whose browser is gone for good.
        for name in [f"Patient {n}" for n in range(5)] + ["Absent"]:
            g = await Ws.open(base, "clinic", name)
            opened.append(g)
            await g.send(type="join", name=name)
            waiting[name] = await g.expect("waiting")
        for _ in waiting:
            await host.expect("entry-requested")

        stop_daphne(proc, sig)
        for ws in opened:
            await ws.wait_closed()
        proc2, base2 = start_daphne(env, log)
        try:
            resumed = {}
            for name, w in waiting.items():
                if name == "Absent":
                    continue
                g = await Ws.open(base2, "clinic", f"{name} again")
                opened.append(g)
                await g.send(type="join", resume=w["resume"])
                again = await g.expect("waiting")
                resumed[name] = (g, again)
                # Same request, same deadline: a restart costs no guest its place.
                assert again["request"]["id"] == w["request"]["id"], show_logs(log)
                assert again["request"]["expires_at"] == w["request"]["expires_at"]
                assert again["request"]["requested_at"] == w["request"]["requested_at"]
            host2 = await Ws.open(base2, "clinic", "host again")
            opened.append(host2)
            await host2.send(type="join", token=token)
            await host2.expect("joined")
            replay = [await host2.expect("entry-requested") for _ in waiting]
            assert {r["request"]["id"] for r in replay} == {
                w["request"]["id"] for w in waiting.values()
            }
            assert {r["request"]["name"] for r in replay} == set(waiting)
            # The resumed sockets are live: the moderator admits one, denies another.
            g0, w0 = resumed["Patient 0"]
            g1, w1 = resumed["Patient 1"]
            ack = await host2.request("admit", rid="a", request_id=w0["request"]["id"])
            assert ack["data"]["effective"] is True
            assert (await g0.expect("joined"))["participant"]["name"] == "Patient 0"
            ack = await host2.request("deny", rid="d", request_id=w1["request"]["id"])
            assert ack["data"]["effective"] is True
            assert (await g1.expect("error"))["error"]["code"] == "ENTRY_DENIED"
            # The guest who never came back is canceled once the grace period (15 s) has run
            # from when the old process lost it (its last heartbeat, after a SIGKILL)...
            gone = await host2.expect("entry-canceled", timeout=40)
            assert gone == {
                "type": "entry-canceled",
                "request_id": waiting["Absent"]["request"]["id"],
                "reason": "disconnected",
            }, show_logs(log)
            # ...while the resumed guests, re-attached to the new process, are still waiting.
            pending = await asyncio.to_thread(
                rest, base2, key, "GET", "/rooms/clinic/entry-requests"
            )
            assert sorted(r["name"] for r in pending["data"]) == [
                "Patient 2",
                "Patient 3",
                "Patient 4",
            ], show_logs(log)
            assert all(r["connected"] for r in pending["data"])
        finally:
            stop_daphne(proc2, "kill")


# (b) Two processes on PostgreSQL and Redis -----------------------------------------------------


def _reachable(host: str, port: int) -> bool:
    try:
        socket.create_connection((host, port), timeout=2).close()
        return True
    except OSError:
        return False


def _unavailable(why: str) -> None:
    if os.environ.get("CI"):
        pytest.fail(f"CI needs PostgreSQL and Redis: {why}")
    pytest.skip(f"PostgreSQL/Redis not reachable: {why}")


@pytest.fixture
def pg_and_redis() -> Any:
    """A fresh PostgreSQL database and a unique Redis prefix; both removed afterwards."""
    import psycopg
    import redis

    admin_url = os.environ.get("TEST_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/postgres")
    redis_url = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
    parts = urlsplit(admin_url)
    rparts = urlsplit(redis_url)
    if not _reachable(parts.hostname or "127.0.0.1", parts.port or 5432):
        _unavailable(f"no PostgreSQL at {parts.hostname}:{parts.port}")
    if not _reachable(rparts.hostname or "127.0.0.1", rparts.port or 6379):
        _unavailable(f"no Redis at {rparts.hostname}:{rparts.port}")
    name = f"anteroom_scale_{secrets.token_hex(4)}"
    try:
        with psycopg.connect(admin_url, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
    except psycopg.Error as exc:
        _unavailable(f"cannot create a database: {exc}")
    prefix = name
    try:
        yield {
            "DATABASE_URL": urlunsplit(parts._replace(path=f"/{name}")),
            "REDIS_URL": redis_url,
            "ANTEROOM_CHANNEL_PREFIX": prefix,
        }
    finally:
        with psycopg.connect(admin_url, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        r = redis.Redis.from_url(redis_url)
        for k in r.scan_iter(f"{prefix}*"):
            r.delete(k)
        r.close()


async def test_two_processes_share_knocks_and_one_decision_wins(tmp_path, pg_and_redis):
    env = {
        **pg_and_redis,
        "ANTEROOM_SIGNING_KEY": secrets.token_urlsafe(48),
        "ANTEROOM_SWEEP_INTERVAL": "0.5",
        "LOG_LEVEL": "WARNING",
    }
    manage("migrate", "--noinput", env=env)
    key = last_line(manage("create_api_key", "scale", env=env))
    logs = [tmp_path / "a.log", tmp_path / "b.log"]
    proc_a, base_a = start_daphne(env, logs[0])
    try:
        proc_b, base_b = start_daphne(env, logs[1])
    except Exception:
        stop_daphne(proc_a, "kill")
        raise
    try:
        await _two_process_scenario(base_a, base_b, key, logs)
    finally:
        stop_daphne(proc_a)
        stop_daphne(proc_b)


async def _two_process_scenario(base_a: str, base_b: str, key: str, logs: list[Path]) -> None:
    await asyncio.to_thread(setup_room, base_a, key, "clinic")
    tok_a = await asyncio.to_thread(owner_token, base_a, key, "clinic", "mod-a")
    tok_b = await asyncio.to_thread(owner_token, base_b, key, "clinic", "mod-b")
    async with sockets() as opened:
        mod_a = await Ws.open(base_a, "clinic", "mod-a")
        mod_b = await Ws.open(base_b, "clinic", "mod-b")
        opened += [mod_a, mod_b]
        for mod, tok in ((mod_a, tok_a), (mod_b, tok_b)):
            await mod.send(type="join", token=tok)
            await mod.expect("joined")
        # An idle room for longer than redis-py's default socket timeout (5 s), then a knock.
        await asyncio.sleep(11)
        guests = []
        for n in range(4):
            g = await Ws.open(base_a, "clinic", f"guest{n}")
            opened.append(g)
            await g.send(type="join", name=f"Guest {n}")
            guests.append((g, (await g.expect("waiting"))["request"]["id"]))
        # The knocks on A reach the moderator on B.
        seen_b = {(await mod_b.expect("entry-requested"))["request"]["id"] for _ in guests}
        seen_a = {(await mod_a.expect("entry-requested"))["request"]["id"] for _ in guests}
        assert seen_a == seen_b == {rid for _, rid in guests}, show_logs(*logs)

        for g, rid in guests:
            # Both moderators click Admit at the same moment, on different processes.
            acks = await asyncio.gather(
                mod_a.request("admit", rid=f"a-{rid}", request_id=rid),
                mod_b.request("admit", rid=f"b-{rid}", request_id=rid),
            )
            assert sorted(a["data"]["effective"] for a in acks) == [False, True], acks
            assert {a["data"]["outcome"] for a in acks} == {"admitted"}
            joined = await g.expect("joined")
            assert joined["participant"]["name"].startswith("Guest")
        # Let every event land, then count: one entry-resolved per request per moderator, one
        # joined per guest.
        frames_a = await mod_a.drain(2)
        frames_b = await mod_b.drain(0.5)
        for label, frames, mod in (("a", frames_a, mod_a), ("b", frames_b, mod_b)):
            resolved = [f["request_id"] for f in mod.seen if f["type"] == "entry-resolved"]
            assert sorted(resolved) == sorted(rid for _, rid in guests), (label, frames)
            joined_evts = [
                f
                for f in mod.seen
                if f["type"] == "participant-joined"
                and f["participant"]["name"].startswith("Guest")
            ]
            assert len(joined_evts) == len(guests), (label, [f["type"] for f in mod.seen])
        for g, _ in guests:
            rest_frames = await g.drain(0.3)
            assert [f["type"] for f in g.seen].count("joined") == 1, rest_frames
        state = await asyncio.to_thread(rest, base_b, key, "GET", "/rooms/clinic/participants")
        assert state["total_count"] == 2 + len(guests)
