"""Lobby services: every state change of rooms, knocks and presence is one function here.

Each write runs in one transaction, changes rows with a lock or a conditional update, and queues
its events with ``transaction.on_commit`` (through ``events``). Every surface — WebSocket, REST,
dashboard, admin — calls these functions; none holds a rule of its own.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
import secrets
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from django.conf import settings
from django.db import IntegrityError, connection, transaction
from django.db.models import Count, Q

from . import (
    activity,
    cache,
    clock,
    events,
    extensions,
    media,
    selectors,
    staff_sessions,
    webhooks,
)
from .activity import Item as ActivityItem
from .errors import (
    AccessDenied,
    AnteroomError,
    BadRequest,
    BreakoutLectureMode,
    EntryDenied,
    EntryRateLimited,
    EntryTimeout,
    InvalidPermissions,
    Replaced,
    RequestNotFound,
    RoomExists,
    RoomFull,
    RoomNotFound,
    StaffSessionEnded,
    TokenExpired,
    TokenRevoked,
)
from .models import (
    MAX_PARTICIPANTS,
    ROOM_NAME_RE,
    EntryRequest,
    ModeratorSocket,
    Participant,
    Role,
    Room,
    ServerProcess,
)
from .ops import metrics
from .runtime import limits
from .text import is_blank
from .tokens import Claims, is_revoked, verify_token

Level = Literal["full", "lobby", "none"]
MAX_METADATA_BYTES = 4096
MAX_NAME_CHARS = 100
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]")


# Actors ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Actor:
    """Who performs an action. ``by`` is what events report (SPEC §3 ``entry-resolved``)."""

    by: str
    can_moderate: bool
    participant_id: str | None = None
    # The meeting token behind a socket's powers, checked again on every moderator action.
    token_jti: str | None = None
    token_expires_at: datetime | None = None
    # A staff session behind a socket: re-checked on every moderator action, like a token.
    staff_user_id: int | None = None
    staff_session_key: str | None = None

    @classmethod
    def api(cls, key_name: str) -> Actor:
        return cls(by=f"api:{key_name}", can_moderate=True)

    @classmethod
    def staff(cls, username: str) -> Actor:
        return cls(by=f"staff:{username}", can_moderate=True)

    @classmethod
    def participant(cls, p: Participant) -> Actor:
        return cls(
            by=p.participant_id,
            can_moderate=p.role == Role.MODERATOR,
            participant_id=p.participant_id,
        )


def require_moderator(actor: Actor) -> None:
    """Raise unless the actor moderates with a credential that is still valid: a moderator
    token revoked or expired after its socket joined stops moderating at once."""
    if not actor.can_moderate:
        raise InvalidPermissions()
    check_credential(token_jti=actor.token_jti, token_expires_at=actor.token_expires_at)
    if actor.staff_user_id is not None:
        # The session must still be live, for an active user, with the hash of the current
        # password (lobby/staff_sessions.py); staff status is checked as well.
        user = staff_sessions.session_user(
            user_id=actor.staff_user_id, session_key=actor.staff_session_key or ""
        )
        if user is None:
            raise StaffSessionEnded()
        if not getattr(user, "is_staff", False):
            raise InvalidPermissions("Your staff access has ended.")


def check_credential(*, token_jti: str | None, token_expires_at: datetime | None) -> None:
    """Raise ``TokenExpired`` / ``TokenRevoked`` for a token that has lapsed since it was read."""
    if token_expires_at is not None and token_expires_at <= clock.now():
        raise TokenExpired()
    if token_jti and is_revoked(token_jti):
        raise TokenRevoked()


def hash_secret(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


def new_resume_key() -> str:
    return secrets.token_urlsafe(24)


# Input checks --------------------------------------------------------------------------------


def clean_name(value: Any, *, default: str = "") -> str:
    """A display name: a string of at most 100 characters without control characters; one
    with no visible character counts as empty (``default``)."""
    if value is None:
        return default
    if not isinstance(value, str):
        raise BadRequest("name must be a string.")
    value = value.strip()
    if len(value) > MAX_NAME_CHARS:
        raise BadRequest(f"name must be at most {MAX_NAME_CHARS} characters.")
    if _CONTROL.search(value):
        raise BadRequest("name must not contain control characters.")
    if is_blank(value):
        return default  # nothing visible (zero-width, fillers...) is no name (lobby/text.py)
    return value


def clean_metadata(value: Any) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise BadRequest("metadata must be a JSON object.")
    try:
        size = len(json.dumps(value, separators=(",", ":"), allow_nan=False).encode())
    except ValueError as exc:  # NaN or Infinity: not JSON
        raise BadRequest("metadata must be plain JSON.") from exc
    if size > MAX_METADATA_BYTES:
        raise BadRequest("metadata must be at most 4 KiB.")
    return value


# Rooms ---------------------------------------------------------------------------------------


ROOM_FIELDS = (
    "privacy",
    "enable_knocking",
    "mode",
    "max_active_talkers",
    "knock_ttl",
    "max_participants",
)


def _check_room_fields(fields: dict[str, Any]) -> None:
    unknown = set(fields) - set(ROOM_FIELDS)
    if unknown:
        raise BadRequest(f"Unknown room properties: {', '.join(sorted(unknown))}.")
    if "privacy" in fields and fields["privacy"] not in Room.Privacy.values:
        raise BadRequest('privacy must be "public" or "private".')
    if "mode" in fields and fields["mode"] not in Room.Mode.values:
        raise BadRequest('mode must be "group" or "lecture".')
    if "enable_knocking" in fields and type(fields["enable_knocking"]) is not bool:
        raise BadRequest("enable_knocking must be a boolean.")
    cap = fields.get("max_participants")
    if cap is not None and (type(cap) is not int or not 1 <= cap <= MAX_PARTICIPANTS):
        raise BadRequest(f"max_participants must be null or from 1 to {MAX_PARTICIPANTS}.")
    for key, lo, hi in (("max_active_talkers", 3, 50), ("knock_ttl", 10, 600)):
        if key in fields:
            v = fields[key]
            if type(v) is not int or not lo <= v <= hi:
                raise BadRequest(f"{key} must be an integer from {lo} to {hi}.")


@transaction.atomic
def room_create(*, name: str | None = None, **fields: Any) -> Room:
    """Create a top-level room. Raises ``BadRequest`` or ``RoomExists``."""
    if name is None:
        name = secrets.token_urlsafe(9).replace("_", "x").replace("-", "y")
    if not isinstance(name, str) or not re.fullmatch(ROOM_NAME_RE, name):
        raise BadRequest("name must be 1-64 characters of A-Z, a-z, 0-9, _ and -.")
    _check_room_fields(fields)
    if Room.objects.filter(name=name, parent__isnull=True).exists():
        raise RoomExists()
    try:
        with transaction.atomic():
            return Room.objects.create(name=name, **fields)
    except IntegrityError as exc:
        raise RoomExists() from exc


@transaction.atomic
def room_update(*, room: Room, **fields: Any) -> Room:
    """Change a room's properties; members hear ``room-updated``."""
    _check_room_fields(fields)
    room = Room.objects.select_for_update().get(pk=room.pk)
    if fields.get("mode") == Room.Mode.LECTURE and room.breakouts.exists():
        # Breakouts exist only in group mode; nobody may be stranded in one (SPEC §2).
        raise BreakoutLectureMode("Destroy the breakout rooms before switching to lecture mode.")
    for key, value in fields.items():
        setattr(room, key, value)
    room.save(update_fields=list(fields))
    _room_updated(room)
    return room


