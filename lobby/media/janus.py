"""The Janus media backend: each media room (a room or a breakout) is one Janus VideoRoom.

Enforcement lives in Janus, not in the browsers (docs/architecture.md "Media server"):

- Janus runs with ``token_auth``: a browser may talk to Janus only with a token Anteroom added
  through the admin API (``add_token``), restricted to the VideoRoom plugin. Anteroom itself
  uses the API secret. A removed token is refused on every later request of that browser
  (keepalives, long polls, joins), so its session dies within Janus's session timeout even if
  nothing else happened.
- Each VideoRoom is created by Anteroom only (the plugin's ``admin_key``), with an ``allowed``
  list holding the tokens of the participants admitted to that media room, and
  ``require_pvtid``: a subscription must name its owner's publisher ``private_id``, so a kick
  also closes that participant's subscriptions.
- Revocation (leave, deny, kick, token revocation, move to a breakout) removes the token from
  the core and from the room's list, kicks the participant's publisher and destroys every
  Janus session that holds the token (found through the admin API's ``handle_info``).
- Room controls: ``apply`` moderates (``moderate`` per stream ``mid``) every publisher whose
  permissions lost audio/video/screen and closes the sessions of those who may not receive;
  a reconcile thread re-applies the permissions every ``ANTEROOM_JANUS_RECONCILE_INTERVAL``
  seconds, so a client that renegotiates new streams is muted again, and restores rooms and
  tokens after a Janus restart (calls resume without Anteroom's help beyond that). What it
  re-applies is read from the database each round (``lobby.media.stored_permissions``), never
  only what this process last applied: with several processes another one may have removed a
  participant since, and re-adding its token from memory would undo that revocation.

Identifiers are derived, not stored: the VideoRoom id, a participant's publisher id and token
are HMACs of the signing key, so every Anteroom process computes the same ones and nothing
needs a migration. All calls block (urllib, with ``ANTEROOM_JANUS_TIMEOUT``): callers run them
after commit in a worker thread (MEDIA-DESIGN.md), never in a transaction or on the event loop.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import secrets
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

from .signals import media_server_recovered

log = logging.getLogger("anteroom.media.janus")

VIDEOROOM = "janus.plugin.videoroom"
MAX_ID = 2**52  # Janus ids are JSON numbers: stay exact in JavaScript
# VideoRoom error codes that mean "already in the state we wanted".
ROOM_EXISTS = 427
NO_SUCH_ROOM = 426
NO_SUCH_FEED = 428
NO_SUCH_SESSION = 458
NO_SUCH_HANDLE = 459
TOKEN_NOT_FOUND = 490  # admin remove_token of a token Janus does not hold


class MediaUnavailable(Exception):
    """The media server cannot be reached or refused a call: joins answer UNAVAILABLE."""


class JanusError(MediaUnavailable):
    """Janus answered with an error (``code`` is Janus's or the VideoRoom plugin's)."""

    def __init__(self, code: int, reason: str) -> None:
        super().__init__(f"janus error {code}: {reason}")
        self.code = code
        self.reason = reason


@dataclass(frozen=True)
class JanusConfig:
    url: str
    public_url: str
    admin_url: str
    api_secret: str
    admin_secret: str
    room_admin_key: str
    signing_key: str
    timeout: float = 3.0
    reconcile_interval: float = 1.0
    max_publishers: int = 50

    @classmethod
    def from_settings(cls) -> JanusConfig:
        url = settings.ANTEROOM_JANUS_URL
        return cls(
            url=url,
            public_url=settings.ANTEROOM_JANUS_PUBLIC_URL or url,
            admin_url=settings.ANTEROOM_JANUS_ADMIN_URL,
            api_secret=settings.ANTEROOM_JANUS_API_SECRET,
            admin_secret=settings.ANTEROOM_JANUS_ADMIN_SECRET,
            room_admin_key=settings.ANTEROOM_JANUS_ROOM_ADMIN_KEY,
            signing_key=str(settings.ANTEROOM_SIGNING_KEY),
            timeout=float(settings.ANTEROOM_JANUS_TIMEOUT),
            reconcile_interval=float(settings.ANTEROOM_JANUS_RECONCILE_INTERVAL),
            max_publishers=int(settings.ANTEROOM_JANUS_MAX_PUBLISHERS),
        )

    def validate(self) -> None:
        """Raise ImproperlyConfigured naming the first bad setting."""
        for name, value in (
            ("ANTEROOM_JANUS_URL", self.url),
            ("ANTEROOM_JANUS_PUBLIC_URL", self.public_url),
            ("ANTEROOM_JANUS_ADMIN_URL", self.admin_url),
        ):
            parts = urllib.parse.urlsplit(value)
            if parts.scheme not in ("http", "https") or not parts.netloc:
                raise ImproperlyConfigured(
                    f"{name} must be an http(s) URL of the Janus API (ANTEROOM_MEDIA=janus), "
                    f"got {value!r}"
                )
        for name, value in (
            ("ANTEROOM_JANUS_API_SECRET", self.api_secret),
            ("ANTEROOM_JANUS_ADMIN_SECRET", self.admin_secret),
            ("ANTEROOM_JANUS_ROOM_ADMIN_KEY", self.room_admin_key),
        ):
            if len(value) < 16:
                raise ImproperlyConfigured(
                    f"{name} must be set to a secret of at least 16 characters "
                    "(ANTEROOM_MEDIA=janus)"
                )
        if not 0 < self.timeout <= 30:
            raise ImproperlyConfigured("ANTEROOM_JANUS_TIMEOUT must be in (0, 30] seconds")
        if self.reconcile_interval <= 0:
            raise ImproperlyConfigured("ANTEROOM_JANUS_RECONCILE_INTERVAL must be positive")
        if self.max_publishers < 1:
            raise ImproperlyConfigured("ANTEROOM_JANUS_MAX_PUBLISHERS must be at least 1")


class JanusClient:
    """Anteroom's side of the Janus HTTP and admin APIs (one control session, kept alive)."""

    def __init__(self, config: JanusConfig) -> None:
        self.config = config
        self._lock = threading.Lock()
        self._session: int | None = None
        self._handle: int | None = None
        self.up = True  # the last request got an answer (any answer) from Janus
        # Set by any request, on any thread, for the reconcile thread to take (take_news):
        # a request found Janus unreachable / Janus no longer knew the control session (a
        # restart), even when another call re-opened the session before the next keepalive.
        self._was_down = False
        self._forgot = False

    # transport ------------------------------------------------------------------------------

    def _post(self, url: str, body: dict[str, Any], timeout: float | None = None) -> Any:
        body = {**body, "transaction": secrets.token_hex(8)}
        req = urllib.request.Request(  # noqa: S310 - the configured http(s) URL (check())
            url,
            data=json.dumps(body).encode(),
            headers={"Content-Type": "application/json"},
            method="POST",
        )
        try:
            with urllib.request.urlopen(req, timeout=timeout or self.config.timeout) as resp:  # noqa: S310
                answer = json.loads(resp.read())
        except (OSError, ValueError) as exc:  # URLError, timeouts, refused, bad JSON
            self.up = False
            self._was_down = True
            raise MediaUnavailable(f"janus unreachable: {type(exc).__name__}") from exc
        self.up = True
        if not isinstance(answer, dict):
            raise MediaUnavailable("janus answered something that is not a JSON object")
        if answer.get("janus") == "error":
            err = answer.get("error") or {}
            raise JanusError(int(err.get("code", 0)), str(err.get("reason", "")))
        return answer

    def api(self, path: str, body: dict[str, Any]) -> Any:
        return self._post(
            self.config.url.rstrip("/") + path, {**body, "apisecret": self.config.api_secret}
        )

    def admin(self, body: dict[str, Any], path: str = "", timeout: float | None = None) -> Any:
        return self._post(
            self.config.admin_url.rstrip("/") + path,
            {**body, "admin_secret": self.config.admin_secret},
            timeout,
        )

    # the control handle on the VideoRoom plugin ---------------------------------------------

    def _open(self) -> tuple[int, int]:
        session = int(self.api("", {"janus": "create"})["data"]["id"])
        handle = int(
            self.api(f"/{session}", {"janus": "attach", "plugin": VIDEOROOM})["data"]["id"]
        )
        return session, handle

    def videoroom(self, body: dict[str, Any]) -> dict[str, Any]:
        """A synchronous VideoRoom request on the control handle; returns the plugin's data.

        The control session is re-created once when Janus no longer knows it (timed out, or
        Janus restarted)."""
        with self._lock:
            for attempt in (1, 2):
                if self._session is None or self._handle is None:
                    self._session, self._handle = self._open()
                try:
                    answer = self.api(
                        f"/{self._session}/{self._handle}", {"janus": "message", "body": body}
                    )
                except JanusError as exc:
                    if exc.code in (NO_SUCH_SESSION, NO_SUCH_HANDLE) and attempt == 1:
                        self._session = self._handle = None
                        self._forgot = True  # Janus restarted: its rooms and tokens are gone
                        continue
                    raise
                data = (answer.get("plugindata") or {}).get("data") or {}
                if "error_code" in data:
                    raise JanusError(int(data["error_code"]), str(data.get("error", "")))
                return dict(data)
        raise AssertionError("unreachable")  # pragma: no cover

    def take_news(self) -> tuple[bool, bool]:
        """(was down, forgot the session) since the last call, and clear both."""
        with self._lock:
            news = (self._was_down, self._forgot)
            self._was_down = self._forgot = False
        return news

    def keepalive(self) -> bool:
        """Keep the control session alive; False when there was none or Janus forgot it (a
        restart: rooms and tokens are gone too)."""
        with self._lock:
            session = self._session
        if session is None:
            return False
        try:
            self.api(f"/{session}", {"janus": "keepalive"})
        except JanusError:
            with self._lock:
                self._session = self._handle = None
            return False
        return True

    def server_info(self, timeout: float | None = None) -> dict[str, Any]:
        return dict(self.admin({"janus": "info"}, timeout=timeout))

    # admin views of sessions and handles ----------------------------------------------------

    def handles(self) -> list[dict[str, Any]]:
        """``handle_info`` of every handle of every session (the admin API's view)."""
        out: list[dict[str, Any]] = []
        for session in self.admin({"janus": "list_sessions"}).get("sessions") or []:
            try:
                listed = self.admin({"janus": "list_handles"}, f"/{session}")
            except JanusError:
                continue  # gone meanwhile
            for handle in listed.get("handles") or []:
                try:
                    info = self.admin({"janus": "handle_info"}, f"/{session}/{handle}")
                except JanusError:
                    continue
                out.append(dict(info.get("info") or {}))
        return out

    def destroy_session(self, session: int) -> None:
        try:
            self.admin({"janus": "destroy_session"}, f"/{session}")
        except JanusError as exc:
            if exc.code != NO_SUCH_SESSION:
                raise


