"""A guest of a SIGKILLed process resumes on a live process at the very moment a sweeper
declares the dead process dead (PostgreSQL, two connections racing). The guest must stay
waiting and connected — before the fix in ``services.sweep`` the sweeper overwrote the
re-attached knock with the dead process's last heartbeat and, the grace being long past,
canceled it as ``disconnected``: a connected, waiting guest was told ``ENTRY_TIMEOUT``.

The interleaving is forced deterministically by ``dead_server_race.py`` (a row lock held by a
third connection), in a subprocess configured for PostgreSQL.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from tests.scale.cluster import fresh_database, require_services
from tests.support import ROOT

pytestmark = [pytest.mark.slow, pytest.mark.scale]


def test_a_resume_racing_dead_process_detection_keeps_the_guest_waiting():
    require_services()
    with fresh_database() as url:
        out = subprocess.run(
            [sys.executable, "-m", "tests.faults.dead_server_race"],
            cwd=ROOT,
            env={**os.environ, "DATABASE_URL": url, "REDIS_URL": "", "LOG_LEVEL": "WARNING"},
            capture_output=True,
            text=True,
            timeout=120,
        )
    assert out.returncode == 0, out.stderr[-4000:]
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result == {
        "after_race": {"status": "pending", "server_id": "alive-2", "connected": True},
        "after_next_sweep": {"status": "pending", "cancel_reason": None, "connected": True},
    }