@transaction.atomic
def room_delete(*, room: Room) -> None:
    """Delete a room; connected members and waiting guests are disconnected."""
    frames = [events.error_frame("ROOM_NOT_FOUND", "The room was deleted.")]
    events.send_on_commit(events.members_group(room.pk), *frames, action="close", close_code=4404)
    events.send_on_commit(events.lobby_group(room.pk), *frames, action="close", close_code=4404)
    media.changed(
        room.pk, closed=[room.pk, *Room.objects.filter(parent=room).values_list("pk", flat=True)]
    )
    room.delete()


def _room_updated(room: Room) -> None:
    events.send_on_commit(
        events.members_group(room.pk), {"type": "room-updated", "room": events.room_payload(room)}
    )
    webhooks.emit("room.updated", room=room, data={"room": events.room_payload(room)})


@transaction.atomic
def room_set_state(
    *,
    room: Room,
    actor: Actor,
    paused: bool | None = None,
    audio_muted: bool | None = None,
    video_muted: bool | None = None,
) -> Room:
    """Pause/resume or mute/unmute a room (moderators only). Emits ``room-updated``.

    Mute and pause are state and permissions: media servers and clients apply them.
    """
    require_moderator(actor)
    room = Room.objects.select_for_update().get(pk=room.pk)
    changed = []
    for key, value in (
        ("paused", paused),
        ("audio_muted", audio_muted),
        ("video_muted", video_muted),
    ):
        if value is not None and getattr(room, key) != value:
            setattr(room, key, value)
            changed.append(key)
    if changed:
        room.save(update_fields=changed)
        _room_updated(room)
        media.changed(room.pk, everyone=True)
        from .audit import audit_record

        audit_record(
            room=room,
            actor=actor.by,
            action="room-state",
            data={k: getattr(room, k) for k in changed},
        )
    return room


# Access --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Access:
    level: Level
    ttl: int | None = None
    reason: str | None = None


def access_level(*, room: Room, claims: Claims | None) -> Access:
    """SPEC §2's access table. Token errors are raised by ``verify_token`` before this."""
    if claims is not None and claims.join_mode == "ask":
        return Access("lobby", ttl=claims.ttl)
    if claims is not None or room.privacy == Room.Privacy.PUBLIC:
        return Access("full")
    if room.enable_knocking:
        return Access("lobby", ttl=room.knock_ttl)
    return Access("none", reason="private-room")


def role_for(claims: Claims | None) -> str:
    if claims is None:
        return Role.PARTICIPANT
    if claims.can_moderate:
        return Role.MODERATOR
    if claims.viewer:
        return Role.VIEWER
    return Role.PARTICIPANT


def get_room(name: str) -> Room:
    """The top-level room ``name`` (from ``lobby.cache`` on the embedded default)."""
    room = cache.get_room(name)
    if room is not None:
        return room
    try:
        room = Room.objects.get(name=name, parent__isnull=True)
    except Room.DoesNotExist as exc:
        raise RoomNotFound() from exc
    cache.put_room(room)
    return room


def preauth(*, room_name: str, token: str | None) -> Access:
    room = get_room(room_name)
    claims = verify_token(token, room_name=room.name) if token is not None else None
    return access_level(room=room, claims=claims)


# Join ----------------------------------------------------------------------------------------


@dataclass
class Connection:
    """Where a socket is: which process, which connection, which browser and address."""

    server_id: str
    connection_id: str
    browser_key: str = ""
    client_address: str = ""


@dataclass
class JoinPlan:
    """What a ``join`` will do, decided before the consumer subscribes to any group."""

    room: Room
    level: Level
    role: str
    participant_id: str
    name: str
    claims: Claims | None
    ttl: int | None = None
    request_id: uuid.UUID | None = None
    resume_request: EntryRequest | None = None
    resume_participant: Participant | None = None
    staff_user_id: int | None = None
    # A participant id made for this connection (token-less, or a token without ``sub``): such
    # joins open a new presence each time, so they count against the per-address join limit;
    # and no earlier knock or presence can hold it.
    fresh_id: bool = False

    @property
    def token_jti(self) -> str:
        if self.claims is not None:
            return self.claims.jti or ""
        held = self.resume_participant or self.resume_request
        return held.token_jti if held is not None else ""

    @property
    def token_expires_at(self) -> datetime | None:
        if self.claims is not None:
            return datetime.fromtimestamp(self.claims.exp, tz=UTC)
        held = self.resume_participant or self.resume_request
        return held.token_expires_at if held is not None else None


@dataclass
class Waiting:
    request: EntryRequest
    resume: str
    position: int
    total: int


@dataclass
class Joined:
    participant: Participant
    room: Room
    participants: list[Participant]
    resume: str
    pending: list[EntryRequest] = field(default_factory=list)
    breakouts: list[dict[str, Any]] = field(default_factory=list)
    media: dict[str, Any] = field(default_factory=dict)
    # Moderators only: the latest outcomes (``activity.recent``), newest first.
    activity: list[ActivityItem] | None = None


