"""Lobby tests move ``lobby.clock`` and sweep explicitly.

The shared conftest sets ``ANTEROOM_RUN_SWEEPER=0`` in the environment, but pytest-django has
already loaded the settings by then, so every socket test would also run the real per-process
sweeper on the real timer. With the clock advanced, that background sweep sees this process's
own heartbeat as stale and disconnects its live sockets: turn it off here.
"""

from __future__ import annotations

import pytest


@pytest.fixture(autouse=True)
def _no_background_sweeper(settings):
    settings.ANTEROOM_RUN_SWEEPER = False
