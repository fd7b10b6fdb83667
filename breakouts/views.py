"""The breakout panel of the moderator dashboard: its context and its plain-POST buttons.

Registered into the room core's dashboard at start-up (``BreakoutsConfig.ready``, through
``lobby.extensions.dashboard_panels``); the template is ``templates/breakouts/panel.html``. Each
button is one breakout service call with the moderator's ``Actor``, like the socket and REST.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from django.utils.translation import gettext as _
from django.utils.translation import ngettext

from lobby.extensions import DashboardPanel, FormProblem
from lobby.models import Participant, Room
from lobby.views import Moderator, clock_text

from . import services
from .forms import ACTIONS, EXTEND_MINUTES, MAIN_ROOM, BreakoutActionForm
from .selectors import breakout_rooms_payload, pending_help_requests


def panel_context(*, room: Room, now: datetime, participants: list[Participant]) -> dict[str, Any]:
    rooms = _rows(breakout_rooms_payload(parent=room, invitations=True), now)
    labels = {b["id"]: _("Room %(number)s") % {"number": b["number"]} for b in rooms}
    help_requests = [
        {
            "id": str(h.id),
            "participant_id": p.participant_id,
            "room_id": str(h.breakout_id),
            "name": p.name or p.participant_id,
            "where": labels.get(str(h.breakout_id), "a breakout room"),
            "at": h.requested_at.strftime("%H:%M UTC"),
        }
        for h, p in pending_help_requests(parent=room)
    ]
    return {
        "breakouts": rooms,
        "help_requests": help_requests,
        "invitable": [p for p in participants if p.role != "moderator"],
        "movable": _movable(participants, rooms),
        "timed": any(b["ends_at"] for b in rooms),
        "extend_minutes": EXTEND_MINUTES,
        "max_per_room": room.max_active_talkers - 1,
        "lecture": room.mode == Room.Mode.LECTURE,
    }


def _rows(rooms: list[dict[str, Any]], now: datetime) -> list[dict[str, Any]]:
    """The moderators' breakout payloads plus ``left`` (the timer's time left as ``m:ss``) and
    the invited people's names by answer: ``pending``, ``accepted``, ``declined``."""
    return [
        {
            **b,
            "left": clock_text((datetime.fromisoformat(b["ends_at"]) - now).total_seconds())
            if b["ends_at"]
            else None,
            **{
                key: [
                    i["name"] or i["participant_id"]
                    for i in b["invitations"]
                    if i["status"] == status
                ]
                for key, status in (
                    ("pending", "pending"),
                    ("accepted", "accepted"),
                    ("declined", "rejected"),
                )
            },
        }
        for b in rooms
    ]