def join_plan(
    *,
    room_name: str,
    token: str | None,
    name: Any = None,
    resume: Any = None,
    staff_user: Any = None,
) -> JoinPlan:
    """Verify the token, resolve a resume key and decide the access level (reads only).

    Raises ``RoomNotFound``, token errors, ``InvalidEntryClaim``, ``AccessDenied``, or, for a
    resume key whose knock was decided while away, ``EntryDenied`` / ``EntryTimeout``.
    """
    if resume is not None and not isinstance(resume, str):
        raise BadRequest("resume must be a string.")
    if token is not None and not isinstance(token, str):
        raise BadRequest("token must be a string.")
    room = get_room(room_name)
    if staff_user is not None:
        # A signed-in Django staff user on the dashboard is a moderator of every room.
        if not getattr(staff_user, "is_staff", False) or not staff_user.is_active:
            raise InvalidPermissions("Sign in as a staff user.")
        username = staff_user.get_username()
        return JoinPlan(
            room=room,
            level="full",
            role=Role.MODERATOR,
            participant_id=f"staff:{username}",
            name=clean_name(staff_user.get_full_name(), default="") or username,
            claims=None,
            staff_user_id=staff_user.pk,
        )
    claims = verify_token(token, room_name=room.name) if token else None
    name = clean_name(name)
    # A resume key whose presence lapsed (away longer than the grace) enters afresh, under the
    # same id and name, so moderators recognise who is knocking again.
    lapsed: tuple[str, str] | None = None
    if resume:
        h = hash_secret(resume)
        p = Participant.objects.filter(room=room, resume_hash=h).first()
        if p is not None and p.status == Participant.Status.LEFT:
            lapsed = (p.participant_id, p.name)
        if p is not None and p.status != Participant.Status.LEFT:
            check_credential(token_jti=p.token_jti, token_expires_at=p.token_expires_at)
            return JoinPlan(
                room=room,
                level="full",
                role=p.role,
                participant_id=p.participant_id,
                name=p.name,
                claims=claims,
                resume_participant=p,
            )
        # The newest knock with this key: one sent back to the waiting room shares the key of
        # the knock that first admitted it.
        r = EntryRequest.objects.filter(room=room, resume_hash=h).order_by("-requested_at").first()
        if r is not None:
            # A resume key never outlives the token it was issued under.
            check_credential(token_jti=r.token_jti, token_expires_at=r.token_expires_at)
            if r.status == EntryRequest.Status.PENDING:
                return JoinPlan(
                    room=room,
                    level="lobby",
                    role=r.role,
                    participant_id=r.participant_id,
                    name=r.name,
                    claims=claims,
                    request_id=r.id,
                    resume_request=r,
                )
            if r.status == EntryRequest.Status.DENIED:
                raise EntryDenied(r.deny_reason or None)
            if r.status == EntryRequest.Status.CANCELED and r.cancel_reason != "aborted":
                raise EntryTimeout()
            if r.status == EntryRequest.Status.ADMITTED and lapsed is None:
                lapsed = (r.participant_id, r.name)
        # An unknown or spent resume key is a fresh join.
    access = access_level(room=room, claims=claims)
    if access.level == "none":
        raise AccessDenied()
    known_id = (claims.sub if claims and claims.sub else None) or (lapsed[0] if lapsed else None)
    participant_id = known_id or f"g-{uuid.uuid4().hex}"
    display = (
        (claims.name if claims and claims.name else None)
        or name
        or (lapsed[1] if lapsed else None)
        or "Guest"
    )
    return JoinPlan(
        room=room,
        level=access.level,
        role=role_for(claims),
        participant_id=participant_id,
        name=display,
        claims=claims,
        ttl=access.ttl,
        request_id=uuid.uuid4() if access.level == "lobby" else None,
        fresh_id=known_id is None,
    )


def _lock_lobby(room_id: uuid.UUID) -> None:
    """Serialise the knocks and bulk decisions of one room (on SQLite, BEGIN IMMEDIATE already
    serialises every writer and this is a no-op).

    FOR NO KEY UPDATE, not FOR UPDATE: inserting a row that references the room (a participant,
    an audit event) takes FOR KEY SHARE on it, which FOR UPDATE blocks. A single admit holding its
    request row would wait for the room while admit-all, holding the room, waits for that row:
    a deadlock on PostgreSQL.
    """
    if connection.vendor == "sqlite":
        return  # the transaction's BEGIN IMMEDIATE holds the database's only write lock
    Room.objects.select_for_update(no_key=True).filter(pk=room_id).first()


def _present_ids(room_id: uuid.UUID) -> set[str]:
    return set(
        Participant.objects.filter(room_id=room_id)
        .exclude(status=Participant.Status.LEFT)
        .values_list("participant_id", flat=True)
    )


def _free_places(room: Room) -> int | None:
    """How many more may enter ``room`` (None: no cap), for a caller holding ``_lock_lobby``.
    The cap and the count are read under the lock (on SQLite the writer lock), so two joins
    cannot both take the last place. An uncapped room (as read before the lock) costs nothing."""
    if room.max_participants is None:
        return None
    cap = Room.objects.filter(pk=room.pk).values_list("max_participants", flat=True).first()
    if cap is None:
        return None
    present = Participant.objects.filter(room=room).exclude(status=Participant.Status.LEFT)
    return max(0, cap - present.count())


def _check_join_limit(*, room: Room, conn: Connection, now: Any) -> None:
    """``ANTEROOM_ADDRESS_JOIN_LIMIT`` fresh presences per client address and room, counted
    from the rows themselves (exact, under the room lock). Loopback is not limited."""
    address = limits.address_key(conn.client_address)
    n, seconds = settings.ANTEROOM_ADDRESS_JOIN_LIMIT
    if not address or n <= 0:
        return
    since = now - timedelta(seconds=seconds)
    made = Participant.objects.filter(room=room, client_address=address, created_at__gt=since)
    if made.count() >= n:
        raise EntryRateLimited()


def _queue_place(r: EntryRequest) -> tuple[int, int]:
    """(position, waiting) of a pending knock in its room's queue: one counting query, not the
    N ids of the queue (``events.queue_order`` reads those once per broadcast)."""
    counts = EntryRequest.objects.filter(
        room_id=r.room_id, status=EntryRequest.Status.PENDING
    ).aggregate(
        total=Count("pk"),
        ahead=Count("pk", filter=Q(requested_at__lt=r.requested_at)),
    )
    return counts["ahead"] + 1, max(counts["total"], counts["ahead"] + 1)


def _lock_limit_key(kind: str, key: str) -> None:
    """Serialise the knocks counted under one rate-limit key across *rooms* (a token, a browser):
    the room lock only serialises one room's knocks, so on PostgreSQL two knocks with one token
    in two rooms could both read "2 of 3" and both insert. A transaction-scoped advisory lock on
    a hash of the key (released at commit) makes the count and the insert one step. Advisory,
    not a row lock: a hand-made token (or a browser) has no row to lock, and making one per key
    would fill a table with lock rows. On SQLite, BEGIN IMMEDIATE already serialises writers.
    Taken after the room lock, always in this order, so two knocks cannot deadlock."""
    if connection.vendor != "postgresql":
        return
    digest = hashlib.sha256(f"{kind}:{key}".encode()).digest()
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT pg_advisory_xact_lock(%s, %s)",
            [LIMIT_LOCK_CLASS, int.from_bytes(digest[:4], "big", signed=True)],
        )


