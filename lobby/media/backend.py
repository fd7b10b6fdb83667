"""The media backend interface (docs/architecture.md "Media").

A backend carries the audio and video of a media room — the parent room or one breakout room.
``mesh`` (lobby/media/mesh.py, the default) needs no server: browsers connect peer to peer and
the room socket carries their signalling. A media server (``janus``, lobby/media/janus.py)
enforces permissions itself.

Contract, for every backend:

* ``check()`` runs at start-up (``LobbyConfig.ready``) and raises ``ImproperlyConfigured``;
* ``ready()`` feeds ``/readyz``: ``(False, "media server unreachable")`` when it is down;
* ``join_info(participant_id, media_room)`` is the ``sfu`` object of ``media-state`` (mesh:
  ``{}``, and then also of ``joined.media``). For a media server it runs on the media worker
  thread, so it may do network I/O; ``joined.media.sfu`` is then ``{}`` and the ``media-state``
  that follows carries it;
* ``join_info``, ``apply``, ``revoke`` and ``close_room`` run on the media worker thread
  (:func:`dispatch`), after the transaction that caused them committed — never inside one, never
  on the event loop. A backend outage raises there; it is logged, the lobby goes on, and the
  participant's ``media-state`` says ``"error": "UNAVAILABLE"``.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable
from typing import Any, Protocol
from uuid import UUID

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.utils.module_loading import import_string

log = logging.getLogger("anteroom.media")

Permissions = dict[str, bool]  # {"audio", "video", "screen", "receive"}


class MediaBackend(Protocol):
    name: str  # "mesh" | "janus" | "livekit"; ``joined.media.mode`` is "mesh" or "sfu"

    def check(self) -> None: ...

    def ready(self) -> tuple[bool, str]: ...

    def join_info(self, participant_id: str, media_room: UUID) -> dict[str, Any]: ...

    def apply(
        self, media_room: UUID, permissions_by_participant: dict[str, Permissions]
    ) -> None: ...

    def revoke(self, participant_id: str, media_room: UUID) -> None: ...

    def close_room(self, media_room: UUID) -> None: ...


_backend: MediaBackend | None = None
_lock = threading.Lock()


# Backends by ``ANTEROOM_MEDIA`` name, loaded by dotted path (as Django loads its backends), so
# that this module depends on none of them and they may import the media package.
BACKENDS = {
    "mesh": "lobby.media.mesh.MeshBackend",
    "janus": "lobby.media.janus.get_janus_backend",
}


def _make(name: str) -> MediaBackend:
    if name not in BACKENDS:
        raise ImproperlyConfigured(f"ANTEROOM_MEDIA must be mesh or janus, got {name!r}")
    try:
        factory = import_string(BACKENDS[name])
    except ImportError as exc:
        raise ImproperlyConfigured(f"ANTEROOM_MEDIA={name}: no such backend here") from exc
    backend: MediaBackend = factory()
    return backend


def get_backend() -> MediaBackend:
    """The configured backend (one per process)."""
    global _backend
    if _backend is None:
        with _lock:
            if _backend is None:
                _backend = _make(settings.ANTEROOM_MEDIA)
    return _backend


def reset_backend() -> None:
    """Forget the backend (tests that change ``ANTEROOM_MEDIA``)."""
    global _backend
    with _lock:
        _backend = None


# The media worker: one thread per process runs backend calls in order. -------------------

_jobs: queue.SimpleQueue[Callable[[], None]] = queue.SimpleQueue()
_worker: threading.Thread | None = None


def _run() -> None:
    from django.db import close_old_connections

    while True:
        job = _jobs.get()
        try:
            job()
        except Exception:
            log.exception("media backend call failed")
        finally:
            close_old_connections()


def dispatch(job: Callable[[], None]) -> None:
    """Run ``job`` on the media worker thread, after what is queued before it."""
    global _worker
    if _worker is None or not _worker.is_alive():
        with _lock:
            if _worker is None or not _worker.is_alive():
                _worker = threading.Thread(target=_run, name="anteroom-media", daemon=True)
                _worker.start()
    _jobs.put(job)


def drain(timeout: float = 5.0) -> None:
    """Wait until every job queued so far ran (tests)."""
    done = threading.Event()
    dispatch(done.set)
    if not done.wait(timeout):
        raise TimeoutError("media worker busy")
