"""``breakout-help`` is one stored request per participant, not a flood of notices.

Before: 15 ``breakout-help`` frames a second became 15 notices to every moderator and 15 audit
rows, and a moderator who connected later (or the no-JavaScript dashboard) saw none of them.
Now a request is stored; asking again while it is pending is refused (``HELP_ALREADY_REQUESTED``)
and tells nobody; it ends when a moderator answers it, when it expires, or when the participant
leaves its breakout room (or the breakout rooms close).
"""

from __future__ import annotations

from typing import Any

import pytest
from channels.db import database_sync_to_async
from django.test import Client as HttpClient

from breakouts import services as bs
from breakouts.models import HelpRequest
from lobby import clock, events, services
from lobby.errors import HelpAlreadyRequested, HelpRequestNotFound, InvalidPermissions
from lobby.models import AuditEvent, Room
from tests.factories import frames_to, make_room, make_token, mods

from .helpers import Party, party, to_person, who

pytestmark = pytest.mark.django_db(transaction=True)

TTL = 300


def in_breakout(p: Party, *people: str) -> Room:
    [room] = bs.breakout_rooms_create(parent=p.room, actor=p.mod, participants=3, max_rooms=1)
    for pid in people:
        bs.breakout_move(parent=p.room, actor=p.mod, participant_id=pid, room_id=str(room.pk))
    return room


def stored() -> list[tuple[str, str, str]]:
    return sorted((h.participant_id, h.status, h.resolved_by) for h in HelpRequest.objects.all())


def resolved(h: HelpRequest, outcome: str, by: str | None = None) -> dict[str, Any]:
    return {
        "type": "breakout-help-resolved",
        "id": str(h.id),
        "room_id": str(h.breakout_id),
        "participant_id": h.participant_id,
        "outcome": outcome,
        "by": by,
    }


def test_fifteen_requests_are_one_notice_and_one_audit_row(sent):
    p = party()
    room = in_breakout(p, "p0")
    sent.items.clear()
    first = bs.breakout_help(parent=p.room, participant_id="p0")
    assert first.status == "pending" and first.breakout_id == room.pk
    assert (first.expires_at - first.requested_at).total_seconds() == TTL
    before = stored()
    audit = AuditEvent.objects.filter(action="breakout-help").count()
    told = list(sent.items)
    for _ in range(14):
        with pytest.raises(HelpAlreadyRequested) as exc:
            bs.breakout_help(parent=p.room, participant_id="p0")
    assert exc.value.as_dict()["code"] == "HELP_ALREADY_REQUESTED"
    assert exc.value.http_status == 409
    assert stored() == before
    assert sent.items == told  # the refusals told nobody anything
    assert [f["type"] for f in frames_to(sent, mods(p.room))] == ["breakout-help-requested"]
    assert AuditEvent.objects.filter(action="breakout-help").count() == audit == 1
    # Another member's request is its own.
    bs.breakout_move(parent=p.room, actor=p.mod, participant_id="p1", room_id=str(room.pk))
    bs.breakout_help(parent=p.room, participant_id="p1")
    assert HelpRequest.objects.filter(status="pending").count() == 2


def test_a_moderator_answers_once_then_the_participant_may_ask_again(sent):
    p = party()
    in_breakout(p, "p0")
    h = bs.breakout_help(parent=p.room, participant_id="p0")
    sent.items.clear()
    answer = bs.breakout_help_answer(parent=p.room, actor=p.mod, participant_id="p0")
    assert answer.effective is True and answer.request.pk == h.pk
    frame = resolved(h, "answered", by=p.mod.by)
    assert frames_to(sent, mods(p.room)) == [frame]
    assert to_person(sent, p.room, "p0") == [frame]
    assert AuditEvent.objects.filter(action="breakout-help-answer", subject="p0").count() == 1
    # A second moderator answering the same request changes nothing and tells nobody.
    sent.items.clear()
    again = bs.breakout_help_answer(parent=p.room, actor=p.mod, participant_id="p0")
    assert again.effective is False and again.request.status == "answered"
    assert sent.items == []
    # Answered: asking again is a new request and a new notice.
    bs.breakout_help(parent=p.room, participant_id="p0")
    assert [f["type"] for f in frames_to(sent, mods(p.room))] == ["breakout-help-requested"]
    assert stored() == [("p0", "answered", p.mod.by), ("p0", "pending", "")]


