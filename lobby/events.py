"""Every event payload and every group name, and the only caller of ``group_send``.

Events are queued with ``transaction.on_commit`` by services, so nobody hears of a change that
rolls back. Payloads are complete: consumer handlers never query the database.

Audiences are separate groups (group names are built from primary keys or hashes, never from
client text):

* ``members`` of a room — admitted participants of the parent (including those paused in a
  breakout); never a waiting guest;
* ``mods`` of a room — moderators only (entry requests, breakout administration);
* ``lobby`` of a room — waiting guests, who only ever receive their own queue position;
* ``req`` — one waiting guest's socket (keyed by the request id);
* ``pt`` — one participant's socket(s) in a room.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import hashlib
import json
import logging
import os
from collections.abc import Callable, Coroutine, Iterable, Mapping
from contextvars import Context
from typing import TYPE_CHECKING, Any
from uuid import UUID

from asgiref.sync import SyncToAsync, async_to_sync
from channels.layers import get_channel_layer
from django.db import transaction

from . import frames, instructions
from .instructions import Deliver, Instruction, Queue, StaffCheck
from .runtime.layerwatch import is_outage
from .runtime.process import RUNTIME

if TYPE_CHECKING:
    from .models import EntryRequest

log = logging.getLogger("anteroom.events")

# The consumer method that handles every instruction (``lobby/instructions.py``).
EVENT = instructions.EVENT


def _hex(value: UUID | str) -> str:
    return value.hex if isinstance(value, UUID) else UUID(str(value)).hex


def members_group(room_id: UUID | str) -> str:
    return f"members.{_hex(room_id)}"


def mods_group(room_id: UUID | str) -> str:
    return f"mods.{_hex(room_id)}"


def activity_group(room_id: UUID | str) -> str:
    """The room's moderators, for ``activity`` frames only (kept apart from ``mods.`` so that
    each audience's stream stays what it was)."""
    return f"activity.{_hex(room_id)}"


def lobby_group(room_id: UUID | str) -> str:
    return f"lobby.{_hex(room_id)}"


def request_group(request_id: UUID | str) -> str:
    return f"req.{_hex(request_id)}"


# The groups of waiting sockets: a relay to one of them is marked ``to_waiting`` (``_message``).
WAITING_GROUPS = ("lobby.", "req.")


def _message(group: str, instruction: Instruction) -> dict[str, Any]:
    """The layer message of ``instruction`` for ``group``: a relay to a waiting audience says
    so, and a waiting socket relays nothing else (a room frame queued for it before it left
    the room's groups stays unheard)."""
    message = instructions.to_message(instruction)
    if isinstance(instruction, Deliver) and group.startswith(WAITING_GROUPS):
        message["to_waiting"] = True
    return message


def staff_group(user_id: int | str) -> str:
    """Every staff socket of one Django user (lobby/staff_sessions.py)."""
    digest = hashlib.sha256(f"staff:{user_id}".encode()).hexdigest()[:40]
    return f"staff.{digest}"


def participant_group(room_id: UUID | str, participant_id: str) -> str:
    digest = hashlib.sha256(participant_id.encode()).hexdigest()[:40]
    return f"pt.{_hex(room_id)}.{digest}"


def media_group(room_id: UUID | str, participant_id: str) -> str:
    """One admitted participant's media channel (``media-state``, relayed ``signal``s); its
    sockets join it with the member groups, so no waiting guest is ever in one."""
    digest = hashlib.sha256(participant_id.encode()).hexdigest()[:40]
    return f"media.{_hex(room_id)}.{digest}"


# Representations and frames: defined once in ``frames``; the representations are re-exported
# here for the surfaces that have always read them from ``events`` (REST, selectors).
_ts = frames.ts
room_payload = frames.room_payload
participant_payload = frames.participant_payload
request_payload = frames.request_payload
request_full_payload = frames.request_full_payload
guest_request_payload = frames.guest_request_payload
error_frame = frames.error


# Sending -----------------------------------------------------------------------------------
#
# On-commit callbacks run on a worker thread (the ORM thread of a Daphne process). They only hop
# onto the server's event loop to *queue* the messages; one sender task per loop does the
# ``group_send``s, so the single ORM thread never waits on Redis round trips. The sender keeps
# the order of messages for each group and of audiences (runs of one group kind, e.g. ``mods``
# then ``req`` then ``members``), sends the groups of one run concurrently (admit-all: 1,000
# ``req`` groups), and coalesces what piled up while it was busy: plain frames to the same group
# become one message, and only the newest queue order of a lobby is sent (queue broadcasts are
# also throttled per lobby, see ``queue_interval``).

