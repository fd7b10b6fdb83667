"""What keeps a room socket alive across Redis and PostgreSQL outages (mixed into the consumer).

* The channel-layer receive survives a Redis outage: the stock ``AsyncConsumer.__call__`` lets a
  Redis ``ConnectionError`` escape and kill the socket (close 1011) — every socket of the
  process, one after the other. Here the error is reported to ``layerwatch`` and the receive is
  retried with a backoff.
* While ``layerwatch`` counts the layer down, every frame is answered ``UNAVAILABLE`` (an
  ``ack`` when it carried an ``rid``, else an ``error``) without touching the database, so no
  action half-happens (stored, but nobody told).
* ``resync`` re-adds the socket's groups and resends its client a snapshot after a Redis
  restart or outage (``layerwatch`` schedules it): ``joined`` with ``"resync": true`` for
  participants (then ``entry-requested`` for every pending knock, to moderators); for a waiting
  guest its ``queue-position``, or the outcome of its knock if it was decided meanwhile.
* No ``aclose_old_connections()`` hop to the ORM thread per dispatched message or per closed
  socket: relayed events never touch the database and every database call goes through
  ``database_sync_to_async``, which closes stale connections itself.
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
import uuid
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from channels.db import database_sync_to_async
from channels.exceptions import StopConsumer
from channels.layers import get_channel_layer
from channels.utils import await_many_dispatch
from django.db import InterfaceError, OperationalError

from . import frames, instructions, layerwatch, selectors
from .errors import AnteroomError, EntryDenied, EntryTimeout, Unavailable
from .instructions import Admit, Cancel, Close, Instruction
from .models import EntryRequest, Participant, Role, Room

if TYPE_CHECKING:
    from channels.generic.websocket import AsyncWebsocketConsumer

    _Base = AsyncWebsocketConsumer
else:
    _Base = object

log = logging.getLogger("anteroom.ws")


# Snapshots (reads only) ----------------------------------------------------------------------


@dataclass
class MemberSnapshot:
    frame: frames.JoinedFrame
    pending: list[EntryRequest]


@dataclass
class RequestSnapshot:
    status: str
    cancel_reason: str = ""
    deny_reason: str = ""
    position: int = 0
    total: int = 0
    joined: frames.JoinedFrame | None = None


def _joined_frame(room: Room, p: Participant) -> frames.JoinedFrame:
    """The resync snapshot: ``joined`` with ``resync: true``; the client keeps its resume key."""
    return frames.joined(
        participant=p,
        room=room,
        participants=[
            frames.participant_payload(x) for x in selectors.participants_present(room=room)
        ],
        resume=None,
        breakouts=selectors.breakouts_for(room=room, moderator=p.role == Role.MODERATOR),
        resync=True,
    )


def member_snapshot(*, room_id: Any, participant_id: str) -> MemberSnapshot | None:
    """The ``joined`` snapshot of a participant (and the pending knocks, for a moderator)."""
    room = Room.objects.filter(pk=room_id).first()
    p = Participant.objects.filter(room_id=room_id, participant_id=participant_id).first()
    if room is None or p is None:
        return None
    pending = selectors.pending_requests(room=room) if p.role == Role.MODERATOR else []
    return MemberSnapshot(frame=_joined_frame(room, p), pending=pending)


def request_snapshot(*, room_id: Any, request_id: uuid.UUID) -> RequestSnapshot:
    """Where a waiting guest's knock stands now."""
    r = EntryRequest.objects.filter(pk=request_id).first()
    if r is None:
        return RequestSnapshot(status="canceled", cancel_reason="timeout")
    if r.status == EntryRequest.Status.PENDING:
        order = [str(x.id) for x in selectors.pending_requests(room=r.room)]
        me = str(r.id)
        position = order.index(me) + 1 if me in order else len(order)
        return RequestSnapshot(status="pending", position=position, total=len(order))
    joined = None
    if r.status == EntryRequest.Status.ADMITTED:
        p = Participant.objects.filter(room_id=room_id, participant_id=r.participant_id).first()
        if p is not None:
            joined = _joined_frame(r.room, p)
    return RequestSnapshot(
        status=r.status,
        cancel_reason=r.cancel_reason,
        deny_reason=r.deny_reason,
        joined=joined,
    )


# The consumer mixin --------------------------------------------------------------------------


def _rid_of(text: str | None) -> Any:
    try:
        msg = json.loads(text or "")
    except ValueError:
        return None
    rid = msg.get("rid") if isinstance(msg, dict) else None
    return rid if type(rid) in (str, int) else None


