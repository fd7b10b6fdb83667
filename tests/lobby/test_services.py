"""Lobby services called directly, asserting the exact events and who receives them.

``sent`` captures what the services hand to the channel layer after commit, as (group, message)
pairs. Group names tell the audience: ``mods.<room>`` (moderators), ``members.<room>`` (admitted
participants), ``lobby.<room>`` (every waiting guest: queue order only), ``req.<request>`` (one
waiting guest's socket).
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.test import override_settings

from lobby import clock, events, services
from lobby.errors import BadRequest, EntryRateLimited, InvalidPermissions, RequestNotFound
from lobby.models import EntryRequest, Participant, ServerProcess
from tests.factories import (
    conn,
    frames_to,
    join,
    knock,
    lobby,
    make_room,
    make_token,
    members,
    moderator,
    mods,
)

pytestmark = pytest.mark.django_db(transaction=True)

# Helpers -------------------------------------------------------------------------------------


@pytest.fixture
def clinic(db):
    return make_room("clinic", privacy="private", enable_knocking=True, knock_ttl=60)


# Knocking ------------------------------------------------------------------------------------


def test_knock_is_stored_then_told_to_moderators_only(clinic, sent):
    dr = moderator(clinic)
    sent.items.clear()
    w = knock(clinic, name="Pat", metadata={"reason": "checkup"})
    r = EntryRequest.objects.get()
    assert (r.status, r.name, r.metadata) == ("pending", "Pat", {"reason": "checkup"})
    assert w.request.id == r.id and (w.position, w.total) == (1, 1)
    assert r.expires_at - r.requested_at == timedelta(seconds=60)
    assert [g for g, _ in sent.items] == [mods(clinic), lobby(clinic)]
    assert frames_to(sent, mods(clinic)) == [
        {
            "type": "entry-requested",
            "request": {
                "id": str(r.id),
                "participant_id": r.participant_id,
                "name": "Pat",
                "metadata": {"reason": "checkup"},
                "requested_at": events._ts(r.requested_at),
                "expires_at": events._ts(r.expires_at),
                "status": "pending",
                "connected": True,
            },
        }
    ]
    # Waiting guests get the queue order and nothing else (a Queue instruction: no frames).
    assert sent.to(lobby(clinic)) == [
        {
            "type": events.EVENT,
            "action": "queue",
            "room_id": str(clinic.pk),
            "order": [str(r.id)],
        }
    ]
    assert sent.to(members(clinic)) == []
    assert dr.can_moderate


def test_knock_refuses_bad_metadata_and_stores_nothing(clinic, sent):
    for bad in ("text", ["list"], {"blob": "x" * 5000}, {"x": float("nan")}, {"y": float("inf")}):
        with pytest.raises(BadRequest):
            knock(clinic, metadata=bad)
    assert EntryRequest.objects.count() == 0
    assert sent.items == []


def test_a_plan_must_wait_or_enter_as_planned_and_nothing_is_stored(clinic, sent):
    # The services check the plan's level themselves (not with an assert, which python -O
    # drops): a knock-level plan cannot enter directly, a direct one cannot knock.
    from lobby.errors import AccessDenied

    waiting = services.join_plan(room_name="clinic", token=None, name="Pat")
    assert waiting.level == "lobby"
    with pytest.raises(AccessDenied):
        services.participant_join(plan=waiting, conn=conn())
    owner = services.join_plan(room_name="clinic", token=make_token(owner=True))
    assert owner.level == "full"
    with pytest.raises(AccessDenied):
        services.entry_request_knock(plan=owner, conn=conn())
    assert Participant.objects.count() == 0 and EntryRequest.objects.count() == 0
    assert sent.items == []


def test_admit_tells_each_audience_its_part(clinic, sent):
    dr = moderator(clinic)
    w = knock(clinic, name="Pat")
    other = knock(clinic, name="Sam", c=conn(browser="b2"))
    sent.items.clear()
    d = services.entry_request_decide(
        room=clinic, request_id=w.request.id, actor=dr, outcome="admitted"
    )
    assert (d.outcome, d.effective) == ("admitted", True)
    r = EntryRequest.objects.get(pk=w.request.id)
    assert (r.status, r.resolved_by) == ("admitted", "dr")
    p = Participant.objects.get(participant_id=r.participant_id)
    assert (p.name, p.role, p.status) == ("Pat", "participant", "active")

    assert frames_to(sent, mods(clinic)) == [
        {"type": "entry-resolved", "request_id": str(r.id), "outcome": "admitted", "by": "dr"}
    ]
    to_guest = sent.to(events.request_group(r.id))
    assert len(to_guest) == 1 and to_guest[0]["action"] == "admitted"
    [joined] = to_guest[0]["frames"]
    assert joined["type"] == "joined"
    assert joined["participant"]["participant_id"] == r.participant_id
    assert {x["name"] for x in joined["participants"]} == {"Dr", "Pat"}
    assert frames_to(sent, members(clinic)) == [
        {"type": "participant-joined", "participant": events.participant_payload(p)}
    ]
    # The other waiting guest only learns its new place in the queue.
    assert frames_to(sent, events.request_group(other.request.id)) == []
    assert [m["order"] for m in sent.to(lobby(clinic))] == [[str(other.request.id)]]


def test_deny_closes_the_guest_with_the_reason_and_admits_nobody(clinic, sent):
    dr = moderator(clinic)
    w = knock(clinic)
    sent.items.clear()
    d = services.entry_request_decide(
        room=clinic, request_id=w.request.id, actor=dr, outcome="denied", reason="Clinic closed"
    )
    assert (d.outcome, d.effective) == ("denied", True)
    assert frames_to(sent, mods(clinic)) == [
        {"type": "entry-resolved", "request_id": str(w.request.id), "outcome": "denied", "by": "dr"}
    ]
    [to_guest] = sent.to(events.request_group(w.request.id))
    assert to_guest["action"] == "close" and to_guest["close_code"] == 4403
    assert to_guest["frames"] == [
        {"type": "error", "error": {"code": "ENTRY_DENIED", "message": "Clinic closed"}}
    ]
    assert sent.to(members(clinic)) == []
    assert not Participant.objects.filter(participant_id=w.request.participant_id).exists()


@pytest.mark.parametrize(
    ("first", "second", "status"),
    [
        ("admitted", "admitted", "admitted"),
        ("admitted", "denied", "admitted"),
        ("denied", "admitted", "denied"),
        ("denied", "denied", "denied"),
    ],
)
def test_first_decision_wins_later_ones_are_silent_no_ops(clinic, sent, first, second, status):
    dr = moderator(clinic, sub="dr")
    nurse = moderator(clinic, sub="nurse")
    w = knock(clinic)
    assert services.entry_request_decide(
        room=clinic, request_id=w.request.id, actor=dr, outcome=first
    ).effective
    sent.items.clear()
    late = services.entry_request_decide(
        room=clinic, request_id=w.request.id, actor=nurse, outcome=second
    )
    assert (late.effective, late.outcome) == (False, status)
    assert late.request.resolved_by == "dr"
    assert sent.items == []
    assert EntryRequest.objects.get().status == status
    assert Participant.objects.filter(role="participant").count() == (status == "admitted")


def test_admit_after_cancel_reports_canceled(clinic, sent):
    dr = moderator(clinic)
    w = knock(clinic)
    assert services.entry_request_cancel(room=clinic, request_id=w.request.id)
    sent.items.clear()
    d = services.entry_request_decide(
        room=clinic, request_id=w.request.id, actor=dr, outcome="admitted"
    )
    assert (d.effective, d.outcome) == (False, "canceled")
    assert sent.items == []


def test_admit_after_expiry_lets_nobody_in_even_before_the_sweeper_runs(clinic, sent):
    dr = moderator(clinic)
    w = knock(clinic)
    clock.advance(61)
    sent.items.clear()
    d = services.entry_request_decide(
        room=clinic, request_id=w.request.id, actor=dr, outcome="admitted"
    )
    assert d.effective is False
    # The moderator is told what actually happened: it timed out.
    assert d.outcome == "canceled"
    r = EntryRequest.objects.get()
    assert (r.status, r.cancel_reason) == ("canceled", "timeout")
    assert not Participant.objects.filter(participant_id=r.participant_id).exists()
    assert "joined" not in sent.types()
    assert frames_to(sent, mods(clinic)) == [
        {"type": "entry-canceled", "request_id": str(r.id), "reason": "timeout"}
    ]
    # A later sweep finds nothing more to do.
    sent.items.clear()
    assert services.sweep().timed_out == 0
    assert sent.items == []


def test_decide_checks_permissions_and_the_room(clinic, sent):
    w = knock(clinic)
    other = make_room("other", privacy="private", enable_knocking=True)
    viewer = services.Actor(by="v", can_moderate=False, participant_id="v")
    with pytest.raises(InvalidPermissions):
        services.entry_request_decide(
            room=clinic, request_id=w.request.id, actor=viewer, outcome="admitted"
        )
    with pytest.raises(RequestNotFound):
        services.entry_request_decide(
            room=other, request_id=w.request.id, actor=services.Actor.api("k"), outcome="admitted"
        )
    with pytest.raises(RequestNotFound):
        services.entry_request_decide(
            room=clinic, request_id="not-a-uuid", actor=services.Actor.api("k"), outcome="admitted"
        )
    assert EntryRequest.objects.get().status == "pending"


def test_rest_and_staff_decisions_report_who_decided(clinic, sent):
    a = knock(clinic, name="A", c=conn(browser="a"))
    b = knock(clinic, name="B", c=conn(browser="b"))
    sent.items.clear()
    services.entry_request_decide(
        room=clinic,
        request_id=a.request.id,
        actor=services.Actor.api("backend"),
        outcome="admitted",
    )
    services.entry_request_decide(
        room=clinic, request_id=b.request.id, actor=services.Actor.staff("alice"), outcome="denied"
    )
    assert [(f["outcome"], f["by"]) for f in frames_to(sent, mods(clinic))] == [
        ("admitted", "api:backend"),
        ("denied", "staff:alice"),
    ]


def test_admit_all_decides_every_live_request_once(clinic, sent):
    dr = moderator(clinic)
    waiting = [knock(clinic, name=f"G{i}", c=conn(browser=f"b{i}")) for i in range(3)]
    services.entry_request_cancel(room=clinic, request_id=waiting[0].request.id)
    sent.items.clear()
    assert services.entry_requests_decide_all(room=clinic, actor=dr, outcome="admitted") == 2
    resolved = frames_to(sent, mods(clinic))
    assert sorted(f["request_id"] for f in resolved) == sorted(
        str(w.request.id) for w in waiting[1:]
    )
    assert {(f["outcome"], f["by"]) for f in resolved} == {("admitted", "dr")}
    assert [f["participant"]["name"] for f in frames_to(sent, members(clinic))] == ["G1", "G2"]
    sent.items.clear()
    assert services.entry_requests_decide_all(room=clinic, actor=dr, outcome="denied") == 0
    assert sent.items == []


def test_deny_all_closes_every_waiting_guest(clinic, sent):
    dr = moderator(clinic)
    waiting = [knock(clinic, name=f"G{i}", c=conn(browser=f"b{i}")) for i in range(2)]
    sent.items.clear()
    assert services.entry_requests_decide_all(room=clinic, actor=dr, outcome="denied") == 2
    for w in waiting:
        [m] = sent.to(events.request_group(w.request.id))
        assert m["close_code"] == 4403 and m["frames"][0]["error"]["code"] == "ENTRY_DENIED"
    assert sent.to(members(clinic)) == []


# Cancel, rename, replace -----------------------------------------------------------------------


def test_guest_cancel_is_told_to_moderators_and_the_guest(clinic, sent):
    w = knock(clinic)
    sent.items.clear()
    assert services.entry_request_cancel(room=clinic, request_id=w.request.id) is True
    assert frames_to(sent, mods(clinic)) == [
        {"type": "entry-canceled", "request_id": str(w.request.id), "reason": "aborted"}
    ]
    assert frames_to(sent, events.request_group(w.request.id)) == [
        {"type": "canceled", "reason": "aborted"}
    ]
    sent.items.clear()
    assert services.entry_request_cancel(room=clinic, request_id=w.request.id) is False
    assert sent.items == []


def test_rename_while_waiting_reaches_moderators_only(clinic, sent):
    w = knock(clinic, name="Pat")
    sent.items.clear()
    r = services.entry_request_rename(request_id=w.request.id, name="  Patricia  ")
    assert r.name == "Patricia"
    [frame] = frames_to(sent, mods(clinic))
    assert frame["type"] == "entry-updated" and frame["request"]["name"] == "Patricia"
    assert frame["request"]["id"] == str(w.request.id)
    assert [g for g, _ in sent.items] == [mods(clinic)]
    for bad in ("", "   ", "x" * 101, "evil\u202ename", 42):
        with pytest.raises(BadRequest):
            services.entry_request_rename(request_id=w.request.id, name=bad)
    assert EntryRequest.objects.get().name == "Patricia"


def test_knocking_again_with_the_same_id_replaces_the_old_knock_visibly(clinic, sent):
    token = make_token(room="clinic", sub="pat", name="Pat", join_policy={"mode": "ask"})
    first = knock(clinic, token=token)
    sent.items.clear()
    second = knock(clinic, token=token)
    old = EntryRequest.objects.get(pk=first.request.id)
    assert (old.status, old.cancel_reason) == ("canceled", "aborted")
    assert EntryRequest.objects.filter(status="pending").get().pk == second.request.id
    # Moderators must not be left with a stale row for the first knock.
    assert [f["type"] for f in frames_to(sent, mods(clinic))] == [
        "entry-canceled",
        "entry-requested",
    ]
    assert frames_to(sent, mods(clinic))[0]["request_id"] == str(first.request.id)


# Deadlines: timeout, disconnect grace, dead servers ---------------------------------------------


def test_sweeper_times_out_once(clinic, sent):
    w = knock(clinic)
    clock.advance(59)
    sent.items.clear()
    assert services.sweep().timed_out == 0
    assert sent.items == []
    clock.advance(2)
    assert services.sweep().timed_out == 1
    assert frames_to(sent, mods(clinic)) == [
        {"type": "entry-canceled", "request_id": str(w.request.id), "reason": "timeout"}
    ]
    [m] = sent.to(events.request_group(w.request.id))
    assert m["close_code"] == 4408 and m["frames"][0]["error"]["code"] == "ENTRY_TIMEOUT"
    r = EntryRequest.objects.get()
    assert (r.status, r.cancel_reason) == ("canceled", "timeout")
    sent.items.clear()
    assert services.sweep().timed_out == 0
    assert sent.items == []


@override_settings(ANTEROOM_DISCONNECT_GRACE=15)
def test_disconnect_grace_then_cancel(clinic, sent):
    c = conn()
    w = knock(clinic, c=c)
    sent.items.clear()
    services.entry_request_disconnected(request_id=w.request.id, connection_id=c.connection_id)
    [frame] = frames_to(sent, mods(clinic))
    assert frame["type"] == "entry-updated" and frame["request"]["connected"] is False
    clock.advance(14)
    sent.items.clear()
    services.sweep()
    assert sent.items == []
    clock.advance(2)
    assert services.sweep().disconnected == 1
    assert frames_to(sent, mods(clinic)) == [
        {"type": "entry-canceled", "request_id": str(w.request.id), "reason": "disconnected"}
    ]
    assert EntryRequest.objects.get().cancel_reason == "disconnected"
    sent.items.clear()
    assert services.sweep().disconnected == 0
    assert sent.items == []


@override_settings(ANTEROOM_DISCONNECT_GRACE=15)
def test_a_stale_disconnect_from_an_old_socket_is_ignored(clinic, sent):
    c = conn()
    w = knock(clinic, c=c)
    # The guest resumed on a new socket; the old socket's late disconnect must not count.
    resumed = knock(clinic, resume=w.resume, c=conn())
    assert resumed.request.id == w.request.id
    services.entry_request_disconnected(request_id=w.request.id, connection_id=c.connection_id)
    clock.advance(30)
    assert services.sweep().disconnected == 0
    assert EntryRequest.objects.get().status == "pending"


@override_settings(ANTEROOM_DISCONNECT_GRACE=15)
def test_resume_within_grace_keeps_the_request(clinic, sent):
    c = conn()
    w = knock(clinic, c=c)
    services.entry_request_disconnected(request_id=w.request.id, connection_id=c.connection_id)
    clock.advance(10)
    sent.items.clear()
    again = knock(clinic, resume=w.resume, c=conn(server="srv-b"))
    assert again.request.id == w.request.id
    assert again.request.expires_at == w.request.expires_at
    assert again.resume != w.resume
    # Moderators see the same row come back, not a new knock.
    [frame] = frames_to(sent, mods(clinic))
    assert frame["type"] == "entry-updated" and frame["request"]["connected"] is True
    clock.advance(10)
    assert services.sweep().disconnected == 0
    assert EntryRequest.objects.get().status == "pending"
    # The old resume key is spent.
    plan = services.join_plan(room_name="clinic", token=None, resume=w.resume)
    assert plan.resume_request is None


@override_settings(ANTEROOM_DISCONNECT_GRACE=15)
def test_sockets_of_a_dead_server_count_as_disconnected_from_its_last_heartbeat(clinic, sent):
    services.server_heartbeat(server_id="dead")
    services.server_heartbeat(server_id="alive")
    on_dead = knock(clinic, name="On dead", c=conn(server="dead", browser="1"))
    on_alive = knock(clinic, name="On alive", c=conn(server="alive", browser="2"))
    member = join(clinic, make_token(room="clinic", sub="m", name="M"), c=conn(server="dead"))
    last_beat = ServerProcess.objects.get(pk="dead").heartbeat_at
    # "dead" stops beating; "alive" keeps beating through its own sweeps.
    clock.advance(11)
    sent.items.clear()
    res = services.sweep(server_id="alive")
    assert res.dead_servers == 1 and res.disconnected == 0
    assert not ServerProcess.objects.filter(pk="dead").exists()
    r = EntryRequest.objects.get(pk=on_dead.request.id)
    assert r.status == "pending" and r.disconnected_at == last_beat
    # Moderators see the guest of the dead process as disconnected, once.
    updates = [f for f in frames_to(sent, mods(clinic)) if f["type"] == "entry-updated"]
    assert [(u["request"]["id"], u["request"]["connected"]) for u in updates] == [
        (str(on_dead.request.id), False)
    ]
    assert services.sweep(server_id="alive").dead_servers == 0
    p = Participant.objects.get(pk=member.participant.pk)
    assert p.disconnected_at == last_beat
    # 15 s after the last heartbeat (not after detection) the guest is gone.
    clock.advance(4.5)
    sent.items.clear()
    res = services.sweep(server_id="alive")
    assert (res.disconnected, res.left) == (1, 1)
    assert frames_to(sent, mods(clinic)) == [
        {"type": "entry-canceled", "request_id": str(on_dead.request.id), "reason": "disconnected"}
    ]
    assert [f["type"] for f in frames_to(sent, members(clinic))] == ["participant-left"]
    assert EntryRequest.objects.get(pk=on_alive.request.id).status == "pending"
    assert EntryRequest.objects.get(pk=on_alive.request.id).disconnected_at is None


@override_settings(ANTEROOM_DISCONNECT_GRACE=15)
def test_participant_who_drops_leaves_after_grace(clinic, sent):
    c = conn()
    j = join(clinic, make_token(room="clinic", sub="m", name="M"), c=c)
    services.participant_disconnected(
        room=clinic, participant_id="m", connection_id=c.connection_id
    )
    clock.advance(14)
    sent.items.clear()
    assert services.sweep().left == 0
    clock.advance(2)
    assert services.sweep().left == 1
    assert frames_to(sent, members(clinic)) == [
        {
            "type": "participant-left",
            "participant": {**events.participant_payload(j.participant), "status": "left"},
        }
    ]
    sent.items.clear()
    assert services.sweep().left == 0
    assert sent.items == []


# Presence ------------------------------------------------------------------------------------


def test_rejoining_with_the_same_id_replaces_the_presence(clinic, sent):
    token = make_token(room="clinic", sub="m", name="M")
    first = conn()
    join(clinic, token, c=first)
    sent.items.clear()
    second = conn()
    j = join(clinic, token, c=second)
    assert Participant.objects.filter(participant_id="m").count() == 1
    assert j.participant.connection_id == second.connection_id
    [close] = sent.to(events.participant_group(clinic.pk, "m"))
    assert close["action"] == "close" and close["close_code"] == 4409
    assert close["except_connection"] == second.connection_id
    [upd] = sent.to(members(clinic))
    assert upd["frames"][0]["type"] == "participant-updated"
    assert [p.participant_id for p in j.participants] == ["m"]


def test_moderator_snapshot_lists_pending_requests_participant_snapshot_does_not(clinic, sent):
    knock(clinic, name="A", c=conn(browser="a"))
    knock(clinic, name="B", c=conn(browser="b"))
    dr = join(clinic, make_token(room="clinic", sub="dr", owner=True))
    assert [r.name for r in dr.pending] == ["A", "B"]
    member = join(clinic, make_token(room="clinic", sub="m"))
    assert member.pending == []


# Rate limits ---------------------------------------------------------------------------------


def test_three_knocks_per_token_per_five_minutes(clinic, sent):
    token = make_token(room="clinic", join_policy={"mode": "ask", "ttl": 10})
    for _ in range(3):
        w = knock(clinic, token=token)
        services.entry_request_cancel(room=clinic, request_id=w.request.id)
    with pytest.raises(EntryRateLimited) as info:
        knock(clinic, token=token, c=conn(address="10.9.9.9", browser="fresh"))
    assert info.value.close_code == 4429
    # Another token is not affected.
    knock(clinic, token=make_token(room="clinic", join_policy={"mode": "ask"}))
    clock.advance(301)
    knock(clinic, token=token)
    assert EntryRequest.objects.count() == 5


def test_three_knocks_per_browser_per_five_minutes(clinic, sent):
    for i in range(3):
        knock(clinic, name=f"try {i}", c=conn(browser="browser-1"))
    with pytest.raises(EntryRateLimited):
        knock(clinic, c=conn(browser="browser-1", address="10.7.7.7"))
    knock(clinic, c=conn(browser="browser-2"))  # the browser next to it still works
    clock.advance(301)
    knock(clinic, c=conn(browser="browser-1"))
    assert EntryRequest.objects.count() == 5


def test_a_clinic_behind_one_nat_works_up_to_thirty_a_raid_does_not(clinic, sent):
    other = make_room("other", privacy="private", enable_knocking=True)
    for i in range(30):
        knock(clinic, name=f"patient {i}", c=conn(browser=f"b{i}", address="192.0.2.1"))
    assert EntryRequest.objects.filter(room=clinic).count() == 30
    with pytest.raises(EntryRateLimited):
        knock(clinic, c=conn(browser="b-new", address="192.0.2.1"))
    with pytest.raises(EntryRateLimited):
        knock(clinic, c=conn(browser="", address="192.0.2.1"))  # no cookie at all
    # Another address, another room, and guests with tokens are not held back.
    knock(clinic, c=conn(browser="b-x", address="198.51.100.7"))
    knock(other, c=conn(browser="b-y", address="192.0.2.1"))
    knock(
        clinic,
        token=make_token(room="clinic", join_policy={"mode": "ask"}),
        c=conn(address="192.0.2.1"),
    )
    clock.advance(301)
    knock(clinic, c=conn(browser="b-late", address="192.0.2.1"))


@override_settings(ANTEROOM_KNOCK_LIMIT=(1, 60))
def test_the_knock_limit_follows_settings(clinic, sent):
    token = make_token(room="clinic", join_policy={"mode": "ask"})
    w = knock(clinic, token=token)
    services.entry_request_cancel(room=clinic, request_id=w.request.id)
    with pytest.raises(EntryRateLimited):
        knock(clinic, token=token)
    clock.advance(61)
    knock(clinic, token=token)


def test_resuming_is_not_a_new_knock_for_the_rate_limit(clinic, sent):
    token = make_token(room="clinic", sub="pat", join_policy={"mode": "ask"})
    w = knock(clinic, token=token)
    for _ in range(5):
        w = knock(clinic, token=token, resume=w.resume)
    assert EntryRequest.objects.count() == 1


# Access table ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("privacy", "knocking", "claims", "level"),
    [
        ("public", False, None, "full"),
        ("public", False, {}, "full"),
        ("public", False, {"join_policy": {"mode": "ask"}}, "lobby"),
        ("private", False, {}, "full"),
        ("private", True, None, "lobby"),
        ("private", False, None, "none"),
        ("private", False, {"join_policy": {"mode": "ask", "ttl": 30}}, "lobby"),
    ],
)
def test_access_level(privacy, knocking, claims, level):
    make_room("r1", privacy=privacy, enable_knocking=knocking)
    token = make_token(room="r1", **claims) if claims is not None else None
    assert services.preauth(room_name="r1", token=token).level == level
