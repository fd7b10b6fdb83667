"""The WebSocket consumer at ``/ws/rooms/<room>/``: it translates, it holds no rule.

Authenticate, subscribe to the right groups *before* reading the snapshot, map each
allow-listed message type to one service call, map service errors to ``ack``/``error`` frames.
No exception escapes ``receive``; client dicts are never spread into events.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
import uuid
from collections.abc import Awaitable, Callable, Mapping
from datetime import datetime
from typing import Any

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncWebsocketConsumer
from django.conf import settings
from django.core import signing
from django.db import DatabaseError, InterfaceError, OperationalError
from django.utils import translation

from . import (
    clock,
    commands,
    events,
    extensions,
    frames,
    instructions,
    services,
    staff_sessions,
)
from .errors import (
    AnteroomError,
    BadRequest,
    JoinRaced,
    NotJoined,
    RateLimited,
    StaffSessionEnded,
    Unavailable,
    error_text,
)
from .instructions import (
    Admit,
    Cancel,
    Close,
    Deliver,
    Instruction,
    Queue,
    Regroup,
    StaffCheck,
    ToLobby,
)
from .languages import socket_language
from .models import Role, Room
from .ops import metrics
from .ops.logs import connection_id_var
from .resilience import ResilientConsumer
from .runtime import limits
from .runtime.process import RUNTIME
from .services import appointments, moderation

log = logging.getLogger("anteroom.ws")

GUEST_COOKIE = "anteroom_guest"
GUEST_COOKIE_SALT = "anteroom.guest"

# Message handlers of other apps (breakouts register theirs): lobby/extensions.py.
Handler = extensions.Handler


class FrameBucket:
    """Token bucket: ``rate`` frames per second sustained, bursts of ``burst``."""

    def __init__(self, rate: float, burst: float) -> None:
        self.rate, self.burst = rate, burst
        self.tokens, self.stamp = burst, time.monotonic()

    def take(self) -> bool:
        now = time.monotonic()
        self.tokens = min(self.burst, self.tokens + (now - self.stamp) * self.rate)
        self.stamp = now
        if self.tokens >= 1:
            self.tokens -= 1
            return True
        return False


def _db_call(fn: Callable[..., Any]) -> Callable[..., Awaitable[Any]]:
    return database_sync_to_async(fn)


class RoomConsumer(ResilientConsumer, AsyncWebsocketConsumer):
    state: str  # "new" | "waiting" | "joined" | "closed"

    async def connect(self) -> None:
        self.room_name: str = self.scope["url_route"]["kwargs"]["room"]
        self.connection_id = uuid.uuid4().hex
        self.state = "new"
        self.room: Room | None = None
        self.request_id: uuid.UUID | None = None
        self.participant_id: str | None = None
        self.role: str | None = None
        self.breakout_id: str | None = None
        self.token_jti: str = ""
        self.token_expires_at: datetime | None = None
        self.staff_user_id: int | None = None
        self.staff_session_key = ""
        self.staff_check_task: asyncio.Task[None] | None = None
        self.position: tuple[int, int] | None = None
        self.my_groups: set[str] = set()
        rate, burst = settings.ANTEROOM_FRAME_RATE
        self.bucket = FrameBucket(rate, burst)
        self.conn = services.Connection(
            server_id=RUNTIME.server_id,
            connection_id=self.connection_id,
            browser_key=self._browser_key(),
            client_address=self._client_address(),
        )
        self.slots: list[tuple[limits.SocketSlots, str]] = []
        self.alerts: events.KnockAlerts | None = None
        self.alert_task: asyncio.Task[None] | None = None
        connection_id_var.set(self.connection_id)  # stamped on every log line of this socket
        # Accept first so browsers see our error frames and 44xx close codes.
        await self.accept()
        metrics.OPEN_SOCKETS.inc()
        # Set while no join is being handled: a join that arrived in time is never cut off by
        # the deadline because the database is slow to store its knock.
        self.no_join_in_flight = asyncio.Event()
        self.no_join_in_flight.set()
        # A timer handle, not a sleeping task: a waiting guest's socket keeps it for
        # ANTEROOM_JOIN_TIMEOUT seconds, and a handle is a few hundred bytes of its memory.
        self.join_timer = asyncio.get_running_loop().call_later(
            settings.ANTEROOM_JOIN_TIMEOUT, self._join_deadline_passed
        )
        self.join_check: asyncio.Task[None] | None = None
        log.info(
            "ws connect",
            extra={"connection_id": self.connection_id, "room": self.room_name},
        )
        address = limits.address_key(self.conn.client_address)
        if not self._claim_slot(RUNTIME.addresses, address, "address"):
            await self._fail_join(limits.TooManySockets(), None)

    def _claim_slot(self, slots: limits.SocketSlots, key: str, kind: str) -> bool:
        """Count this socket against a per-process cap (docs/security.md); False if over."""
        if not key or (slots, key) in self.slots:
            return True
        limit = {
            "address": settings.ANTEROOM_MAX_SOCKETS_PER_ADDRESS,
            "token": settings.ANTEROOM_MAX_SOCKETS_PER_TOKEN,
        }[kind]
        if not slots.claim(key, limit):
            metrics.SOCKETS_REJECTED.inc(limit=kind)
            log.warning(
                "socket cap reached", extra={"connection_id": self.connection_id, "limit": kind}
            )
            return False
        self.slots.append((slots, key))
        return True

    def _browser_key(self) -> str:
        raw = self.scope.get("cookies", {}).get(GUEST_COOKIE)
        if not raw:
            return ""
        try:
            value = signing.loads(raw, salt=GUEST_COOKIE_SALT)
        except signing.BadSignature:
            return ""
        return services.hash_secret(str(value))

    def _client_address(self) -> str:
        client = self.scope.get("client")
        return str(client[0])[:64] if client else ""

    def _join_deadline_passed(self) -> None:
        if self.state == "new":  # else it joined (or closed) in time: nothing to do
            self.join_check = asyncio.create_task(self._close_if_not_joined())

    async def _close_if_not_joined(self) -> None:
        await self.no_join_in_flight.wait()
        if self.state == "new":
            seconds = f"{settings.ANTEROOM_JOIN_TIMEOUT:g}"
            await self._send_error(BadRequest(f"Send join within {seconds} seconds."), None)
            await self.close(code=4400)

    async def disconnect(self, code: int) -> None:
        self.join_timer.cancel()
        if self.join_check is not None:
            self.join_check.cancel()
        if self.alert_task is not None:
            self.alert_task.cancel()
        if self.staff_check_task is not None:
            self.staff_check_task.cancel()
        for slots, key in self.slots:
            slots.release(key)
        self.slots = []
        metrics.OPEN_SOCKETS.dec()
        log.info(
            "ws close",
            extra={"connection_id": self.connection_id, "code": code, "state": self.state},
        )
        state, self.state = self.state, "closed"
        try:
            if state == "waiting" and self.request_id is not None:
                await _db_call(services.entry_request_disconnected)(
                    request_id=self.request_id, connection_id=self.connection_id
                )
            elif state == "joined" and self.room is not None and self.participant_id:
                await _db_call(services.participant_disconnected)(
                    room=self.room,
                    participant_id=self.participant_id,
                    connection_id=self.connection_id,
                )
        except (DatabaseError, InterfaceError):
            # The sweeper finds sockets of this process through its heartbeat instead.
            log.warning("could not record a disconnect; the sweeper will")
        for group in list(self.my_groups):
            await self._discard(group)

    # Groups --------------------------------------------------------------------------------

    async def _add(self, group: str) -> None:
        if group not in self.my_groups:
            await self.channel_layer.group_add(group, self.channel_name)
            self.my_groups.add(group)

    async def _discard(self, group: str) -> None:
        if group in self.my_groups:
            self.my_groups.discard(group)
            await self.channel_layer.group_discard(group, self.channel_name)

    # Frames in -----------------------------------------------------------------------------

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        rid = None
        try:
            if not self.bucket.take():
                raise RateLimited()
            if text_data is None:
                raise BadRequest("Binary frames are not accepted.")
            msg = commands.decode_frame(text_data)  # size, strict JSON, depth, type, rid
            rid = msg.get("rid")
            handler = self._handler(msg["type"])
            data = await handler(msg)
            if rid is not None and self.state != "closed":
                await self.send_json(frames.ack(rid, data))
        except StaffSessionEnded as exc:
            await self._end_staff_socket(exc, rid)
        except AnteroomError as exc:
            await self._send_error(exc, rid)
        except (OperationalError, InterfaceError):
            log.warning("database unavailable while handling a frame")
            await self._send_error(Unavailable(), rid)
        except Exception:
            log.exception("unexpected error handling a frame")
            await self._send_error(Unavailable("Internal error; retry later."), rid)

    def _handler(self, kind: str) -> Callable[[dict[str, Any]], Awaitable[dict[str, Any] | None]]:
        own = {
            "preauth": self.on_preauth,
            "join": self.on_join,
            "cancel": self.on_cancel,
            "update-name": self.on_update_name,
            "admit": self.on_admit,
            "deny": self.on_deny,
            "admit-all": self.on_admit_all,
            "deny-all": self.on_deny_all,
            "room-pause": self.on_room_pause,
            "room-resume": self.on_room_resume,
            "room-mute": self.on_room_mute,
            "room-unmute": self.on_room_unmute,
            "leave": self.on_leave,
            "participant-remove": self.on_participant_remove,
            "participant-to-lobby": self.on_participant_to_lobby,
            "lobby-message": self.on_lobby_message,
            "entry-message": self.on_entry_message,
        }
        if kind in own:
            return own[kind]
        if kind in extensions.ws_handlers:
            extra = extensions.ws_handlers[kind]
            return lambda msg: extra(self, msg)
        raise BadRequest("Unknown message type.")

    async def send_json(self, content: Mapping[str, Any]) -> None:
        await self.send(text_data=json.dumps(content, separators=(",", ":")))

    async def _send_error(self, exc: AnteroomError, rid: Any) -> None:
        if self.state == "closed":
            return
        # The code stays; the message reads in the language of the page that opened the socket.
        if not hasattr(self, "language"):
            self.language = socket_language(self.scope)
        with translation.override(self.language):
            error = {**exc.as_dict(), "message": error_text(exc)}
        if rid is not None:
            await self.send_json(frames.ack_error(rid, error))
        else:
            await self.send_json(frames.error_of(error))

    # Helpers for handlers ------------------------------------------------------------------

    def require_joined(self) -> tuple[Room, services.Actor]:
        if self.state != "joined" or self.room is None or self.participant_id is None:
            raise NotJoined()
        return self.room, services.Actor(
            by=self.participant_id,
            can_moderate=self.role == Role.MODERATOR,
            participant_id=self.participant_id,
            token_jti=self.token_jti or None,
            token_expires_at=self.token_expires_at,
            staff_user_id=self.staff_user_id,
            staff_session_key=self.staff_session_key or None,
        )

    async def call(self, fn: Callable[..., Any], **kwargs: Any) -> Any:
        return await _db_call(fn)(**kwargs)

    async def _fail_join(self, exc: AnteroomError, rid: Any) -> None:
        await self._send_error(exc, rid)
        if exc.close_code:
            self.state = "closed"
            await self.close(code=exc.close_code)

    # Handlers ------------------------------------------------------------------------------

    async def on_preauth(self, msg: dict[str, Any]) -> dict[str, Any] | None:
        # A warm connect is answered from the caches, without the hop to the ORM thread.
        access = services.preauth_cached(room_name=self.room_name, token=msg.get("token"))
        if access is None:
            access = await self.call(
                services.preauth, room_name=self.room_name, token=msg.get("token")
            )
        if self.state == "new":
            self.state = "preauthed"
        await self.send_json(frames.access_state(access.level, access.reason))
        return {"level": access.level}

    async def on_join(self, msg: dict[str, Any]) -> dict[str, Any] | None:
        if self.state in ("waiting", "joined"):
            raise BadRequest("Already joined.")
        rid = msg.get("rid")
        self.no_join_in_flight.clear()
        try:
            try:
                return await self._plan_and_join(msg)
            except JoinRaced:
                # The presence its resume key held ended while this join was on its way (a
                # moderator removed it or sent it back to the waiting room): decide again.
                return await self._plan_and_join(msg)
        except AnteroomError as exc:
            if not exc.close_code:
                raise  # receive() answers it: one ack, and the socket stays usable
            await self._fail_join(exc, rid)
            return None
        finally:
            self.no_join_in_flight.set()

    async def _plan_and_join(self, msg: dict[str, Any]) -> dict[str, Any] | None:
        plan = await self.call(
            services.join_plan,
            room_name=self.room_name,
            token=msg.get("token"),
            name=msg.get("name"),
            resume=msg.get("resume"),
            staff_user=self.scope.get("user") if msg.get("staff") is True else None,
        )
        if plan.claims is not None and plan.claims.sub:
            # Personal tokens only: reusable audience tokens are shared by design.
            if not self._claim_slot(RUNTIME.tokens, plan.claims.key, "token"):
                raise limits.TooManySockets()
        self.room = plan.room
        log.info(
            "ws join",
            extra={
                "connection_id": self.connection_id,
                "room": plan.room.name,
                "access": plan.level,
                "role": plan.role,
                "participant_id": plan.participant_id,
            },
        )
        if plan.level == "lobby":
            return await self._join_lobby(plan, msg.get("metadata"))
        return await self._join_room(plan)

    async def _join_lobby(self, plan: services.JoinPlan, metadata: Any) -> dict[str, Any] | None:
        """Knock (or resume a knock). The socket subscribes to its guest groups before the knock
        is stored, so no decision can be missed."""
        if plan.request_id is None:
            raise BadRequest("This join does not wait in the lobby.")
        await self.send_json(frames.access_state("lobby"))
        self.request_id = plan.request_id
        await self._add(events.request_group(plan.request_id))
        await self._add(events.lobby_group(plan.room.pk))
        try:
            waiting = await self.call(
                services.entry_request_knock_for_socket,
                plan=plan,
                conn=self.conn,
                metadata=metadata,
            )
        except BaseException:
            await self._discard(events.request_group(plan.request_id))
            await self._discard(events.lobby_group(plan.room.pk))
            raise
        if self.state == "closed":
            return None
        if self.state == "new" or self.state == "preauthed":
            await self._now_waiting(plan, waiting)
        return {"request_id": str(waiting.request.id), "level": "lobby"}

    async def _now_waiting(self, plan: services.JoinPlan, waiting: services.Waiting) -> None:
        """The socket is a waiting guest's now: ``waiting`` and its place, what the host has said
        to the waiting room and to this guest (only text), when the room opens if early, and an
        estimate of the wait from enough recent admissions (else nothing)."""
        self.state = "waiting"
        self.participant_id = plan.participant_id
        self.role = plan.role
        await self.send_json(frames.waiting(waiting.request, resume=waiting.resume))
        await self._send_position(waiting.position, waiting.total)
        if plan.room.lobby_message:
            await self.send_json(frames.lobby_message(plan.room.lobby_message))
        if waiting.request.host_message:
            await self.send_json(frames.host_message(waiting.request.host_message))
        for frame in appointments.guest_frames(plan.room, now=clock.now()):
            await self.send_json(frame)
        if waiting.seconds_per_guest is not None:
            await self.send_json(frames.wait_estimate(waiting.seconds_per_guest))

    async def _join_room(self, plan: services.JoinPlan) -> dict[str, Any]:
        """Enter directly (or resume a presence). The socket subscribes to the member groups
        before the join reads its snapshot, so nothing after the snapshot is missed."""
        await self._subscribe_member(plan.room, plan.participant_id, plan.role)
        self.participant_id, self.role = plan.participant_id, plan.role
        self.token_jti, self.token_expires_at = plan.token_jti, plan.token_expires_at
        self.staff_user_id = plan.staff_user_id
        if plan.staff_user_id is not None:
            await self._watch_staff_session(plan.staff_user_id)
        try:
            joined = await self.call(services.participant_join, plan=plan, conn=self.conn)
        except BaseException:
            for g in list(self.my_groups):
                await self._discard(g)
            raise
        self.state = "joined"
        if joined.participant.breakout_id is not None:
            # Resumed while in a breakout room: hear that room again.
            self.breakout_id = str(joined.participant.breakout_id)
            await self._add(events.members_group(joined.participant.breakout_id))
        await self.send_json(services.joined_frame(joined))
        for r in joined.pending:
            await self.send_json(frames.entry_requested(r))
        for frame in await self.call(
            extensions.frames_after_join, parent=plan.room, participant_id=plan.participant_id
        ):
            await self.send_json(frame)  # e.g. pending breakout invitations, after a reconnect
        if plan.role == Role.MODERATOR:
            self.alerts = events.KnockAlerts(pending=(str(r.id) for r in joined.pending))
        return {"participant_id": plan.participant_id, "level": "full"}

    # Staff sessions (lobby/staff_sessions.py) -----------------------------------------------

    async def _watch_staff_session(self, user_id: int) -> None:
        """Remember the session this staff socket stands on, hear its user's doorbell, and
        re-check it every ``ANTEROOM_STAFF_SESSION_CHECK`` seconds."""
        session = self.scope.get("session")
        self.staff_session_key = (getattr(session, "session_key", None) or "") if session else ""
        await self._add(events.staff_group(user_id))
        interval = settings.ANTEROOM_STAFF_SESSION_CHECK

        async def every() -> None:
            while self.state != "closed":
                await asyncio.sleep(interval)
                await self._check_staff_session()

        if interval > 0:
            self.staff_check_task = asyncio.create_task(every())

    async def _check_staff_session(self, ended_session: str = "") -> None:
        if self.state == "closed" or self.staff_user_id is None:
            return
        key = self.staff_session_key
        if ended_session and key and staff_sessions.session_digest(key) == ended_session:
            ok = False  # signed out: Django flushes the session right after the signal
        else:
            try:
                ok = await _db_call(staff_sessions.staff_socket_valid)(
                    user_id=self.staff_user_id, session_key=key
                )
            except (DatabaseError, InterfaceError):
                return  # the database is down: every action re-checks anyway; try again later
        if not ok:
            await self._end_staff_socket(StaffSessionEnded(), None)

    async def _end_staff_socket(self, exc: AnteroomError, rid: Any) -> None:
        log.info("staff session ended", extra={"connection_id": self.connection_id})
        await self._send_error(exc, rid)
        self.state = "closed"
        for g in list(self.my_groups):
            await self._discard(g)
        await self.close(code=exc.close_code or 4401)

    async def _subscribe_member(self, room: Room, participant_id: str, role: str) -> None:
        await self._add(events.members_group(room.pk))
        await self._add(events.participant_group(room.pk, participant_id))
        await self._add(events.media_group(room.pk, participant_id))
        if role == Role.MODERATOR:
            await self._add(events.mods_group(room.pk))
            await self._add(events.activity_group(room.pk))

    async def on_cancel(self, msg: dict[str, Any]) -> dict[str, Any] | None:
        if self.state != "waiting" or self.room is None or self.request_id is None:
            raise NotJoined("Nothing to cancel.")
        done = await self.call(
            services.entry_request_cancel,
            room=self.room,
            request_id=self.request_id,
            reason="aborted",
        )
        return {"canceled": done}

    async def on_update_name(self, msg: dict[str, Any]) -> dict[str, Any] | None:
        if self.state == "waiting" and self.request_id is not None:
            r = await self.call(
                services.entry_request_rename, request_id=self.request_id, name=msg.get("name")
            )
            return {"name": r.name}
        room, _ = self.require_joined()
        assert self.participant_id is not None
        p = await self.call(
            services.participant_rename,
            room=room,
            participant_id=self.participant_id,
            name=msg.get("name"),
        )
        return {"name": p.name}

    async def _decide(self, msg: dict[str, Any], outcome: str) -> dict[str, Any]:
        room, actor = self.require_joined()
        m = (commands.Admit if outcome == "admitted" else commands.Deny).parse(msg)
        d = await self.call(
            services.entry_request_decide,
            room=room,
            request_id=m.request_id,
            actor=actor,
            outcome=outcome,
            reason=m.reason,
        )
        return {"request_id": str(d.request.id), "outcome": d.outcome, "effective": d.effective}

    async def on_admit(self, msg: dict[str, Any]) -> dict[str, Any] | None:
        return await self._decide(msg, "admitted")

    async def on_deny(self, msg: dict[str, Any]) -> dict[str, Any] | None:
        return await self._decide(msg, "denied")

    async def on_admit_all(self, msg: dict[str, Any]) -> dict[str, Any] | None:
        room, actor = self.require_joined()
        n = await self.call(
            services.entry_requests_decide_all, room=room, actor=actor, outcome="admitted"
        )
        return {"count": n}

    async def on_deny_all(self, msg: dict[str, Any]) -> dict[str, Any] | None:
        room, actor = self.require_joined()
        n = await self.call(
            services.entry_requests_decide_all, room=room, actor=actor, outcome="denied"
        )
        return {"count": n}

    async def _room_state(self, **changes: bool) -> dict[str, Any]:
        room, actor = self.require_joined()
        room = await self.call(services.room_set_state, room=room, actor=actor, **changes)
        self.room = room
        return {"room": events.room_payload(room)}

    async def on_room_pause(self, msg: dict[str, Any]) -> dict[str, Any] | None:
        return await self._room_state(paused=True)

    async def on_room_resume(self, msg: dict[str, Any]) -> dict[str, Any] | None:
        return await self._room_state(paused=False)

    async def on_room_mute(self, msg: dict[str, Any]) -> dict[str, Any] | None:
        self.require_joined()
        return await self._room_state(**commands.RoomMute.parse(msg).changes())

    async def on_room_unmute(self, msg: dict[str, Any]) -> dict[str, Any] | None:
        self.require_joined()
        return await self._room_state(**commands.RoomUnmute.parse(msg).changes())

    async def on_participant_remove(self, msg: dict[str, Any]) -> dict[str, Any] | None:
        m = commands.ParticipantRemove.parse(msg)
        room, actor = self.require_joined()
        p = await self.call(
            moderation.participant_remove, room=room, actor=actor, participant_id=m.participant_id
        )
        return {"participant_id": p.participant_id}

    async def on_participant_to_lobby(self, msg: dict[str, Any]) -> dict[str, Any] | None:
        m = commands.ParticipantToLobby.parse(msg)
        room, actor = self.require_joined()
        r = await self.call(
            moderation.participant_send_to_lobby,
            room=room,
            actor=actor,
            participant_id=m.participant_id,
        )
        return {"participant_id": r.participant_id, "request_id": str(r.id)}

    async def on_lobby_message(self, msg: dict[str, Any]) -> dict[str, Any] | None:
        m = commands.WaitingRoomMessage.parse(msg)
        room, actor = self.require_joined()
        room, moved = await self.call(
            moderation.lobby_message_set,
            room=room,
            actor=actor,
            text=m.text,
            extend_minutes=m.extend_minutes,
        )
        return {"text": room.lobby_message, "extended": moved}

    async def on_entry_message(self, msg: dict[str, Any]) -> dict[str, Any] | None:
        m = commands.EntryMessage.parse(msg)
        room, actor = self.require_joined()
        r = await self.call(
            moderation.entry_request_message,
            room=room,
            actor=actor,
            request_id=m.request_id,
            text=m.text,
        )
        return {"request_id": str(r.id), "text": r.host_message}

    async def on_leave(self, msg: dict[str, Any]) -> dict[str, Any] | None:
        if self.state == "waiting" and self.room is not None and self.request_id is not None:
            await self.call(
                services.entry_request_cancel,
                room=self.room,
                request_id=self.request_id,
                reason="aborted",
            )
        elif self.state == "joined" and self.room is not None and self.participant_id:
            await self.call(
                services.participant_leave,
                room=self.room,
                participant_id=self.participant_id,
                connection_id=self.connection_id,
            )
        if msg.get("rid") is not None:
            await self.send_json(frames.ack(msg["rid"]))
        self.state = "closed"
        for g in list(self.my_groups):
            await self._discard(g)
        await self.close(code=1000)
        return None

    # Events out ----------------------------------------------------------------------------

    async def _send_position(self, position: int, total: int) -> None:
        if self.position != (position, total):
            self.position = (position, total)
            await self.send_json(frames.queue_position(position, total))

    async def _knock_alert(self) -> None:
        """Send the coalesced ``knock-alert`` now, or once the interval has passed."""
        assert self.alerts is not None
        delay = self.alerts.due_in(time.monotonic())
        if delay is None or self.alert_task is not None:
            return
        if delay <= 0:
            await self.send_json(self.alerts.take(time.monotonic()))
            return

        async def later() -> None:
            await asyncio.sleep(delay)
            self.alert_task = None
            if self.state != "closed" and self.alerts is not None:
                await self._knock_alert()

        self.alert_task = asyncio.create_task(later())

    async def anteroom_event(self, message: dict[str, Any]) -> None:
        """One instruction from a group (lobby/instructions.py). A message that is not one
        raises ``UnknownInstruction``: a bug, and Channels ends this consumer, loudly."""
        instruction = instructions.parse(message)
        if self.state == "closed":
            return
        match instruction:
            case Queue(order=order):
                if self.state == "waiting" and self.request_id is not None:
                    me = str(self.request_id)
                    if order is not None and me in order:
                        await self._send_position(list(order).index(me) + 1, len(order))
                return
            case StaffCheck(ended_session=ended):
                await self._check_staff_session(ended)
                return
            case Deliver(except_connection=skip_conn, except_participant=skip_pt):
                if skip_conn == self.connection_id:
                    return
                if skip_pt is not None and skip_pt == self.participant_id:
                    return  # e.g. a breakout's "participant-joined" about oneself
                if self.state == "waiting" and not instruction.to_waiting:
                    return  # sent to the room before this socket (sent back) left its groups
            case Close(except_connection=skip_conn) if skip_conn == self.connection_id:
                return
        if isinstance(instruction, Admit) and self.state == "waiting":
            # Hear the room (and its media group) before the ``joined`` frame goes out: a peer
            # that signals on seeing this guest join must not beat the layer's group_add.
            if self.room is None or self.request_id is None:
                raise RuntimeError("a waiting socket without its room or knock")
            await self._discard(events.request_group(self.request_id))
            await self._discard(events.lobby_group(self.room.pk))
            self.participant_id = instruction.participant_id
            self.role = instruction.role
            await self._subscribe_member(self.room, instruction.participant_id, instruction.role)
            await self._relay(instruction)
            self.state = "joined"
            return
        await self._relay(instruction)
        match instruction:
            case ToLobby() if self.state == "joined" and self.room is not None:
                # Sent back to the waiting room: from now on this socket is a waiting guest's
                # and hears nothing about the room (its ``waiting`` frame went out above).
                for g in list(self.my_groups):
                    await self._discard(g)
                self.request_id = uuid.UUID(instruction.request_id)
                await self._add(events.request_group(self.request_id))
                await self._add(events.lobby_group(self.room.pk))
                self.state, self.breakout_id, self.position = "waiting", None, None
                await self._send_position(instruction.position, instruction.waiting)
            case Cancel():
                if self.room is not None and self.request_id is not None:
                    await self._discard(events.request_group(self.request_id))
                    await self._discard(events.lobby_group(self.room.pk))
                self.state, self.request_id, self.position = "new", None, None
            case Regroup(add=add, discard=discard, breakout_id=breakout_id):
                for g in discard:
                    await self._discard(g)
                for g in add:
                    await self._add(g)
                self.breakout_id = breakout_id
            case Close(close_code=code):
                self.state = "closed"
                for g in list(self.my_groups):
                    await self._discard(g)
                await self.close(code=code)

    async def _relay(self, instruction: Instruction) -> None:
        """Send an instruction's frames to this socket (and feed the knock alerts)."""
        if isinstance(instruction, (Queue, StaffCheck)):
            return
        for frame in instruction.frames:
            await self.send_json(frame)
            if self.alerts is not None:
                self.alerts.saw(frame)
        for text in instruction.texts:
            await self.send(text_data=text)  # frames pre-encoded once by ``events``
        if self.alerts is not None:
            await self._knock_alert()