def test_only_moderators_answer_and_only_existing_requests(sent):
    p = party()
    in_breakout(p, "p0")
    bs.breakout_help(parent=p.room, participant_id="p0")
    before = stored()
    sent.items.clear()
    member = services.Actor.participant(who(p.room, "p1"))
    with pytest.raises(InvalidPermissions):
        bs.breakout_help_answer(parent=p.room, actor=member, participant_id="p0")
    with pytest.raises(HelpRequestNotFound) as exc:
        bs.breakout_help_answer(parent=p.room, actor=p.mod, participant_id="p2")
    assert exc.value.as_dict()["code"] == "HELP_REQUEST_NOT_FOUND"
    assert stored() == before and sent.items == []


def test_an_unanswered_request_expires_and_the_participant_is_told(sent):
    p = party()
    in_breakout(p, "p0")
    h = bs.breakout_help(parent=p.room, participant_id="p0")
    clock.advance(TTL - 1)
    services.sweep()
    assert HelpRequest.objects.get(pk=h.pk).status == "pending"
    sent.items.clear()
    clock.advance(1)
    services.sweep()
    assert frames_to(sent, mods(p.room)) == [resolved(h, "expired")]
    assert to_person(sent, p.room, "p0") == [resolved(h, "expired")]
    services.sweep()  # once only
    assert [f["type"] for f in frames_to(sent, mods(p.room))] == ["breakout-help-resolved"]
    bs.breakout_help(parent=p.room, participant_id="p0")  # may ask again


def test_asking_again_after_the_deadline_before_the_sweep_is_a_new_request(sent):
    p = party()
    in_breakout(p, "p0")
    h = bs.breakout_help(parent=p.room, participant_id="p0")
    clock.advance(TTL + 5)
    sent.items.clear()
    fresh = bs.breakout_help(parent=p.room, participant_id="p0")
    assert fresh.pk != h.pk
    assert [f["type"] for f in frames_to(sent, mods(p.room))] == [
        "breakout-help-resolved",
        "breakout-help-requested",
    ]
    assert stored() == [("p0", "expired", ""), ("p0", "pending", "")]


@pytest.mark.parametrize("how", ["leave", "move-back", "move-away", "clear-all", "destroy-all"])
def test_leaving_the_breakout_room_clears_the_request(sent, how):
    p = party()
    room = in_breakout(p, "p0")
    h = bs.breakout_help(parent=p.room, participant_id="p0")
    sent.items.clear()
    if how == "leave":
        bs.breakout_leave(parent=p.room, participant_id="p0")
    elif how == "move-back":
        bs.breakout_move(parent=p.room, actor=p.mod, participant_id="p0", room_id=None)
    elif how == "move-away":
        [other] = [
            r
            for r in bs.breakout_rooms_create(
                parent=p.room, actor=p.mod, participants=3, max_rooms=1
            )
        ]
        assert other.pk != room.pk
        bs.breakout_move(parent=p.room, actor=p.mod, participant_id="p0", room_id=str(other.pk))
    elif how == "clear-all":
        bs.breakout_rooms_clear_all(parent=p.room, actor=p.mod)
    else:
        bs.breakout_rooms_destroy_all(parent=p.room, actor=p.mod)
    assert resolved(h, "cleared") in frames_to(sent, mods(p.room))
    assert HelpRequest.objects.filter(status="pending").count() == 0
    if how != "destroy-all":
        assert HelpRequest.objects.get(pk=h.pk).status == "cleared"


def test_leaving_the_whole_room_clears_the_request(sent):
    p = party()
    in_breakout(p, "p0")
    h = bs.breakout_help(parent=p.room, participant_id="p0")
    sent.items.clear()
    services.participant_leave(room=p.room, participant_id="p0")
    assert resolved(h, "cleared") in frames_to(sent, mods(p.room))
    assert HelpRequest.objects.get(pk=h.pk).status == "cleared"