def _mac(key: str, *parts: object) -> bytes:
    msg = "\x1f".join(str(p) for p in parts).encode()
    return hmac.new(key.encode(), msg, hashlib.sha256).digest()


def _key_of(media_room: Any) -> str:
    """A media room's stable key: a Room (or breakout) instance's id, or a string id."""
    return str(getattr(media_room, "pk", None) or getattr(media_room, "id", None) or media_room)


def _pid_of(participant: Any) -> str:
    return str(getattr(participant, "participant_id", participant))


def _name_of(participant: Any) -> str:
    return str(getattr(participant, "name", "") or "")


@dataclass
class _Known:
    """What this process last told Janus about one media room (for reconcile and restore)."""

    room_id: int
    participants: set[str]
    permissions: dict[str, dict[str, bool]] | None = None
    gen: int = 0  # bumped by every join_info / apply / revoke of this process


# media room keys -> participant id -> permissions; None for a media room that is gone, no key
# for one the source has nothing to say about
PermissionsSource = Callable[[list[str]], Mapping[str, Mapping[str, Any] | None]]


def _stored_permissions(keys: list[str]) -> Mapping[str, Mapping[str, Any] | None]:
    """The database's view (reconcile thread): lobby.media.stored_permissions."""
    from django.db import close_old_connections

    from . import stored_permissions

    try:
        return stored_permissions(keys)
    finally:
        close_old_connections()


