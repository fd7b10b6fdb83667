"""In-process checks of the scale-out machinery (no PostgreSQL or Redis needed).

* The event sender keeps order per group and per audience, merges piled-up frames, keeps only
  the newest queue order, and throttles queue broadcasts per lobby.
* A resync (what the layer watcher ``RUNTIME.layer`` runs after a Redis restart) resends each
  socket its snapshot:
  ``joined`` with ``"resync": true`` (and the pending knocks, to moderators), and a waiting
  guest's queue position or the outcome of its knock decided meanwhile.
* While the layer is down every frame is answered ``UNAVAILABLE``.
"""

from __future__ import annotations

import pytest
from asgiref.sync import sync_to_async

from lobby import events
from lobby.runtime.process import RUNTIME
from tests.factories import make_room, make_token


def _msg(*frames, **extra):
    return {"type": events.EVENT, "frames": list(frames), "action": "", **extra}


def test_coalesce_merges_frames_and_keeps_the_newest_queue_order():
    items = [
        ("mods.a", _msg({"type": "entry-requested", "n": 1})),
        ("lobby.a", {"type": events.EVENT, "action": "queue", "order": ["1"]}),
        ("mods.a", _msg({"type": "entry-requested", "n": 2})),
        ("lobby.a", {"type": events.EVENT, "action": "queue", "order": ["1", "2"]}),
    ]
    streams = events._coalesce(items)
    sent = [item for runs in streams for run in runs for item in run]
    mods = [m for g, m in sent if g == "mods.a"]
    assert len(mods) == 1 and [f["n"] for f in mods[0]["frames"]] == [1, 2]
    queue = [m for g, m in sent if g == "lobby.a"]
    assert len(queue) == 1 and queue[0]["order"] == ["1", "2"]


def test_coalesce_merges_relays_to_one_waiting_guest_and_keeps_them_marked():
    items = [
        ("req.q", _msg({"type": "host-message", "n": 1}, to_waiting=True)),
        ("req.q", _msg({"type": "waiting", "n": 2}, to_waiting=True)),
    ]
    ((run,),) = events._coalesce(items)
    ((group, message),) = run
    assert group == "req.q" and message["to_waiting"] is True
    assert [f["n"] for f in message["frames"]] == [1, 2]


def test_coalesce_keeps_order_within_an_audience_and_never_merges_targeted_messages():
    items = [
        ("members.r", _msg({"type": "participant-joined", "n": 1}, except_connection="c1")),
        ("members.r", _msg({"type": "participant-joined", "n": 2}, except_connection="c2")),
        ("mods.r", _msg({"type": "entry-resolved", "n": 3})),
        ("members.r", _msg({"type": "room-updated", "n": 4})),
    ]
    (joined_stream,) = events._coalesce(items)
    flat = [(g, [f["n"] for f in m["frames"]]) for run in joined_stream for g, m in run]
    assert flat == [("members.r", [1]), ("members.r", [2]), ("mods.r", [3]), ("members.r", [4])]
    # A run never holds one group twice (a run is sent concurrently).
    for run in joined_stream:
        assert len({g for g, _ in run}) == len(run)


def test_admit_all_sends_its_request_groups_as_one_concurrent_run():
    items = [("mods.r", _msg({"type": "entry-resolved"}))]
    items += [(f"req.{i:032x}", _msg({"type": "joined"}, action="admitted")) for i in range(50)]
    items += [("members.r", _msg({"type": "participant-joined"})) for _ in range(50)]
    streams = events._coalesce(items)
    shapes = sorted([len(run) for run in runs] for runs in streams)
    assert shapes == [[1, 1], [50]]  # joined stream: mods then members (merged); waiting: 50 req


def test_queue_broadcasts_are_throttled_by_lobby_size():
    assert events.queue_interval(1) == events.QUEUE_INTERVAL_MIN
    assert events.queue_interval(1000) == 5.0
    assert events.queue_interval(100_000) == events.QUEUE_INTERVAL_MAX