# pg_advisory_xact_lock(int4, int4)'s first half: Anteroom's knock-limit keys.
LIMIT_LOCK_CLASS = 0x414E_4B4C  # "ANKL"


def _check_knock_limits(*, plan: JoinPlan, conn: Connection, now: Any) -> None:
    """Raise ``EntryRateLimited`` with ``retry_after``: the seconds until the oldest knock that
    counts against the limit leaves its window (then one knock is allowed again). Counted from
    the stored knocks, exact: the caller holds the room lock and, for the per-token and
    per-browser limits that span rooms, the key's lock (``_lock_limit_key``)."""

    def check(limit: tuple[int, int], **filters: Any) -> None:
        n, seconds = limit
        since = now - timedelta(seconds=seconds)
        recent = list(
            EntryRequest.objects.filter(requested_at__gt=since, **filters)
            .order_by("-requested_at")
            .values_list("requested_at", flat=True)[:n]
        )
        if len(recent) >= n:
            wait = (recent[-1] + timedelta(seconds=seconds) - now).total_seconds()
            retry_after = max(1, math.ceil(wait))
            raise EntryRateLimited(
                f"Too many requests to join. Try again in {_duration_words(retry_after)}.",
                retry_after=retry_after,
            )

    if plan.claims is not None:
        _lock_limit_key("token", plan.claims.key)
        check(settings.ANTEROOM_KNOCK_LIMIT, token_key=plan.claims.key)
        return
    if conn.browser_key:
        _lock_limit_key("browser", conn.browser_key)
        check(settings.ANTEROOM_BROWSER_KNOCK_LIMIT, browser_key=conn.browser_key)
    if conn.client_address:
        check(
            settings.ANTEROOM_ADDRESS_KNOCK_LIMIT,
            client_address=conn.client_address,
            room=plan.room,
            token_key="",
        )


def _duration_words(seconds: int) -> str:
    """``45 seconds``, ``1 minute``, ``4 minutes`` (rounded up to whole minutes past one)."""
    if seconds < 60:
        return "1 second" if seconds == 1 else f"{seconds} seconds"
    minutes = math.ceil(seconds / 60)
    return "1 minute" if minutes == 1 else f"{minutes} minutes"


@transaction.atomic
def entry_request_knock(*, plan: JoinPlan, conn: Connection, metadata: Any = None) -> Waiting:
    """Store a knock (or re-attach a resumed one), then tell moderators.

    Locks the room row, so knocks of one room serialise and rate limits cannot be raced.
    Emits ``entry-requested`` to moderators and the queue order to waiting guests.
    Raises ``EntryRateLimited``, ``EntryTimeout`` (a resumed knock that expired meanwhile).
    """
    assert plan.level == "lobby" and plan.request_id is not None
    now = clock.now()
    _lock_lobby(plan.room.pk)
    resume = new_resume_key()
    if plan.resume_request is not None:
        # Re-attach: a new resume key, the same id and deadline.
        changed = EntryRequest.objects.filter(
            pk=plan.request_id, status=EntryRequest.Status.PENDING, expires_at__gt=now
        ).update(
            resume_hash=hash_secret(resume),
            server_id=conn.server_id,
            connection_id=conn.connection_id,
            disconnected_at=None,
        )
        if changed != 1:
            raise EntryTimeout()
        r = EntryRequest.objects.get(pk=plan.request_id)
        # A socket still waiting with this knock (the key re-used while it is open) is replaced:
        # one live socket per guest, so only the new one hears the outcome.
        _close_replaced(events.request_group(r.id), conn.connection_id)
        events.entry_updated(r)
    else:
        metadata = clean_metadata(metadata)
        _check_knock_limits(plan=plan, conn=conn, now=now)
        ttl = plan.ttl or plan.room.knock_ttl
        # A guest who knocks again from a new socket replaces their own pending knock (one
        # whose id was made up for this knock has none).
        old = (
            []
            if plan.fresh_id
            else list(
                EntryRequest.objects.filter(
                    room=plan.room, participant_id=plan.participant_id, status="pending"
                )
            )
        )
        replaced = [
            o for o in old if _finish(o, status="canceled", cancel_reason="aborted", by="", now=now)
        ]
        if replaced:
            # Moderators drop the old row; the guest's old socket hears it was canceled.
            _announce_cancel(replaced, now)
        r = EntryRequest.objects.create(
            id=plan.request_id,
            room=plan.room,
            participant_id=plan.participant_id,
            name=plan.name,
            metadata=metadata,
            role=plan.role,
            requested_at=now,
            expires_at=now + timedelta(seconds=ttl),
            token_key=plan.claims.key if plan.claims else "",
            token_jti=plan.token_jti,
            token_expires_at=plan.token_expires_at,
            browser_key=conn.browser_key if plan.claims is None else "",
            client_address=conn.client_address,
            resume_hash=hash_secret(resume),
            server_id=conn.server_id,
            connection_id=conn.connection_id,
        )
        events.entry_requested(r)
        webhooks.emit("knock.created", room=plan.room, data={"request": webhooks.request_data(r)})
        from .audit import audit_record

        audit_record(room=plan.room, actor=r.participant_id, action="knock", request=r)
        metrics.knocked()
    events.queue_changed(plan.room.pk)
    position, total = _queue_place(r)
    return Waiting(request=r, resume=resume, position=position, total=total)


