"""Shared fixtures only. The helpers they use live in one place each:

* ``tests/factories.py``: rooms, tokens, connections, knocks, joins, moderators, group names;
* ``tests/support/ws.py``: the WebSocket test client (in-process ``Client``, over Daphne ``Ws``);
* ``tests/support/servers.py``: live Daphne processes (the launcher of ``lobby/loadtest``);
* ``tests/support/events.py``: the ``sent`` capture, at the channel layer.

The names below are re-exported for branches written against the old layout; new code imports
them from those modules.
"""

from __future__ import annotations

import multiprocessing
from typing import Any

import pytest

from tests.factories import forge, make_room, make_token
from tests.support import ARTIFACTS, CHROMIUM, CHROMIUM_ARGS, ROOT
from tests.support.events import Sent, sent
from tests.support.servers import manage, start_daphne, stop_daphne
from tests.support.ws import HOST, ORIGIN, Client


def pytest_configure(config: Any) -> None:
    # Live servers fork Daphne; a forked child inherits asgiref's dead executor. Use spawn.
    multiprocessing.set_start_method("spawn", force=True)


@pytest.fixture(autouse=True)
def _fresh_channel_layers():
    from channels.layers import channel_layers

    channel_layers.backends.clear()
    yield
    channel_layers.backends.clear()


@pytest.fixture(autouse=True)
def _no_background_sweeper(settings):
    """Tests move ``lobby.clock`` and sweep explicitly. (The environment default above comes
    too late: pytest-django has loaded the settings before this module is imported.) Daphne
    subprocesses get ``ANTEROOM_RUN_SWEEPER=1`` from ``start_daphne``."""
    settings.ANTEROOM_RUN_SWEEPER = False


@pytest.fixture(autouse=True)
def _fresh_caches():
    """Each test's database starts empty (a flush sends no signals): so does ``lobby.cache``."""
    from lobby import cache

    cache.clear()
    yield
    cache.clear()


@pytest.fixture(autouse=True)
def _reset_clock():
    from lobby import clock

    clock.reset()
    yield
    clock.reset()


@pytest.fixture
def room(db):
    return make_room("clinic", privacy="private", enable_knocking=True)


# WebSocket clients (tests/support/ws.py) ------------------------------------------------------


@pytest.fixture
async def clients():
    made: list[Client] = []

    async def factory(room: str = "clinic", **kw: Any) -> Client:
        c = Client(room, **kw)
        await c.connect()
        made.append(c)
        return c

    yield factory
    for c in made:
        await c.close()  # never raises: every socket is closed, whatever the test left


__all__ = [
    "ARTIFACTS",
    "CHROMIUM",
    "CHROMIUM_ARGS",
    "HOST",
    "ORIGIN",
    "ROOT",
    "Client",
    "Sent",
    "forge",
    "make_room",
    "make_token",
    "manage",
    "sent",
    "start_daphne",
    "stop_daphne",
]
