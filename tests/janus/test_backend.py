"""JanusBackend against a real Janus: rooms, per-participant tokens, revocation, outage.

Media-level checks (moderate silences, three peers decode) are in test_media.py (Chromium).
"""

from __future__ import annotations

import dataclasses
import secrets
import urllib.error
from typing import Any

import pytest
from django.core.exceptions import ImproperlyConfigured

from lobby.media.janus import JanusBackend, JanusConfig, MediaUnavailable, wait_until

from .conftest import Janus, post, session_with, start_janus

pytestmark = pytest.mark.janus


def config_for(j: Janus, **over) -> JanusConfig:
    base = JanusConfig(
        url=j.url,
        public_url=j.url,
        admin_url=j.admin_url,
        api_secret=j.api_secret,
        admin_secret=j.admin_secret,
        room_admin_key=j.room_admin_key,
        signing_key="janus-tests-" + secrets.token_urlsafe(16),
        timeout=2.0,
        reconcile_interval=0.2,
    )
    return dataclasses.replace(base, **over)


@pytest.fixture
def backend(janus: Janus):
    b = JanusBackend(config_for(janus), autostart=False, permissions_source="applied")
    yield b
    b.stop()


def join_as_publisher(j: Janus, token: str, room: int, feed: int) -> dict:
    """Attach to the VideoRoom and join ``room`` as publisher ``feed``; the plugin's answer."""
    s = session_with(j, token)
    h = post(
        f"{j.url}/{s}", {"janus": "attach", "plugin": "janus.plugin.videoroom", "token": token}
    )["data"]["id"]
    post(
        f"{j.url}/{s}/{h}",
        {
            "janus": "message",
            "token": token,
            "body": {
                "request": "join",
                "ptype": "publisher",
                "room": room,
                "id": feed,
                "token": token,
            },
        },
    )
    # The join answers asynchronously: read the session's events (long poll).
    import json
    import urllib.request

    with urllib.request.urlopen(f"{j.url}/{s}?token={token}&maxev=5", timeout=10) as resp:
        events = json.loads(resp.read())
    events = events if isinstance(events, list) else [events]
    for ev in events:
        data = (ev.get("plugindata") or {}).get("data") or {}
        if data:
            return {"session": s, "handle": h, **data}
    raise AssertionError(f"no plugin answer in {events}")


FULL = {"audio": True, "video": True, "screen": False, "receive": True}
PAUSED = {"audio": False, "video": False, "screen": False, "receive": False}


def admit(backend: JanusBackend, room: str, *pids: str, **others: dict) -> list[dict]:
    """What media does on admission: join_info (in the transaction) for each, then apply (after
    commit) with the media room's whole permission map."""
    infos = [backend.join_info(pid, room) for pid in pids]
    backend.apply(room, {**{pid: FULL for pid in pids}, **others})
    return infos


def test_join_info_creates_the_room_and_registers_a_working_token(
    janus: Janus, backend: JanusBackend
):
    token = backend.token("guest-1", "room-a")
    with pytest.raises(PermissionError, match="Unauthorized"):
        session_with(janus, token)  # derived, but not registered yet
    info = backend.join_info("guest-1", "room-a")
    assert info["token"] == token
    assert info["room"] == backend.room_id("room-a") and info["room"] in janus.rooms()
    assert info["url"] == janus.url and info["id"] == backend.feed_id("guest-1")
    joined = join_as_publisher(janus, info["token"], info["room"], info["id"])
    assert joined["videoroom"] == "joined" and joined["id"] == info["id"]
    # ids are derived: another process (same signing key) computes the same ones
    twin = JanusBackend(backend.config, autostart=False)
    assert (
        twin.room_id("room-a") == info["room"] and twin.token("guest-1", "room-a") == info["token"]
    )
    assert backend.room_id("room-b") != info["room"]
    assert backend.token("guest-2", "room-a") != info["token"]


def test_a_token_never_issued_is_refused(janus: Janus, backend: JanusBackend):
    admit(backend, "room-forged", "guest-1")
    forged = backend.token("someone-else", "room-forged")  # right shape, never added
    with pytest.raises(PermissionError, match="Unauthorized"):
        session_with(janus, forged)
    with pytest.raises(PermissionError, match="Unauthorized"):
        session_with(janus, "")