@transaction.atomic
def participant_join(*, plan: JoinPlan, conn: Connection) -> Joined:
    """Enter the room directly (level ``full``) or on resume; replaces an earlier presence.

    Emits ``participant-joined`` (or ``participant-updated`` on resume) to members.
    """
    assert plan.level == "full"
    now = clock.now()
    resume = new_resume_key()
    room = plan.room
    # Two first joins with one id (two tabs) must not both insert: serialise on the room.
    _lock_lobby(room.pk)
    existing = (
        Participant.objects.select_for_update()
        .filter(room=room, participant_id=plan.participant_id)
        .first()
    )
    was_present = existing is not None and existing.status != Participant.Status.LEFT
    if existing is None and plan.fresh_id:
        _check_join_limit(room=room, conn=conn, now=now)
    free = _free_places(room)
    if not was_present and plan.role != Role.MODERATOR and free is not None and free < 1:
        raise RoomFull()
    # A moderator already present from another open socket (a second tab or device) joins that
    # presence: every socket stays live. Anyone else's new socket replaces the old one.
    another_tab = (
        existing is not None
        and was_present
        and plan.role == Role.MODERATOR
        and existing.role == Role.MODERATOR
        and existing.disconnected_at is None
        and bool(existing.connection_id)
        and existing.connection_id != conn.connection_id
    )
    if existing is None:
        p = Participant(
            room=room,
            participant_id=plan.participant_id,
            created_at=now,
            client_address=limits.address_key(conn.client_address),
        )
    else:
        p = existing
        if another_tab:
            # The socket already there may predate socket tracking: record it too.
            ModeratorSocket.objects.get_or_create(
                connection_id=existing.connection_id,
                defaults={"participant": p, "server_id": existing.server_id, "opened_at": now},
            )
        elif was_present and existing.connection_id not in ("", conn.connection_id):
            # The same id on a new socket replaces the old presence: the old socket is closed.
            _close_replaced(events.participant_group(room.pk, p.participant_id), conn.connection_id)
    # A fresh join (no resume key) starts in the parent, out of any breakout it was in (not a
    # moderator's extra tab: the presence it joins stays where it is).
    fresh = plan.resume_participant is None and not another_tab
    left_breakout = p.breakout_id if was_present and fresh else None
    if fresh:
        p.name = plan.name
        p.role = plan.role
        p.status = Participant.Status.ACTIVE
        p.breakout = None
        p.can_publish = plan.claims.can_publish if plan.claims else True
    elif p.status == Participant.Status.LEFT:
        p.status = Participant.Status.ACTIVE
    if plan.resume_participant is None or plan.claims is not None:
        p.token_jti = plan.token_jti
        p.token_expires_at = plan.token_expires_at
    p.resume_hash = hash_secret(resume)
    p.server_id = conn.server_id
    p.connection_id = conn.connection_id
    p.connected_at = now
    p.disconnected_at = None
    p.left_at = None
    p.save()
    if p.role == Role.MODERATOR:
        ModeratorSocket.objects.create(
            participant=p,
            connection_id=conn.connection_id,
            server_id=conn.server_id,
            opened_at=now,
        )
    if left_breakout is not None:
        extensions.left_breakout(participant=p, breakout_id=left_breakout, reason="rejoined")
    media.changed(
        room.pk,
        participants=[p.participant_id],
        revoked=[(p.participant_id, left_breakout)] if left_breakout is not None else [],
    )
    kind = "participant-updated" if was_present else "participant-joined"
    if not was_present:
        webhooks.emit(
            "participant.joined",
            room=room,
            data={"participant": events.participant_payload(p)},
        )
    events.send_on_commit(
        events.members_group(room.pk),
        {"type": kind, "participant": events.participant_payload(p)},
        except_connection=conn.connection_id,  # the joiner learns it from ``joined``
    )
    return Joined(
        participant=p,
        room=room,
        participants=selectors.participants_present(room=room),
        resume=resume,
        pending=selectors.pending_requests(room=room) if p.role == Role.MODERATOR else [],
        breakouts=selectors.breakouts_for(room=room, moderator=p.role == Role.MODERATOR),
        media=media.joined_media(room.pk, [p.participant_id])[p.participant_id],
        activity=activity.recent(room=room) if p.role == Role.MODERATOR else None,
    )


def _close_replaced(group: str, keep_connection: str) -> None:
    """After commit, close every socket of ``group`` but ``keep_connection`` with ``REPLACED``
    (4409): a guest or participant that attached again from a newer socket."""
    err = Replaced()
    events.send_on_commit(
        group,
        events.error_frame(err.code, err.message),
        action="close",
        close_code=err.close_code,
        except_connection=keep_connection,
    )


def joined_frame(j: Joined) -> dict[str, Any]:
    frame = {
        "type": "joined",
        "participant": events.participant_payload(j.participant),
        "room": events.room_payload(j.room),
        "participants": [events.participant_payload(x) for x in j.participants],
        "resume": j.resume,
        "breakouts": j.breakouts,
        "media": j.media,
    }
    if j.activity is not None:
        frame["activity"] = j.activity
    return frame


# Decisions -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Decision:
    request: EntryRequest
    outcome: str
    effective: bool


def _finish(
    r: EntryRequest,
    *,
    status: str,
    by: str,
    now: Any,
    cancel_reason: str = "",
    deny_reason: str = "",
    check_deadline: bool = False,
) -> bool:
    """Move one request out of ``pending`` with a conditional update. True if this call did."""
    q = EntryRequest.objects.filter(pk=r.pk, status=EntryRequest.Status.PENDING)
    if check_deadline:
        q = q.filter(expires_at__gt=now)
    changed = q.update(
        status=status,
        cancel_reason=cancel_reason,
        resolved_by=by,
        resolved_at=now,
        deny_reason=deny_reason,
    )
    if changed:
        r.status, r.cancel_reason, r.resolved_by, r.resolved_at = status, cancel_reason, by, now
        r.deny_reason = deny_reason
    return changed == 1


def _admit_rows(room: Room, admitted: list[EntryRequest], now: Any) -> list[Participant]:
    """Create (or replace) the presences of admitted guests; emit their events."""
    participants = []
    replaced: set[str] = set()
    # Bulk writes: admit-all of 1,000 is a few queries, not 3,000.
    existing = {
        p.participant_id: p
        for p in Participant.objects.filter(
            room=room, participant_id__in=[r.participant_id for r in admitted]
        )
    }
    to_create: list[Participant] = []
    to_update: list[Participant] = []
    for r in admitted:
        old = existing.get(r.participant_id)
        if (
            old is not None
            and old.status != Participant.Status.LEFT
            and old.connection_id != r.connection_id
        ):
            # The same id is present from another socket (a second tab knocked with the same
            # token): as with a direct rejoin, this presence replaces it and the old socket closes.
            replaced.add(r.participant_id)
            _close_replaced(events.participant_group(room.pk, r.participant_id), r.connection_id)
        values = {
            "name": r.name,
            "role": r.role,
            "status": Participant.Status.ACTIVE,
            "breakout": None,
            "can_publish": r.role != Role.VIEWER,
            "resume_hash": r.resume_hash,
            "token_jti": r.token_jti,
            "token_expires_at": r.token_expires_at,
            "server_id": r.server_id,
            "connection_id": r.connection_id,
            "connected_at": now,
            "disconnected_at": r.disconnected_at,
            "left_at": None,
        }
        if old is None:
            p = Participant(room=room, participant_id=r.participant_id, created_at=now, **values)
            to_create.append(p)
        else:
            p = old
            for key, value in values.items():
                setattr(p, key, value)
            to_update.append(p)
        participants.append(p)
    Participant.objects.bulk_create(to_create, batch_size=500)
    if to_update:
        Participant.objects.bulk_update(to_update, fields=list(values), batch_size=500)
    present = selectors.participants_present(room=room)
    roster = [events.participant_payload(x) for x in present]
    room_data = events.room_payload(room)
    breakouts = selectors.breakouts_for(room=room, moderator=False)
    media.changed(room.pk, participants=[p.participant_id for p in participants])
    media_of = media.joined_media(room.pk, [p.participant_id for p in participants])
    batch: list[tuple[str, dict[str, Any]]] = []
    for r, p in zip(admitted, participants, strict=True):
        joined = {
            "type": "joined",
            "participant": events.participant_payload(p),
            "room": room_data,
            "participants": roster,
            "resume": None,  # the guest keeps the resume key it already holds
            "breakouts": breakouts,
            "media": media_of[p.participant_id],
        }
        batch.append(
            (
                events.request_group(r.id),
                {
                    "frames": [joined],
                    "action": "admitted",
                    "participant_id": p.participant_id,
                    "role": p.role,
                    "room_id": str(room.pk),
                },
            )
        )
    for p in participants:
        kind = "participant-updated" if p.participant_id in replaced else "participant-joined"
        batch.append(
            (
                events.members_group(room.pk),
                {
                    "frames": [{"type": kind, "participant": events.participant_payload(p)}],
                    "action": "",
                },
            )
        )
    events.send_many_on_commit(batch)
    return participants


