"""SIGTERM (a deploy, ``systemctl stop``, a Kubernetes rollout) while a socket's database write
is in flight: the process must still exit promptly. Deadlines live in the database, so a quick
exit loses nothing; a process that hangs until SIGKILL stalls every rolling restart.

Fixed bug (a regression test): the write commits after the event loop
has stopped, its on-commit hook (``lobby.events._send_now``) calls ``async_to_sync`` to reach that
loop and waits forever, and the interpreter's exit waits for the ORM thread — Daphne hangs until
it is killed. The in-flight write is held back here with the SQLite write lock, so the
interleaving is deterministic.
"""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
import subprocess
import time

import pytest

from tests.support.ws import Ws

from .helpers import close_all, join, sqlite_cluster

pytestmark = pytest.mark.slow


async def test_sigterm_with_a_write_in_flight_exits_promptly(tmp_path):
    with sqlite_cluster(tmp_path) as cluster:
        await asyncio.to_thread(cluster.room, "clinic")
        socks: list[Ws] = []
        try:
            guest, ack = await join(cluster.bases[0], "clinic", "guest", name="Pat")
            socks.append(guest)
            assert ack["ok"], ack
            await guest.expect("waiting")
            path = cluster.env["DATABASE_URL"].removeprefix("sqlite:///")
            with contextlib.closing(sqlite3.connect(path, isolation_level=None)) as lock:
                lock.execute("BEGIN IMMEDIATE")  # every writer now waits (busy timeout 20 s)
                await guest.send(type="cancel")
                # No event tells that the cancel is waiting inside the server; give it time.
                await asyncio.sleep(0.5)
                proc = cluster.procs[0]
                proc.terminate()
                await asyncio.sleep(0.5)  # the server stops its event loop meanwhile
                lock.execute("ROLLBACK")
            started = time.monotonic()
            try:
                await asyncio.to_thread(proc.wait, 6)
            except subprocess.TimeoutExpired:
                proc.kill()  # what the supervisor ends up doing
                pytest.fail("Daphne did not exit within 6 s of SIGTERM")
            assert time.monotonic() - started < 6
        finally:
            close_all(socks)
