"""A LiveKit media backend: access tokens minted at ``joined``, permissions through the server
API (MEDIA-DESIGN.md "Backend interface"). No LiveKit server runs on the build machine: the
tokens are tested for their claims and the API calls against a recording HTTP server.

- **Access token** (docs.livekit.io "Tokens & grants"): an HS256 JWT signed with the API secret,
  ``iss`` = API key, ``sub`` = the participant's identity (its Anteroom participant id),
  ``name``, ``nbf``/``exp`` (``ANTEROOM_LIVEKIT_TOKEN_TTL``, default 300 s: LiveKit checks
  ``exp`` only when connecting, and a token cannot be revoked, so keep it short), ``jti``, and
  the ``video`` grant: ``roomJoin``, ``room``, ``canPublish``, ``canSubscribe``,
  ``canPublishData`` and ``canPublishSources`` (``camera``, ``microphone``, ``screen_share``,
  ``screen_share_audio``) from the participant's permissions at that moment.
- **Server API** (Twirp over HTTP, ``POST <url>/twirp/livekit.RoomService/<Method>``, JSON, a
  bearer token whose grant is ``roomAdmin`` for that room, or ``roomCreate``/``roomList``):
  ``apply`` sends ``UpdateParticipant`` with the participant's permission (LiveKit then
  unpublishes tracks that are no longer allowed), ``revoke`` ``RemoveParticipant``,
  ``close_room`` ``DeleteRoom``, ``ready`` ``ListRooms``. A participant not (yet) connected
  answers ``not_found``: nothing to enforce.

PyJWT (already a dependency: lobby/tokens.py) signs; urllib carries the calls, as in janus.py.
"""

from __future__ import annotations

import json
import secrets
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

from ..tokens import sign_payload
from .janus import MediaUnavailable, _perm, _pid_of

SOURCES = {"audio": "microphone", "video": "camera", "screen": "screen_share"}
# Protobuf enum names of the same sources, as the Twirp JSON API spells them.
API_SOURCES = {
    "microphone": "MICROPHONE",
    "camera": "CAMERA",
    "screen_share": "SCREEN_SHARE",
    "screen_share_audio": "SCREEN_SHARE_AUDIO",
}


RECEIVE_ONLY = {"audio": False, "video": False, "screen": False, "receive": True}


class LiveKitError(MediaUnavailable):
    def __init__(self, status: int, code: str, msg: str) -> None:
        super().__init__(f"livekit {status} {code}: {msg}")
        self.status = status
        self.code = code


@dataclass(frozen=True)
class LiveKitConfig:
    url: str  # the server API (https://livekit.example.org); browsers use public_url (wss://)
    public_url: str
    api_key: str
    api_secret: str
    token_ttl: int = 300
    timeout: float = 3.0

    @classmethod
    def from_settings(cls) -> LiveKitConfig:
        url = settings.ANTEROOM_LIVEKIT_URL
        return cls(
            url=url,
            public_url=settings.ANTEROOM_LIVEKIT_PUBLIC_URL or url,
            api_key=settings.ANTEROOM_LIVEKIT_API_KEY,
            api_secret=settings.ANTEROOM_LIVEKIT_API_SECRET,
            token_ttl=int(settings.ANTEROOM_LIVEKIT_TOKEN_TTL),
            timeout=float(settings.ANTEROOM_JANUS_TIMEOUT),
        )

    def validate(self) -> None:
        for name, value, schemes in (
            ("ANTEROOM_LIVEKIT_URL", self.url, ("http", "https")),
            ("ANTEROOM_LIVEKIT_PUBLIC_URL", self.public_url, ("http", "https", "ws", "wss")),
        ):
            parts = urllib.parse.urlsplit(value)
            if parts.scheme not in schemes or not parts.netloc:
                raise ImproperlyConfigured(
                    f"{name} must be a {'/'.join(schemes)} URL of the LiveKit server, got {value!r}"
                )
        if not self.api_key:
            raise ImproperlyConfigured("ANTEROOM_LIVEKIT_API_KEY must be set")
        if len(self.api_secret) < 32:
            # HS256 with a shorter key is brute-forceable (and PyJWT warns about it)
            raise ImproperlyConfigured("ANTEROOM_LIVEKIT_API_SECRET must be at least 32 characters")
        if not 30 <= self.token_ttl <= 86400:
            raise ImproperlyConfigured("ANTEROOM_LIVEKIT_TOKEN_TTL must be 30..86400 seconds")


def grant(room: str, permissions: Mapping[str, Any]) -> dict[str, Any]:
    """The ``video`` grant of a join token for these permissions."""
    p = _perm(permissions)
    sources = [SOURCES[k] for k in ("audio", "video", "screen") if p[k]]
    if p["screen"] and p["audio"]:
        sources.append("screen_share_audio")
    return {
        "roomJoin": True,
        "room": room,
        "canPublish": bool(sources),
        "canSubscribe": p["receive"],
        "canPublishData": p["receive"],
        "canPublishSources": sources,
    }


