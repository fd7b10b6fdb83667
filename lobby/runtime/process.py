"""This server process: its identity and the machinery it runs, behind one object (``RUNTIME``).

One ``Runtime`` per process owns what used to be module globals scattered over six modules:

* ``server_id`` (``SERVER_ID``): names this process in presence rows (``Connection.server_id``),
  heartbeats and ``anteroom_process_info``; the sweeper of another process declares its sockets
  gone when its heartbeat stops;
* ``loop``: the server's event loop. On-commit events from worker threads of this process are
  handed to it (``lobby/events.py``), and ``senders`` holds the per-loop sender task that does
  the ``group_send``s;
* ``layer``: the channel-layer watcher (``lobby/runtime/layerwatch.py``): outages, restarts,
  the sockets to resync;
* ``addresses`` / ``tokens``: the per-process socket caps (``lobby/runtime/limits.py``);
* ``tasks``: the background jobs, started once on the server's loop: the layer watcher, and the
  sweeper (``lobby/runtime/sweeper.py``, registered by ``LobbyConfig.ready()`` with ``job``,
  because the sweeper calls services and this module must stay importable from anywhere).

``config/asgi.py`` wraps the whole application in ``RuntimeApp``, which calls ``start()`` before
the first scope it serves: Daphne has no ASGI lifespan (django/daphne#264), so the first
connection is the earliest moment the server's loop runs. ``start()`` is idempotent; a new loop
(each test has its own) rebinds and restarts the jobs there. ``stop()`` cancels them.

This module imports only leaf modules of Anteroom (layerwatch, limits, errors), so any module
may import it without a cycle (``tests/lobby/test_import_graph.py``).
"""

from __future__ import annotations

import asyncio
import os
import socket
import uuid
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Any, Protocol

from .layerwatch import LayerWatch
from .limits import SocketSlots

SERVER_ID = f"{socket.gethostname()[:24]}-{os.getpid()}-{uuid.uuid4().hex[:8]}"

Job = Callable[[], Coroutine[Any, Any, None]]


class _HasTask(Protocol):
    task: asyncio.Task[None]


@dataclass(frozen=True)
class _JobSpec:
    run: Job
    enabled: Callable[[], bool]


class Runtime:
    """The machinery of one server process (one instance: ``RUNTIME``)."""

    def __init__(self, server_id: str = SERVER_ID) -> None:
        self.server_id = server_id
        self.layer = LayerWatch()
        self.addresses = SocketSlots()  # open sockets per client address
        self.tokens = SocketSlots()  # open sockets per personal meeting token
        self.loop: asyncio.AbstractEventLoop | None = None
        # lobby/events.py's sender of each loop (in production only the server's loop has one)
        self.senders: dict[asyncio.AbstractEventLoop, _HasTask] = {}
        self.tasks: dict[str, asyncio.Task[None]] = {}
        self.starts = 0  # how many times ``start`` bound a loop (tests: "started once")
        self._jobs: dict[str, _JobSpec] = {"layerwatch": _JobSpec(self.layer.run, lambda: True)}

    def job(self, name: str, run: Job, *, enabled: Callable[[], bool] = lambda: True) -> None:
        """Register a background job, started by ``start`` when ``enabled()`` says so then."""
        self._jobs[name] = _JobSpec(run, enabled)

    def start(self) -> None:
        """Bind the running loop and start every enabled job on it, once (idempotent)."""
        loop = asyncio.get_running_loop()
        if self.loop is loop:
            return
        self.loop = loop
        self.starts += 1
        for name, spec in self._jobs.items():
            if spec.enabled():
                self.tasks[name] = loop.create_task(spec.run(), name=f"anteroom-{name}")

    async def stop(self) -> None:
        """Cancel this loop's jobs and sender and wait for them; ``start`` may run again."""
        loop = asyncio.get_running_loop()
        mine = [t for t in self.tasks.values() if t.get_loop() is loop]
        sender = self.senders.pop(loop, None)
        if sender is not None:
            mine.append(sender.task)
        self.tasks = {n: t for n, t in self.tasks.items() if t.get_loop() is not loop}
        for task in mine:
            task.cancel()
        await asyncio.gather(*mine, return_exceptions=True)
        if self.loop is loop:
            self.loop = None

    def jobs(self) -> list[str]:
        """The names of the registered jobs."""
        return sorted(self._jobs)

    def running(self) -> list[str]:
        """The names of the jobs running now (for tests and /readyz)."""
        return sorted(n for n, t in self.tasks.items() if not t.done())


RUNTIME = Runtime()


class RuntimeApp:
    """The ASGI wrapper ``config/asgi.py`` puts around its router: starts ``RUNTIME`` once, on
    the server's loop, before the first scope (HTTP or WebSocket) is served."""

    def __init__(self, app: Any, runtime: Runtime = RUNTIME) -> None:
        self.app = app
        self.runtime = runtime

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        self.runtime.start()
        await self.app(scope, receive, send)