class JanusBackend:
    """MediaBackend on a Janus server (MEDIA-DESIGN.md "Backend interface")."""

    name = "janus"
    mode = "sfu"  # what joined.media.mode says: browsers use static/anteroom/media-janus.js

    def __init__(
        self,
        config: JanusConfig | None = None,
        *,
        autostart: bool = True,
        on_recovered: Callable[[list[str]], None] | None = None,
        permissions_source: PermissionsSource | Literal["applied"] | None = None,
    ) -> None:
        self.config = config or JanusConfig.from_settings()
        # What reconcile re-applies: the database (default); "applied" = what this backend was
        # last told, for tests that drive a backend by hand with no rooms behind it.
        self.permissions_source: PermissionsSource = (
            self._applied
            if permissions_source == "applied"
            else permissions_source or _stored_permissions
        )
        self.autostart = autostart  # start the reconcile thread on first use
        # called (reconcile thread) with the media rooms this process knows when Janus answers
        # again after an outage: by default media re-sends their participants' media-state
        self.on_recovered = on_recovered if on_recovered is not None else _tell_media
        self.client = JanusClient(self.config)
        self._known: dict[str, _Known] = {}
        self._known_lock = threading.Lock()
        self._muted: set[tuple[int, int, str]] = set()  # (room, feed, mid) this process muted
        self._restore_pending = False  # rooms and tokens to re-create (Janus lost them)
        self._tell_pending = False  # media to ask for fresh media-states (after an outage)
        self._rounds = 0
        self._to_drop: list[tuple[str, int, set[str]]] = []  # reconcile thread only
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()

    # identifiers ----------------------------------------------------------------------------

    def room_id(self, media_room: Any) -> int:
        n = int.from_bytes(
            _mac(self.config.signing_key, "janus-room", _key_of(media_room))[:8], "big"
        )
        return n % (MAX_ID - 1) + 1

    def feed_id(self, participant: Any) -> int:
        n = int.from_bytes(_mac(self.config.signing_key, "janus-feed", _pid_of(participant))[:8])
        return n % (MAX_ID - 1) + 1

    def token(self, participant: Any, media_room: Any) -> str:
        """The participant's credential for one media room. It starts with the room's id, so
        closing the room can find and remove its tokens among the core's."""
        digest = _mac(
            self.config.signing_key, "janus-token", _key_of(media_room), _pid_of(participant)
        )
        return f"r{self.room_id(media_room)}-" + base64.urlsafe_b64encode(digest[:24]).decode()

    # MediaBackend ---------------------------------------------------------------------------

    def check(self) -> None:
        self.config.validate()

    def ready(self) -> tuple[bool, str]:
        try:
            # an authenticated admin request: "info" answers without the secret
            self.client.admin({"janus": "get_status"}, timeout=min(1.0, self.config.timeout))
        except JanusError as exc:
            return False, f"media server (janus) refused the admin request ({exc.code})"
        except MediaUnavailable:
            return False, "media server (janus) unreachable"
        return True, "ok"

    def join_info(self, participant: Any, media_room: Any) -> dict[str, Any]:
        """The ``sfu`` part of ``media-state`` (media worker thread, after ``apply``): makes sure
        the VideoRoom exists and holds this participant's token, and says where and how to
        connect. Raises MediaUnavailable when Janus cannot be reached (the participant's
        ``media-state`` then says UNAVAILABLE; when Janus is back the reconcile thread asks
        media to send it again)."""
        self._autostart()
        room = self.room_id(media_room)
        token = self.token(participant, media_room)
        with self._known_lock:
            known = self._known.setdefault(_key_of(media_room), _Known(room, set()))
            known.participants.add(_pid_of(participant))
            known.gen += 1
        self._ensure_room(room)
        self._allow(room, [token])
        return {
            "url": self.config.public_url,
            "room": room,
            "token": token,
            "id": self.feed_id(participant),
            "display": _pid_of(participant),
        }

    def apply(self, media_room: Any, permissions_by_participant: Mapping[str, Any]) -> None:
        """Enforce ``permissions_by_participant`` (participant id -> {"audio", "video",
        "screen", "receive"}) on the media room's publishers and subscribers."""
        self._autostart()
        perms = {str(k): _perm(v) for k, v in permissions_by_participant.items()}
        key = _key_of(media_room)
        room = self.room_id(media_room)
        with self._known_lock:
            known = self._known.setdefault(key, _Known(room, set()))
            known.permissions = perms
            known.participants.update(perms)
            known.gen += 1
        self._ensure_room(room)
        self._enforce(key, room, perms)

    def revoke(self, participant: Any, media_room: Any) -> None:
        """Leave, deny, kick, revocation, move: the token stops working everywhere at once."""
        room = self.room_id(media_room)
        token = self.token(participant, media_room)
        pid = _pid_of(participant)
        with self._known_lock:
            known = self._known.get(_key_of(media_room))
            if known is not None:
                known.participants.discard(pid)
                if known.permissions is not None:
                    known.permissions.pop(pid, None)
                known.gen += 1
        self._remove_tokens([token])
        try:
            self.client.videoroom(
                {"request": "allowed", "room": room, "action": "remove", "allowed": [token]}
            )
        except JanusError as exc:
            if exc.code != NO_SUCH_ROOM:
                raise
        self._kick(room, self.feed_id(participant))
        for info in self.client.handles():
            if info.get("token") == token:
                self.client.destroy_session(int(info["session_id"]))

    def close_room(self, media_room: Any) -> None:
        room = self.room_id(media_room)
        with self._known_lock:
            self._known.pop(_key_of(media_room), None)
        try:
            self.client.videoroom(
                {"request": "destroy", "room": room, "admin_key": self.config.room_admin_key}
            )
        except JanusError as exc:
            if exc.code != NO_SUCH_ROOM:
                raise
        tokens = self.client.admin({"janus": "list_tokens"}).get("data", {}).get("tokens") or []
        prefix = f"r{room}-"
        self._remove_tokens(
            [t["token"] for t in tokens if str(t.get("token", "")).startswith(prefix)]
        )

    # reconcile ------------------------------------------------------------------------------

    def _autostart(self) -> None:
        if self.autostart and self._thread is None:
            self.start()

    def start(self) -> None:
        """Start the reconcile thread (idempotent; daemon: it dies with the process)."""
        if self._thread is not None and self._thread.is_alive():
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self._loop, name="janus-reconcile", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def _loop(self) -> None:
        while not self._stop.wait(self.config.reconcile_interval):
            try:
                self.reconcile()
            except MediaUnavailable as exc:
                log.debug("janus reconcile: %s", exc)
            except Exception:  # keep the thread alive whatever one round hits
                log.exception("janus reconcile failed")

    def reconcile(self) -> None:
        """One round: keep the control session alive; read the permissions of every media room
        this process knows from ``permissions_source`` (the database) and take the tokens of
        those no longer present; when Janus lost the session (first round, or a restart)
        re-create every known room and token; re-apply the permissions (one admin scan of the
        handles for all of them)."""
        try:
            alive = self.client.keepalive()
        except MediaUnavailable:
            self._tell_pending = True  # media-states said UNAVAILABLE meanwhile
            raise
        was_down, forgot = self.client.take_news()
        if not alive or forgot:
            # first round, or Janus forgot us (a restart), even if another call (a join's
            # videoroom request) already re-opened the control session since the last round
            self._restore_pending = True
        if was_down:
            self._tell_pending = True  # a request met the outage: its media-state said so
        first = self._rounds == 0
        self._rounds += 1
        rooms, dropped, trusted = self._refresh()
        self._to_drop.extend(dropped)
        while self._to_drop:
            # Present no more (another process removed them): their tokens go, and their
            # sessions with them (below, as strangers to the room). Kept until done.
            key, room_id, pids = self._to_drop[0]
            tokens = [self.token(pid, key) for pid in sorted(pids)]
            self._remove_tokens(tokens)
            try:
                self.client.videoroom(
                    {"request": "allowed", "room": room_id, "action": "remove", "allowed": tokens}
                )
            except JanusError as exc:
                if exc.code != NO_SUCH_ROOM:
                    raise
            self._to_drop.pop(0)
        # Both flags stay set until their work completed: a round that fails half-way (Janus
        # still starting, a locked database) leaves them for the next one; without the
        # database's word no token is restored from memory.
        if self._restore_pending and trusted:
            for key, known in rooms.items():
                self._ensure_room(known.room_id)
                if known.participants:
                    self._allow(known.room_id, [self.token(p, key) for p in known.participants])
            if rooms:
                log.info("janus: restored %d media room(s) after losing the session", len(rooms))
            self._tell_pending = self._tell_pending or not first
            self._restore_pending = False
        if self._tell_pending:
            if rooms and self.on_recovered is not None:
                self.on_recovered(sorted(rooms))
            self._tell_pending = False
        enforced = {k: v for k, v in rooms.items() if v.permissions is not None}
        if enforced:
            handles = self.client.handles()
            for key, known in enforced.items():
                assert known.permissions is not None
                self._enforce(key, known.room_id, known.permissions, handles, grant=trusted)

    def _applied(self, keys: list[str]) -> dict[str, dict[str, Any] | None]:
        with self._known_lock:
            out: dict[str, dict[str, Any] | None] = {}
            for key in keys:
                known = self._known.get(key)
                if known is None:
                    out[key] = None
                elif known.permissions is not None:
                    out[key] = dict(known.permissions)
            return out

    def _refresh(self) -> tuple[dict[str, _Known], list[tuple[str, int, set[str]]], bool]:
        """The known media rooms with the permissions the source says now. Returns (rooms,
        participants this process knew that are present no more, whether the source answered).
        A room this process touched while the source was read keeps this process's newer view
        until the next round; a room the source calls gone is forgotten (its closer removed
        its tokens). If the source fails, the rooms keep what this process last applied but
        ``trusted`` is False: nobody's token is added back from memory."""
        with self._known_lock:
            gens = {k: v.gen for k, v in self._known.items()}
        try:
            fresh = self.permissions_source(sorted(gens)) if gens else {}
            trusted = True
        except Exception:
            log.warning("janus reconcile: could not read the permissions", exc_info=True)
            fresh, trusted = {}, False
        dropped: list[tuple[str, int, set[str]]] = []
        with self._known_lock:
            for key, gen in gens.items():
                known = self._known.get(key)
                if not trusted or known is None or known.gen != gen or key not in fresh:
                    continue  # no newer word on this room
                stored = fresh[key]
                if stored is None:
                    del self._known[key]
                    continue
                perms = {str(pid): _perm(v) for pid, v in stored.items()}
                gone = known.participants - set(perms)
                if gone:
                    dropped.append((key, known.room_id, gone))
                known.participants = set(perms)
                known.permissions = perms
            rooms = {
                k: _Known(v.room_id, set(v.participants), v.permissions)
                for k, v in self._known.items()
            }
        return rooms, dropped, trusted

    # helpers --------------------------------------------------------------------------------

    def _ensure_room(self, room: int) -> None:
        try:
            self.client.videoroom(
                {
                    "request": "create",
                    "room": room,
                    "admin_key": self.config.room_admin_key,
                    "permanent": False,
                    "is_private": True,
                    "description": f"anteroom {room}",
                    "publishers": self.config.max_publishers,
                    "allowed": [],
                    "require_pvtid": True,
                    "notify_joining": True,
                    "audiocodec": "opus",
                    "videocodec": "vp8",
                }
            )
        except JanusError as exc:
            if exc.code != ROOM_EXISTS:
                raise

    def _allow(self, room: int, tokens: list[str]) -> None:
        for token in tokens:
            # idempotent in Janus 1.1: adding a known token succeeds again
            self.client.admin({"janus": "add_token", "token": token, "plugins": [VIDEOROOM]})
        self.client.videoroom(
            {"request": "allowed", "room": room, "action": "add", "allowed": tokens}
        )

    def _remove_tokens(self, tokens: Iterable[str]) -> None:
        for token in tokens:
            try:
                self.client.admin({"janus": "remove_token", "token": token})
            except JanusError as exc:
                if exc.code != TOKEN_NOT_FOUND:
                    raise

    def _kick(self, room: int, feed: int) -> None:
        try:
            self.client.videoroom({"request": "kick", "room": room, "id": feed})
        except JanusError as exc:
            if exc.code not in (NO_SUCH_ROOM, NO_SUCH_FEED):
                raise

    def _enforce(
        self,
        key: str,
        room: int,
        perms: dict[str, dict[str, bool]],
        handles: list[dict[str, Any]] | None = None,
        *,
        grant: bool = True,
    ) -> None:
        tokens = {self.token(pid, key): pid for pid in perms}
        receiving = [t for t, pid in tokens.items() if perms[pid]["receive"]]
        silenced = [t for t, pid in tokens.items() if not perms[pid]["receive"]]
        if receiving and grant:
            self._allow(room, receiving)
        if silenced:
            self.client.videoroom(
                {"request": "allowed", "room": room, "action": "remove", "allowed": silenced}
            )
        prefix = f"r{room}-"
        for info in self.client.handles() if handles is None else handles:
            token = str(info.get("token") or "")
            specific = info.get("plugin_specific") or {}
            in_room = specific.get("room") == room or token.startswith(prefix)
            if not token or not in_room:
                continue  # Anteroom's own handle, or another room's
            pid = tokens.get(token)
            if pid is None or not perms[pid]["receive"]:
                # not admitted to this media room (any more), or paused: no media at all
                self.client.destroy_session(int(info["session_id"]))
                continue
            if specific.get("type") == "publisher":
                self._moderate(room, int(specific.get("id", 0)), specific, perms[pid])

    def _moderate(
        self, room: int, feed: int, specific: Mapping[str, Any], perm: Mapping[str, bool]
    ) -> None:
        """Mute each stream the permission does not allow. The first video stream is the
        camera; any further video stream counts as a screen share.

        Janus's handle_info does not show a stream's moderation, and a renegotiated stream
        comes back unmuted under the same mid: a mute is sent again on every round; an unmute
        only where this process muted before."""
        seen_video = False
        for stream in specific.get("streams") or []:
            kind = stream.get("type")
            if kind == "audio":
                allowed = perm["audio"]
            elif kind == "video":
                allowed = perm["screen"] if seen_video else perm["video"]
                seen_video = True
            else:
                continue
            mid = stream.get("mid")
            if mid is None:
                continue
            key = (room, feed, str(mid))
            if allowed and key not in self._muted:
                continue
            try:
                self.client.videoroom(
                    {
                        "request": "moderate",
                        "room": room,
                        "id": feed,
                        "mid": str(mid),
                        "mute": not allowed,
                    }
                )
            except JanusError as exc:
                if exc.code not in (NO_SUCH_ROOM, NO_SUCH_FEED):
                    raise
            if allowed:
                self._muted.discard(key)
            else:
                self._muted.add(key)


