"""Who may enter a room and how: SPEC §2's access table and the join plan (reads only)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

from .. import cache
from ..errors import (
    AccessDenied,
    AnteroomError,
    BadRequest,
    EntryDenied,
    EntryTimeout,
    InvalidEntryClaim,
    InvalidPermissions,
    InvalidToken,
    TokenExpired,
    TokenRevoked,
)
from ..models import EntryRequest, Participant, Role, Room
from ..tokens import Claims, verify_token_claims
from .actors import check_credential
from .inputs import clean_name
from .keys import hash_secret
from .rooms import get_room, get_room_and_revocation

Level = Literal["full", "lobby", "none"]


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


def preauth(*, room_name: str, token: str | None) -> Access:
    room, claims = room_and_claims(room_name, token)
    return access_level(room=room, claims=claims)


def preauth_cached(*, room_name: str, token: str | None) -> Access | None:
    """``preauth``'s answer when ``lobby.cache`` holds the room and the token's revocation (the
    embedded default, a warm connect), else None: then call ``preauth`` on the ORM thread. No
    database, so a socket may call it on the event loop and skip the hop to the ORM thread.
    Raises what ``preauth`` raises, in the same order (only once the room is known)."""
    room = cache.get_room(room_name)
    if room is None:
        return None
    if token is None:
        return access_level(room=room, claims=None)
    claims = verify_token_claims(token, room_name=room_name)
    if claims.jti is not None:
        revoked = cache.is_revoked(claims.jti)
        if revoked is None:
            return None
        if revoked:
            raise TokenRevoked()
    return access_level(room=room, claims=claims)


def room_and_claims(room_name: str, token: Any) -> tuple[Room, Claims | None]:
    """``get_room(room_name)``, then, unless ``token`` is None, ``verify_token(token,
    room_name=...)`` — the same answers and the same errors in the same order (``RoomNotFound``
    first, then the token's own errors, then ``TokenRevoked``), but the room and the token's
    revocation are read in one statement when neither is cached."""
    if token is None:
        return get_room(room_name), None
    claims: Claims | None = None
    error: AnteroomError | None = None
    try:
        claims = verify_token_claims(token, room_name=room_name)
    except (InvalidToken, TokenExpired, InvalidEntryClaim) as exc:
        error = exc  # raised once the room is known to exist
    room, revoked = get_room_and_revocation(room_name, claims.jti if claims else None)
    if error is not None:
        raise error
    if revoked:
        raise TokenRevoked()
    return room, claims


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


@dataclass(frozen=True)
class Lapsed:
    """A resume key whose presence (or admitted knock) is over: the guest enters afresh under
    the same id and name, so moderators recognise who is knocking again."""

    participant_id: str
    name: str


def join_plan(
    *,
    room_name: str,
    token: str | None,
    name: Any = None,
    resume: Any = None,
    staff_user: Any = None,
) -> JoinPlan:
    """Verify the token, resolve a resume key and decide the access level (reads only).

    One of three plans: a staff user's (``_plan_staff``), a resumed presence or knock
    (``_plan_resume``), or a fresh join (``_plan_fresh``), which may carry over a lapsed
    presence's id and name.

    Raises ``RoomNotFound``, token errors, ``InvalidEntryClaim``, ``AccessDenied``, or, for a
    resume key whose knock was decided while away, ``EntryDenied`` / ``EntryTimeout``.
    """
    if resume is not None and not isinstance(resume, str):
        raise BadRequest("resume must be a string.")
    if token is not None and not isinstance(token, str):
        raise BadRequest("token must be a string.")
    if staff_user is not None:
        return _plan_staff(room=get_room(room_name), staff_user=staff_user)
    room, claims = room_and_claims(room_name, token or None)
    name = clean_name(name)
    lapsed: Lapsed | None = None
    if resume:
        resumed = _plan_resume(room=room, claims=claims, resume_hash=hash_secret(resume))
        if isinstance(resumed, JoinPlan):
            return resumed
        lapsed = resumed
    return _plan_fresh(room=room, claims=claims, name=name, lapsed=lapsed)


def _plan_staff(*, room: Room, staff_user: Any) -> JoinPlan:
    """A signed-in Django staff user on the dashboard is a moderator of every room."""
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


def _plan_resume(
    *, room: Room, claims: Claims | None, resume_hash: str
) -> JoinPlan | Lapsed | None:
    """What a resume key still holds: a presence (enter again), a pending knock (wait again), a
    lapsed presence or admitted knock (``Lapsed``: a fresh join under its id and name), or
    nothing (``None``: an unknown or spent key is a fresh join). A key never outlives the token
    it was issued under; a knock decided while away raises its outcome."""
    p = Participant.objects.filter(room=room, resume_hash=resume_hash).first()
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
    lapsed = Lapsed(p.participant_id, p.name) if p is not None else None
    # The newest knock with this key: one sent back to the waiting room shares the key of the
    # knock that first admitted it.
    r = (
        EntryRequest.objects.filter(room=room, resume_hash=resume_hash)
        .order_by("-requested_at")
        .first()
    )
    if r is None:
        return lapsed
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
        return Lapsed(r.participant_id, r.name)
    return lapsed


def _plan_fresh(*, room: Room, claims: Claims | None, name: str, lapsed: Lapsed | None) -> JoinPlan:
    """A join without a live resume key: SPEC §2's access table decides the level. The id is
    the token's ``sub``, else the lapsed presence's, else one made for this connection."""
    access = access_level(room=room, claims=claims)
    if access.level == "none":
        raise AccessDenied()
    known_id = (claims.sub if claims and claims.sub else None) or (
        lapsed.participant_id if lapsed else None
    )
    display = (
        (claims.name if claims and claims.name else None)
        or name
        or (lapsed.name if lapsed else None)
        or "Guest"
    )
    return JoinPlan(
        room=room,
        level=access.level,
        role=role_for(claims),
        participant_id=known_id or f"g-{uuid.uuid4().hex}",
        name=display,
        claims=claims,
        ttl=access.ttl,
        request_id=uuid.uuid4() if access.level == "lobby" else None,
        fresh_id=known_id is None,
    )