def _deny_frames(r: EntryRequest) -> tuple[str, dict[str, Any]]:
    err = EntryDenied(r.deny_reason or None)
    return (
        events.request_group(r.id),
        {
            "frames": [events.error_frame(err.code, err.message)],
            "action": "close",
            "close_code": 4403,
        },
    )


def _get_request(room: Room, request_id: Any) -> EntryRequest:
    try:
        rid = uuid.UUID(str(request_id))
    except ValueError as exc:
        raise RequestNotFound() from exc
    r = EntryRequest.objects.filter(pk=rid, room=room).first()
    if r is None:
        raise RequestNotFound()
    return r


@transaction.atomic
def entry_request_decide(
    *, room: Room, request_id: Any, actor: Actor, outcome: str, reason: str = ""
) -> Decision:
    """Admit or deny one request. The first decision wins (conditional update on ``pending``
    and an unexpired deadline); a later one is a no-op reporting the current status. A request
    past its deadline that the sweeper has not reached yet is timed out here (``canceled``).

    Emits ``entry-resolved`` to moderators, ``joined`` or ``ENTRY_DENIED`` to the guest, and
    ``participant-joined`` to members. Raises ``InvalidPermissions``, ``RequestNotFound``.
    """
    require_moderator(actor)
    if outcome not in ("admitted", "denied"):
        raise BadRequest("outcome must be admitted or denied.")
    reason = clean_name(reason)
    r = _get_request(room, request_id)
    now = clock.now()
    if outcome == "admitted" and r.status == EntryRequest.Status.PENDING:
        # A capped room: the place is counted and taken under the room lock.
        if room.max_participants is not None:
            _lock_lobby(room.pk)
        free = _free_places(room)
        if free is not None and free < 1 and r.participant_id not in _present_ids(room.pk):
            r.refresh_from_db()
            if r.status == EntryRequest.Status.PENDING and r.expires_at > now:
                raise RoomFull()
    if not _finish(
        r, status=outcome, by=actor.by, now=now, deny_reason=reason, check_deadline=True
    ):
        r.refresh_from_db()
        if r.status == EntryRequest.Status.PENDING and r.expires_at <= now:
            # Past its deadline but not swept yet: it timed out, and that is what is reported.
            if _finish(r, status="canceled", cancel_reason="timeout", by="", now=now):
                _announce_cancel([r], now)
            r.refresh_from_db()
        return Decision(request=r, outcome=r.status, effective=False)
    _announce_decisions(room, [r], outcome, now, actor)
    return Decision(request=r, outcome=outcome, effective=True)


def _announce_decisions(
    room: Room, decided: list[EntryRequest], outcome: str, now: Any, actor: Actor
) -> None:
    from .audit import audit_decisions

    batch = [
        (
            events.mods_group(room.pk),
            {"frames": [events.entry_resolved_for_mods(r) for r in decided]},
        )
    ]
    events.send_many_on_commit(batch)
    hooks: list[tuple[str, Room | uuid.UUID, dict[str, Any]]] = [
        ("knock.resolved", room, {"request": webhooks.request_data(r)}) for r in decided
    ]
    if outcome == "admitted":
        joined = _admit_rows(room, decided, now)
        hooks += [
            ("participant.joined", room, {"participant": events.participant_payload(p)})
            for p in joined
        ]
    else:
        events.send_many_on_commit([_deny_frames(r) for r in decided])
    webhooks.emit_many(hooks)
    events.queue_changed(room.pk)
    metrics.decided(outcome, decided, now)
    audit_decisions(room=room, actor=actor.by, action=outcome, requests=decided)
    activity.announce(room.pk, [activity.request_item(r) for r in decided])


@transaction.atomic
def entry_requests_decide_all(*, room: Room, actor: Actor, outcome: str) -> int:
    """Admit or deny every pending, unexpired request of a room. Returns how many this call
    decided (requests decided elsewhere meanwhile are not counted)."""
    require_moderator(actor)
    if outcome not in ("admitted", "denied"):
        raise BadRequest("outcome must be admitted or denied.")
    now = clock.now()
    _lock_lobby(room.pk)
    pending = list(
        EntryRequest.objects.filter(room=room, status="pending", expires_at__gt=now).order_by(
            "requested_at"
        )
    )
    if not pending:
        return 0
    free = _free_places(room) if outcome == "admitted" else None
    if free is not None:
        # A capped room admits the oldest that fit; the others keep waiting. A guest already
        # present under the same id (another tab) takes no new place.
        present = _present_ids(room.pk)
        fit = []
        for r in pending:
            if r.participant_id in present:
                fit.append(r)
            elif free > 0:
                fit.append(r)
                free -= 1
        if not fit:
            raise RoomFull()
        pending = fit
    ids = [r.pk for r in pending]
    # One conditional UPDATE; rows decided concurrently are excluded by the status filter.
    changed = EntryRequest.objects.filter(pk__in=ids, status="pending", expires_at__gt=now).update(
        status=outcome, resolved_by=actor.by, resolved_at=now
    )
    if changed != len(ids):
        decided = list(
            EntryRequest.objects.filter(
                pk__in=ids, status=outcome, resolved_by=actor.by, resolved_at=now
            )
        )
    else:
        decided = pending
        for r in decided:
            r.status, r.resolved_by, r.resolved_at = outcome, actor.by, now
    _announce_decisions(room, decided, outcome, now, actor)
    return len(decided)