# The server's loop (``RUNTIME.loop``) and its sender (``RUNTIME.senders``) are owned by this
# process's runtime object (lobby/runtime/process.py), bound once by ``config/asgi.py``.
SEND_CONCURRENCY = 64


def _failed(group: str, exc: Exception) -> None:
    RUNTIME.layer.report_failure(exc)
    log.warning(
        "group_send to %s failed (%s); clients resynchronise from a snapshot",
        group.split(".")[0],
        type(exc).__name__,
        exc_info=not is_outage(exc),
    )


def _plain(message: dict[str, Any]) -> bool:
    # ``to_waiting`` follows from the group, so two messages to one group agree on it.
    keys = {"type", "frames", "action", "to_waiting"}
    return message.get("action", "") == "" and set(message) <= keys


def _stream(group: str) -> str:
    # Waiting guests (req, lobby) and joined sockets (every other group) never share a socket,
    # so their two streams need no order between them.
    return "waiting" if group.startswith(WAITING_GROUPS) else "joined"


Run = list[tuple[str, dict[str, Any]]]


def _coalesce(items: list[tuple[str, dict[str, Any]]]) -> list[list[Run]]:
    """Merge consecutive messages to one group, then cut each stream into runs of one group kind
    with each group at most once (a run is sent concurrently; runs of a stream in order)."""
    streams: dict[str, list[tuple[str, dict[str, Any]]]] = {}
    for group, message in items:
        out = streams.setdefault(_stream(group), [])
        if out and out[-1][0] == group:
            prev = out[-1][1]
            if _plain(prev) and _plain(message):
                out[-1] = (group, {**prev, "frames": [*prev["frames"], *message["frames"]]})
                continue
            if prev.get("action") == "queue" and message.get("action") == "queue":
                out[-1] = (group, message)  # only the newest queue order matters
                continue
        out.append((group, message))
    result: list[list[Run]] = []
    for merged in streams.values():
        runs: list[Run] = []
        kind, seen = "", set[str]()
        for group, message in merged:
            k = group.split(".", 1)[0]
            if not runs or k != kind or group in seen:
                runs.append([])
                kind, seen = k, set()
            runs[-1].append((group, message))
            seen.add(group)
        result.append(runs)
    return result


def queue_interval(waiting: int) -> float:
    """Seconds between two queue broadcasts to one lobby (per process).

    Each broadcast is one channel-layer message per waiting guest, so an unthrottled knock
    storm is quadratic (200 knocks: 20,000 messages, ~20 ms of CPU per knock). This keeps a
    lobby under ~200 queue deliveries a second per process; the newest order always goes out.
    """
    return min(QUEUE_INTERVAL_MAX, max(QUEUE_INTERVAL_MIN, waiting / QUEUE_DELIVERIES_PER_S))


QUEUE_INTERVAL_MIN, QUEUE_INTERVAL_MAX, QUEUE_DELIVERIES_PER_S = 0.25, 5.0, 200