def test_a_token_of_another_room_cannot_join_this_one(janus: Janus, backend: JanusBackend):
    (a,) = admit(backend, "room-x", "guest-1")
    (b,) = admit(backend, "room-y", "guest-2")
    answer = join_as_publisher(janus, a["token"], b["room"], 4242)
    assert answer["error_code"] == 433  # "Unauthorized (not in the allowed list)"


def test_revoke_refuses_the_old_credential_and_ends_its_session(
    janus: Janus, backend: JanusBackend
):
    (info,) = admit(backend, "room-r", "guest-1")
    joined = join_as_publisher(janus, info["token"], info["room"], info["id"])
    assert joined["videoroom"] == "joined"
    participants = lambda: [  # noqa: E731
        p["id"]
        for p in backend.client.videoroom({"request": "listparticipants", "room": info["room"]})[
            "participants"
        ]
    ]
    assert participants() == [info["id"]]

    backend.revoke("guest-1", "room-r")

    assert participants() == []  # kicked
    sessions = janus.admin({"janus": "list_sessions"})["sessions"]
    assert joined["session"] not in sessions  # its session destroyed
    with pytest.raises(PermissionError, match="Unauthorized"):
        session_with(janus, info["token"])  # a hand-made request with the old credential
    # and even if the core token came back, the room's allowed list no longer holds it
    janus.admin(
        {"janus": "add_token", "token": info["token"], "plugins": ["janus.plugin.videoroom"]}
    )
    assert join_as_publisher(janus, info["token"], info["room"], info["id"])["error_code"] == 433
    # the others in the room keep theirs
    (other,) = admit(backend, "room-r", "guest-2")
    assert (
        join_as_publisher(janus, other["token"], other["room"], other["id"])["videoroom"]
        == "joined"
    )


def test_apply_closes_sessions_of_who_may_not_receive_and_of_strangers(
    janus: Janus, backend: JanusBackend
):
    a, b = admit(backend, "room-p", "guest-a", "guest-b")
    ja = join_as_publisher(janus, a["token"], a["room"], a["id"])
    jb = join_as_publisher(janus, b["token"], b["room"], b["id"])
    full, paused = FULL, PAUSED
    backend.apply("room-p", {"guest-a": full, "guest-b": paused})
    sessions = janus.admin({"janus": "list_sessions"})["sessions"]
    assert ja["session"] in sessions and jb["session"] not in sessions
    assert join_as_publisher(janus, b["token"], b["room"], b["id"])["error_code"] == 433
    # resume: b may come back with the same credential
    backend.apply("room-p", {"guest-a": full, "guest-b": full})
    assert join_as_publisher(janus, b["token"], b["room"], b["id"])["videoroom"] == "joined"
    # a participant the map no longer lists (left without a revoke) loses its session
    backend.apply("room-p", {"guest-b": full})
    assert ja["session"] not in janus.admin({"janus": "list_sessions"})["sessions"]


def test_close_room_destroys_it_and_its_tokens(janus: Janus, backend: JanusBackend):
    (info,) = admit(backend, "room-c", "guest-1")
    (keep,) = admit(backend, "room-other", "guest-1")
    assert info["room"] in janus.rooms()
    backend.close_room("room-c")
    assert info["room"] not in janus.rooms()
    tokens = [t["token"] for t in janus.admin({"janus": "list_tokens"})["data"]["tokens"]]
    assert info["token"] not in tokens and keep["token"] in tokens
    with pytest.raises(PermissionError):
        session_with(janus, info["token"])
    backend.close_room("room-c")  # closing twice is fine


def test_check_names_the_bad_setting(janus: Janus):
    good = config_for(janus)
    JanusBackend(good, autostart=False).check()
    cases: dict[str, dict[str, Any]] = {
        "ANTEROOM_JANUS_URL": {"url": ""},
        "ANTEROOM_JANUS_ADMIN_URL": {"admin_url": "ftp://x"},
        "ANTEROOM_JANUS_API_SECRET": {"api_secret": "short"},
        "ANTEROOM_JANUS_ADMIN_SECRET": {"admin_secret": ""},
        "ANTEROOM_JANUS_ROOM_ADMIN_KEY": {"room_admin_key": "x"},
        "ANTEROOM_JANUS_TIMEOUT": {"timeout": 0},
    }
    for name, over in cases.items():
        with pytest.raises(ImproperlyConfigured, match=name):
            JanusBackend(dataclasses.replace(good, **over), autostart=False).check()


