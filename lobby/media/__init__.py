"""Calls: audio and video that admission, breakout rooms and room controls govern.

* :mod:`.policy` — who may send and receive what, and who talks to whom (pure rules + one read);
* :mod:`.backend` — the backend interface (``mesh``, ``janus``) and the media worker thread;
* :mod:`.mesh` — the peer-to-peer backend (no server to run);
* :mod:`.relay` — the ``signal`` relay and ``media-update``, the services the socket calls;
* this module — settings, ICE servers, ``joined.media`` and the hooks services call when
  something that changes media happens (:func:`changed`).

Hooks run inside the caller's transaction and do nothing until it commits; then one media
computation per parent and transaction locks the parent row, recomputes every media room of it,
stores the publisher slots, bumps ``Room.media_seq`` and sends ``media-state`` to the
participants whose media changed (docs/protocol.md "Calls"). Backend calls follow on the media
worker thread.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import cache
from typing import Any
from uuid import UUID

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured, ValidationError
from django.db import transaction
from django.dispatch import receiver

from .. import cache as room_cache
from ..instructions import Deliver
from . import frames, policy
from .backend import dispatch, get_backend
from .frames import MediaBody, MediaStateFrame
from .signals import media_server_recovered

log = logging.getLogger("anteroom.media")


# Settings -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class MediaConfig:
    mode: str
    ice_servers: list[dict[str, Any]]
    turn_secret: str
    turn_urls: list[str]
    turn_ttl: int
    max_publishers: int


def _ice_servers(raw: str) -> list[dict[str, Any]]:
    try:
        value = json.loads(raw)
    except ValueError as exc:
        raise ImproperlyConfigured("ANTEROOM_ICE_SERVERS must be a JSON list") from exc
    if not isinstance(value, list):
        raise ImproperlyConfigured("ANTEROOM_ICE_SERVERS must be a JSON list")
    for server in value:
        if not isinstance(server, dict) or "urls" not in server:
            raise ImproperlyConfigured('each of ANTEROOM_ICE_SERVERS needs "urls"')
        urls = server["urls"] if isinstance(server["urls"], list) else [server["urls"]]
        if not urls or not all(
            isinstance(u, str) and u.split(":", 1)[0] in ("stun", "stuns", "turn", "turns")
            for u in urls
        ):
            raise ImproperlyConfigured(
                "ANTEROOM_ICE_SERVERS urls must be stun:, stuns:, turn: or turns: URLs"
            )
        extra = set(server) - {"urls", "username", "credential"}
        if extra:
            raise ImproperlyConfigured(
                "ANTEROOM_ICE_SERVERS entries hold urls, username and credential only"
            )
        for key in ("username", "credential"):
            if key in server and not isinstance(server[key], str):
                raise ImproperlyConfigured(f"ANTEROOM_ICE_SERVERS {key} must be a string")
    return value


def _int(name: str, raw: str, lo: int, hi: int) -> int:
    try:
        value = int(raw)
    except ValueError as exc:
        raise ImproperlyConfigured(f"{name} must be an integer") from exc
    if not lo <= value <= hi:
        raise ImproperlyConfigured(f"{name} must be from {lo} to {hi}")
    return value


@cache
def config() -> MediaConfig:
    """The media settings, parsed and validated (``ImproperlyConfigured`` names the variable)."""
    mode = str(settings.ANTEROOM_MEDIA).strip().lower()
    if mode not in ("mesh", "janus"):
        raise ImproperlyConfigured(f"ANTEROOM_MEDIA must be mesh or janus, got {mode!r}")
    turn_urls = [u.strip() for u in str(settings.ANTEROOM_TURN_URLS).split(",") if u.strip()]
    for u in turn_urls:
        if u.split(":", 1)[0] not in ("turn", "turns"):
            raise ImproperlyConfigured("ANTEROOM_TURN_URLS must be turn: or turns: URLs")
    secret = str(settings.ANTEROOM_TURN_SECRET)
    if bool(turn_urls) != bool(secret):
        raise ImproperlyConfigured(
            "set both ANTEROOM_TURN_SECRET and ANTEROOM_TURN_URLS, or neither"
        )
    if secret and len(secret.encode()) < 16:
        raise ImproperlyConfigured("ANTEROOM_TURN_SECRET must be at least 16 bytes")
    return MediaConfig(
        mode=mode,
        ice_servers=_ice_servers(str(settings.ANTEROOM_ICE_SERVERS)),
        turn_secret=secret,
        turn_urls=turn_urls,
        turn_ttl=_int("ANTEROOM_TURN_TTL", str(settings.ANTEROOM_TURN_TTL), 60, 86400),
        max_publishers=_int(
            "ANTEROOM_MESH_MAX_PUBLISHERS", str(settings.ANTEROOM_MESH_MAX_PUBLISHERS), 1, 50
        ),
    )


def check_settings() -> None:
    """Start-up validation (``LobbyConfig.ready``)."""
    config.cache_clear()
    config()
    get_backend().check()


def turn_credentials(participant_id: str, *, now: float | None = None) -> dict[str, Any] | None:
    """coturn's REST scheme: username ``<expiry>:<participant id>``, credential
    ``base64(HMAC-SHA1(secret, username))``, valid for ``ANTEROOM_TURN_TTL`` seconds."""
    cfg = config()
    if not cfg.turn_secret:
        return None
    expiry = int(now if now is not None else time.time()) + cfg.turn_ttl
    username = f"{expiry}:{participant_id}"
    digest = hmac.new(cfg.turn_secret.encode(), username.encode(), hashlib.sha1).digest()
    return {
        "urls": list(cfg.turn_urls),
        "username": username,
        "credential": base64.b64encode(digest).decode(),
    }


def ice_servers(participant_id: str) -> list[dict[str, Any]]:
    servers = [dict(s) for s in config().ice_servers]
    turn = turn_credentials(participant_id)
    if turn is not None:
        servers.append(turn)
    return servers


# Payloads -------------------------------------------------------------------------------------


def media_payload(
    snap: policy.Snapshot, participant_id: str, *, sfu: bool | None = None
) -> MediaBody:
    """``joined.media`` / the body of ``media-state`` for one participant. ``sfu``: ask the
    backend for its ``join_info`` (default: only the mesh, which needs no network)."""
    backend = get_backend()
    if sfu is None:
        sfu = backend.name == "mesh"
    state = snap.state(participant_id)
    if state is None:
        state = policy.State(
            room=snap.parent.id, permissions=dict(policy.NO_MEDIA), publisher=False, peers=[]
        )
    receive = state.permissions["receive"]
    out: MediaBody = {
        "room": str(state.room),
        "seq": snap.seq,
        "permissions": state.permissions,
        "publisher": state.publisher,
        "peers": state.peers,
        "states": snap.media_states(state.peers),
        "mode": "mesh" if backend.name == "mesh" else "sfu",
        "max_publishers": config().max_publishers,
        "ice_servers": ice_servers(participant_id),
        "sfu": backend.join_info(participant_id, state.room) if receive and sfu else {},
    }
    if state.limit:
        out["limit"] = state.limit
    return out


def joined_media(parent_id: UUID, participant_ids: Iterable[str]) -> dict[str, MediaBody]:
    """``joined.media`` for participants entering now (read inside the joining transaction,
    after :func:`changed` named them). The computation after commit sends them no
    ``media-state`` that would only repeat it."""
    from ..models import Room

    parent = Room.objects.get(pk=parent_id)
    snap = policy.snapshot(parent, max_publishers=config().max_publishers)
    out = {pid: media_payload(snap, pid) for pid in participant_ids}
    pending = _pending_for(parent_id)
    if pending is not None:
        pending.told.update({pid: _comparable(m) for pid, m in out.items()})
    return out


def stored_permissions(media_rooms: Iterable[str]) -> dict[str, dict[str, Any] | None]:
    """What the database says now of each media room (a room's or breakout's id): participant
    id -> ``{audio, video, screen, receive}`` of everyone present in it, ``None`` for a media
    room that no longer exists. A media server's periodic re-enforcement reads this, never
    what one process last applied (another process may have removed someone since)."""
    from ..models import Room

    out: dict[str, dict[str, Any] | None] = {}
    by_parent: dict[Any, list[tuple[str, Any]]] = {}
    for key in media_rooms:
        try:
            row = Room.objects.filter(pk=key).values_list("pk", "parent_id").first()
        except (ValueError, TypeError, ValidationError):
            row = None  # not a room id
        if row is None:
            out[key] = None
            continue
        by_parent.setdefault(row[1] or row[0], []).append((key, row[0]))
    for parent_id, keys in by_parent.items():
        parent = Room.objects.filter(pk=parent_id).first()
        snap = (
            None
            if parent is None
            else policy.snapshot(parent, max_publishers=config().max_publishers)
        )
        for key, room_id in keys:
            plan = None if snap is None else snap.plans.get(room_id)
            out[key] = (
                None
                if plan is None
                else {pid: dict(s.permissions) for pid, s in plan.states.items()}
            )
    return out


def _comparable(payload: MediaBody) -> dict[str, Any]:
    return {k: v for k, v in payload.items() if k not in ("seq", "ice_servers")}


# Hooks ----------------------------------------------------------------------------------------


@dataclass
class Pending:
    """What one transaction changed for the media of one parent room."""

    parent_id: UUID
    participants: set[str] = field(default_factory=set)
    everyone: bool = False
    revoked: list[tuple[str, UUID]] = field(default_factory=list)
    closed: list[UUID] = field(default_factory=list)
    told: dict[str, dict[str, Any]] = field(default_factory=dict)  # given in ``joined``


def _pending_for(parent_id: UUID) -> Pending | None:
    conn = transaction.get_connection()
    registry = getattr(conn, "_anteroom_media", None) or {}
    entry = registry.get(parent_id)
    if entry is None or not any(f is entry[1] for _, f, _ in conn.run_on_commit):
        return None
    pending: Pending = entry[0]
    return pending


def changed(
    parent_id: UUID,
    *,
    participants: Iterable[str] = (),
    everyone: bool = False,
    revoked: Iterable[tuple[str, UUID]] = (),
    closed: Iterable[UUID] = (),
) -> None:
    """Tell media that something changed in a parent room (call inside the transaction).

    ``participants``: whose own media room or permissions changed (admitted, joined, left,
    moved); ``everyone``: a room-wide change (pause, mute, destroy-all); ``revoked``:
    (participant id, media room) pairs that lost access (left, denied, moved out); ``closed``:
    media rooms that no longer exist. One computation per parent runs after commit.
    """
    conn = transaction.get_connection()
    if not conn.in_atomic_block:
        p = Pending(parent_id, set(participants), everyone, list(revoked), list(closed))
        _apply(p)
        return
    registry: dict[UUID, tuple[Pending, Any]] = getattr(conn, "_anteroom_media", None) or {}
    entry = registry.get(parent_id)
    live = entry is not None and any(f is entry[1] for _, f, _ in conn.run_on_commit)
    if entry is None or not live:
        pending = Pending(parent_id)

        def run(p: Pending = pending) -> None:
            reg = getattr(conn, "_anteroom_media", {})
            if reg.get(p.parent_id, (None,))[0] is p:
                del reg[p.parent_id]
            _apply(p)

        registry[parent_id] = (pending, run)
        conn._anteroom_media = registry
        transaction.on_commit(run, robust=True)
        entry = registry[parent_id]
    p = entry[0]
    p.participants.update(participants)
    p.everyone = p.everyone or everyone
    p.revoked.extend(revoked)
    p.closed.extend(closed)


def _apply(p: Pending) -> None:
    """After commit: recompute the parent's media, send ``media-state``, call the backend."""
    from .. import events
    from ..models import Room

    cfg = config()
    bodies: dict[str, MediaBody] = {}
    with transaction.atomic():
        parent = Room.objects.filter(pk=p.parent_id).first()
        if parent is None:
            snap = None
        else:
            snap = policy.snapshot(parent, max_publishers=cfg.max_publishers, lock=True)
            seq = snap.seq + 1
            Room.objects.filter(pk=parent.pk).update(media_seq=seq)
            room_cache.forget_room(room_id=parent.pk)  # ``update`` sends no signal
            snap.seq = seq
            recipients = set(p.participants) & set(snap.members)
            for room_id, plan in snap.plans.items():
                room_changed = list(plan.room.publishers) != plan.publishers
                if room_changed:
                    Room.objects.filter(pk=room_id).update(media_publishers=plan.publishers)
                    room_cache.forget_room(room_id=room_id)  # ``update`` sends no signal
                if p.everyone or room_changed:
                    recipients.update(plan.states)
                else:
                    recipients.update(plan.publishers)  # their peers include every receiver
            mesh = get_backend().name == "mesh"
            for pid in sorted(recipients):
                body = media_payload(snap, pid)
                if mesh and p.told.get(pid) == _comparable(body):
                    continue  # its ``joined`` frame said exactly this (a media server's
                    # ``sfu`` part is not in ``joined``: the media-state brings it)
                bodies[pid] = body
            if mesh:
                events.send_many_on_commit(
                    [
                        (events.media_group(parent.pk, pid), Deliver(frames=[_frame(body)]))
                        for pid, body in bodies.items()
                    ]
                )
    backend = get_backend()
    if backend.name == "mesh":
        return
    perms = (
        {
            room_id: {pid: s.permissions for pid, s in plan.states.items()}
            for room_id, plan in snap.plans.items()
        }
        if snap is not None
        else {}
    )

    def call_backend() -> None:
        for pid, room_id in p.revoked:
            if snap is None or snap.where.get(pid) != room_id:
                backend.revoke(pid, room_id)
        for room_id in p.closed:
            backend.close_room(room_id)
        for room_id, by_participant in perms.items():
            backend.apply(room_id, by_participant)

    def tell() -> None:
        # The media server's part of each media-state (tokens), after revocations and rooms.
        batch = []
        for pid, body in bodies.items():
            if body["permissions"]["receive"]:
                try:
                    body["sfu"] = backend.join_info(pid, UUID(body["room"]))
                except Exception:
                    log.warning("media server unavailable for a join", exc_info=True)
                    body["error"] = "UNAVAILABLE"
            batch.append((events.media_group(p.parent_id, pid), Deliver(frames=[_frame(body)])))
        events.send_from_thread(batch)

    def robust(job: Any) -> Any:
        def run() -> None:
            try:
                job()
            except Exception:
                log.warning("media backend call failed", exc_info=True)

        return run

    dispatch(robust(call_backend))
    if snap is not None:
        dispatch(tell)


def _frame(body: MediaBody) -> MediaStateFrame:
    return frames.media_state(body)


@receiver(media_server_recovered)
def _resend_after_recovery(*, media_rooms: list[str], **_: Any) -> None:
    """A media server is back: re-send ``media-state`` to everyone in the parent rooms of the
    media rooms it held (a media room is a parent room or one of its breakouts)."""
    from ..models import Room

    parents: set[Any] = set()
    for key in media_rooms:
        try:
            row = Room.objects.filter(pk=key).values_list("pk", "parent_id").first()
        except (ValueError, TypeError, ValidationError):
            continue  # not a room id
        if row is not None:
            parents.add(row[1] or row[0])
    for parent in parents:
        changed(parent, everyone=True)
