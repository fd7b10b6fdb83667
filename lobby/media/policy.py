"""Who may send and receive what, and who talks to whom — computed by the server, never taken
from a client (docs/protocol.md "Calls").

A *media room* is the parent room or the breakout room a participant is in. Rules:

* only admitted participants who are present have media; a waiting, denied, canceled or departed
  guest has none (they are not ``Participant`` rows that are present);
* in the parent: ``paused`` ⇒ non-moderators neither send nor receive; ``audio_muted`` ⇒
  non-moderators send no audio; ``video_muted`` ⇒ no camera and no screen;
* in a breakout room: its ``audio`` / ``video`` / ``share`` flags decide what non-moderators
  send; the parent's pause and mute do not reach into breakout rooms;
* moderators are exempt from all of the above (they keep their media under pause);
* a participant who may not publish (a viewer, or a token whose ``canPublish`` is false) only
  receives;
* mesh limit: at most ``ANTEROOM_MESH_MAX_PUBLISHERS`` publishers per media room (moderators
  first, then by arrival; a publisher keeps the slot until leaving the media room); later
  arrivals receive only (``limit: "mesh-full"``).

Peers: a publisher talks to everyone in the media room who receives; a receive-only
participant talks to the publishers. Signalling is relayed exactly along these pairs.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from uuid import UUID

from ..models import Participant, Role, Room

NO_MEDIA = {"audio": False, "video": False, "screen": False, "receive": False}


@dataclass(frozen=True)
class Member:
    """A present participant as the policy sees it."""

    participant_id: str
    role: str
    can_publish: bool
    breakout_id: UUID | None
    order: int
    audio: bool = False  # what the participant says it sends (``media-update``)
    video: bool = False
    screen: bool = False

    @property
    def moderator(self) -> bool:
        return self.role == Role.MODERATOR

    @property
    def may_publish(self) -> bool:
        return self.can_publish and self.role != Role.VIEWER


@dataclass(frozen=True)
class MediaRoom:
    id: UUID
    breakout: bool
    paused: bool = False
    audio_muted: bool = False
    video_muted: bool = False
    audio: bool = True
    video: bool = True
    share: bool = False
    publishers: tuple[str, ...] = ()  # stored slots, in order

    @classmethod
    def of(cls, room: Room) -> MediaRoom:
        return cls(
            id=room.pk,
            breakout=room.parent_id is not None,
            paused=room.paused,
            audio_muted=room.audio_muted,
            video_muted=room.video_muted,
            audio=room.audio,
            video=room.video,
            share=room.share,
            publishers=tuple(room.media_publishers or ()),
        )


def receives(m: Member, room: MediaRoom) -> bool:
    return m.moderator or room.breakout or not room.paused


def allowed(m: Member, room: MediaRoom) -> dict[str, bool]:
    """What ``m`` may send in ``room`` if it holds a publisher slot, and whether it receives."""
    if not receives(m, room):
        return dict(NO_MEDIA)
    if not m.may_publish:
        return {"audio": False, "video": False, "screen": False, "receive": True}
    if m.moderator:
        return {"audio": True, "video": True, "screen": True, "receive": True}
    if room.breakout:
        return {"audio": room.audio, "video": room.video, "screen": room.share, "receive": True}
    return {
        "audio": not room.audio_muted,
        "video": not room.video_muted,
        "screen": not room.video_muted,
        "receive": True,
    }


@dataclass
class State:
    """One participant's media: what ``media-state`` tells it."""

    room: UUID
    permissions: dict[str, bool]
    publisher: bool
    peers: list[str]
    limit: str | None = None


@dataclass
class RoomPlan:
    room: MediaRoom
    publishers: list[str]
    states: dict[str, State] = field(default_factory=dict)