def test_wrong_secrets_make_calls_fail_clearly(janus: Janus):
    wrong = JanusBackend(
        config_for(janus, api_secret="x" * 20, admin_secret="y" * 20), autostart=False
    )
    with pytest.raises(MediaUnavailable, match="403"):
        wrong.join_info("guest-1", "room-w")
    with pytest.raises(MediaUnavailable, match="403"):
        wrong.apply("room-w", {"guest-1": FULL})
    assert wrong.ready() == (False, "media server (janus) refused the admin request (403)")


def test_outage_then_restart_restores_rooms_and_tokens(tmp_path):
    j = start_janus(tmp_path, "janus-restart")
    told: list[list[str]] = []
    b = JanusBackend(
        config_for(j), autostart=False, on_recovered=told.append, permissions_source="applied"
    )
    try:
        (info,) = admit(b, "room-o", "guest-1")
        assert b.ready() == (True, "ok")
        b.reconcile()
        j.stop()
        assert b.ready() == (False, "media server (janus) unreachable")
        with pytest.raises(MediaUnavailable, match="unreachable"):
            b.join_info("guest-2", "room-o")  # media-state then says UNAVAILABLE
        with pytest.raises(MediaUnavailable):
            b.apply("room-o", {"guest-1": FULL, "guest-2": FULL})
        with pytest.raises((urllib.error.URLError, OSError)):
            session_with(j, info["token"])
        j.start()  # same ports and secrets, nothing remembered
        assert info["room"] not in j.rooms()
        b.start()
        assert wait_until(lambda: info["room"] in j.rooms(), 5)
        assert wait_until(lambda: told == [["room-o"]], 5)  # media is asked to re-send
        joined = join_as_publisher(j, info["token"], info["room"], info["id"])
        assert joined["videoroom"] == "joined"  # the old credential works again: same call
        # guest-2 was admitted during the outage: its token is registered too
        joined2 = join_as_publisher(j, b.token("guest-2", "room-o"), info["room"], 99)
        assert joined2["videoroom"] == "joined"
        assert b.ready() == (True, "ok")
    finally:
        b.stop()
        j.stop()


def test_a_removal_by_another_process_is_not_undone_by_this_ones_reconcile(janus: Janus):
    """Two server processes share one Janus. Process A admitted two guests; process B removes
    one (its revoke takes the token). A's reconcile must not put the token back from what A
    remembers: it reads the permissions the database holds now."""
    stored = {"room-two": {"guest-1": FULL, "guest-2": FULL}}  # what the database says

    def database(keys: list[str]) -> dict[str, Any]:
        return {k: stored.get(k) for k in keys}

    cfg = config_for(janus)
    a = JanusBackend(cfg, autostart=False, on_recovered=lambda r: None, permissions_source=database)
    b = JanusBackend(cfg, autostart=False, on_recovered=lambda r: None, permissions_source=database)
    one, two = admit(a, "room-two", "guest-1", "guest-2")
    a.reconcile()
    j2 = join_as_publisher(janus, two["token"], two["room"], two["id"])
    assert j2["videoroom"] == "joined"

    stored["room-two"] = {"guest-1": FULL}  # B's transaction removed guest-2 and committed
    b.revoke("guest-2", "room-two")
    b.apply("room-two", stored["room-two"])
    with pytest.raises(PermissionError, match="Unauthorized"):
        session_with(janus, two["token"])

    for _ in range(2):
        a.reconcile()  # A still remembers guest-2 as admitted
        with pytest.raises(PermissionError, match="Unauthorized"):
            session_with(janus, two["token"])  # the old credential stays refused
    # guest-1 keeps its media
    assert join_as_publisher(janus, one["token"], one["room"], one["id"])["videoroom"] == "joined"


def test_reconcile_takes_the_token_of_someone_this_process_applied_after_the_removal(
    janus: Janus,
):
    """One process, two media computations finishing out of order: the stale one (guest-2
    still present) is applied after the revoke. The next reconcile reads the database and
    takes the token again."""
    stored = {"room-late": {"guest-1": FULL}}
    a = JanusBackend(
        config_for(janus),
        autostart=False,
        on_recovered=lambda r: None,
        permissions_source=lambda keys: {k: stored.get(k) for k in keys},
    )
    admit(a, "room-late", "guest-1", "guest-2")  # the stale computation, applied last
    token = a.token("guest-2", "room-late")
    session_with(janus, token)  # works for now
    a.reconcile()
    with pytest.raises(PermissionError, match="Unauthorized"):
        session_with(janus, token)