@transaction.atomic
def entry_request_cancel(*, room: Room, request_id: Any, reason: str = "aborted") -> bool:
    """Cancel a pending request (guest's Cancel, a lost socket after grace, a timeout).

    Emits ``entry-canceled`` to moderators; the guest gets ``canceled`` (aborted) or
    ``ENTRY_TIMEOUT`` (timeout). Idempotent: returns False if it was no longer pending.
    """
    r = _get_request(room, request_id)
    now = clock.now()
    if not _finish(r, status="canceled", cancel_reason=reason, by="", now=now):
        return False
    _announce_cancel([r], now)
    return True


def _announce_cancel(
    canceled: list[EntryRequest], now: Any, *, guest_error: AnteroomError | None = None
) -> None:
    """Tell moderators and each guest that these knocks were canceled: the guest hears exactly
    one outcome — ``canceled`` (aborted), ``guest_error`` when given (e.g. ``TOKEN_REVOKED``),
    else ``ENTRY_TIMEOUT`` — and its socket closes unless it aborted."""
    from .audit import audit_record

    batch: list[tuple[str, dict[str, Any]]] = []
    rooms = set()
    for r in canceled:
        rooms.add(r.room_id)
        batch.append(
            (events.mods_group(r.room_id), {"frames": [events.entry_canceled_for_mods(r)]})
        )
        if r.cancel_reason == "aborted":
            batch.append(
                (
                    events.request_group(r.id),
                    {"frames": [{"type": "canceled", "reason": "aborted"}], "action": "canceled"},
                )
            )
        else:
            err = guest_error or EntryTimeout()
            batch.append(
                (
                    events.request_group(r.id),
                    {
                        "frames": [events.error_frame(err.code, err.message)],
                        "action": "close",
                        "close_code": err.close_code,
                    },
                )
            )
        audit_record(
            room_id=r.room_id,
            actor=r.participant_id if r.cancel_reason == "aborted" else "system",
            action="cancel",
            request=r,
            data={"reason": r.cancel_reason},
        )
    events.send_many_on_commit(batch)
    webhooks.emit_many(
        ("knock.resolved", r.room_id, {"request": webhooks.request_data(r)}) for r in canceled
    )
    metrics.canceled(canceled)
    for room_id in rooms:
        events.queue_changed(room_id)
        activity.announce(
            room_id, [activity.request_item(r) for r in canceled if r.room_id == room_id]
        )


@transaction.atomic
def entry_request_rename(*, request_id: uuid.UUID, name: Any) -> EntryRequest:
    """A waiting guest changes its name; moderators hear ``entry-updated``."""
    name = clean_name(name)
    if not name:
        raise BadRequest("name must not be empty.")
    changed = EntryRequest.objects.filter(pk=request_id, status="pending").update(name=name)
    r = EntryRequest.objects.get(pk=request_id)
    if changed:
        events.entry_updated(r)
    return r


@transaction.atomic
def participant_rename(*, room: Room, participant_id: str, name: Any) -> Participant:
    """A participant changes its name; members hear ``participant-updated``."""
    name = clean_name(name)
    if not name:
        raise BadRequest("name must not be empty.")
    p = Participant.objects.select_for_update().get(room=room, participant_id=participant_id)
    p.name = name
    p.save(update_fields=["name"])
    events.send_on_commit(
        events.members_group(room.pk),
        {"type": "participant-updated", "participant": events.participant_payload(p)},
    )
    return p


# Presence ------------------------------------------------------------------------------------


@transaction.atomic
def entry_request_disconnected(*, request_id: uuid.UUID, connection_id: str) -> None:
    """The guest's socket closed: start the grace period (unless another socket took over)."""
    now = clock.now()
    changed = EntryRequest.objects.filter(
        pk=request_id, status="pending", connection_id=connection_id, disconnected_at__isnull=True
    ).update(disconnected_at=now)
    if changed:
        events.entry_updated(EntryRequest.objects.get(pk=request_id))


@transaction.atomic
def participant_disconnected(*, room: Room, participant_id: str, connection_id: str) -> None:
    """A participant's socket closed: they stay listed for the grace period, then leave.

    A moderator present from other sockets too stays connected (locks the presence row, so two
    tabs closing at once cannot both think the other one is still open)."""
    if _other_moderator_socket(room, participant_id, connection_id):
        return
    Participant.objects.filter(
        room=room,
        participant_id=participant_id,
        connection_id=connection_id,
        disconnected_at__isnull=True,
    ).exclude(status="left").update(disconnected_at=clock.now())


@transaction.atomic
def participant_leave(*, room: Room, participant_id: str, connection_id: str | None = None) -> bool:
    """Leave the room now. Emits ``participant-left`` to members. Idempotent."""
    if connection_id is not None and _other_moderator_socket(room, participant_id, connection_id):
        return False  # a moderator's other tabs are still open: only this socket goes
    q = Participant.objects.filter(room=room, participant_id=participant_id).exclude(status="left")
    if connection_id is not None:
        q = q.filter(connection_id=connection_id)
    p = q.first()
    if p is None:
        return False
    return _mark_left([p], clock.now(), reason="left", by=participant_id) == 1


def _other_moderator_socket(room: Room, participant_id: str, connection_id: str) -> bool:
    """Forget this socket of a moderator's presence; True if another one is still open (the
    presence then names it). Locks the presence row."""
    p = (
        Participant.objects.select_for_update()
        .filter(room=room, participant_id=participant_id, role=Role.MODERATOR)
        .exclude(status="left")
        .first()
    )
    if p is None:
        return False
    ModeratorSocket.objects.filter(participant=p, connection_id=connection_id).delete()
    rest = ModeratorSocket.objects.filter(participant=p).order_by("-opened_at").first()
    if rest is None:
        if p.connection_id != connection_id:
            # Every tracked socket is gone: this was the last one, whichever the row names.
            Participant.objects.filter(pk=p.pk).update(connection_id=connection_id)
        return False
    if p.connection_id == connection_id:
        Participant.objects.filter(pk=p.pk).update(
            connection_id=rest.connection_id, server_id=rest.server_id
        )
    return True


