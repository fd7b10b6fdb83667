"""The bare baseline: a ``websockets`` relay doing Anteroom's JSON work with no framework.

It speaks the subset of the protocol that ``manage.py loadtest`` drives (``preauth``, ``join``
with or without a token, ``admit-all``, ``breakout-create-and-invite``), verifies the same HS256
tokens, builds the same frames and fans them out to the same audiences — with no database, no
Django, no Channels. Single process: groups are in-process sets. With ``--redis``: several relay
processes share state through Redis (pending knocks and members in hashes) and fan out through
Redis pub/sub (one channel per group, subscribed while a local socket is in the group).

This is the floor Python allows, measured in the same run; it is not a product.
Run: ``python -m lobby.loadtest.relay --fd N --key KEY [--redis URL --prefix P]``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import socket
import uuid
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from typing import Any

import websockets
from websockets.asyncio.server import ServerConnection, serve

from lobby.errors import InvalidToken
from lobby.tokens import decode_signature


def _now() -> str:
    return datetime.now(UTC).isoformat().replace("+00:00", "Z")


def _dumps(frame: dict[str, Any]) -> str:
    return json.dumps(frame, separators=(",", ":"))


class Relay:
    def __init__(self, key: str, redis_url: str | None, prefix: str) -> None:
        self.key = key
        self.groups: dict[str, set[ServerConnection]] = defaultdict(set)
        self.pending: dict[str, dict[str, dict[str, Any]]] = defaultdict(dict)
        self.members: dict[str, dict[str, dict[str, Any]]] = defaultdict(dict)
        self.prefix = prefix
        self.sending: set[asyncio.Future[None]] = set()
        self.redis: Any = None
        self.pubsub: Any = None
        if redis_url:
            from redis.asyncio import Redis

            self.redis = Redis.from_url(redis_url, max_connections=1000)

    async def start(self) -> None:
        if self.redis is not None:
            self.pubsub = self.redis.pubsub()
            await self.pubsub.subscribe(f"{self.prefix}:_")
            asyncio.get_running_loop().create_task(self._listen())

    async def _listen(self) -> None:
        # Redis closes a subscriber whose output buffer passes its pub/sub limit (32 MB by
        # default): admit-all of 1,000 pushes ~100 MB of joined frames. Reconnect and
        # resubscribe; what was in flight is lost (and counted as lost by the load test).
        while True:
            assert self.pubsub is not None
            try:
                async for msg in self.pubsub.listen():
                    if msg.get("type") != "message":
                        continue
                    group = msg["channel"].decode()[len(self.prefix) + 1 :]
                    self._deliver(group, msg["data"].decode())
            except Exception as exc:
                print(f"pub/sub connection lost ({exc}); resubscribing", flush=True)
                self.pubsub = self.redis.pubsub()
                channels = [f"{self.prefix}:{g}" for g, m in self.groups.items() if m]
                await self.pubsub.subscribe(f"{self.prefix}:_", *channels)

    def _deliver(self, group: str, text: str) -> None:
        for ws in list(self.groups.get(group, ())):
            # ``send`` of websockets is a coroutine; schedule without waiting (like a relay).
            task = asyncio.ensure_future(_safe_send(ws, text))
            self.sending.add(task)
            task.add_done_callback(self.sending.discard)

    async def add(self, group: str, ws: ServerConnection) -> None:
        first = group not in self.groups or not self.groups[group]
        self.groups[group].add(ws)
        if first and self.pubsub is not None:
            await self.pubsub.subscribe(f"{self.prefix}:{group}")

    def discard_all(self, ws: ServerConnection) -> None:
        for members in self.groups.values():
            members.discard(ws)

    async def publish(self, group: str, frame: dict[str, Any]) -> None:
        text = _dumps(frame)
        if self.redis is None:
            self._deliver(group, text)
        else:
            await self.redis.publish(f"{self.prefix}:{group}", text)

    async def publish_many(self, items: list[tuple[str, dict[str, Any]]]) -> None:
        if self.redis is None:
            for group, frame in items:
                self._deliver(group, _dumps(frame))
            return
        pipe = self.redis.pipeline(transaction=False)
        for group, frame in items:
            pipe.publish(f"{self.prefix}:{group}", _dumps(frame))
        await pipe.execute()

    # State (in memory, or Redis hashes shared by the relay processes) -----------------------

    async def put_pending(self, room: str, req: dict[str, Any]) -> None:
        if self.redis is None:
            self.pending[room][req["id"]] = req
        else:
            await self.redis.hset(f"{self.prefix}:pending:{room}", req["id"], _dumps(req))

    async def take_pending(self, room: str) -> list[dict[str, Any]]:
        if self.redis is None:
            out = list(self.pending[room].values())
            self.pending[room].clear()
            return out
        key = f"{self.prefix}:pending:{room}"
        pipe = self.redis.pipeline(transaction=True)
        pipe.hgetall(key)
        pipe.delete(key)
        raw, _ = await pipe.execute()
        return sorted((json.loads(v) for v in raw.values()), key=lambda r: r["requested_at"])

    async def put_member(self, room: str, p: dict[str, Any]) -> None:
        if self.redis is None:
            self.members[room][p["participant_id"]] = p
        else:
            await self.redis.hset(f"{self.prefix}:members:{room}", p["participant_id"], _dumps(p))

    async def roster(self, room: str) -> list[dict[str, Any]]:
        if self.redis is None:
            return list(self.members[room].values())
        raw = await self.redis.hgetall(f"{self.prefix}:members:{room}")
        return [json.loads(v) for v in raw.values()]

    # Protocol ------------------------------------------------------------------------------

    def claims(self, token: Any, room: str) -> dict[str, Any] | None:
        if token is None:
            return None
        claims = decode_signature(token, self.key)
        if claims.get("room") not in (None, room):
            raise ValueError("other room")
        return claims

    async def handle(self, ws: ServerConnection) -> None:
        path = ws.request.path if ws.request is not None else "/"
        room = path.strip("/").split("/")[-1]
        state: dict[str, Any] = {}
        try:
            async for text in ws:
                msg = json.loads(text)
                if not isinstance(msg, dict) or not isinstance(msg.get("type"), str):
                    await ws.send(_dumps({"type": "error", "error": {"code": "BAD_REQUEST"}}))
                    continue
                data = await self.on(ws, room, state, msg)
                if msg.get("rid") is not None:
                    await ws.send(
                        _dumps({"type": "ack", "rid": msg["rid"], "ok": True, "data": data or {}})
                    )
        except (websockets.ConnectionClosed, ValueError, InvalidToken):
            pass
        finally:
            self.discard_all(ws)

    async def on(
        self, ws: ServerConnection, room: str, state: dict[str, Any], msg: dict[str, Any]
    ) -> dict[str, Any] | None:
        kind = msg["type"]
        if kind == "preauth":
            c = self.claims(msg.get("token"), room)
            level = "lobby" if c is None or c.get("joinPolicy", {}).get("mode") == "ask" else "full"
            await ws.send(_dumps({"type": "access-state", "level": level}))
            return {"level": level}
        if kind == "join":
            c = self.claims(msg.get("token"), room)
            pid = (c or {}).get("sub") or f"g-{uuid.uuid4().hex}"
            name = (c or {}).get("name") or msg.get("name") or "Guest"
            if c is None or c.get("joinPolicy", {}).get("mode") == "ask":
                rid = str(uuid.uuid4())
                now = datetime.now(UTC)
                req = {
                    "id": rid,
                    "participant_id": pid,
                    "name": name,
                    "metadata": msg.get("metadata") or {},
                    "requested_at": now.isoformat().replace("+00:00", "Z"),
                    "expires_at": (now + timedelta(seconds=60)).isoformat().replace("+00:00", "Z"),
                    "status": "pending",
                    "connected": True,
                }
                await self.add(f"req.{rid}", ws)
                await self.put_pending(room, req)
                await ws.send(_dumps({"type": "access-state", "level": "lobby"}))
                await self.publish(f"mods.{room}", {"type": "entry-requested", "request": req})
                guest = {k: req[k] for k in ("id", "requested_at", "expires_at")}
                await ws.send(_dumps({"type": "waiting", "request": guest, "resume": "x"}))
                return {"request_id": rid, "level": "lobby"}
            mod = bool(c.get("owner") or c.get("grant", {}).get("canModerate"))
            p = {
                "participant_id": pid,
                "name": name,
                "role": "moderator" if mod else "participant",
                "status": "active",
                "breakout_id": None,
            }
            state["participant"] = p
            await self.add(f"members.{room}", ws)
            await self.add(f"pt.{room}.{pid}", ws)
            if mod:
                await self.add(f"mods.{room}", ws)
            await self.put_member(room, p)
            await self.publish(f"members.{room}", {"type": "participant-joined", "participant": p})
            await ws.send(
                _dumps(
                    {
                        "type": "joined",
                        "participant": p,
                        "room": {"name": room},
                        "participants": await self.roster(room),
                        "resume": "x",
                        "breakouts": [],
                    }
                )
            )
            return {"participant_id": pid, "level": "full"}
        if kind == "admit-all":
            pending = await self.take_pending(room)
            admitted = [
                {
                    "participant_id": r["participant_id"],
                    "name": r["name"],
                    "role": "participant",
                    "status": "active",
                    "breakout_id": None,
                }
                for r in pending
            ]
            for p in admitted:
                await self.put_member(room, p)
            roster = await self.roster(room)
            by = state.get("participant", {}).get("participant_id", "")
            items: list[tuple[str, dict[str, Any]]] = [
                (
                    f"mods.{room}",
                    {
                        "type": "entry-resolved",
                        "request_id": r["id"],
                        "outcome": "admitted",
                        "by": by,
                    },
                )
                for r in pending
            ]
            for r, p in zip(pending, admitted, strict=True):
                joined = {
                    "type": "joined",
                    "participant": p,
                    "room": {"name": room},
                    "participants": roster,
                    "resume": None,
                    "breakouts": [],
                }
                items.append((f"req.{r['id']}", joined))
            items += [
                (f"members.{room}", {"type": "participant-joined", "participant": p})
                for p in admitted
            ]
            await self.publish_many(items)
            return {"count": len(pending)}
        if kind == "breakout-create-and-invite":
            capacity = int(msg.get("participants", 2))
            max_rooms = int(msg.get("max_rooms", 10))
            people = [p for p in await self.roster(room) if p["role"] == "participant"]
            count = min(max_rooms, max(1, -(-len(people) // capacity)))
            rooms: list[dict[str, Any]] = [
                {
                    "id": str(uuid.uuid4()),
                    "name": f"{room}-{i + 1}",
                    "number": i + 1,
                    "capacity": capacity,
                    "audio": True,
                    "video": True,
                    "canvas": False,
                    "share": False,
                    "members": [],
                    "ends_at": None,
                }
                for i in range(count)
            ]
            assignments: dict[str, list[str]] = {r["id"]: [] for r in rooms}
            invites: list[tuple[str, dict[str, Any]]] = []
            for i, p in enumerate(people[: count * capacity]):
                r = rooms[i % count]
                assignments[r["id"]].append(p["participant_id"])
                invites.append(
                    (f"pt.{room}.{p['participant_id']}", {"type": "breakout-invitation", "room": r})
                )
            by = state.get("participant", {}).get("participant_id", "")
            invites += [
                (
                    f"mods.{room}",
                    {"type": "breakout-invited", "room_id": rid, "clients": ids, "by": by},
                )
                for rid, ids in assignments.items()
            ]
            await self.publish_many(invites)
            return {"rooms": rooms, "assignments": assignments}
        return None


async def _safe_send(ws: ServerConnection, text: str) -> None:
    try:
        await ws.send(text)
    except websockets.ConnectionClosed:
        pass


async def main(fd: int, key: str, redis_url: str | None, prefix: str) -> None:
    relay = Relay(key, redis_url, prefix)
    await relay.start()
    sock = socket.socket(fileno=fd)
    async with serve(
        relay.handle, sock=sock, compression=None, max_size=2**20, ping_interval=None
    ) as server:
        await server.serve_forever()


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--fd", type=int, required=True)
    ap.add_argument("--key", required=True)
    ap.add_argument("--redis", default=None)
    ap.add_argument("--prefix", default="relay")
    a = ap.parse_args()
    asyncio.run(main(a.fd, a.key, a.redis, a.prefix))
