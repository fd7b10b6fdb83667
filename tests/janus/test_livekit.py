"""LiveKit backend: join-token claims (docs.livekit.io "Tokens & grants") and RoomService calls
against a recording HTTP server (no LiveKit server runs here). Not ``janus``-marked: these run
in the main pass."""

from __future__ import annotations

import dataclasses
import http.server
import json
import threading
import time
from collections.abc import Iterator
from typing import Any

import jwt
import pytest
from django.core.exceptions import ImproperlyConfigured

from lobby.media.janus import MediaUnavailable
from lobby.media.livekit import LiveKitBackend, LiveKitConfig, LiveKitError

KEY = "APIanteroomtest"
SECRET = "s" * 24 + "-livekit-test-secret"
FULL = {"audio": True, "video": True, "screen": True, "receive": True}
MUTED = {"audio": False, "video": True, "screen": False, "receive": True}
PAUSED = {"audio": False, "video": False, "screen": False, "receive": False}


class Recorder(http.server.BaseHTTPRequestHandler):
    """Answers every POST with the next queued (status, body) or 200 {}; records requests."""

    calls: list[dict[str, Any]]
    answers: list[tuple[int, dict[str, Any]]]

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length", "0"))
        self.server.calls.append(  # type: ignore[attr-defined]
            {
                "path": self.path,
                "auth": self.headers.get("Authorization", ""),
                "body": json.loads(self.rfile.read(length) or b"{}"),
            }
        )
        answers = self.server.answers  # type: ignore[attr-defined]
        status, body = answers.pop(0) if answers else (200, {})
        raw = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(raw)))
        self.end_headers()
        self.wfile.write(raw)

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def mock_livekit() -> Iterator[Any]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Recorder)
    server.calls = []  # type: ignore[attr-defined]
    server.answers = []  # type: ignore[attr-defined]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    server.url = f"http://127.0.0.1:{server.server_address[1]}"  # type: ignore[attr-defined]
    yield server
    server.shutdown()
    server.server_close()


def make(url: str = "http://127.0.0.1:1", **over: Any) -> LiveKitBackend:
    cfg = LiveKitConfig(
        url=url, public_url="wss://livekit.example.org", api_key=KEY, api_secret=SECRET
    )
    return LiveKitBackend(dataclasses.replace(cfg, **over))


def decode(token: str) -> dict[str, Any]:
    return dict(
        jwt.decode(
            token,
            SECRET,
            algorithms=["HS256"],
            options={"require": ["iss", "sub", "nbf", "exp", "video"]},
        )
    )


def test_join_token_claims_follow_livekit_docs():
    b = make()
    now = time.time()
    token = b.mint("guest-1", "room-uuid", FULL, name="Pat", now=now)
    assert jwt.get_unverified_header(token)["alg"] == "HS256"
    claims = decode(token)
    assert claims["iss"] == KEY and claims["sub"] == "guest-1" and claims["name"] == "Pat"
    assert claims["nbf"] == int(now) and claims["exp"] == int(now) + 300
    assert isinstance(claims["jti"], str) and claims["jti"]
    assert claims["video"] == {
        "roomJoin": True,
        "room": "anteroom-room-uuid",
        "canPublish": True,
        "canSubscribe": True,
        "canPublishData": True,
        "canPublishSources": ["microphone", "camera", "screen_share", "screen_share_audio"],
    }
    # every grant value has LiveKit's type (PyJWT would pass strings through: check them)
    for field in ("roomJoin", "canPublish", "canSubscribe", "canPublishData"):
        assert type(claims["video"][field]) is bool


def test_token_permissions_narrow_with_room_controls():
    b = make()
    muted = decode(b.mint("g", "r", MUTED))["video"]
    assert muted["canPublish"] is True and muted["canPublishSources"] == ["camera"]
    paused = decode(b.mint("g", "r", PAUSED))["video"]
    assert paused["canPublish"] is False and paused["canPublishSources"] == []
    assert paused["canSubscribe"] is False
    viewer = decode(b.mint("g", "r", {"receive": True}))["video"]
    assert viewer["canPublish"] is False and viewer["canSubscribe"] is True


def test_token_is_refused_when_forged_or_expired():
    b = make()
    token = b.mint("g", "r", FULL, now=time.time() - 3600)
    with pytest.raises(jwt.ExpiredSignatureError):
        decode(token)
    with pytest.raises(jwt.InvalidSignatureError):
        jwt.decode(b.mint("g", "r", FULL), "x" * 40, algorithms=["HS256"])