def _tell_media(media_rooms: list[str]) -> None:
    """Janus is back: media recomputes and re-sends ``media-state`` (with fresh ``sfu``) for
    the parent rooms of these media rooms (lobby/media/signals.py)."""
    from django.db import close_old_connections

    try:
        media_server_recovered.send(sender=JanusBackend, media_rooms=media_rooms)
    finally:
        close_old_connections()


def _perm(value: Any) -> dict[str, bool]:
    if not isinstance(value, Mapping):
        raise TypeError(f"permissions must be a mapping, got {type(value).__name__}")
    return {k: bool(value.get(k, False)) for k in ("audio", "video", "screen", "receive")}


_backend: JanusBackend | None = None
_backend_lock = threading.Lock()


def get_janus_backend(factory: Callable[[], JanusBackend] = JanusBackend) -> JanusBackend:
    """The process's JanusBackend (its reconcile thread started on first use)."""
    global _backend
    with _backend_lock:
        if _backend is None:
            _backend = factory()
            _backend.check()
            _backend.start()
        return _backend


def reset_janus_backend() -> None:
    """Tests: stop and forget the process's backend."""
    global _backend
    with _backend_lock:
        if _backend is not None:
            _backend.stop()
        _backend = None


def wait_until(predicate: Callable[[], bool], timeout: float, step: float = 0.05) -> bool:
    """Poll ``predicate`` until true or ``timeout`` seconds passed (tests and scripts)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(step)
    return predicate()
