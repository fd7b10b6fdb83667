"""What keeps a room socket alive across Redis and PostgreSQL outages (mixed into the consumer).

* The channel-layer receive survives a Redis outage in the layer itself
  (``lobby/runtime/layers.py``), so the consumer keeps Channels' own ``__call__``; each socket
  registers with the process's layer watcher (``RUNTIME.layer``) when it connects.
* While the watcher counts the layer down, every frame is answered ``UNAVAILABLE`` (an
  ``ack`` when it carried an ``rid``, else an ``error``) without touching the database, so no
  action half-happens (stored, but nobody told).
* ``resync`` re-adds the socket's groups and resends its client a snapshot after a Redis
  restart or outage (the watcher schedules it): ``joined`` with ``"resync": true`` for
  participants (then ``entry-requested`` for every pending knock, to moderators); for a waiting
  guest its ``queue-position``, or the outcome of its knock if it was decided meanwhile.
* ``dispatch`` and ``websocket_disconnect`` are Channels' own without the
  ``aclose_old_connections()`` hop to the ORM thread per dispatched message and per closed
  socket (the reason, and the test that pins them to the installed Channels, at ``dispatch``).
"""

from __future__ import annotations

import asyncio
import json
import logging
import uuid
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from channels.db import database_sync_to_async
from channels.exceptions import StopConsumer
from django.db import InterfaceError, OperationalError

from . import frames, instructions, selectors
from .errors import AnteroomError, EntryDenied, EntryTimeout, Unavailable
from .instructions import Admit, Cancel, Close, Instruction
from .models import EntryRequest, Participant, Role, Room
from .runtime.layerwatch import is_outage
from .runtime.process import RUNTIME

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
        breakouts=selectors.breakouts_for(
            room=room, moderator=p.role == Role.MODERATOR, breakout_id=p.breakout_id
        ),
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

    async def websocket_connect(self, message: Any) -> None:
        RUNTIME.layer.register(self)  # resynced by the watcher after a Redis outage or restart
        await super().websocket_connect(message)

    async def dispatch(self, message: dict[str, Any]) -> None:
        """Channels' own ``AsyncConsumer.dispatch`` (channels 4.3), with two differences, pinned
        by tests/lobby/test_runtime.py against the installed version:

        * no ``aclose_old_connections()`` before each handler: a hop to the ORM thread for every
          relayed event (10,000 sockets hearing an admit-all: 10,000 hops), although relayed
          events never touch the database and every database call goes through
          ``database_sync_to_async``, which closes stale connections itself;
        * a handler that fails because Redis is unreachable (a ``group_add`` while following
          an admit) closes its socket with 1011 after telling the watcher, instead of ending
          the consumer with a traceback: ``disconnect`` then runs as for any close.
        """
        kind = message.get("type")
        if not isinstance(kind, str) or kind.startswith("_"):
            raise ValueError("Malformed message type")
        handler = getattr(self, kind.replace(".", "_"), None)
        if handler is None:
            raise ValueError(f"No handler for message type {kind}")
        try:
            await handler(message)
        except StopConsumer:
            raise
        except Exception as exc:
            if not is_outage(exc) or kind == "websocket.disconnect":
                raise
            RUNTIME.layer.report_failure(exc)
            log.warning("channel layer unreachable in %s; closing the socket", kind)
            await self.close(code=1011)

    async def websocket_disconnect(self, message: Any) -> None:
        """Channels' own, without its ``aclose_old_connections()`` (see ``dispatch``); a
        ``group_discard`` that fails while Redis is down is let go (the socket is gone anyway,
        and its group entries expire with ``group_expiry``)."""
        try:
            await self.disconnect(message["code"])
        except Exception as exc:
            if not is_outage(exc):
                raise
            RUNTIME.layer.report_failure(exc)
        finally:
            RUNTIME.layer.unregister(self)
            if self.resync_task is not None:
                self.resync_task.cancel()
        raise StopConsumer()

    async def websocket_receive(self, message: Any) -> None:
        if RUNTIME.layer.is_down():
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
            if is_outage(exc) or isinstance(exc, (OperationalError, InterfaceError)):
                # Down again: the watcher schedules another resync when it is back.
                RUNTIME.layer.report_failure(exc)
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