class _Sender:
    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.items: list[tuple[str, dict[str, Any]]] = []
        self.wake = asyncio.Event()
        self.task = loop.create_task(self._run(), context=Context())
        # Queue broadcasts: when a lobby may next hear one, and the newest one held back.
        self.queue_next: dict[str, float] = {}
        self.queue_held: dict[str, dict[str, Any]] = {}
        # The last queue length seen per lobby (paces a lobby whose order is read lazily).
        self.queue_len: dict[str, int] = {}
        self.reads: set[asyncio.Task[None]] = set()

    def post(self, items: Iterable[tuple[str, dict[str, Any]]]) -> None:
        now = self.loop.time()
        for group, message in items:
            if message.get("action") == "queue":
                due = self.queue_next.get(group, 0.0)
                if now < due:
                    if group not in self.queue_held:
                        self.loop.call_at(due, self._release, group)
                    self.queue_held[group] = message
                    continue
                self._queue_out(group, message)
                continue
            self.items.append((group, message))
        if len(self.queue_next) > 10000:
            self.queue_next = {g: t for g, t in self.queue_next.items() if t > now}
            self.queue_len = {g: n for g, n in self.queue_len.items() if g in self.queue_next}
        self.wake.set()

    def _release(self, group: str) -> None:
        message = self.queue_held.pop(group, None)
        if message is not None:
            self._queue_out(group, message)

    def _queue_out(self, group: str, message: dict[str, Any]) -> None:
        """Send a queue broadcast now; one without its order reads it first (once per
        broadcast, not once per knock: the order of a lobby of N is N ids)."""
        order = message.get("order")
        n = len(order) if order is not None else self.queue_len.get(group, 0)
        self.queue_next[group] = self.loop.time() + queue_interval(n)
        if order is not None:
            self.items.append((group, message))
            self.wake.set()
            return
        # A context of its own: the ORM thread's (copied by ``call_soon_threadsafe``) says a
        # sync call is running, and asgiref would refuse this read as a deadlock.
        task = self.loop.create_task(self._read_order(group, message), context=Context())
        self.reads.add(task)
        task.add_done_callback(self.reads.discard)

    async def _read_order(self, group: str, message: dict[str, Any]) -> None:
        from channels.db import database_sync_to_async

        try:
            order = await database_sync_to_async(queue_order)(message["room_id"])
        except Exception as exc:
            # Waiting guests keep their last position; the next change (or a resync) fixes it.
            log.warning("could not read a queue order (%s)", type(exc).__name__)
            return
        self.queue_len[group] = len(order)
        self.items.append((group, {**message, "order": order}))
        self.wake.set()

    async def _run(self) -> None:
        gate = asyncio.Semaphore(SEND_CONCURRENCY)
        while True:
            await self.wake.wait()
            self.wake.clear()
            while self.items:
                items, self.items = self.items, []
                memo: dict[int, tuple[Any, str]] = {}
                items = [(g, _pre_encode(m, memo)) for g, m in items]
                await asyncio.gather(*(self._stream(gate, runs) for runs in _coalesce(items)))

    async def _stream(self, gate: asyncio.Semaphore, runs: list[Run]) -> None:
        for run in runs:
            await asyncio.gather(*(self._one(gate, g, m) for g, m in run))

    async def _one(self, gate: asyncio.Semaphore, group: str, message: dict[str, Any]) -> None:
        async with gate:
            await _group_send(group, message)


# Frames are sent as JSON text (``"texts"``), encoded once per batch by the sender, instead of
# as dicts that every recipient copies and JSON-encodes again. Admit-all of 1,000 sends 1,000
# ``joined`` frames that share one 1,000-participant roster; as dicts each was copied (in
# memory) or msgpack-encoded and decoded (Redis) and JSON-encoded again per guest (~150 MB of
# work); here the shared roster and room are encoded once per batch and each guest's frame is
# only joined together. Likewise a ``participant-joined`` to a room of N members is encoded
# once, not N times. Kept as dicts: the frames a moderator socket reads itself (its knock
# alerts, ``KnockAlerts.saw``), and every frame of a message with one of them (so that the
# frames of a message keep their order).
READ_BY_CONSUMER = frozenset({"entry-requested", "entry-resolved", "entry-canceled"})
_SEP = (",", ":")
_ENCODE = json.JSONEncoder(separators=_SEP).encode  # what ``send_json`` writes, byte for byte
_KEYS: dict[str, str] = {}


def _json(value: Any, memo: dict[int, tuple[Any, str]]) -> str:
    """JSON of a frame's value; big lists and dicts shared by many frames (a roster, the room)
    are encoded once per batch (``memo``, by identity: a batch's payloads are not changed once
    handed to the sender)."""
    if isinstance(value, (list, dict)) and len(value) > 8:
        hit = memo.get(id(value))
        if hit is None:
            hit = memo[id(value)] = (value, _ENCODE(value))
        return hit[1]
    return _ENCODE(value)


def _key(k: str) -> str:
    text = _KEYS.get(k)
    if text is None:
        text = _ENCODE(k) + ":"
        if len(_KEYS) < 512:  # frame keys are a fixed vocabulary; never grow without bound
            _KEYS[k] = text
    return text


def encode_frame(frame: Mapping[str, Any], memo: dict[int, tuple[Any, str]]) -> str:
    """``json.dumps(frame, separators=(",", ":"))``, with the shared parts from ``memo``."""
    if not all(type(k) is str for k in frame):
        return _ENCODE(frame)
    return "{" + ",".join(_key(k) + _json(v, memo) for k, v in frame.items()) + "}"


def _pre_encode(message: dict[str, Any], memo: dict[int, tuple[Any, str]]) -> dict[str, Any]:
    frames = message.get("frames")
    if not frames or any(f.get("type") in READ_BY_CONSUMER for f in frames):
        return message
    texts = [*(encode_frame(f, memo) for f in frames), *message.get("texts", ())]
    return {**{k: v for k, v in message.items() if k != "frames"}, "texts": texts}