def plan_room(room: MediaRoom, members: Sequence[Member], max_publishers: int) -> RoomPlan:
    """Publisher slots, permissions and peers of everyone in one media room."""
    present = [m for m in members if receives(m, room)]
    present_ids = {m.participant_id for m in present}
    eligible = {m.participant_id: m for m in present if m.may_publish}
    # Slots are sticky: holders keep them; free ones go to moderators first, then by arrival.
    kept = [pid for pid in room.publishers if pid in eligible][:max_publishers]
    rest = sorted(
        (m for pid, m in eligible.items() if pid not in kept),
        key=lambda m: (not m.moderator, m.order),
    )
    publishers = kept + [m.participant_id for m in rest][: max(0, max_publishers - len(kept))]
    slot = set(publishers)
    plan = RoomPlan(room=room, publishers=publishers)
    everyone = [m.participant_id for m in present]
    for m in members:
        if m.participant_id not in present_ids:
            plan.states[m.participant_id] = State(
                room=room.id, permissions=dict(NO_MEDIA), publisher=False, peers=[]
            )
            continue
        perms = allowed(m, room)
        limit = None
        if m.participant_id in slot:
            peers = [pid for pid in everyone if pid != m.participant_id]
        else:
            if m.may_publish:
                limit = "mesh-full"
                perms = {**perms, "audio": False, "video": False, "screen": False}
            peers = list(publishers)
        plan.states[m.participant_id] = State(
            room=room.id,
            permissions=perms,
            publisher=m.participant_id in slot,
            peers=peers,
            limit=limit,
        )
    return plan


@dataclass
class Snapshot:
    """The media of every present participant of a parent room (and its breakout rooms)."""

    parent: MediaRoom
    seq: int
    plans: dict[UUID, RoomPlan]
    members: dict[str, Member]
    where: dict[str, UUID]  # participant id -> media room id

    def state(self, participant_id: str) -> State | None:
        room = self.where.get(participant_id)
        return None if room is None else self.plans[room].states.get(participant_id)

    def may_signal(self, sender: str, to: str) -> bool:
        """THE audience rule of the relay: ``to`` is one of ``sender``'s peers (the pairs are
        symmetric by construction, so the reverse holds too)."""
        state = self.state(sender)
        return state is not None and to in state.peers and to != sender

    def media_states(self, participant_ids: Iterable[str]) -> dict[str, dict[str, bool]]:
        """Effective ``{audio, video, screen}`` of participants: what they say they send,
        within what they may send."""
        out = {}
        for pid in participant_ids:
            m, s = self.members.get(pid), self.state(pid)
            if m is None or s is None:
                continue
            p = s.permissions
            out[pid] = {
                "audio": m.audio and p["audio"],
                "video": m.video and p["video"],
                "screen": m.screen and p["screen"],
            }
        return out


def member_of(p: Participant) -> Member:
    return Member(
        participant_id=p.participant_id,
        role=p.role,
        can_publish=p.can_publish,
        breakout_id=p.breakout_id,
        order=p.pk or 0,
        audio=p.media_audio,
        video=p.media_video,
        screen=p.media_screen,
    )


def snapshot(parent: Room, *, max_publishers: int, lock: bool = False) -> Snapshot:
    """Read the parent, its breakout rooms and its present participants (one query each).

    ``lock``: the caller is in a transaction and takes the parent's row lock first, so media
    computations of one parent are serialised (the stored publisher slots, ``media_seq``).
    """
    rooms = Room.objects.filter(pk=parent.pk)
    if lock:
        rooms = rooms.select_for_update()
    fresh = rooms.first()
    if fresh is None:
        return Snapshot(MediaRoom.of(parent), parent.media_seq, {}, {}, {})
    breakouts = {r.pk: r for r in Room.objects.filter(parent=fresh)}
    people = [
        member_of(p)
        for p in Participant.objects.filter(room=fresh)
        .exclude(status=Participant.Status.LEFT)
        .order_by("pk")
    ]
    groups: dict[UUID, list[Member]] = {fresh.pk: []}
    where: dict[str, UUID] = {}
    for m in people:
        target = m.breakout_id if m.breakout_id in breakouts else fresh.pk
        groups.setdefault(target, []).append(m)
        where[m.participant_id] = target
    plans = {}
    for room_id, members in groups.items():
        room = MediaRoom.of(breakouts[room_id] if room_id in breakouts else fresh)
        plans[room_id] = plan_room(room, members, max_publishers)
    for room_id, r in breakouts.items():
        if room_id not in plans:
            plans[room_id] = plan_room(MediaRoom.of(r), [], max_publishers)
    return Snapshot(
        parent=MediaRoom.of(fresh),
        seq=fresh.media_seq,
        plans=plans,
        members={m.participant_id: m for m in people},
        where=where,
    )