def test_joined_frames_are_pre_encoded_once_per_batch():
    import json

    roster = [{"participant_id": f"p{i}"} for i in range(20)]
    memo: dict = {}
    a = events._pre_encode(_msg({"type": "joined", "participants": roster, "x": 1}), memo)
    b = events._pre_encode(_msg({"type": "joined", "participants": roster, "x": 2}), memo)
    assert "frames" not in a and json.loads(a["texts"][0])["participants"] == roster
    assert json.loads(b["texts"][0])["x"] == 2 and len(memo) == 1
    other = _msg({"type": "entry-requested"})
    assert events._pre_encode(other, memo) is other


def test_every_relayed_frame_is_encoded_once_as_send_json_would():
    """A ``participant-joined`` to a room of N members was JSON-encoded by each of the N
    consumers (and copied N times on the way); the sender now encodes it once, byte for byte
    what ``send_json`` writes. Frames a moderator socket reads for its knock alerts stay dicts,
    and so do the other frames of their message (the order of a message's frames)."""
    import json

    room = {f"k{i}": i for i in range(12)} | {"name": "é ü \u2028", "n": None, "f": 1.5}
    frames = [
        {"type": "participant-joined", "participant": {"participant_id": "p", "name": "Zoë"}},
        {"type": "room-updated", "room": room},
        {"type": "x", 1: "int key"},
    ]
    memo: dict = {}
    out = events._pre_encode(_msg(*frames), memo)
    assert "frames" not in out
    assert out["texts"] == [json.dumps(f, separators=(",", ":")) for f in frames]
    assert list(memo) == [id(room)]  # the shared room: encoded once for the batch
    for kind in sorted(events.READ_BY_CONSUMER):
        mixed = _msg({"type": "participant-joined"}, {"type": kind, "request_id": "r"})
        assert events._pre_encode(mixed, memo) is mixed


@pytest.mark.django_db(transaction=True)
async def test_a_resync_resends_every_socket_its_snapshot(clients):
    from lobby.models import EntryRequest

    await sync_to_async(make_room)("clinic", privacy="private", enable_knocking=True)
    owner = await sync_to_async(make_token)(room="clinic", owner=True, sub="dr", name="Dr")
    mod = await clients()
    await mod.request("join", token=owner)
    await mod.expect("joined")
    guest = await clients()
    ack = await guest.request("join", rid=2, name="Wendy")
    request_id = ack["data"]["request_id"]
    await guest.expect("queue-position")
    await mod.expect("entry-requested")
    late = await clients(client=("127.0.0.1", 50001))
    ack = await late.request("join", rid=3, name="Larry")
    late_id = ack["data"]["request_id"]
    await mod.expect("entry-requested")
    # Decided while events could not be delivered: the guest hears it only through the resync.
    await sync_to_async(EntryRequest.objects.filter(pk=late_id).update)(status="denied")

    assert RUNTIME.layer.resync_all(snapshot=True, spread=0) >= 3
    snap = await _resynced(mod)
    assert snap["resync"] is True and snap["resume"] is None
    assert snap["participant"]["participant_id"] == "dr"
    again = await mod.expect("entry-requested")
    assert again["request"]["id"] == request_id
    position = await guest.expect("queue-position")
    assert position["position"] == 1
    err = await late.expect("error")
    assert err["error"]["code"] == "ENTRY_DENIED"


async def _resynced(client):
    frame = await client.expect("joined")
    assert frame.get("resync") is True, frame
    return frame


@pytest.mark.django_db(transaction=True)
async def test_every_frame_is_unavailable_while_the_layer_is_down(clients, monkeypatch):
    await sync_to_async(make_room)("clinic", privacy="public")
    c = await clients()
    monkeypatch.setattr(RUNTIME.layer, "is_down", lambda: True)
    ack = await c.request("join", rid=7, name="Early")
    assert ack["ok"] is False and ack["error"]["code"] == "UNAVAILABLE"
    await c.send(type="join", name="No rid")
    err = await c.expect("error")
    assert err["error"]["code"] == "UNAVAILABLE"
    monkeypatch.setattr(RUNTIME.layer, "is_down", lambda: False)
    ack = await c.request("join", rid=8, name="On time")
    assert ack["ok"] is True