class ResilientConsumer(_Base):
    """Mixed into ``RoomConsumer`` (first in the bases). Uses its ``state``, ``room``,
    ``participant_id``, ``request_id``, ``my_groups``, ``_send_position`` and
    ``anteroom_event``."""

    resync_task: asyncio.Task[None] | None = None

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        self.scope = scope
        layer = get_channel_layer(self.channel_layer_alias)
        assert layer is not None
        self.channel_layer = layer
        self.channel_name = await layer.new_channel()
        channel_receive: Any = self._channel_receive
        self.channel_receive = channel_receive
        self.base_send = send
        layerwatch.register(self)
        try:
            await await_many_dispatch([receive, channel_receive], self.dispatch)
        except StopConsumer:
            pass
        except Exception as exc:
            # A group_discard in disconnect() while Redis is down: the socket is gone anyway,
            # and the group entries expire with ``group_expiry``.
            if not layerwatch.is_outage(exc):
                raise
            layerwatch.report_failure(exc)
        finally:
            layerwatch.unregister(self)
            if self.resync_task is not None:
                self.resync_task.cancel()

    async def _channel_receive(self) -> dict[str, Any]:
        assert self.channel_layer is not None
        backoff = 0.2
        while True:
            try:
                message: dict[str, Any] = await self.channel_layer.receive(self.channel_name)
                return message
            except Exception as exc:
                if not layerwatch.is_outage(exc):
                    raise
                layerwatch.report_failure(exc)
                await asyncio.sleep(backoff * random.uniform(0.5, 1.5))  # noqa: S311 - jitter
                backoff = min(backoff * 2, 2.0)

    async def dispatch(self, message: dict[str, Any]) -> None:
        kind = message.get("type")
        if not isinstance(kind, str) or kind.startswith("_"):
            raise ValueError("Malformed message type")
        handler = getattr(self, kind.replace(".", "_"), None)
        if handler is None:
            raise ValueError(f"No handler for message type {kind}")
        await handler(message)

    async def websocket_disconnect(self, message: Any) -> None:
        """Channels' own, without its ``aclose_old_connections()``: a hop to the ORM thread for
        every closed socket, although every database call closes stale connections itself."""
        await self.disconnect(message["code"])
        raise StopConsumer()

    async def websocket_receive(self, message: Any) -> None:
        if layerwatch.is_down():
            # Nothing is half-done while events cannot be delivered.
            err = Unavailable("The event service is unavailable; retry shortly.").as_dict()
            rid = _rid_of(message.get("text"))
            frame = (
                {"type": "ack", "rid": rid, "ok": False, "error": err}
                if rid is not None
                else {"type": "error", "error": err}
            )
            if getattr(self, "state", "") != "closed":
                await self.send(text_data=json.dumps(frame, separators=(",", ":")))
            return
        await super().websocket_receive(message)

    # Resync ----------------------------------------------------------------------------------

    def schedule_resync(self, *, delay: float, snapshot: bool) -> None:
        if getattr(self, "state", "closed") == "closed":
            return
        if self.resync_task is not None and not self.resync_task.done():
            if not snapshot:
                return
            self.resync_task.cancel()
        self.resync_task = asyncio.get_running_loop().create_task(self._resync(delay, snapshot))

    async def _resync(self, delay: float, snapshot: bool) -> None:
        await asyncio.sleep(delay)
        try:
            await self.resync(snapshot=snapshot)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            if layerwatch.is_outage(exc) or isinstance(exc, (OperationalError, InterfaceError)):
                # Down again: the watcher schedules another resync when it is back.
                layerwatch.report_failure(exc)
                log.warning("resync failed (%s); will retry", type(exc).__name__)
            else:
                log.exception("resync failed")

    async def resync(self, *, snapshot: bool = True) -> None:
        """Re-add every group of this socket, then (``snapshot``) resend the client's state.

        Subscribing comes first, so nothing that happens after the snapshot is read is missed.
        """
        c: Any = self
        assert self.channel_layer is not None
        for group in list(c.my_groups):
            await self.channel_layer.group_add(group, self.channel_name)
        if not snapshot:
            return
        if c.state == "joined" and c.room is not None and c.participant_id:
            snap = await database_sync_to_async(member_snapshot)(
                room_id=c.room.pk, participant_id=c.participant_id
            )
            if snap is None or c.state != "joined":
                return
            await c.send_json(snap.frame)
            for r in snap.pending:
                await c.send_json(frames.entry_requested(r))
        elif c.state == "waiting" and c.request_id is not None and c.room is not None:
            await self._resync_waiting()

    async def _resync_waiting(self) -> None:
        c: Any = self
        snap = await database_sync_to_async(request_snapshot)(
            room_id=c.room.pk, request_id=c.request_id
        )
        if c.state != "waiting":
            return
        if snap.status == EntryRequest.Status.PENDING:
            c.position = None  # resend even if unchanged
            await c._send_position(snap.position, snap.total)
            return
        instruction: Instruction
        if snap.status == EntryRequest.Status.ADMITTED and snap.joined is not None:
            instruction = Admit(
                frames=[snap.joined],
                participant_id=snap.joined["participant"]["participant_id"],
                role=snap.joined["participant"]["role"],
                room_id=str(c.room.pk),
            )
        elif snap.status == EntryRequest.Status.CANCELED and snap.cancel_reason == "aborted":
            instruction = Cancel(frames=[frames.canceled()])
        else:
            err: AnteroomError = (
                EntryDenied(snap.deny_reason or None)
                if snap.status == EntryRequest.Status.DENIED
                else EntryTimeout()
            )
            instruction = Close.for_error(err)
        await c.anteroom_event(instructions.to_message(instruction))