# Over the socket ------------------------------------------------------------------------------


async def _class_with_p0_in_a_breakout(clients: Any) -> tuple[Any, Any, str]:
    await database_sync_to_async(make_room)("class")
    mod = await clients("class")
    token = await database_sync_to_async(make_token)(room="class", sub="mod", owner=True)
    assert (await mod.request("join", rid="j", token=token))["ok"]
    p0 = await clients("class")
    t = await database_sync_to_async(make_token)(room="class", sub="p0", name="Pat")
    assert (await p0.request("join", rid="j", token=t))["ok"]
    [room] = (await mod.request("breakout-create", rid=1, participants=2, max_rooms=1))["data"][
        "rooms"
    ]
    await mod.request("breakout-move", rid=2, participant_id="p0", room_id=room["id"])
    await p0.expect("breakout-joined")
    return mod, p0, room["id"]


async def test_a_flood_over_the_socket_reaches_the_moderator_once(clients):
    mod, p0, room_id = await _class_with_p0_in_a_breakout(clients)
    acks = [await p0.request("breakout-help", rid=f"h{i}") for i in range(15)]
    assert acks[0]["ok"] is True and acks[0]["data"]["room_id"] == room_id
    assert {a["error"]["code"] for a in acks[1:]} == {"HELP_ALREADY_REQUESTED"}
    await mod.expect("breakout-help-requested")
    while not await mod.nothing(0.3):
        await mod.recv()
    assert [f["type"] for f in mod.seen].count("breakout-help-requested") == 1


async def test_a_moderator_who_connects_later_sees_the_request_and_answers_it(clients):
    mod, p0, room_id = await _class_with_p0_in_a_breakout(clients)
    ack = await p0.request("breakout-help", rid="h")
    late = await clients("class")
    token = await database_sync_to_async(make_token)(room="class", sub="mod2", owner=True)
    assert (await late.request("join", rid="j", token=token))["ok"]
    replay = await late.expect("breakout-help-requested")
    assert replay["id"] == ack["data"]["id"] and replay["room_id"] == room_id
    assert replay["participant"]["participant_id"] == "p0"
    # A participant joining later is not told of others' requests.
    other = await clients("class")
    t = await database_sync_to_async(make_token)(room="class", sub="p1", name="Pia")
    assert (await other.request("join", rid="j", token=t))["ok"]
    done = await late.request("breakout-help-answer", rid="a", participant_id="p0")
    assert done["data"] == {"id": replay["id"], "outcome": "answered", "effective": True}
    told = await p0.expect("breakout-help-resolved")
    assert (told["outcome"], told["by"]) == ("answered", "mod2")
    assert (await mod.expect("breakout-help-resolved"))["outcome"] == "answered"
    assert "breakout-help-requested" not in [f["type"] for f in other.seen]
    nope = await other.request("breakout-help-answer", rid="x", participant_id="p0")
    assert nope["error"]["code"] == "INVALID_PERMISSIONS"


# The dashboard without JavaScript ---------------------------------------------------------------


def test_the_dashboard_lists_pending_requests_and_answers_them_by_form(sent):
    p = party()
    in_breakout(p, "p0")
    bs.breakout_help(parent=p.room, participant_id="p0")
    http = HttpClient()
    session = http.session
    session[f"anteroom.moderator.{p.room.name}"] = make_token(
        room=p.room.name, sub="mod", owner=True
    )
    session.save()
    page = http.get(f"/r/{p.room.name}/dashboard/").content.decode()
    assert 'data-key="p0"' in page
    assert "P0</span> <span>asked for help in Room 1" in page
    assert 'value="breakout-help-answer"' in page
    csrf = http.cookies["csrftoken"].value
    resp = http.post(
        f"/r/{p.room.name}/dashboard/",
        {"action": "breakout-help-answer", "client": "p0", "csrfmiddlewaretoken": csrf},
    )
    assert resp.status_code == 302
    assert stored() == [("p0", "answered", "mod")]
    assert 'data-key="p0"' not in http.get(f"/r/{p.room.name}/dashboard/").content.decode()
    assert events.mods_group(p.room.pk) in [g for g, _ in sent.items]