async def _group_send(group: str, message: dict[str, Any]) -> None:
    layer = get_channel_layer()
    if layer is None:  # pragma: no cover - settings always define one
        return
    try:
        await layer.group_send(group, message)
    except Exception as exc:
        # The database already holds the truth; clients resynchronise from a snapshot.
        _failed(group, exc)


def _post_here(batch: list[tuple[str, dict[str, Any]]]) -> None:
    """On the server's loop: hand a batch to its sender (queues only, never waits)."""
    loop = asyncio.get_running_loop()
    sender = RUNTIME.senders.get(loop)
    if not isinstance(sender, _Sender) or sender.task.done():
        sender = _Sender(loop)
        RUNTIME.senders[loop] = sender
    sender.post(batch)


async def _post(batch: list[tuple[str, dict[str, Any]]]) -> None:
    loop = asyncio.get_running_loop()
    if loop is not RUNTIME.loop:
        # A management command or a one-off loop: send now, in order.
        for group, message in batch:
            await _group_send(group, message)
        return
    _post_here(batch)


Batch = list[tuple[str, dict[str, Any]]]


def queue_order(room_id: UUID | str) -> list[str]:
    """The ids of a lobby's pending knocks, oldest first (what ``queue`` broadcasts carry)."""
    from .models import EntryRequest

    return [
        str(i)
        for i in EntryRequest.objects.filter(
            room_id=room_id, status=EntryRequest.Status.PENDING
        ).values_list("id", flat=True)
    ]


def _with_orders(batch: Batch) -> Batch:
    """Fill in the order of lazy queue broadcasts (a sync read, after the commit)."""
    if not any(m.get("action") == "queue" and m.get("order") is None for _, m in batch):
        return batch
    return [
        (g, {**m, "order": queue_order(m["room_id"])})
        if m.get("action") == "queue" and m.get("order") is None
        else (g, m)
        for g, m in batch
    ]


def _deliver(send: Callable[[Batch], Coroutine[Any, Any, None]], batch: Batch) -> None:
    """Hand a batch to the event loop from a sync (ORM) thread, without ever hanging.

    On the server's loop (Daphne) the batch is handed over with ``call_soon_threadsafe`` and
    the ORM thread goes on at once: the sender only queues, callbacks run in the order they
    were handed over, and the consumer whose call committed resumes after them (its result
    comes back through the same loop), so nothing is reordered. If that loop stopped
    meanwhile (SIGTERM while a write was in flight), the batch is dropped: the database holds
    the truth and clients resynchronise from a snapshot.

    Any other loop (a test's, a one-off's) is waited on, as ``async_to_sync`` would, but
    never forever: the caller gives up if the loop stops.
    """
    loop: asyncio.AbstractEventLoop | None = getattr(
        SyncToAsync.threadlocal, "main_event_loop", None
    )
    if getattr(SyncToAsync.threadlocal, "main_event_loop_pid", None) != os.getpid():
        loop = None
    if loop is None:
        async_to_sync(send)(_with_orders(batch))  # no outer loop (a command, WSGI): run one
        return
    if loop.is_closed() or not loop.is_running():
        log.warning("event loop stopped; %d event(s) not sent", len(batch))
        return
    if loop is RUNTIME.loop and send in (_post, _send_batch):
        try:
            loop.call_soon_threadsafe(_post_here, batch)
        except RuntimeError:  # closed between the check and the call
            log.warning("event loop stopped; %d event(s) not sent", len(batch))
        return
    future = asyncio.run_coroutine_threadsafe(send(_with_orders(batch)), loop)
    while True:
        try:
            future.result(timeout=0.5)
            return
        except concurrent.futures.TimeoutError:
            if not loop.is_running():
                future.cancel()
                log.warning("event loop stopped; %d event(s) not sent", len(batch))
                return


def _send_now(group: str, message: dict[str, Any]) -> None:
    _deliver(_post, [(group, message)])


async def _send_batch(batch: list[tuple[str, dict[str, Any]]]) -> None:
    await _post(batch)


def send_on_commit(group: str, instruction: Instruction) -> None:
    """Queue one instruction for a group, sent after the current transaction commits."""
    message = _message(group, instruction)
    transaction.on_commit(lambda: _send_now(group, message))


