"""Helpers for the fault and load suites: servers that can be killed and started again on the
same database, direct reads of that database, and socket helpers on top of ``tests.scale``.

The servers are ``tests.scale.cluster.Cluster`` processes (one SQLite file, or a fresh
PostgreSQL database shared through Redis); these helpers only add what a fault needs.
"""

from __future__ import annotations

import asyncio
import contextlib
import resource
import sqlite3
import sys
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

from websockets.exceptions import ConnectionClosed

from tests.scale.cluster import Cluster
from tests.support.servers import manage, start_daphne, stop_daphne
from tests.support.ws import Ws


@contextlib.contextmanager
def sqlite_cluster(tmp: Path, **env: str) -> Iterator[Cluster]:
    """One Daphne on a fresh, migrated SQLite file with the in-memory channel layer."""
    url = f"sqlite:///{tmp / 'anteroom.sqlite3'}"
    cluster = Cluster(tmp, url, "", **env)
    manage("migrate", "--noinput", "-v0", env=cluster.env)
    cluster.start(1)
    try:
        yield cluster
    except BaseException:
        print(cluster.logs_text(), file=sys.stderr)
        raise
    finally:
        teardown(cluster)


def teardown(cluster: Cluster) -> None:
    """Stop every server with SIGKILL: the database is thrown away, and SIGTERM can hang for
    the 10 s ``stop_daphne`` allows when a socket's write is in flight (``test_shutdown.py``)."""
    for proc in cluster.procs:
        stop_daphne(proc, "kill")


def kill(cluster: Cluster, i: int = 0) -> None:
    """SIGKILL server ``i``: no disconnect handler, no last heartbeat, nothing flushed."""
    stop_daphne(cluster.procs[i], "kill")


def restart(cluster: Cluster, i: int = 0, **env: str) -> str:
    """Start server ``i`` again (after ``kill``) on the same database; returns its new base
    URL. ``env`` overrides the cluster's environment for this process only."""
    proc, base = start_daphne({**cluster.env, **env}, cluster.logs[i])
    cluster.procs[i], cluster.bases[i] = proc, base
    return base


def db_rows(database_url: str, sql: str, *params: Any) -> list[tuple[Any, ...]]:
    """Rows straight from the server's database (SQLite file or PostgreSQL), read-only.
    ``sql`` uses ``%s`` placeholders."""
    if database_url.startswith("sqlite:"):
        path = database_url.removeprefix("sqlite:///")
        with contextlib.closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True)) as conn:
            return list(conn.execute(sql.replace("%s", "?"), params))
    import psycopg

    with psycopg.connect(database_url) as conn:
        return list(conn.execute(sql, params))


def parse_ts(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def raise_fd_limit(need: int) -> None:
    """Raise this process's soft limit on open files to at least ``need`` (within the hard
    limit): hundreds of client sockets plus the servers' pipes."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != resource.RLIM_INFINITY and soft < need:
        target = need if hard == resource.RLIM_INFINITY else min(need, hard)
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))


async def wait_closed(ws: Ws, timeout: float = 15) -> None:
    """Wait until the server side of ``ws`` is gone (read and keep whatever comes first)."""
    with contextlib.suppress(ConnectionClosed):
        async with asyncio.timeout(timeout):
            while True:
                await ws.recv(timeout)


async def join(base: str, room: str, label: str, **fields: Any) -> tuple[Ws, dict[str, Any]]:
    """Open a socket and ``join``; returns the socket and the join's ack (frames sent before
    the ack, such as a moderator's replayed ``entry-requested``, stay unread)."""
    ws = await Ws.open(base, room, label)
    try:
        ack = await ws.request("join", **fields)
    except BaseException:
        await ws.close()
        raise
    return ws, ack


def unread(ws: Ws, kind: str) -> list[dict[str, Any]]:
    """Take every unread frame of ``kind``."""
    taken = [f for f in ws.unread if f["type"] == kind]
    ws.unread = [f for f in ws.unread if f["type"] != kind]
    return taken


def close_all(socks: list[Ws]) -> None:
    """Drop every client socket at once. Not a polite close: a client that stopped reading
    (websockets pauses the transport once 16 frames wait) never sees the server's close frame
    and would wait out its 10 s close timeout."""
    for s in socks:
        s.ws.transport.abort()