def test_join_info_never_grants_more_than_last_applied(mock_livekit):
    b = make(mock_livekit.url)
    first = decode(b.join_info("g", "r")["token"])["video"]
    assert first["canPublish"] is False and first["canSubscribe"] is True  # receive-only
    b.apply("r", {"g": MUTED})
    info = b.join_info("g", "r")
    assert info["url"] == "wss://livekit.example.org" and info["room"] == "anteroom-r"
    assert decode(info["token"])["video"]["canPublishSources"] == ["camera"]
    given = decode(b.join_info("g", "r", FULL)["token"])["video"]
    assert given["canPublishSources"][:2] == ["microphone", "camera"]


def test_apply_sends_update_participant_with_an_admin_token(mock_livekit):
    b = make(mock_livekit.url)
    b.apply("r", {"g": MUTED, "h": PAUSED})
    update, remove = mock_livekit.calls
    assert update["path"] == "/twirp/livekit.RoomService/UpdateParticipant"
    assert update["body"] == {
        "room": "anteroom-r",
        "identity": "g",
        "permission": {
            "canSubscribe": True,
            "canPublish": True,
            "canPublishData": True,
            "canPublishSources": ["CAMERA"],
        },
    }
    scheme, _, token = update["auth"].partition(" ")
    assert scheme == "Bearer"
    admin = jwt.decode(token, SECRET, algorithms=["HS256"], options={"require": ["exp", "iss"]})
    assert admin["iss"] == KEY and admin["video"] == {"roomAdmin": True, "room": "anteroom-r"}
    assert admin["exp"] - admin["nbf"] <= 60
    # no receive (pause): removed from the LiveKit room
    assert remove["path"] == "/twirp/livekit.RoomService/RemoveParticipant"
    assert remove["body"] == {"room": "anteroom-r", "identity": "h"}


def test_not_yet_connected_participants_are_retried_by_reconcile(mock_livekit):
    b = make(mock_livekit.url)
    mock_livekit.answers.append((404, {"code": "not_found", "msg": "participant not found"}))
    b.apply("r", {"g": MUTED})
    assert b.pending == {("r", "g")}
    b.reconcile()
    assert b.pending == set()
    assert [c["path"].rsplit("/", 1)[1] for c in mock_livekit.calls] == [
        "UpdateParticipant",
        "UpdateParticipant",
    ]


def test_revoke_and_close_room(mock_livekit):
    b = make(mock_livekit.url)
    b.apply("r", {"g": FULL})
    b.revoke("g", "r")
    mock_livekit.answers.append((404, {"code": "not_found", "msg": "room not found"}))
    b.close_room("r")  # already gone: fine
    calls = [(c["path"].rsplit("/", 1)[1], c["body"]) for c in mock_livekit.calls]
    assert calls[1:] == [
        ("RemoveParticipant", {"room": "anteroom-r", "identity": "g"}),
        ("DeleteRoom", {"room": "anteroom-r"}),
    ]
    admin = jwt.decode(mock_livekit.calls[-1]["auth"].split(" ")[1], SECRET, algorithms=["HS256"])
    assert admin["video"] == {"roomCreate": True}
    # after revoke, a new join token is receive-only again (nothing remembered)
    assert decode(b.join_info("g", "r")["token"])["video"]["canPublish"] is False


def test_server_errors_and_outage_are_clear(mock_livekit):
    b = make(mock_livekit.url)
    mock_livekit.answers.append((401, {"code": "unauthenticated", "msg": "invalid token"}))
    with pytest.raises(LiveKitError, match="401 unauthenticated"):
        b.apply("r", {"g": FULL})
    assert b.ready() == (True, "ok")
    down = make("http://127.0.0.1:9", timeout=0.5)
    assert down.ready() == (False, "media server (livekit) unreachable")
    with pytest.raises(MediaUnavailable, match="unreachable"):
        down.revoke("g", "r")


def test_check_names_the_bad_setting():
    make().check()
    cases: dict[str, dict[str, Any]] = {
        "ANTEROOM_LIVEKIT_URL": {"url": "livekit"},
        "ANTEROOM_LIVEKIT_PUBLIC_URL": {"public_url": "ftp://x"},
        "ANTEROOM_LIVEKIT_API_KEY": {"api_key": ""},
        "ANTEROOM_LIVEKIT_API_SECRET": {"api_secret": "short"},
        "ANTEROOM_LIVEKIT_TOKEN_TTL": {"token_ttl": 5},
    }
    for name, over in cases.items():
        with pytest.raises(ImproperlyConfigured, match=name):
            make(**over).check()