def deliver_on_commit(group: str, *frames: Mapping[str, Any]) -> None:
    """The common case: relay these frames to a group, after the commit."""
    send_on_commit(group, Deliver(frames=list(frames)))


def send_many_on_commit(items: Iterable[tuple[str, Instruction]]) -> None:
    """Queue several (group, instruction) pairs as one on-commit callback, sent in order.

    One hop into the event loop for the whole batch: admit-all of 1,000 guests is one call.
    This is the outbox of both apps (breakouts' ``Outbox`` flushes into it).
    """
    batch = [(g, _message(g, i)) for g, i in items]
    if batch:
        transaction.on_commit(lambda: _deliver(_send_batch, batch))


# Lobby events --------------------------------------------------------------------------------


def staff_sessions_changed(user_id: int | str, *, ended_session: str = "") -> None:
    """Ring a user's staff sockets (after commit): each re-checks its session and closes if it
    ended; a socket of ``ended_session`` (a digest) closes at once."""
    send_on_commit(staff_group(user_id), StaffCheck(ended_session=ended_session))


def entry_requested(r: EntryRequest) -> None:
    deliver_on_commit(mods_group(r.room_id), frames.entry_requested(r))


def entry_updated(r: EntryRequest) -> None:
    deliver_on_commit(mods_group(r.room_id), frames.entry_updated(r))


def queue_changed(room_id: UUID | str, order: list[str] | None = None) -> None:
    """Tell waiting guests the queue changed; each consumer finds its own position.

    Without ``order`` the order is read when the broadcast goes out: on a server, at most once
    per ``queue_interval`` per lobby however many knocks and decisions changed it meanwhile."""
    send_on_commit(lobby_group(room_id), Queue(room_id=str(room_id), order=order))


# Knock alerts --------------------------------------------------------------------------------

KNOCK_ALERT_INTERVAL = 1.0


class KnockAlerts:
    """Coalesces a moderator socket's knocks into at most one ``knock-alert`` per
    ``KNOCK_ALERT_INTERVAL`` seconds (a moderator socket is in one room: per room).

    Moderators still receive every ``entry-requested`` frame (the protocol needs them); the
    alert is what a dashboard turns into a sound or a notification, so a raid of 500 knocks is
    one alert a second, not 500. It reads only frames relayed to the socket (no queries).
    """

    def __init__(self, pending: Iterable[str] = ()) -> None:
        self.waiting: set[str] = set(pending)
        self.count = 0
        self.last: float | None = None

    def saw(self, frame: Mapping[str, Any]) -> None:
        # Only frames of ``READ_BY_CONSUMER`` are read: the sender leaves them as dicts.
        kind = frame.get("type")
        if kind == "entry-requested":
            rid = str(frame["request"]["id"])
            if rid not in self.waiting:
                self.waiting.add(rid)
                self.count += 1
        elif kind in ("entry-resolved", "entry-canceled"):
            self.waiting.discard(str(frame.get("request_id")))

    def due_in(self, now: float) -> float | None:
        """Seconds until the next alert may go (0: now); None when there is nothing new."""
        if not self.count:
            return None
        if self.last is None:
            return 0.0
        return max(0.0, self.last + KNOCK_ALERT_INTERVAL - now)

    def take(self, now: float) -> frames.KnockAlertFrame:
        frame = frames.knock_alert(self.count, len(self.waiting))
        self.count, self.last = 0, now
        return frame


async def relay_now(group: str, *frames: Mapping[str, Any]) -> None:
    """Send frames to a group at once, from the event loop (the signalling relay: a frame
    checked by its service that changes nothing stored, so there is no commit to wait for)."""
    await _group_send(group, _message(group, Deliver(frames=list(frames))))


def send_from_thread(items: Iterable[tuple[str, Instruction]]) -> None:
    """Send (group, message) pairs from a thread of our own (the media worker), now.

    It hops onto the server's event loop when there is one (the in-memory layer's queues belong
    to that loop); otherwise it runs a loop of its own, as a management command would.
    """
    batch = [(g, _message(g, i)) for g, i in items]
    if not batch:
        return
    loop = RUNTIME.loop
    if loop is not None and loop.is_running() and not loop.is_closed():
        future = asyncio.run_coroutine_threadsafe(_send_batch(batch), loop)
        try:
            future.result(timeout=10)
        except concurrent.futures.TimeoutError:
            log.warning("event loop busy; %d event(s) may be late", len(batch))
        return
    async_to_sync(_send_batch)(batch)