def _mark_left(
    people: list[Participant], now: Any, *, reason: activity.LeaveReason = "left", by: str = ""
) -> int:
    """End these presences (those not ended already): ``participant-left`` to members, an audit
    row and an ``activity`` item (with ``reason``) for moderators. Returns how many ended."""
    done = 0
    ended: list[Participant] = []
    for p in people:
        if (
            Participant.objects.filter(pk=p.pk)
            .exclude(status="left")
            .update(status="left", left_at=now, breakout=None)
        ):
            done += 1
            ended.append(p)
            breakout_id = p.breakout_id
            p.status, p.left_at, p.breakout = "left", now, None
            media.changed(
                p.room_id,
                participants=[p.participant_id],
                revoked=[(p.participant_id, breakout_id or p.room_id)],
            )
            events.send_on_commit(
                events.members_group(p.room_id),
                {"type": "participant-left", "participant": events.participant_payload(p)},
            )
            webhooks.emit(
                "participant.left",
                room=p.room_id,
                data={"participant": events.participant_payload(p)},
            )
            if breakout_id:
                extensions.left_breakout(participant=p, breakout_id=breakout_id, reason="left")
    activity.record_leaves(ended, reason=reason, by=by, at=now)
    moderators = [p.pk for p in ended if p.role == Role.MODERATOR]
    if moderators:
        ModeratorSocket.objects.filter(participant_id__in=moderators).delete()
    return done


# Sweeper -------------------------------------------------------------------------------------


@dataclass
class SweepResult:
    timed_out: int = 0
    disconnected: int = 0
    left: int = 0
    dead_servers: int = 0
    # what each app's sweeper acted on, by name (lobby/extensions.py: sweepers)
    extensions: dict[str, int] = field(default_factory=dict)
    notices: int = 0


def server_heartbeat(*, server_id: str) -> None:
    now = clock.now()
    updated = ServerProcess.objects.filter(pk=server_id).update(heartbeat_at=now)
    if not updated:
        ServerProcess.objects.update_or_create(
            server_id=server_id, defaults={"started_at": now, "heartbeat_at": now}
        )


SERVER_DEAD_AFTER = 10


def sweep(*, server_id: str | None = None) -> SweepResult:
    """Enforce every stored deadline. Idempotent; safe in every process at once.

    Each transition is a conditional update, so a timeout fires exactly once whichever sweeper
    gets there first. Sockets held by a process whose heartbeat stopped count as disconnected
    from its last heartbeat.
    """
    res = SweepResult()
    now = clock.now()
    if server_id:
        server_heartbeat(server_id=server_id)
    grace = timedelta(seconds=settings.ANTEROOM_DISCONNECT_GRACE)
    with transaction.atomic():
        dead = list(
            ServerProcess.objects.filter(
                heartbeat_at__lt=now - timedelta(seconds=SERVER_DEAD_AFTER)
            )
        )
        for s in dead:
            # Whoever deletes the row handles the dead process, so its events go out once.
            if not ServerProcess.objects.filter(pk=s.pk, heartbeat_at=s.heartbeat_at).delete()[0]:
                continue
            # Locked: a guest re-attaching on a live process meanwhile must not be marked lost
            # (PostgreSQL re-checks the filter once the resume commits, and skips the row).
            lost = list(
                EntryRequest.objects.select_for_update().filter(
                    server_id=s.server_id, status="pending", disconnected_at__isnull=True
                )
            )
            EntryRequest.objects.filter(pk__in=[r.pk for r in lost]).update(
                disconnected_at=s.heartbeat_at
            )
            for r in lost:
                r.disconnected_at = s.heartbeat_at
                events.entry_updated(r)  # moderators see the guest as disconnected
            # A moderator whose other tabs are on live processes stays connected through them.
            ModeratorSocket.objects.filter(server_id=s.server_id).delete()
            elsewhere = {
                ms.participant_id: ms
                for ms in ModeratorSocket.objects.filter(
                    participant__server_id=s.server_id, participant__disconnected_at__isnull=True
                ).order_by("opened_at")
            }
            for pk, ms in elsewhere.items():
                Participant.objects.filter(pk=pk).update(
                    server_id=ms.server_id, connection_id=ms.connection_id
                )
            Participant.objects.filter(server_id=s.server_id, disconnected_at__isnull=True).exclude(
                status="left"
            ).exclude(pk__in=list(elsewhere)).update(disconnected_at=s.heartbeat_at)
            res.dead_servers += 1
    with transaction.atomic():
        expired = list(EntryRequest.objects.filter(status="pending", expires_at__lte=now)[:500])
        done = [
            r
            for r in expired
            if _finish(r, status="canceled", cancel_reason="timeout", by="", now=now)
        ]
        res.timed_out = len(done)
        if done:
            _announce_cancel(done, now)
    with transaction.atomic():
        gone = list(
            EntryRequest.objects.filter(status="pending", disconnected_at__lte=now - grace)[:500]
        )
        done = [
            r
            for r in gone
            if _finish(r, status="canceled", cancel_reason="disconnected", by="", now=now)
        ]
        res.disconnected = len(done)
        if done:
            _announce_cancel(done, now)
    with transaction.atomic():
        away = list(
            Participant.objects.filter(disconnected_at__lte=now - grace).exclude(status="left")[
                :500
            ]
        )
        res.left = _mark_left(away, now, reason="disconnected")
    res.extensions = extensions.run_sweepers(now=now)
    from .webhooks.alerts import alerts_sweep

    res.notices = alerts_sweep(now=now)
    metrics.swept()
    return res


def pending_filter() -> Q:
    return Q(status=EntryRequest.Status.PENDING)


# Tokens --------------------------------------------------------------------------------------


@transaction.atomic
def token_revoke(*, jti: str, by: str = "") -> bool:
    """Revoke a meeting token by ``jti`` and disconnect whoever uses it now.

    Participants holding it leave at once (``participant-left``) and their sockets close with
    ``TOKEN_REVOKED`` / 4401; a knock made with it is canceled at once (``entry-canceled`` with
    reason ``disconnected`` to moderators) and its guest gets one outcome, ``TOKEN_REVOKED`` /
    4401. Idempotent; returns True when this call revoked it.
    """
    from .audit import audit_record
    from .tokens import revoke_token

    changed = revoke_token(jti=jti)
    err = TokenRevoked()
    frame = events.error_frame(err.code, err.message)
    holders = list(Participant.objects.filter(token_jti=jti).exclude(status="left"))
    for p in holders:
        events.send_on_commit(
            events.participant_group(p.room_id, p.participant_id),
            frame,
            action="close",
            close_code=4401,
        )
    _mark_left(holders, clock.now(), reason="revoked", by=by)
    now = clock.now()
    knocks = list(EntryRequest.objects.filter(token_jti=jti, status="pending"))
    # The knock ends with the credential, so no moderator can admit it afterwards. Its guest is
    # told once, TOKEN_REVOKED (4401), and only if this call ended it: a knock decided meanwhile
    # has already told its own outcome.
    ended = [
        r
        for r in knocks
        if _finish(r, status="canceled", cancel_reason="disconnected", by="", now=now)
    ]
    if ended:
        _announce_cancel(ended, now, guest_error=err)
    if changed:
        audit_record(action="token-revoke", actor=by, subject=jti)
    return changed