class LiveKitBackend:
    name = "livekit"
    mode = "livekit"  # no browser engine ships for it yet (docs/architecture.md "Media")

    def __init__(self, config: LiveKitConfig | None = None) -> None:
        self.config = config or LiveKitConfig.from_settings()
        self._perms: dict[tuple[str, str], dict[str, bool]] = {}
        self.pending: set[tuple[str, str]] = set()  # applied before they connected

    @staticmethod
    def room_name(media_room: Any) -> str:
        return "anteroom-" + str(getattr(media_room, "pk", None) or media_room)

    # tokens ---------------------------------------------------------------------------------

    def mint(
        self,
        identity: str,
        media_room: Any,
        permissions: Mapping[str, Any],
        *,
        name: str = "",
        now: float | None = None,
    ) -> str:
        """A LiveKit join token for ``identity`` in the media room with ``permissions``."""
        issued = int(now if now is not None else time.time())
        claims: dict[str, Any] = {
            "iss": self.config.api_key,
            "sub": identity,
            "nbf": issued,
            "exp": issued + self.config.token_ttl,
            "jti": secrets.token_urlsafe(12),
            "video": grant(self.room_name(media_room), permissions),
        }
        if name:
            claims["name"] = name
        return sign_payload(claims, self.config.api_secret)

    def _admin_token(self, video: dict[str, Any]) -> str:
        now = int(time.time())
        claims = {"iss": self.config.api_key, "nbf": now, "exp": now + 60, "video": video}
        return sign_payload(claims, self.config.api_secret)

    # server API -----------------------------------------------------------------------------

    def _call(self, method: str, body: dict[str, Any], video: dict[str, Any]) -> dict[str, Any]:
        url = f"{self.config.url.rstrip('/')}/twirp/livekit.RoomService/{method}"
        req = urllib.request.Request(  # noqa: S310 - the configured http(s) URL (check())
            url,
            data=json.dumps(body).encode(),
            method="POST",
            headers={
                "Content-Type": "application/json",
                "Authorization": f"Bearer {self._admin_token(video)}",
            },
        )
        try:
            with urllib.request.urlopen(req, timeout=self.config.timeout) as resp:  # noqa: S310
                raw = resp.read()
        except urllib.error.HTTPError as exc:
            try:
                err = json.loads(exc.read() or b"{}")
            except ValueError:
                err = {}
            raise LiveKitError(exc.code, str(err.get("code", "")), str(err.get("msg", ""))) from exc
        except (OSError, ValueError) as exc:
            raise MediaUnavailable(f"livekit unreachable: {type(exc).__name__}") from exc
        return dict(json.loads(raw or b"{}"))

    # MediaBackend ---------------------------------------------------------------------------

    def check(self) -> None:
        self.config.validate()

    def ready(self) -> tuple[bool, str]:
        try:
            self._call("ListRooms", {}, {"roomList": True})
        except MediaUnavailable:
            return False, "media server (livekit) unreachable"
        return True, "ok"

    def join_info(
        self,
        participant: Any,
        media_room: Any,
        permissions: Mapping[str, Any] | None = None,
    ) -> dict[str, Any]:
        """Minted locally (no I/O). The token carries ``permissions`` if given, else those last
        applied for this participant, else receive-only: a token cannot be revoked, so it never
        grants more than the server last decided. ``apply`` widens it at the server once the
        participant is connected (``reconcile`` retries those who were not yet)."""
        pid = _pid_of(participant)
        if permissions is None:
            permissions = self._perms.get((str(media_room), pid), RECEIVE_ONLY)
        return {
            "url": self.config.public_url,
            "room": self.room_name(media_room),
            "token": self.mint(pid, media_room, permissions),
        }

    def apply(self, media_room: Any, permissions_by_participant: Mapping[str, Any]) -> None:
        room = self.room_name(media_room)
        for pid, raw in permissions_by_participant.items():
            p = _perm(raw)
            self._perms[(str(media_room), str(pid))] = p
            if not p["receive"]:
                self._remove(room, str(pid))
                continue
            g = grant(room, p)
            permission = {
                "canSubscribe": g["canSubscribe"],
                "canPublish": g["canPublish"],
                "canPublishData": g["canPublishData"],
                "canPublishSources": [API_SOURCES[s] for s in g["canPublishSources"]],
            }
            try:
                self._call(
                    "UpdateParticipant",
                    {"room": room, "identity": str(pid), "permission": permission},
                    {"roomAdmin": True, "room": room},
                )
            except LiveKitError as exc:
                if exc.code != "not_found":
                    raise
                self.pending.add((str(media_room), str(pid)))
            else:
                self.pending.discard((str(media_room), str(pid)))

    def reconcile(self) -> None:
        """Apply again the permissions of participants who were not connected yet."""
        for media_room, pid in sorted(self.pending):
            perms = self._perms.get((media_room, pid))
            if perms is not None:
                self.apply(media_room, {pid: perms})

    def revoke(self, participant: Any, media_room: Any) -> None:
        pid = _pid_of(participant)
        self._perms.pop((str(media_room), pid), None)
        self.pending.discard((str(media_room), pid))
        self._remove(self.room_name(media_room), pid)

    def close_room(self, media_room: Any) -> None:
        room = self.room_name(media_room)
        for key in [k for k in self._perms if k[0] == str(media_room)]:
            del self._perms[key]
            self.pending.discard(key)
        try:
            self._call("DeleteRoom", {"room": room}, {"roomCreate": True})
        except LiveKitError as exc:
            if exc.code != "not_found":
                raise

    def _remove(self, room: str, identity: str) -> None:
        try:
            self._call(
                "RemoveParticipant",
                {"room": room, "identity": identity},
                {"roomAdmin": True, "room": room},
            )
        except LiveKitError as exc:
            if exc.code != "not_found":
                raise