def _movable(participants: list[Participant], rooms: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Non-moderators (and moderators in a breakout room) with where they are and where the
    move form can take them (every other breakout room, or the main room)."""
    labels = {b["id"]: _("Room %(number)s") % {"number": b["number"]} for b in rooms}
    rows = []
    for p in participants:
        if p.role == "moderator" and not p.breakout_id:
            continue  # a moderator in a breakout room can be brought back from here
        here = str(p.breakout_id) if p.breakout_id else MAIN_ROOM
        targets = [(b["id"], labels[b["id"]]) for b in rooms if b["id"] != here]
        if here != MAIN_ROOM:
            targets.append((MAIN_ROOM, _("Main room")))
        rows.append(
            {
                "participant_id": p.participant_id,
                "name": p.name or p.participant_id,
                "where": labels.get(here, _("Main room")),
                "targets": targets,
            }
        )
    return rows


def _names(room: Room, participant_ids: list[str]) -> str:
    """The participants' names for a message (their ids if they have none), in order."""
    names = dict(
        Participant.objects.filter(room=room, participant_id__in=participant_ids).values_list(
            "participant_id", "name"
        )
    )
    return ", ".join(names.get(pid) or pid for pid in participant_ids)


def panel_act(*, room: Room, mod: Moderator, action: str, data: Mapping[str, Any]) -> str:
    """One breakout button: validate the POST, one breakout service call; what happened."""
    form = BreakoutActionForm(data)
    if not form.is_valid():
        problems = form.non_field_errors()
        raise FormProblem(problems[0] if problems else _("That action was not understood."))
    d = form.cleaned_data
    if action in ("breakout-create", "breakout-create-and-invite"):
        sizes = {
            "participants": d["participants"],
            "max_rooms": d["max_rooms"],
            "duration": d["minutes"] * 60 if d.get("minutes") else None,
        }
        if action == "breakout-create":
            rooms = services.breakout_rooms_create(parent=room, actor=mod.actor, **sizes)
            n = len(rooms)
            return ngettext(
                "%(count)s breakout room created.", "%(count)s breakout rooms created.", n
            ) % {"count": n}
        rooms, assignments = services.breakout_rooms_create_and_invite(
            parent=room, actor=mod.actor, force_join=bool(d.get("force_join")), **sizes
        )
        people = sum(len(v) for v in assignments.values())
        into = ngettext("%(count)s room", "%(count)s rooms", len(rooms)) % {"count": len(rooms)}
        if d.get("force_join"):
            said = ngettext(
                "%(count)s participant moved into %(rooms)s.",
                "%(count)s participants moved into %(rooms)s.",
                people,
            )
        else:
            said = ngettext(
                "%(count)s participant invited to %(rooms)s.",
                "%(count)s participants invited to %(rooms)s.",
                people,
            )
        return said % {"count": people, "rooms": into}
    if action == "breakout-invite":
        invited = services.breakout_invite(
            parent=room,
            actor=mod.actor,
            room_id=str(d["room_id"]),
            clients=[d["client"]],
            force_join=bool(d.get("force_join")),
        )
        names = _names(room, invited.clients) or _("Nobody new")
        said = (
            _("%(names)s moved into breakout room %(number)s.")
            if invited.force_join
            else _("%(names)s invited to breakout room %(number)s.")
        )
        return said % {"names": names, "number": invited.room.number}
    if action == "breakout-move":
        dest = d["destination"]
        p = services.breakout_move(
            parent=room,
            actor=mod.actor,
            participant_id=d["client"],
            room_id=None if dest == MAIN_ROOM else str(dest),
        )
        who = p.name or _("The participant")
        if p.breakout:
            said = _("%(name)s is in breakout room %(number)s now.")
            return said % {"name": who, "number": p.breakout.number}
        return _("%(name)s is in the main room now.") % {"name": who}
    if action == "breakout-extend":
        minutes = d.get("minutes") or EXTEND_MINUTES
        rooms = services.breakout_extend(
            parent=room,
            actor=mod.actor,
            room_id=str(d["room_id"]) if d.get("room_id") else None,
            seconds=minutes * 60,
        )
        if not rooms:
            return _("No breakout room has a timer; nothing was extended.")
        numbers = ", ".join(str(r.number) for r in rooms)
        if len(rooms) == 1:
            said = ngettext(
                "%(count)s minute added (room %(numbers)s).",
                "%(count)s minutes added (room %(numbers)s).",
                minutes,
            )
        else:
            said = ngettext(
                "%(count)s minute added (rooms %(numbers)s).",
                "%(count)s minutes added (rooms %(numbers)s).",
                minutes,
            )
        return said % {"count": minutes, "numbers": numbers}
    if action == "breakout-help-answer":
        answer = services.breakout_help_answer(
            parent=room, actor=mod.actor, participant_id=d["client"]
        )
        said = (
            _("%(name)s's help request (%(where)s) is marked as answered.")
            if answer.effective
            else _("%(name)s's help request (%(where)s) had already ended; nothing was changed.")
        )
        where = _("breakout room %(number)s") % {"number": answer.request.breakout.number}
        return said % {"name": _names(room, [d["client"]]), "where": where}
    if action == "breakout-broadcast":
        n = services.breakout_broadcast(parent=room, actor=mod.actor, text=d["text"])
        return ngettext(
            "Message sent to %(count)s breakout room.",
            "Message sent to %(count)s breakout rooms.",
            n,
        ) % {"count": n}
    if action == "breakout-clear-all":
        done = services.breakout_rooms_clear_all(parent=room, actor=mod.actor)
        n = len(done.returned)
        return _("Everyone is back in the main room (%(count)s returned).") % {"count": n}
    done = services.breakout_rooms_destroy_all(parent=room, actor=mod.actor)
    n = len(done.returned)
    return _("Breakout rooms closed; %(count)s returned to the main room.") % {"count": n}


PANEL = DashboardPanel(
    name="breakouts",
    template="breakouts/panel.html",
    actions=ACTIONS,
    context=panel_context,
    act=panel_act,
)
